"""Lint of the spec's `bench:` thresholds that no real run could pass (the soak's stability limits)."""

from __future__ import annotations

from dlverify.hwspec.lint_base import LintOut


def lint_bench(out: LintOut) -> None:
    """A soak limit of 0 fails every run: no two windows of real load have exactly the same throughput.

    A soak window under 1 s measures timer noise, not heat or power: warned too (the CPU test runs are the
    exception, and they do not read a spec).
    """
    b = out.spec.bench
    for key, value in (("soak_max_drift", b.soak_max_drift), ("soak_max_cv", b.soak_max_cv)):
        if value == 0 and f"bench.{key}" in out.spec.locations:
            out.at("spec.bench.soak", "soak thresholds", f"bench.{key}").warn(
                value, "> 0", f"bench.{key}: 0 fails every --soak run (windows of real load always differ)"
            )
    if b.soak_window_s < 1 and "bench.soak_window_s" in out.spec.locations:
        out.at("spec.bench.soak", "soak thresholds", "bench.soak_window_s").warn(
            b.soak_window_s,
            ">= 1",
            "bench.soak_window_s under 1 s times noise, not heat or power (60 s default)",
        )
