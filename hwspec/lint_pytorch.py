"""Lint passes for PyTorch (``spec.pytorch.*``, ``spec.torchvision.match``, ``spec.torchaudio.match``):
the release is known, it has the pinned ``+cuXYZ`` build, that build fits the toolkit and the driver,
it has wheels for the env's Python, and torchvision/torchaudio are its pairs."""

from __future__ import annotations

from dataclasses import dataclass

from dlverify.hwspec import compat
from dlverify.hwspec.lint_base import LintOut, fmt_cuda_list
from dlverify.hwspec.lint_cuda import check_driver_for_cuda
from dlverify.results import Status


@dataclass(frozen=True)
class _Torch:
    """The pinned torch as the passes read it."""

    version: str  # as written, "2.1.2+cu121"
    key: str  # software.frameworks.pytorch (or .torch)
    public: str  # "2.1.2"
    local: str | None  # "cu121", "cpu", None
    rel: compat.TorchRelease
    build_cuda: str | None  # "12.1" from the local tag


def lint_pytorch(out: LintOut) -> None:
    t = _release(out)
    if t is None:
        return
    for check in (_cuda_build, _cuda_match, _driver, _python, _companions):
        check(out, t)


def _release(out: LintOut) -> _Torch | None:
    """spec.pytorch.release; the pin as the other passes read it, or None (no pin, unknown release)."""
    fw = out.spec.software.frameworks
    torch_key = "pytorch" if "pytorch" in fw else "torch" if "torch" in fw else None
    if torch_key is None:
        return None
    version = fw[torch_key]
    key = f"software.frameworks.{torch_key}"
    public, local = compat.split_local(version)
    rel = compat.torch_release(version)
    if rel is None:
        out.unknown("spec.pytorch.release", "PyTorch release", key, f"PyTorch {public}", "pytorch", version)
        return None
    if rel.patch is None:
        out.unknown(
            "spec.pytorch.release",
            "PyTorch release",
            key,
            f"PyTorch patch release {public}",
            "pytorch",
            version,
        )
    else:
        out.at("spec.pytorch.release", "PyTorch release", key).ok(version)
    return _Torch(version, key, public, local, rel, compat.cuda_from_tag(local))


def _cuda_build(out: LintOut, t: _Torch) -> None:
    sw = out.spec.software
    version, key, public, local, rel, build_cuda = t.version, t.key, t.public, t.local, t.rel, t.build_cuda
    name = "PyTorch CUDA build"
    if local is not None and local.startswith("cpu"):
        status = Status.FAIL if out.spec.hardware.gpu_count else Status.WARN
        out.at("spec.pytorch.cuda_build", name, key).status(
            status,
            local,
            fmt_cuda_list(rel.cuda),
            f"{version} is a CPU-only build; it will not use the GPUs",
        )
    elif build_cuda is not None:
        if build_cuda in rel.cuda:
            out.at("spec.pytorch.cuda_build", name, key).ok(
                local, fmt_cuda_list(rel.cuda), f"PyTorch {rel.series} has a {local} build"
            )
        else:
            first = compat.first_torch_with_cuda(build_cuda)
            since = f"; {local} builds start at {first}.0" if first else ""
            out.at("spec.pytorch.cuda_build", name, key).fail(
                local,
                fmt_cuda_list(rel.cuda),
                f"PyTorch {public} has no {local} build (it was built for {fmt_cuda_list(rel.cuda)}){since}",
            )
    elif sw.cuda is not None:
        want = compat.major_minor(sw.cuda)
        if want in rel.cuda:
            out.at("spec.pytorch.cuda_build", name, key).ok(
                compat.cuda_tag(want),
                fmt_cuda_list(rel.cuda),
                f'PyTorch {rel.series} has a {compat.cuda_tag(want)} build; pin "{public}+'
                f'{compat.cuda_tag(want)}" to say which',
            )
        else:
            out.at("spec.pytorch.cuda_build", name, key).warn(
                compat.cuda_tag(want),
                fmt_cuda_list(rel.cuda),
                f"PyTorch {public} has no build for CUDA {sw.cuda} (builds: {fmt_cuda_list(rel.cuda)}); "
                "the one installed will bundle its own CUDA runtime",
            )


def _cuda_match(out: LintOut, t: _Torch) -> None:
    sw = out.spec.software
    version, key, local, build_cuda = t.version, t.key, t.local, t.build_cuda
    if build_cuda is not None and sw.cuda is not None:
        if compat.major_minor(sw.cuda) == build_cuda:
            out.at("spec.pytorch.cuda_match", "PyTorch build vs CUDA toolkit", key).ok(
                local, compat.cuda_tag(sw.cuda)
            )
        else:
            out.at("spec.pytorch.cuda_match", "PyTorch build vs CUDA toolkit", key).fail(
                local,
                compat.cuda_tag(sw.cuda),
                f"{version} is built for CUDA {build_cuda}, but software.cuda is {sw.cuda} "
                f"({out.spec.where('software.cuda')})",
            )


def _driver(out: LintOut, t: _Torch) -> None:
    sw = out.spec.software
    key, local, build_cuda = t.key, t.local, t.build_cuda
    if (
        build_cuda is not None
        and sw.nvidia_driver is not None
        and build_cuda != (compat.major_minor(sw.cuda) if sw.cuda else None)
    ):
        check_driver_for_cuda(
            out,
            "spec.pytorch.driver",
            "PyTorch build vs driver",
            key,
            sw.nvidia_driver,
            build_cuda,
            f"PyTorch's {local} build (bundled runtime)",
            lenient=True,
        )


def _python(out: LintOut, t: _Torch) -> None:
    sw = out.spec.software
    rel = t.rel
    env = sw.python_env
    if env is not None:
        py_key = (
            "software.python_env.python"
            if "software.python_env.python" in out.spec.locations
            else "software.python_env"
        )
        py = compat.major_minor(env.python)
        if py in rel.python:
            out.at("spec.pytorch.python", "PyTorch vs Python", py_key).ok(
                env.python, None, f"PyTorch {rel.series} has wheels for Python {', '.join(rel.python)}"
            )
        else:
            out.at("spec.pytorch.python", "PyTorch vs Python", py_key).fail(
                env.python,
                ", ".join(rel.python),
                f"PyTorch {rel.series} has no build for Python {env.python} (it supports "
                f"{', '.join(rel.python)})",
            )


def _companions(out: LintOut, t: _Torch) -> None:
    fw = out.spec.software.frameworks
    public, local, rel = t.public, t.local, t.rel
    for lib in ("torchvision", "torchaudio"):
        if lib not in fw:
            continue
        lib_key = f"software.frameworks.{lib}"
        lib_public, lib_local = compat.split_local(fw[lib])
        if rel.patch is None:
            out.unknown(
                f"spec.{lib}.match",
                f"{lib} vs torch",
                lib_key,
                f"PyTorch {public}'s {lib}",
                "pytorch",
                fw[lib],
            )
            continue
        want = rel.patch[lib]
        if compat.vkey(lib_public) != compat.vkey(want):
            out.at(f"spec.{lib}.match", f"{lib} vs torch", lib_key).fail(
                fw[lib], want, f"torch {public} pairs with {lib} {want}, not {lib_public}"
            )
        elif lib_local and local and lib_local != local:
            out.at(f"spec.{lib}.match", f"{lib} vs torch", lib_key).fail(
                fw[lib], f"{want}+{local}", f"{lib} build +{lib_local} differs from torch's +{local}"
            )
        else:
            out.at(f"spec.{lib}.match", f"{lib} vs torch", lib_key).ok(
                fw[lib], want, f"torch {public} pairs with {lib} {want}"
            )
