"""Software probe: CUDA toolkit, cuDNN, the spec's Python env (by running its own interpreter), tools.

The Python env is probed by *its own* interpreter, never by importing torch into the verifier: the verifier
may live in another env, and a broken torch must not take the verifier down with it. The probe never judges.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dlverify.unavailable import Unavailable

ENV_TIMEOUT_S = 60.0  # a cold `import torch` on a slow disk takes tens of seconds
TOOL_TIMEOUT_S = 10.0

# Runs inside the env under test: every field is caught on its own so one broken package costs one field.
ENV_SCRIPT = r"""
import json, sys, platform
out = {"python_version": platform.python_version(), "executable": sys.executable}
def guard(key, fn):
    try:
        out[key] = fn()
    except BaseException as exc:
        out[key] = {"unavailable": "%s: %s" % (type(exc).__name__, exc)}
def dist_version(name):
    from importlib.metadata import version
    return version(name)
try:
    import torch
except BaseException as exc:
    out["torch"] = {"unavailable": "torch not importable: %s: %s" % (type(exc).__name__, exc)}
else:
    out["torch"] = torch.__version__
    CPU_ONLY = {"unavailable": "torch built without CUDA (CPU-only build)"}
    guard("torch_cuda", lambda: torch.version.cuda or CPU_ONLY)
    guard("torch_cudnn", lambda: torch.backends.cudnn.version() or {"unavailable": "torch has no cuDNN"})
    guard("cuda_available", torch.cuda.is_available)
    guard("device_count", torch.cuda.device_count)
    guard("device_names", lambda: [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
    def nccl():
        if not torch.distributed.is_available() or not hasattr(torch.cuda, "nccl"):
            return {"unavailable": "torch built without distributed/NCCL"}
        v = torch.cuda.nccl.version()
        return ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
    guard("nccl", nccl)
# the usual frameworks, and every other one the spec pins (its distribution names, on the command line)
for dist in ("torchvision", "torchaudio", "tensorflow", "jax", *sys.argv[1:]):
    guard(dist, lambda: dist_version(dist))
sys.stdout.write("\n" + json.dumps(out) + "\n")
"""

# spec key (software.containers / software.monitoring) -> how to ask the tool its version
TOOLS: dict[str, list[str]] = {
    "docker": ["docker", "--version"],  # "Docker version 24.0.5, build ced0996"
    "nvidia_container_toolkit": ["nvidia-ctk", "--version"],  # "NVIDIA Container Toolkit CLI version 1.13.1"
    "prometheus": ["prometheus", "--version"],  # "prometheus, version 2.42.0 (branch: ...)"
    "grafana": ["grafana-server", "-v"],  # "Version 9.4.7 (commit: ...)"
    "node_exporter": ["node_exporter", "--version"],
    "dcgm_exporter": ["dcgm-exporter", "--version"],
}

_NVCC_RELEASE = re.compile(r"release (\d+\.\d+), V(\d+(?:\.\d+)+)")
_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")


def parse_nvcc(text: str) -> dict[str, str] | Unavailable:
    m = _NVCC_RELEASE.search(text)
    if not m:
        return Unavailable(f"unrecognised nvcc --version output: {text.strip()[:80]!r}")
    return {"version": m.group(1), "build": m.group(2)}


def cudnn_version_from_int(value: int) -> str:
    """torch.backends.cudnn.version(): 8902 (cuDNN 8: M*1000+m*100+p) or 91900 (cuDNN 9: M*10000+m*100+p)."""
    if value >= 90000:
        return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
    return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}"


def parse_cudnn_header(text: str) -> str | None:
    parts = []
    for key in ("CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"):
        m = re.search(rf"#define\s+{key}\s+(\d+)", text)
        if not m:
            return None
        parts.append(m.group(1))
    return ".".join(parts)


def _run(cmd: list[str], timeout: float) -> tuple[int, str, str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _shown(path: Path, root: Path) -> str:
    """A path as the machine under ``root`` sees it."""
    try:
        return str(Path("/") / path.relative_to(root))
    except ValueError:
        return str(path)


def probe_cuda_toolkit(root: Path) -> dict[str, Any]:
    local = root / "usr/local"
    installs: dict[str, Any] = {}
    for d in sorted(local.glob("cuda-*")) if local.is_dir() else []:
        vj = d / "version.json"
        version: Any = d.name.removeprefix("cuda-")
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            version = json.loads(vj.read_text())["cuda"]["version"]
        installs[str(Path("/") / d.relative_to(root))] = version
    default = local / "cuda"
    default_target: Any = Unavailable("/usr/local/cuda does not exist")
    if default.exists():
        default_target = str(Path("/") / Path(os.path.realpath(default)).relative_to(os.path.realpath(root)))
    nvcc: Any = Unavailable("nvcc not found (neither /usr/local/cuda/bin/nvcc nor on PATH)")
    candidates = [default / "bin/nvcc"]
    if root == Path("/"):
        which = shutil.which("nvcc")
        if which:
            candidates.append(Path(which))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            try:
                rc, out, err = _run([str(cand), "--version"], TOOL_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                nvcc = Unavailable(f"{cand} --version failed: {exc}")
                continue
            parsed = (
                parse_nvcc(out) if rc == 0 else Unavailable(f"{cand} --version: rc {rc} {err.strip()[:80]}")
            )
            nvcc = parsed if isinstance(parsed, Unavailable) else {**parsed, "path": _shown(cand, root)}
            break
    return {"installs": installs, "default": default_target, "nvcc": nvcc}


_CUDNN_HEADERS = (
    "usr/include/cudnn_version.h",
    "usr/include/x86_64-linux-gnu/cudnn_version_v9.h",
    "usr/include/x86_64-linux-gnu/cudnn_version_v8.h",
    "usr/include/aarch64-linux-gnu/cudnn_version_v9.h",
    "usr/include/aarch64-linux-gnu/cudnn_version_v8.h",
    "usr/local/cuda/include/cudnn_version.h",
    "usr/include/cudnn.h",  # cuDNN <= 7 kept the version here
    "usr/local/cuda/include/cudnn.h",
)
_CUDNN_LIB_DIRS = (
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/local/cuda/lib64",
    "usr/lib64",
)
_CUDNN_SONAME = re.compile(r"^libcudnn\.so\.(\d+(?:\.\d+)*)$")


def probe_cudnn(root: Path) -> dict[str, str] | Unavailable:
    for rel in _CUDNN_HEADERS:
        try:
            text = (root / rel).read_text(errors="replace")
        except OSError:
            continue
        version = parse_cudnn_header(text)
        if version:
            return {"version": version, "source": "/" + rel}
    best: tuple[tuple[int, ...], str, str] | None = None
    for rel in _CUDNN_LIB_DIRS:
        d = root / rel
        if not d.is_dir():
            continue
        for lib in d.glob("libcudnn.so.*"):
            m = _CUDNN_SONAME.match(lib.name)
            if m:
                key = tuple(int(x) for x in m.group(1).split("."))
                if best is None or key > best[0]:
                    best = (key, m.group(1), f"/{rel}/{lib.name}")
    if best:
        return {"version": best[1], "source": best[2]}
    return Unavailable("cuDNN not found (no cudnn_version.h and no libcudnn.so.N in the usual places)")


# TensorFlow's own view of the GPUs, in an interpreter of its own: TensorFlow and torch each load their CUDA
# libraries, and two cuDNN builds in one process can crash it (one broken framework must cost one field).
TF_SCRIPT = r"""
import json
import tensorflow as tf
print()
print(json.dumps({"gpus": len(tf.config.list_physical_devices("GPU"))}))
"""


def _run_env_script(
    interpreter: str, script: str, timeout: float, what: str, args: tuple[str, ...] = ()
) -> dict[str, Any] | Unavailable:
    """Run `script` in the env's interpreter (isolated mode); its last stdout line is a JSON object."""
    try:
        rc, out, err = _run([interpreter, "-I", "-c", script, *args], timeout)
    except subprocess.TimeoutExpired:
        return Unavailable(f"{what} did not answer within {timeout:.0f} s")
    except OSError as exc:
        return Unavailable(f"{interpreter} could not run: {exc.strerror or exc}")
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        data = json.loads(lines[-1]) if lines else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        tail = (err.strip().splitlines() or [f"rc {rc}"])[-1]
        return Unavailable(f"{what} gave no result: {tail[:200]}")
    return data


def probe_tensorflow_gpus(interpreter: str, timeout: float = ENV_TIMEOUT_S) -> int | Unavailable:
    """How many GPUs TensorFlow sees in the env (tf.config.list_physical_devices("GPU"))."""
    data = _run_env_script(interpreter, TF_SCRIPT, timeout, "import tensorflow")
    if isinstance(data, Unavailable):
        return data
    if not isinstance(data.get("gpus"), int):
        return Unavailable(f"tensorflow could not list the GPUs: {data!r:.200}")
    return int(data["gpus"])


def probe_python_env(
    interpreter: str, timeout: float = ENV_TIMEOUT_S, dists: tuple[str, ...] = ()
) -> dict[str, Any] | Unavailable:
    """torch's view of CUDA and the versions of the usual frameworks and of ``dists`` (the spec's others)."""
    if not (os.path.isfile(interpreter) and os.access(interpreter, os.X_OK)):
        return Unavailable(f"interpreter {interpreter} does not exist (env not created?)")
    data = _run_env_script(interpreter, ENV_SCRIPT, timeout, interpreter, dists)
    if isinstance(data, Unavailable):
        return data
    data["interpreter"] = interpreter
    if isinstance(data.get("tensorflow"), str):  # installed: ask it what it sees, apart from torch
        data["tensorflow_gpus"] = probe_tensorflow_gpus(interpreter, timeout)
    cudnn = data.get("torch_cudnn")
    if isinstance(cudnn, int):
        data["torch_cudnn"] = cudnn_version_from_int(cudnn)
    return data


def probe_tool(name: str) -> str | Unavailable:
    cmd = TOOLS.get(name, [name.replace("_", "-"), "--version"])
    exe = shutil.which(cmd[0])
    if not exe:
        return Unavailable(f"{cmd[0]} not installed (not on PATH)")
    try:
        rc, out, err = _run([exe, *cmd[1:]], TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Unavailable(f"{' '.join(cmd)} failed: {exc}")
    m = _VERSION.search(out + err)
    if rc != 0 or not m:
        return Unavailable(f"{' '.join(cmd)}: rc {rc}, no version in {(out + err).strip()[:80]!r}")
    return m.group(1)


def probe_software(
    root: str | os.PathLike[str] = "/",
    *,
    interpreter: str | None = None,
    tools: list[str] | None = None,
    env: bool = True,
    frameworks: list[str] | None = None,
) -> dict[str, Any]:
    r = Path(root)
    if not env:
        python_env: Any = Unavailable("not probed (--no-env)")
    else:
        interp = interpreter or shutil.which("python3") or "/usr/bin/python3"
        python_env = probe_python_env(interp, dists=tuple(frameworks or ()))
    names = tools if tools is not None else [t for t in TOOLS if shutil.which(TOOLS[t][0])]
    return {
        "cuda_toolkit": probe_cuda_toolkit(r),
        "cudnn": probe_cudnn(r),
        "python_env": python_env,
        "tools": {name: probe_tool(name) for name in names},
    }
