"""Lint passes for the platform: GPU models vs driver/CUDA, the OS the roles support, and the checks
section's policy spellings."""

from __future__ import annotations

from dlverify.hwspec import compat
from dlverify.hwspec.lint_base import LintOut
from dlverify.results import Status

SUPPORTED_OS = (("ubuntu", "22.04"), ("debian", "12"))


def lint_gpus(out: LintOut) -> None:
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
                unsourced = compat.unsourced_reason(found, "min_driver" if too_old else "max_driver_branch")
                note = f" (unsourced data, so only a warning: {unsourced})" if unsourced else ""
                out.at("spec.gpu.driver", "GPU vs driver", key).status(
                    Status.WARN if unsourced else Status.FAIL,
                    drv,
                    f">= {min_driver}",
                    f"{gpu.model} ({arch}) {reason}{note}",
                )
            else:
                out.at("spec.gpu.driver", "GPU vs driver", key).ok(
                    drv, f">= {min_driver}", f"{gpu.model} ({arch}) needs >= {min_driver}"
                )
        if sw.cuda is not None:
            if compat.vkey(sw.cuda) < compat.vkey(min_cuda):
                unsourced = compat.unsourced_reason(found, "min_cuda")
                note = f" (unsourced data, so only a warning: {unsourced})" if unsourced else ""
                out.at("spec.gpu.cuda", "GPU vs CUDA", key).status(
                    Status.WARN if unsourced else Status.FAIL,
                    sw.cuda,
                    f">= {min_cuda}",
                    f"{arch} needs CUDA >= {min_cuda}{note}",
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


def lint_os(out: LintOut) -> None:
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


def lint_policies(out: LintOut) -> None:
    """Old spellings of a policy level ("required", "max") still read as "fail", with a warning."""
    for key, old in out.spec.checks.deprecated:
        out.at("spec.checks.policy", "policy spelling", f"checks.{key}").warn(
            old, "fail", f"checks.{key}: {old!r} is deprecated; write 'fail' (same meaning: a failed check)"
        )
