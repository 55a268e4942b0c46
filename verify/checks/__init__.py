"""The judges: pure functions (Spec, snapshot dict) -> list[CheckResult], one module per area."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dlverify.results import CheckResult, Status
from dlverify.snapshot import AREAS  # one list of areas: what the probes record is what the judges judge


def _judges() -> dict[str, Callable[[Any, dict[str, Any]], list[CheckResult]]]:
    from dlverify.checks.gpu import check_gpus
    from dlverify.checks.host import check_host
    from dlverify.checks.software import check_software

    return {"host": check_host, "gpu": check_gpus, "software": check_software}


def run_checks(spec: Any, snapshot: dict[str, Any], only: Iterable[str] = AREAS) -> list[CheckResult]:
    """All results for the areas asked, in report order (host, gpu..., software).

    A judge that raises on a malformed (hand-edited) snapshot yields one failed ``<area>.internal``
    result with the exception text instead of a traceback.
    """
    wanted = set(only)
    results: list[CheckResult] = []
    for area, judge in _judges().items():
        if area not in wanted:
            continue
        try:
            results += judge(spec, snapshot)
        except Exception as exc:
            results.append(
                CheckResult(
                    f"{area}.internal",
                    area,
                    f"{area} checks",
                    Status.FAIL,
                    detail=f"could not judge the {area} section: {type(exc).__name__}: {exc}",
                )
            )
    return results
