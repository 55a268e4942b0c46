# ruff: noqa
# A verbatim copy of the project reference script ../shared/bench/reference_resnet18.py (issue 5):
# the hand-written recipes dlverify bench is compared with, in the same device run. Do not edit.
"""Reference ResNet18 throughput recipes and an NVML snapshot, for side-by-side comparison.

The plain-PyTorch recipes a user would write by hand (fp32 eager, AMP + channels_last, torch.compile,
CUDA graphs), timed with CUDA events on synthetic data. Run on a GPU machine:
    OUT=/tmp/out python3 reference_resnet18.py     # prints a summary, writes $OUT/baseline.json
"""

import json, os, subprocess, sys, time

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
T0 = time.time()
results = {"t_import_start": T0}


def log(*a):
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


def dump():
    with open(os.path.join(OUT, "baseline.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)


# ---- environment -----------------------------------------------------------
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout
    except Exception as e:  # noqa
        return f"ERR {e}"


results["nvidia_smi_L"] = sh("nvidia-smi -L")
results["nvcc"] = sh("nvcc --version | tail -2")
results["os_release"] = sh("cat /etc/os-release")
results["lscpu"] = sh("lscpu | head -20")
results["tools"] = sh(
    "which dcgmi nv-hostengine nvidia-smi nvcc gcc ansible conda nvtop; ls -d /usr/local/cuda* /opt/conda 2>&1; ldconfig -p | grep -E 'cudnn|nvidia-ml|libcuda.so' | head; nproc; free -g; df -h / | tail -1; python3 -c 'import pynvml,sys;print(pynvml.__file__)' 2>&1; python3 -m pip list 2>/dev/null | grep -iE 'ml-py|pynvml|psutil|rich|yaml|torch|pytest'"
)
open(os.path.join(OUT, "nvsmi_q.xml"), "w").write(sh("nvidia-smi -q -x"))
open(os.path.join(OUT, "nvsmi_topo.txt"), "w").write(
    sh("nvidia-smi topo -m") + "\n----\n" + sh("nvidia-smi -q")
)
log(results["nvidia_smi_L"].strip())

# ---- NVML snapshot (fixture material) -----------------------------------------
try:
    import pynvml as N

    N.nvmlInit()
    snap = {
        "driver": N.nvmlSystemGetDriverVersion(),
        "nvml": N.nvmlSystemGetNVMLVersion(),
        "cuda_driver": N.nvmlSystemGetCudaDriverVersion_v2(),
        "gpus": [],
    }

    def q(fn, *a):
        try:
            v = fn(*a)
            if hasattr(v, "_fields_"):
                return {k: getattr(v, k) for k, _ in v._fields_}
            return v
        except Exception as e:
            return f"ERR {type(e).__name__}: {e}"

    for i in range(N.nvmlDeviceGetCount()):
        h = N.nvmlDeviceGetHandleByIndex(i)
        g = {
            "index": i,
            "name": q(N.nvmlDeviceGetName, h),
            "uuid": q(N.nvmlDeviceGetUUID, h),
            "pci": q(N.nvmlDeviceGetPciInfo, h),
            "memory": q(N.nvmlDeviceGetMemoryInfo, h),
            "bar1": q(N.nvmlDeviceGetBAR1MemoryInfo, h),
            "pcie_gen_cur": q(N.nvmlDeviceGetCurrPcieLinkGeneration, h),
            "pcie_gen_max": q(N.nvmlDeviceGetMaxPcieLinkGeneration, h),
            "pcie_gen_gpu_max": q(N.nvmlDeviceGetGpuMaxPcieLinkGeneration, h),
            "pcie_width_cur": q(N.nvmlDeviceGetCurrPcieLinkWidth, h),
            "pcie_width_max": q(N.nvmlDeviceGetMaxPcieLinkWidth, h),
            "ecc_mode": q(N.nvmlDeviceGetEccMode, h),
            "ecc_volatile_uncorrected": q(
                N.nvmlDeviceGetTotalEccErrors, h, N.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, N.NVML_VOLATILE_ECC
            ),
            "ecc_aggregate_uncorrected": q(
                N.nvmlDeviceGetTotalEccErrors, h, N.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, N.NVML_AGGREGATE_ECC
            ),
            "remapped_rows": q(N.nvmlDeviceGetRemappedRows, h),
            "retired_pages_dbe": q(
                N.nvmlDeviceGetRetiredPages, h, N.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
            ),
            "temperature": q(N.nvmlDeviceGetTemperature, h, N.NVML_TEMPERATURE_GPU),
            "power_usage_mw": q(N.nvmlDeviceGetPowerUsage, h),
            "power_limit_mw": q(N.nvmlDeviceGetEnforcedPowerLimit, h),
            "power_default_limit_mw": q(N.nvmlDeviceGetPowerManagementDefaultLimit, h),
            "clock_sm": q(N.nvmlDeviceGetClockInfo, h, N.NVML_CLOCK_SM),
            "clock_sm_max": q(N.nvmlDeviceGetMaxClockInfo, h, N.NVML_CLOCK_SM),
            "clock_mem_max": q(N.nvmlDeviceGetMaxClockInfo, h, N.NVML_CLOCK_MEM),
            "throttle": q(N.nvmlDeviceGetCurrentClocksEventReasons, h)
            if hasattr(N, "nvmlDeviceGetCurrentClocksEventReasons")
            else q(N.nvmlDeviceGetCurrentClocksThrottleReasons, h),
            "persistence": q(N.nvmlDeviceGetPersistenceMode, h),
            "compute_mode": q(N.nvmlDeviceGetComputeMode, h),
            "mig_mode": q(N.nvmlDeviceGetMigMode, h),
            "cuda_cc": q(N.nvmlDeviceGetCudaComputeCapability, h),
            "vbios": q(N.nvmlDeviceGetVbiosVersion, h),
            "serial": q(N.nvmlDeviceGetSerial, h),
            "utilization": q(N.nvmlDeviceGetUtilizationRates, h),
            "nvlink": [q(N.nvmlDeviceGetNvLinkState, h, l) for l in range(18)],
            "fan": q(N.nvmlDeviceGetFanSpeed, h),
            "perf_state": q(N.nvmlDeviceGetPerformanceState, h),
            "numa_node": q(N.nvmlDeviceGetNumaNodeId, h) if hasattr(N, "nvmlDeviceGetNumaNodeId") else None,
        }
        snap["gpus"].append(g)
    results["nvml"] = snap
    results["pynvml_file"] = N.__file__
    log("nvml ok", snap["driver"], snap["cuda_driver"], [g["name"] for g in snap["gpus"]])
except Exception as e:
    results["nvml"] = f"ERR {e}"
    log("nvml failed", e)
dump()

# ---- torch ------------------------------------------------------------------
t = time.time()
import torch, torchvision

results["t_import_torch_s"] = time.time() - t
results["torch"] = torch.__version__
results["torchvision"] = torchvision.__version__
results["torch_cuda"] = torch.version.cuda
results["cudnn"] = torch.backends.cudnn.version()
t = time.time()
torch.cuda.init()
torch.zeros(1, device="cuda")
results["t_cuda_init_s"] = time.time() - t
log(
    "torch",
    torch.__version__,
    torch.version.cuda,
    "cudnn",
    results["cudnn"],
    "cuda init",
    results["t_cuda_init_s"],
)
dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True


def timed(fn, warm=10, iters=40):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2], times[0], times[-1]


# ceilings
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
med, lo, hi = timed(lambda: a @ b, 3, 10)
results["bf16_matmul_tflops"] = 2 * 8192**3 / (med / 1e3) / 1e12
x = torch.empty(2 * 1024**3 // 4, device=dev, dtype=torch.float32)
y = torch.empty_like(x)
med, lo, hi = timed(lambda: y.copy_(x), 3, 10)
results["d2d_copy_TBps_rw"] = 2 * x.numel() * 4 / (med / 1e3) / 1e12
del a, b, x, y
torch.cuda.empty_cache()
log("ceilings", results["bf16_matmul_tflops"], "TFLOP/s bf16;", results["d2d_copy_TBps_rw"], "TB/s")
dump()

BS = int(os.environ.get("BS", "256"))
bench = {}
results["resnet18"] = bench


def run(name, train, dtype, cl, compile_mode=None, bs=BS, fp16_weights=False):
    t_setup = time.time()
    try:
        m = torchvision.models.resnet18(num_classes=1000).to(dev)
        fmt = torch.channels_last if cl else torch.contiguous_format
        m = m.to(memory_format=fmt)
        if fp16_weights:
            m = m.to(dtype)
        inp = torch.randn(
            bs, 3, 224, 224, device=dev, dtype=(dtype if fp16_weights else torch.float32)
        ).contiguous(memory_format=fmt)
        tgt = torch.randint(0, 1000, (bs,), device=dev)
        if train:
            m.train()
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            crit = torch.nn.CrossEntropyLoss()
        else:
            m.eval()
        fwd = torch.compile(m, mode=compile_mode) if compile_mode else m
        use_amp = dtype is not None and not fp16_weights

        def step():
            if train:
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=dtype, enabled=use_amp):
                    loss = crit(fwd(inp), tgt)
                loss.backward()
                opt.step()
            else:
                with (
                    torch.inference_mode(),
                    torch.autocast("cuda", dtype=dtype or torch.float32, enabled=use_amp),
                ):
                    fwd(inp)

        # first call (compile) timed separately
        t1 = time.time()
        step()
        torch.cuda.synchronize()
        first = time.time() - t1
        med, lo, hi = timed(step, 10, 40)
        r = {
            "img_s": bs / (med / 1e3),
            "img_s_min": bs / (hi / 1e3),
            "img_s_max": bs / (lo / 1e3),
            "ms_iter": med,
            "first_call_s": first,
            "setup_s": time.time() - t_setup,
            "bs": bs,
            "peak_mem_GiB": torch.cuda.max_memory_allocated() / 2**30,
        }
    except Exception as e:
        r = {"error": f"{type(e).__name__}: {e}"[:500]}
    bench[name] = r
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.empty_cache()
    log(name, {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()})
    dump()


bf16 = torch.bfloat16
run("infer_fp32_nchw_eager", False, None, False)
run("infer_bf16amp_cl_eager", False, bf16, True)
run("infer_fp16w_cl_eager", False, torch.float16, True, fp16_weights=True)
run("train_fp32_nchw_eager", True, None, False)
run("train_bf16amp_cl_eager", True, bf16, True)
run(
    "infer_bf16amp_cl_compile",
    False,
    bf16,
    True,
    compile_mode="max-autotune-no-cudagraphs" if os.environ.get("MAXAT") else "default",
)
run("infer_bf16amp_cl_compile_cg", False, bf16, True, compile_mode="reduce-overhead")
run("train_bf16amp_cl_compile", True, bf16, True, compile_mode="default")
run("infer_bf16amp_cl_eager_bs1024", False, bf16, True, bs=1024)

results["t_total_s"] = time.time() - T0
dump()
print("\n== summary (img/s) ==")
for k, v in bench.items():
    print(f"{k:34s} {v.get('img_s', 0):10.0f}  first={v.get('first_call_s', 0):.1f}s  {v.get('error', '')}")
print(f"total {results['t_total_s']:.0f}s")
