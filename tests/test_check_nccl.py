"""Issue 10: `software.nccl` is judged only when the spec asks for NCCL (two or more GPUs)."""

from __future__ import annotations

import pytest

from dlverify.checks.software import check_software
from dlverify.hwspec import load_spec_text
from dlverify.results import Status


def _nccl(spec_text: str, nccl: object) -> Status:
    spec = load_spec_text(spec_text, "s.yaml")
    snap = {"software": {"python_env": {"torch": "2.1.2+cu121", "nccl": nccl}}}
    return next(r for r in check_software(spec, snap) if r.id == "software.nccl").status


@pytest.mark.parametrize("spec_text", ['software: {cuda: "12.1"}', 'hardware: {gpu: "H100 SXM"}'])
def test_nccl_skipped_when_nothing_asks_for_it(spec_text: str) -> None:
    assert _nccl(spec_text, {"unavailable": "torch built without distributed/NCCL"}) is Status.SKIP


def test_nccl_judged_for_multi_gpu_specs() -> None:
    assert _nccl('hardware: {gpu: "4x H100 SXM"}', {"unavailable": "no NCCL"}) is Status.FAIL
    assert _nccl('hardware: {gpu: "4x H100 SXM"}', "2.18.1") is Status.PASS
