"""Lint passes for the driver, the CUDA toolkit and cuDNN (``spec.driver.*``, ``spec.cuda.*``,
``spec.cudnn.*``)."""

from __future__ import annotations

from dlverify.hwspec import compat
from dlverify.hwspec.lint_base import LintOut
from dlverify.results import Status


def check_driver_for_cuda(
    out: LintOut, id_: str, name: str, key: str, driver: str, cuda: str, what: str, *, lenient: bool = False
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


def lint_driver_and_cuda(out: LintOut) -> None:
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
        check_driver_for_cuda(
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


def lint_cudnn(out: LintOut) -> None:
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


def lint_cudnn_package(out: LintOut) -> None:
    """Which libcudnn8 build NVIDIA's repository has for the spec: the ``+cudaM.N`` suffix the role installs.

    Only cuDNN 8 is packaged with a build suffix (cuDNN 9 is ``libcudnn9-cuda-12``); the passing result's
    ``expected`` is the suffix (``+cuda12.2``), which the spec gate hands to the cudnn role, so the role and
    lint read the same data.
    """
    sw = out.spec.software
    if (
        sw.cudnn is None
        or sw.cuda is None
        or compat.vkey(sw.cudnn)[:1] != (8,)
        or len(compat.vkey(sw.cudnn)) < 3
    ):
        return  # cuDNN 9 has no build suffix; "8.9" names no release (the role wants X.Y.Z)
    key, name, id_ = "software.cudnn", "cuDNN package build", "spec.cudnn.package"
    if not compat.cudnn_apt_known(sw.cudnn):
        out.unknown(id_, name, key, f"NVIDIA's libcudnn8 builds of cuDNN {sw.cudnn}", "cudnn", sw.cudnn)
        return
    build = compat.cudnn_apt_build(sw.cudnn, sw.cuda)
    major = compat.vkey(sw.cuda)[0]
    if build is None:
        out.at(id_, name, key).fail(
            sw.cudnn,
            f"a libcudnn8 build for CUDA {major}",
            f"NVIDIA's CUDA repository has no libcudnn8 {sw.cudnn} built for CUDA {major}.x",
        )
        return
    note = "" if build == compat.major_minor(sw.cuda) else f" (not +cuda{compat.major_minor(sw.cuda)})"
    out.at(id_, name, key).ok(
        sw.cudnn,
        f"+cuda{build}",
        f"NVIDIA publishes libcudnn8 {sw.cudnn} for CUDA {major}.x as +cuda{build}{note}",
    )
