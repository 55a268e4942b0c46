"""`dlverify spec lint`: do the spec's pins fit together? Judged against ``hwspec/data`` only.

Every result names the spec key it is about and where it was written (``file:line``). A fail means the
pins cannot work together as written; a warn means "probably fine but look" or "the data can't judge".

One pass per concern, each in the module of what it judges: ``lint_cuda`` (driver, CUDA toolkit, cuDNN),
``lint_pytorch``, ``lint_frameworks`` (TensorFlow, framework names), ``lint_containers`` (Docker, the
Container Toolkit, JupyterLab's exposure), ``lint_monitoring`` (alert thresholds), ``lint_platform`` (GPU
models, OS, policy spellings); ``lint_base`` holds the recorder. A new rule goes into its concern's module
and, as a new pass, into :data:`PASSES` (the report follows its order).
"""

from __future__ import annotations

from collections.abc import Callable

from dlverify.hwspec.lint_base import GROUP, LintOut
from dlverify.hwspec.lint_bench import lint_bench
from dlverify.hwspec.lint_containers import lint_docker, lint_jupyter, lint_toolkit
from dlverify.hwspec.lint_cuda import lint_cudnn, lint_cudnn_package, lint_driver_and_cuda
from dlverify.hwspec.lint_frameworks import lint_names, lint_tensorflow
from dlverify.hwspec.lint_monitoring import lint_monitoring
from dlverify.hwspec.lint_platform import lint_gpus, lint_os, lint_policies
from dlverify.hwspec.lint_pytorch import lint_pytorch
from dlverify.hwspec.model import Spec
from dlverify.results import CheckResult

PASSES: tuple[Callable[[LintOut], None], ...] = (
    lint_os,
    lint_driver_and_cuda,
    lint_cudnn,
    lint_cudnn_package,
    lint_gpus,
    lint_pytorch,
    lint_tensorflow,
    lint_names,
    lint_toolkit,
    lint_docker,
    lint_jupyter,
    lint_monitoring,
    lint_policies,
    lint_bench,
)

__all__ = ["GROUP", "PASSES", "lint"]


def lint(spec: Spec) -> list[CheckResult]:
    """Judge the spec's pins against the compatibility data; results in group ``spec``."""
    out = LintOut(spec)
    for check in PASSES:
        check(out)
    return out.results
