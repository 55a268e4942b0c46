"""`dlverify spec lint`: do the spec's pins fit together? Judged against ``hwspec/data`` only.

Every result names the spec key it is about and where it was written (``file:line``). A fail means the
pins cannot work together as written; a warn means "probably fine but look" or "the data can't judge".
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from dlverify.hwspec import compat
from dlverify.hwspec.model import Spec
from dlverify.results import Check, CheckResult, Recorder, Status

GROUP = "spec"
SUPPORTED_OS = (("ubuntu", "22.04"), ("debian", "12"))
KNOWN_FRAMEWORKS = (
    "pytorch",
    "torchvision",
    "torchaudio",
    "tensorflow",
    "jax",
    "jaxlib",
    "onnxruntime",
    "tensorrt",
    "triton",
    "xformers",
    "deepspeed",
    "transformers",
    "apex",
    "mxnet",
    "paddlepaddle",
    "keras",
)


class _Out(Recorder):
    """Results of group ``spec``; every one carries ``key at file:line`` in its detail."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(GROUP)
        self.spec = spec

    def at(self, id_: str, name: str, key: str) -> Check:
        return self.check(id_, name, where=f"{key} at {self.spec.where(key)}")

    def unknown(self, id_: str, name: str, key: str, what: str, table: str, observed: str | None) -> None:
        self.at(id_, name, key).warn(
            observed, None, f"{what} not in compatibility data as of {compat.as_of(table)}: can't judge"
        )


def _fmt_cuda_list(cudas: tuple[str, ...]) -> str:
    return ", ".join(compat.cuda_tag(c) for c in cudas)


def _check_driver_for_cuda(
    out: _Out, id_: str, name: str, key: str, driver: str, cuda: str, what: str, *, lenient: bool = False
) -> None:
    """Can ``driver`` run code built with CUDA ``cuda``? Used for the toolkit and for torch's build.

    Below the toolkit's own minimum but within CUDA minor version compatibility is a fail for the host
    toolkit (the spec pins a toolkit its driver does not fully support) and a warning (``lenient``) for a
    framework wheel that bundles its runtime and is documented to run that way.
    """
    entry = compat.cuda_driver_entry(cuda)
    if entry is None:
        out.unknown(id_, name, key, f"CUDA {cuda}", "cuda_driver", driver)
        return
    major = str(compat.vkey(cuda)[0])
    branch_max = compat.branch_max_cuda(driver)
    if compat.is_branch_only(driver):
        if branch_max is None:
            out.unknown(id_, name, key, f"driver branch {driver}", "cuda_driver", driver)
        elif compat.vkey(branch_max) >= compat.vkey(cuda):
            out.at(id_, name, key).ok(
                driver,
                f"CUDA {cuda} needs >= {entry['ga']}",
                f"driver branch {driver} supports up to CUDA {branch_max}",
            )
        else:
            out.at(id_, name, key).fail(
                driver,
                f">= {entry['ga']}",
                f"driver branch {driver} supports CUDA up to {branch_max}; {what} CUDA {cuda} needs "
                f">= {entry['ga']}",
            )
        return
    have = compat.vkey(driver)
    compat_min = compat.minor_compat_driver(major)
    if have >= compat.vkey(entry["latest_update"]):
        out.at(id_, name, key).ok(driver, f">= {entry['ga']}", f"{what} CUDA {cuda} needs >= {entry['ga']}")
    elif have >= compat.vkey(entry["ga"]):
        out.at(id_, name, key).warn(
            driver,
            f">= {entry['latest_update']}",
            f"enough for CUDA {cuda} GA (>= {entry['ga']}), but its latest update, which the apt "
            f"package installs, needs >= {entry['latest_update']}",
        )
    elif (
        compat_min is not None
        and have >= compat.vkey(compat_min)
        and (branch_max is None or compat.vkey(branch_max)[:1] == compat.vkey(cuda)[:1])
    ):
        out.at(id_, name, key).status(
            Status.WARN if lenient else Status.FAIL,
            driver,
            f">= {entry['ga']}",
            f"driver {driver} is below {what} CUDA {cuda}'s minimum {entry['ga']}; CUDA {major}.x code "
            f"runs on it only through minor version compatibility (no PTX JIT of newer code, some APIs "
            f"missing)",
        )
    else:
        out.at(id_, name, key).fail(
            driver,
            f">= {entry['ga']}",
            f"driver {driver} is too old for {what} CUDA {cuda}: needs >= {entry['ga']}",
        )


def _lint_driver_and_cuda(out: _Out) -> None:
    sw = out.spec.software
    if sw.nvidia_driver is None:
        out.at("spec.driver.pinned", "driver pinned", "software.nvidia_driver").skip(
            "software.nvidia_driver not set: driver checks skipped"
        )
    elif compat.is_branch_only(sw.nvidia_driver):
        out.at("spec.driver.pinned", "driver pinned", "software.nvidia_driver").warn(
            sw.nvidia_driver,
            None,
            f"only the branch {sw.nvidia_driver} is given: hosts may differ in the exact version; pin "
            f'e.g. "{sw.nvidia_driver}.x.y" for a fleet',
        )
    else:
        out.at("spec.driver.pinned", "driver pinned", "software.nvidia_driver").ok(sw.nvidia_driver)
    if sw.cuda is None:
        out.at("spec.cuda.driver", "CUDA toolkit vs driver", "software.cuda").skip("software.cuda not set")
    elif sw.nvidia_driver is not None:
        _check_driver_for_cuda(
            out,
            "spec.cuda.driver",
            "CUDA toolkit vs driver",
            "software.cuda",
            sw.nvidia_driver,
            sw.cuda,
            "the toolkit",
        )
    elif compat.cuda_driver_entry(sw.cuda) is None:
        out.unknown(
            "spec.cuda.driver",
            "CUDA toolkit vs driver",
            "software.cuda",
            f"CUDA {sw.cuda}",
            "cuda_driver",
            sw.cuda,
        )


def _lint_cudnn(out: _Out) -> None:
    sw = out.spec.software
    if sw.cudnn is None or sw.cuda is None:
        return
    key, name, id_ = "software.cudnn", "cuDNN vs CUDA", "spec.cudnn.cuda"
    entry = compat.cudnn_entry(sw.cudnn)
    if entry is None:
        out.unknown(id_, name, key, f"cuDNN {sw.cudnn}", "cudnn", sw.cudnn)
        return
    major = str(compat.vkey(sw.cuda)[0])
    majors = [str(m) for m in entry["cuda_majors"]]
    expected = "CUDA " + " or ".join(f"{m}.x" for m in majors)
    if major not in majors:
        out.at(id_, name, key).fail(
            sw.cudnn, expected, f"cuDNN {sw.cudnn} was built for {expected}, not CUDA {sw.cuda}"
        )
    elif entry.get("cuda_max") and compat.vkey(sw.cuda) > compat.vkey(entry["cuda_max"]):
        out.at(id_, name, key).warn(
            sw.cudnn,
            expected,
            f"cuDNN {sw.cudnn} was tested up to CUDA {entry['cuda_max']}; CUDA {sw.cuda} runs it through "
            "minor version compatibility",
        )
    else:
        out.at(id_, name, key).ok(sw.cudnn, expected, f"cuDNN {sw.cudnn} is built for {expected}")


def _lint_pytorch(out: _Out) -> None:
    sw = out.spec.software
    fw = sw.frameworks
    torch_key = "pytorch" if "pytorch" in fw else "torch" if "torch" in fw else None
    if torch_key is None:
        return
    version = fw[torch_key]
    key = f"software.frameworks.{torch_key}"
    public, local = compat.split_local(version)
    rel = compat.torch_release(version)
    if rel is None:
        out.unknown("spec.pytorch.release", "PyTorch release", key, f"PyTorch {public}", "pytorch", version)
        return
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

    build_cuda = compat.cuda_from_tag(local)
    name = "PyTorch CUDA build"
    if local is not None and local.startswith("cpu"):
        status = Status.FAIL if out.spec.hardware.gpu_count else Status.WARN
        out.at("spec.pytorch.cuda_build", name, key).status(
            status,
            local,
            _fmt_cuda_list(rel.cuda),
            f"{version} is a CPU-only build; it will not use the GPUs",
        )
    elif build_cuda is not None:
        if build_cuda in rel.cuda:
            out.at("spec.pytorch.cuda_build", name, key).ok(
                local, _fmt_cuda_list(rel.cuda), f"PyTorch {rel.series} has a {local} build"
            )
        else:
            first = compat.first_torch_with_cuda(build_cuda)
            since = f"; {local} builds start at {first}.0" if first else ""
            out.at("spec.pytorch.cuda_build", name, key).fail(
                local,
                _fmt_cuda_list(rel.cuda),
                f"PyTorch {public} has no {local} build (it was built for {_fmt_cuda_list(rel.cuda)}){since}",
            )
    elif sw.cuda is not None:
        want = compat.major_minor(sw.cuda)
        if want in rel.cuda:
            out.at("spec.pytorch.cuda_build", name, key).ok(
                compat.cuda_tag(want),
                _fmt_cuda_list(rel.cuda),
                f'PyTorch {rel.series} has a {compat.cuda_tag(want)} build; pin "{public}+'
                f'{compat.cuda_tag(want)}" to say which',
            )
        else:
            out.at("spec.pytorch.cuda_build", name, key).warn(
                compat.cuda_tag(want),
                _fmt_cuda_list(rel.cuda),
                f"PyTorch {public} has no build for CUDA {sw.cuda} (builds: {_fmt_cuda_list(rel.cuda)}); "
                "the one installed will bundle its own CUDA runtime",
            )

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
    if (
        build_cuda is not None
        and sw.nvidia_driver is not None
        and build_cuda != (compat.major_minor(sw.cuda) if sw.cuda else None)
    ):
        _check_driver_for_cuda(
            out,
            "spec.pytorch.driver",
            "PyTorch build vs driver",
            key,
            sw.nvidia_driver,
            build_cuda,
            f"PyTorch's {local} build (bundled runtime)",
            lenient=True,
        )

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


def _lint_tensorflow(out: _Out) -> None:
    sw = out.spec.software
    version = sw.frameworks.get("tensorflow")
    if version is None:
        return
    key = "software.frameworks.tensorflow"
    rel = compat.tf_release(version)
    if rel is None:
        out.unknown(
            "spec.tensorflow.release",
            "TensorFlow release",
            key,
            f"TensorFlow {version}",
            "tensorflow",
            version,
        )
        return
    series = compat.major_minor(version)
    built = f"TensorFlow {series} was built and tested with CUDA {rel['cuda']} and cuDNN {rel['cudnn']}"
    if sw.cuda is not None:
        have, want = compat.vkey(sw.cuda), compat.vkey(rel["cuda"])
        if have[:1] != want[:1]:
            out.at("spec.tensorflow.cuda", "TensorFlow vs CUDA", key).fail(
                sw.cuda, rel["cuda"], f"{built}; its wheels do not load CUDA {sw.cuda} libraries"
            )
        elif have[:2] != want[:2]:
            out.at("spec.tensorflow.cuda", "TensorFlow vs CUDA", key).warn(
                sw.cuda, rel["cuda"], f"{built}; CUDA {sw.cuda} is the same major, not the tested version"
            )
        else:
            out.at("spec.tensorflow.cuda", "TensorFlow vs CUDA", key).ok(sw.cuda, rel["cuda"], built)
    if sw.cudnn is not None:
        have, want = compat.vkey(sw.cudnn), compat.vkey(rel["cudnn"])
        if have[:1] != want[:1] or have[:2] < want[:2]:
            out.at("spec.tensorflow.cudnn", "TensorFlow vs cuDNN", key).fail(
                sw.cudnn,
                rel["cudnn"],
                f"{built}; cuDNN {sw.cudnn} is {'another major' if have[:1] != want[:1] else 'older'}",
            )
        elif have[:2] != want[:2]:
            out.at("spec.tensorflow.cudnn", "TensorFlow vs cuDNN", key).warn(
                sw.cudnn, rel["cudnn"], f"{built}; cuDNN {sw.cudnn} is a newer minor than tested"
            )
        else:
            out.at("spec.tensorflow.cudnn", "TensorFlow vs cuDNN", key).ok(sw.cudnn, rel["cudnn"], built)
    if sw.python_env is not None:
        py = compat.major_minor(sw.python_env.python)
        status = Status.PASS if py in rel["python"] else Status.FAIL
        out.at("spec.tensorflow.python", "TensorFlow vs Python", "software.python_env").status(
            status,
            sw.python_env.python,
            ", ".join(rel["python"]),
            ""
            if status is Status.PASS
            else f"TensorFlow {series} has no build for Python {py} (it supports {', '.join(rel['python'])})",
        )


def _lint_gpus(out: _Out) -> None:
    sw = out.spec.software
    for i, gpu in enumerate(out.spec.hardware.gpus):
        key = f"hardware.gpu[{i}]"
        found = compat.find_gpus(gpu.model)
        archs = {g.architecture for g in found}
        if not found or len(archs) > 1:
            why = (
                "not in compatibility data"
                if not found
                else f"ambiguous ({', '.join(g.name for g in found)})"
            )
            out.at("spec.gpu.known", "GPU model known", key).warn(
                gpu.model,
                None,
                f"{gpu.model}: {why} as of {compat.as_of('gpus')}: can't judge driver/CUDA support",
            )
            continue
        # several candidates of one architecture (A100 80GB SXM4 or PCIe): judge by the strictest
        min_driver = max((g.min_driver for g in found), key=compat.vkey)
        min_cuda = max((g.min_cuda for g in found), key=compat.vkey)
        max_cuda = next((g.max_cuda for g in found if g.max_cuda), None)
        max_branch = next((g.max_driver_branch for g in found if g.max_driver_branch), None)
        arch = found[0].architecture
        if gpu.architecture and gpu.architecture.lower() != arch.lower():
            out.at("spec.gpu.architecture", "GPU architecture", key).fail(
                gpu.architecture, arch, f"{gpu.model} is {arch}, the spec says {gpu.architecture}"
            )
        if sw.nvidia_driver is not None:
            drv = sw.nvidia_driver
            too_new = max_branch is not None and compat.vkey(drv)[:1] > compat.vkey(max_branch)[:1]
            # a bare branch ("535") counts as that branch's newest release
            too_old = compat.vkey(drv) < compat.vkey(min_driver) and not (
                compat.is_branch_only(drv) and compat.vkey(drv)[0] == compat.vkey(min_driver)[0]
            )
            if too_old or too_new:
                reason = (
                    f"needs driver >= {min_driver}"
                    if too_old
                    else f"is not supported by drivers after R{max_branch}"
                )
                out.at("spec.gpu.driver", "GPU vs driver", key).fail(
                    drv, f">= {min_driver}", f"{gpu.model} ({arch}) {reason}"
                )
            else:
                out.at("spec.gpu.driver", "GPU vs driver", key).ok(
                    drv, f">= {min_driver}", f"{gpu.model} ({arch}) needs >= {min_driver}"
                )
        if sw.cuda is not None:
            if compat.vkey(sw.cuda) < compat.vkey(min_cuda):
                out.at("spec.gpu.cuda", "GPU vs CUDA", key).fail(
                    sw.cuda, f">= {min_cuda}", f"{arch} needs CUDA >= {min_cuda}"
                )
            elif max_cuda is not None and compat.vkey(sw.cuda)[:1] > compat.vkey(max_cuda)[:1]:
                out.at("spec.gpu.cuda", "GPU vs CUDA", key).fail(
                    sw.cuda,
                    f"<= {max_cuda}",
                    f"CUDA {sw.cuda} dropped {arch}; the last toolkit for it is {max_cuda}",
                )
            else:
                out.at("spec.gpu.cuda", "GPU vs CUDA", key).ok(
                    sw.cuda, f">= {min_cuda}", f"{arch} needs CUDA >= {min_cuda}"
                )


def _lint_os(out: _Out) -> None:
    os_ = out.spec.software.os
    if os_ is None:
        out.at("spec.os.supported", "OS supported by the roles", "software.os").skip("software.os not set")
        return
    shown = f"{os_.name} {os_.version}"
    ok = any(
        os_.name.lower() == n and compat.vkey(os_.version)[: len(compat.vkey(v))] == compat.vkey(v)
        for n, v in SUPPORTED_OS
    )
    if ok:
        out.at("spec.os.supported", "OS supported by the roles", "software.os").ok(shown)
    else:
        out.at("spec.os.supported", "OS supported by the roles", "software.os").warn(
            shown,
            "Ubuntu 22.04 | Debian 12",
            f"the provisioning roles are tested on Ubuntu 22.04 and Debian 12, not {shown}; `dlverify check` "
            "still works",
        )


def _lint_policies(out: _Out) -> None:
    """Old spellings of a policy level ("required", "max") still read as "fail", with a warning."""
    for key, old in out.spec.checks.deprecated:
        out.at("spec.checks.policy", "policy spelling", f"checks.{key}").warn(
            old, "fail", f"checks.{key}: {old!r} is deprecated; write 'fail' (same meaning: a failed check)"
        )


def _lint_names(out: _Out) -> None:
    for name in out.spec.software.frameworks:
        if name in KNOWN_FRAMEWORKS or name == "torch":
            continue
        close = difflib.get_close_matches(name, KNOWN_FRAMEWORKS, n=1, cutoff=0.75)
        if close:
            out.at("spec.frameworks.name", "framework name", f"software.frameworks.{name}").warn(
                name, close[0], f"unknown framework {name!r}; did you mean {close[0]!r}? (not checked)"
            )


_PASSES: tuple[Callable[[_Out], None], ...] = (
    _lint_os,
    _lint_driver_and_cuda,
    _lint_cudnn,
    _lint_gpus,
    _lint_pytorch,
    _lint_tensorflow,
    _lint_names,
    _lint_policies,
)


def lint(spec: Spec) -> list[CheckResult]:
    """Judge the spec's pins against the compatibility data; results in group ``spec``."""
    out = _Out(spec)
    for check in _PASSES:
        check(out)
    return out.results
