"""Software judges (group ``software``): CUDA toolkit, cuDNN, the Python env and its torch, tools. Pure."""

from __future__ import annotations

from typing import Any

from dlverify.checks.common import Json, get, missing, version_matches
from dlverify.checks.services import check_services
from dlverify.hwspec.compat import vkey
from dlverify.hwspec.model import Spec
from dlverify.results import CheckResult, Recorder

# spec frameworks key -> the key the env probe reports it under
_FRAMEWORK_KEYS = {
    "pytorch": "torch",
    "torch": "torch",
    "torchvision": "torchvision",
    "torchaudio": "torchaudio",
    "tensorflow": "tensorflow",
    "jax": "jax",
}


def same_version(want: str, have: Any) -> bool:
    """A framework pin: "2.1.2" ignores the build tag, "2.1.2+cu121" must match it too; "2.1" any 2.1.x."""
    if "+" in want:
        return str(have) == want
    return version_matches(want, str(have).split("+")[0])


_LABELS = {
    "software.python": "Python",
    "software.torch": "PyTorch",
    "software.torch_cuda": "torch CUDA build",
    "software.cuda_available": "torch.cuda.is_available()",
    "software.torch_device_count": "torch device count",
    "software.nccl": "NCCL",
}


def _toolkit(spec: Spec, sw: Json, j: Recorder) -> None:
    want = spec.software.cuda
    tk = sw.get("cuda_toolkit")
    nvcc = get(tk, "nvcc")
    have = get(nvcc, "version")
    if not want:
        j.check("software.cuda_toolkit", "CUDA toolkit").skip(
            "the spec does not pin a CUDA toolkit", have if isinstance(have, str) else None
        )
        return
    installs = get(tk, "installs") if isinstance(get(tk, "installs"), dict) else {}
    at = [path for path, v in installs.items() if version_matches(want, v)]
    if isinstance(have, str) and vkey(have)[:2] == vkey(want)[:2]:
        j.check("software.cuda_toolkit", "CUDA toolkit").ok(f"nvcc {have}", want, str(get(nvcc, "path")))
    elif at:
        j.check("software.cuda_toolkit", "CUDA toolkit").warn(
            f"nvcc {have}" if isinstance(have, str) else "no nvcc",
            want,
            f"CUDA {want} is installed at {at[0]} but is not the default nvcc (/usr/local/cuda or PATH)",
        )
    else:
        why = f"nvcc reports {have}" if isinstance(have, str) else (missing(nvcc) or missing(tk) or "no nvcc")
        listed = ", ".join(installs) or "no /usr/local/cuda-X.Y"
        j.check("software.cuda_toolkit", "CUDA toolkit").fail(
            have if isinstance(have, str) else None, want, f"{why}; installed: {listed}"
        )


def _cudnn(spec: Spec, sw: Json, env: Any, j: Recorder) -> None:
    want = spec.software.cudnn
    got = sw.get("cudnn")
    have = get(got, "version")
    if not want:
        j.check("software.cudnn", "cuDNN").skip(
            "the spec does not pin cuDNN", have if isinstance(have, str) else None
        )
    elif isinstance(have, str) and version_matches(want, have):
        j.check("software.cudnn", "cuDNN").ok(have, want, str(get(got, "source")))
    elif (
        not isinstance(have, str)
        and isinstance(get(env, "torch_cudnn"), str)
        and version_matches(want, get(env, "torch_cudnn"))
    ):
        # pip wheels of torch carry their own cuDNN: with no system copy, that is the one in use
        j.check("software.cudnn", "cuDNN").ok(
            get(env, "torch_cudnn"), want, "no system cuDNN; the env's torch bundles it"
        )
    else:
        torch_cudnn = get(env, "torch_cudnn")
        bundled = f"; torch's own cuDNN is {torch_cudnn}" if isinstance(torch_cudnn, str) else ""
        why = f"system cuDNN is {have}" if isinstance(have, str) else (missing(got) or "not found")
        j.check("software.cudnn", "cuDNN").fail(have if isinstance(have, str) else None, want, why + bundled)


def _env(spec: Spec, snap: Json, env: Any, j: Recorder) -> None:
    pe = spec.software.python_env
    sw = spec.software
    why = missing(env)
    labels = dict(_LABELS)
    labels.update(
        {f"software.framework.{n}": n for n in sw.frameworks if _FRAMEWORK_KEYS.get(n, n) != "torch"}
    )
    if why is not None:
        no_env = "--no-env" in why
        for cid, label in labels.items():
            if no_env:
                j.check(cid, label).skip(f"Python env not probed: {why}")
            elif cid == "software.python" and pe is not None:
                j.check(cid, label).fail(None, pe.python, f"Python env not usable: {why}")
            elif cid == "software.torch" and pe is not None:
                j.check(cid, label).fail(
                    None, sw.frameworks.get("pytorch"), "Python env not usable (see software.python)"
                )
            else:
                j.check(cid, label).skip("needs the Python env (see software.python)")
        return
    interp = env.get("interpreter", "?")
    pyv = env.get("python_version")
    if pe is None:
        j.check("software.python", "Python").skip(f"the spec names no Python env (probed {interp})", pyv)
    elif version_matches(pe.python, pyv):
        j.check("software.python", "Python").ok(pyv, pe.python, interp)
    else:
        j.check("software.python", "Python").fail(pyv, pe.python, f"{interp} runs Python {pyv}")

    torch = env.get("torch")
    want_torch = sw.frameworks.get("pytorch") or sw.frameworks.get("torch")
    if missing(torch):
        if want_torch or pe:
            j.check("software.torch", "PyTorch").fail(None, want_torch, missing(torch) or "")
        else:
            j.check("software.torch", "PyTorch").skip(missing(torch) or "")
        for cid, label in list(labels.items())[2:]:
            if cid.startswith("software.framework."):
                continue
            j.check(cid, label).skip("torch is not importable in the env")
    else:
        _torch(spec, snap, env, want_torch, j)
    for name, want in sw.frameworks.items():
        key = _FRAMEWORK_KEYS.get(name, name)
        if key == "torch":
            continue
        have = env.get(key)
        cid = f"software.framework.{name}"
        if isinstance(have, str) and same_version(want, have):
            j.check(cid, name).ok(have, want)
            if key == "tensorflow":
                _tensorflow_gpus(spec, snap, env, j)
        else:
            j.check(cid, name).fail(
                have if isinstance(have, str) else None,
                want,
                f"{name} {have} in the env"
                if isinstance(have, str)
                else f"{name} not installed in the env ({missing(have) or 'not probed'})",
            )


def _expected_gpus(spec: Spec, snap: Json) -> tuple[int, str]:
    """How many GPUs a framework must see, and whose count that is: NVML's, else the spec's."""
    nvml_count = get(snap, "nvml", "gpu_count")
    if isinstance(nvml_count, int):
        return nvml_count, "NVML"
    return spec.hardware.gpu_count, "the spec (NVML unavailable)"


def _tensorflow_gpus(spec: Spec, snap: Json, env: Json, j: Recorder) -> None:
    """A pinned TensorFlow must see the GPUs NVML sees: a CPU-only wheel or CUDA libraries it cannot load
    (its [and-cuda] wheels missing) leave it on the CPU without a word."""
    c = j.check("software.framework.tensorflow.gpus", "TensorFlow GPUs")
    if not spec.hardware.gpus:
        c.skip("the spec lists no GPUs")
        return
    count = env.get("tensorflow_gpus")
    expect, src = _expected_gpus(spec, snap)
    if missing(count) or not isinstance(count, int):
        c.fail(None, expect, missing(count) or "not probed")
    elif count == expect and count > 0:
        c.ok(count, f"{expect} ({src})")
    else:
        c.fail(
            count,
            expect,
            f"TensorFlow sees {count} GPU(s), {src} {expect} (a CPU-only build? CUDA libraries "
            "it cannot load: tensorflow[and-cuda]?)",
        )


def _torch(spec: Spec, snap: Json, env: Json, want_torch: str | None, j: Recorder) -> None:
    sw = spec.software
    torch = env.get("torch")
    if not want_torch:
        j.check("software.torch", "PyTorch").skip("the spec does not pin PyTorch", torch)
    else:
        # "2.1.2" ignores the build tag; "2.1.2+cu121" must match it too
        same = same_version(want_torch, torch)
        if same:
            j.check("software.torch", "PyTorch").ok(torch, want_torch)
        else:
            j.check("software.torch", "PyTorch").fail(torch, want_torch, f"the env has torch {torch}")

    tc = env.get("torch_cuda")
    if not sw.cuda:
        j.check("software.torch_cuda", "torch CUDA build").skip(
            "the spec does not pin CUDA", tc if isinstance(tc, str) else None
        )
    elif missing(tc):
        j.check("software.torch_cuda", "torch CUDA build").fail(None, sw.cuda, missing(tc) or "")
    elif vkey(tc)[:2] == vkey(sw.cuda)[:2]:
        j.check("software.torch_cuda", "torch CUDA build").ok(tc, sw.cuda)
    else:
        j.check("software.torch_cuda", "torch CUDA build").fail(
            tc, sw.cuda, f"torch was built for CUDA {tc}, not {sw.cuda}"
        )

    avail = env.get("cuda_available")
    if not spec.hardware.gpus:
        j.check("software.cuda_available", "torch.cuda.is_available()").skip("the spec lists no GPUs", avail)
    elif avail is True:
        j.check("software.cuda_available", "torch.cuda.is_available()").ok("True", "True")
    else:
        j.check("software.cuda_available", "torch.cuda.is_available()").fail(
            "error" if missing(avail) else avail,
            "True",
            missing(avail) or "torch cannot use the GPUs (driver missing, or a CPU-only torch build)",
        )

    count = env.get("device_count")
    expect, src = _expected_gpus(spec, snap)
    if missing(count):
        j.check("software.torch_device_count", "torch device count").fail(None, expect, missing(count) or "")
    elif count == expect and (count > 0 or not spec.hardware.gpus):
        j.check("software.torch_device_count", "torch device count").ok(count, f"{expect} ({src})")
    else:
        j.check("software.torch_device_count", "torch device count").fail(
            count,
            f"{expect} ({src})",
            f"torch sees {count} GPU(s), {src} {expect} (CUDA_VISIBLE_DEVICES? a lost GPU?)",
        )

    nccl = env.get("nccl")
    if spec.hardware.gpu_count <= 1:  # NCCL is for collectives between GPUs: nothing in the spec asks for it
        j.check("software.nccl", "NCCL").skip(
            "nothing in the spec asks for NCCL (fewer than two GPUs)", nccl if isinstance(nccl, str) else None
        )
    elif isinstance(nccl, str) and nccl:
        j.check("software.nccl", "NCCL").ok(nccl, "present")
    else:
        j.check("software.nccl", "NCCL").fail(None, "present", missing(nccl) or "torch reports no NCCL")


def _tools(spec: Spec, sw: Json, j: Recorder) -> None:
    tools = sw.get("tools") if isinstance(sw.get("tools"), dict) else {}
    for section in ("containers", "monitoring"):
        for name, want in getattr(spec.software, section).items():
            cid = f"software.{section}.{name}"
            have = tools.get(name)
            if isinstance(have, str) and version_matches(want, have):
                j.check(cid, name).ok(have, want)
            elif isinstance(have, str):
                j.check(cid, name).fail(have, want, f"{name} {have} is installed")
            else:
                j.check(cid, name).fail(None, want, missing(have) or "not probed")


def check_software(spec: Spec, snap: Json) -> list[CheckResult]:
    j = Recorder("software")
    sw = snap.get("software")
    why = missing(sw)
    if why is not None:
        j.check("software", "software").skip(f"software not probed: {why}")
        return j.results
    env = sw.get("python_env")
    _toolkit(spec, sw, j)
    _cudnn(spec, sw, env, j)
    _env(spec, snap, env, j)
    _tools(spec, sw, j)
    check_services(spec, sw, j)
    return j.results
