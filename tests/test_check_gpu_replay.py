"""Real probe + checks on the recorded H100 and H200 (NVML replay): each card passes its own spec, fails the
other's, and each fault fails its check."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import nvml_replay
import pytest
import replay_host
from conftest import by_id

from dlverify.checks import run_checks
from dlverify.cli import main
from dlverify.hwspec.model import GpuSpec
from dlverify.results import Status

H100 = nvml_replay.CARDS["h100"]
# what each recording must show, computed by hand from nvml_snapshot.json (memory.total / 2**30)
OBSERVED = {
    "h100-sxm-80gb": {"gpu.model": "NVIDIA H100 80GB HBM3", "gpu.memory": "79.6 GiB"},
    "h200": {"gpu.model": "NVIDIA H200", "gpu.memory": "140.4 GiB"},
}


@pytest.fixture(params=sorted(nvml_replay.CARDS))
def card(request: Any) -> nvml_replay.Card:
    return nvml_replay.CARDS[request.param]


def _gpu_results(
    monkeypatch: Any,
    tmp_path: Any,
    recording: dict | None = None,
    spec: Any = None,
    env_record: dict | None = None,
    card: nvml_replay.Card = H100,
) -> list[Any]:
    spec = spec or replay_host.spec_for(card)
    snap = replay_host.take_snapshot(
        monkeypatch, tmp_path, card, recording=recording, spec=spec, env_record=env_record
    )
    return run_checks(spec, snap, only=("gpu", "software"))


def _rec(card: nvml_replay.Card = H100, **gpu_changes: Any) -> dict:
    rec = copy.deepcopy(nvml_replay.load_recording(card))
    rec["gpus"][0].update(gpu_changes)
    return rec


def test_the_two_recordings_are_two_different_cards() -> None:
    # guards the fixtures: a copy of one recording under the other's name would make every test below moot
    names = {c.id: c.nvml_name() for c in nvml_replay.CARDS.values()}
    assert names == {"h100-sxm-80gb": "NVIDIA H100 80GB HBM3", "h200": "NVIDIA H200"}


def test_each_recorded_card_passes_every_gpu_check(monkeypatch, tmp_path, card) -> None:
    results = _gpu_results(monkeypatch, tmp_path, card=card)
    gpu = [r for r in results if r.group in ("gpu", "gpu0")]
    assert not [r for r in gpu if r.status in (Status.FAIL, Status.WARN)], [
        (r.id, r.detail) for r in gpu if r.status in (Status.FAIL, Status.WARN)
    ]
    ids = by_id(gpu)
    for must_pass in (
        "gpu.nvml",
        "gpu.count",
        "gpu.driver",
        "gpu.cuda_driver",
        "gpu.model",
        "gpu.memory",
        "gpu.persistence",
        "gpu.ecc.mode",
        "gpu.ecc.volatile_uncorrected",
        "gpu.remap.pending",
        "gpu.remap.failure",
        "gpu.pcie.gen",
        "gpu.pcie.gen_current",
        "gpu.pcie.width",
        "gpu.pcie.width_current",
        "gpu.temperature",
        "gpu.clocks_event_reasons",
        "gpu.power_limit",
        "gpu.mig",
        "gpu.compute_mode",
    ):
        assert ids[must_pass].status is Status.PASS, (must_pass, ids[must_pass])
    # what the card cannot tell is a skip that says why, never a pass
    assert ids["gpu.nvlink"].status is Status.SKIP
    assert ids["gpu.nvlink"].detail == "NVLink not supported on this card"
    assert ids["gpu.retired_pages.pending"].status is Status.SKIP
    assert "not supported" in ids["gpu.retired_pages.pending"].detail
    assert ids["gpu.xid"].status is Status.SKIP  # no kernel log in the recording
    assert ids["gpu.model"].observed == OBSERVED[card.id]["gpu.model"]
    assert ids["gpu.memory"].observed == OBSERVED[card.id]["gpu.memory"]
    # idle gen downclock is not in play here (gen 5 at idle), the reason list shows only gpu_idle
    assert ids["gpu.clocks_event_reasons"].observed == "gpu_idle"
    sw = by_id(results, "software")
    for must_pass in (
        "software.cuda_toolkit",
        "software.python",
        "software.torch",
        "software.torch_cuda",
        "software.cuda_available",
        "software.torch_device_count",
    ):
        assert sw[must_pass].status is Status.PASS, (must_pass, sw[must_pass])


@pytest.mark.parametrize(
    ("label", "recording_changes", "spec_changes", "failing_id"),
    [
        ("a GPU missing", {}, {"gpus": 2}, "gpu.count"),
        ("PCIe x8 slot", {"pcie_width_max": 8, "pcie_width_cur": 8}, {}, "gpu.pcie.width"),
        ("x16 card trained at x8", {"pcie_width_cur": 8}, {}, "gpu.pcie.width_current"),
        ("Gen4 slot", {"pcie_gen_max": 4, "pcie_gen_cur": 4}, {}, "gpu.pcie.gen"),
        ("uncorrectable volatile ECC", {"ecc_volatile_uncorrected": 2}, {}, "gpu.ecc.volatile_uncorrected"),
        ("ECC off", {"ecc_mode": [0, 0]}, {}, "gpu.ecc.mode"),
        ("pending row remap", {"remapped_rows": [0, 1, 1, 0]}, {}, "gpu.remap.pending"),
        ("row remap failure", {"remapped_rows": [0, 3, 0, 1]}, {}, "gpu.remap.failure"),
        ("thermal slowdown", {"throttle": 0x1 | 0x40}, {}, "gpu.clocks_event_reasons"),
        ("HW power brake", {"throttle": 0x80}, {}, "gpu.clocks_event_reasons"),
        ("too hot", {"temperature": 91}, {}, "gpu.temperature"),
        ("persistence off", {"persistence": 0}, {}, "gpu.persistence"),
        ("MIG on", {"mig_mode": [1, 1]}, {}, "gpu.mig"),
        ("exclusive compute", {"compute_mode": 3}, {}, "gpu.compute_mode"),
        ("wrong driver", {}, {"nvidia_driver": "535.54.03"}, "gpu.driver"),
        ("wrong driver branch", {}, {"nvidia_driver": "570"}, "gpu.driver"),
        # the card the spec asks for is then missing too
        ("another card", {"name": "NVIDIA A100-SXM4-80GB"}, {}, ("gpu.model", "gpu.count")),
    ],
)
def test_each_fault_fails_its_check(
    monkeypatch, tmp_path, card, label, recording_changes, spec_changes, failing_id
) -> None:
    spec = replay_host.spec_for(card)
    spec_changes = dict(spec_changes)
    if "gpus" in spec_changes:
        gs = GpuSpec(model=card.spec_model, count=spec_changes.pop("gpus"), memory_gb=card.memory_gb)
        spec = dataclasses.replace(spec, hardware=dataclasses.replace(spec.hardware, gpus=(gs,)))
    if spec_changes:
        spec = dataclasses.replace(spec, software=dataclasses.replace(spec.software, **spec_changes))
    results = _gpu_results(
        monkeypatch, tmp_path, recording=_rec(card, **recording_changes), spec=spec, card=card
    )
    failed = {r.id for r in results if r.status is Status.FAIL and r.group != "software"}
    want = {failing_id} if isinstance(failing_id, str) else set(failing_id)
    # the fault is pinned on the right check: nothing else in the GPU groups fails because of it
    assert failed == want, (label, [(r.id, r.status, r.detail) for r in results if r.status is Status.FAIL])


def test_branch_driver_pin_passes(monkeypatch, tmp_path) -> None:
    spec = replay_host.h100_spec(nvidia_driver="580")
    ids = by_id(_gpu_results(monkeypatch, tmp_path, spec=spec))
    assert ids["gpu.driver"].status is Status.PASS
    assert ids["gpu.driver"].detail == "branch 580"


def test_a_lower_current_gen_is_not_mistaken_for_a_slow_slot(monkeypatch, tmp_path) -> None:
    # the slot's maximum is judged by gpu.pcie.gen; the current generation by gpu.pcie.gen_current
    # (tests/test_check_gpu_faults.py: the H100 holds Gen5 at idle, so Gen1 there is a fault)
    ids = by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(pcie_gen_cur=1)))
    assert ids["gpu.pcie.gen"].status is Status.PASS
    assert ids["gpu.pcie.gen_current"].status is Status.FAIL
    assert "holds its maximum even at idle" in ids["gpu.pcie.gen_current"].detail


def test_lifetime_ecc_errors_warn(monkeypatch, tmp_path) -> None:
    ids = by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(ecc_aggregate_uncorrected=5)))
    assert ids["gpu.ecc.aggregate_uncorrected"].status is Status.WARN


def test_power_capped_below_default_warns(monkeypatch, tmp_path, card) -> None:
    # both cards' default limit is 700 W
    ids = by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(card, power_limit_mw=400000), card=card))
    assert ids["gpu.power_limit"].status is Status.WARN
    assert "57%" in ids["gpu.power_limit"].detail


def test_a_gpu_failing_calls_costs_only_those_fields(monkeypatch, tmp_path) -> None:
    lost = "ERR NVMLError_GpuIsLost: GPU is lost"
    rec = _rec(temperature=lost, ecc_mode=lost, remapped_rows=lost)
    snap = replay_host.h100_snapshot(monkeypatch, tmp_path, recording=rec)
    g = snap["nvml"]["gpus"][0]
    assert g["temperature_c"] == {"unavailable": "GPU is lost (fell off the bus)"}
    assert g["remapped_rows_pending"] == {"unavailable": "GPU is lost (fell off the bus)"}
    assert g["name"] == "NVIDIA H100 80GB HBM3"
    ids = by_id(run_checks(replay_host.h100_spec(), snap, only=("gpu",)))
    assert ids["gpu.temperature"].status is Status.SKIP
    assert ids["gpu.ecc.mode"].status is Status.FAIL  # ECC required and unreadable: never a silent pass
    assert "GPU is lost" in ids["gpu.ecc.mode"].detail


def test_nvlink_links_judged_where_the_card_has_them(monkeypatch, tmp_path) -> None:
    ids = by_id(_gpu_results(monkeypatch, tmp_path, recording=_rec(nvlink=[1] * 18)))
    assert ids["gpu.nvlink"].status is Status.PASS
    assert ids["gpu.nvlink"].observed == "18/18 up"
    ids = by_id(_gpu_results(monkeypatch, tmp_path / "b", recording=_rec(nvlink=[1] * 17 + [0])))
    assert ids["gpu.nvlink"].status is Status.FAIL
    assert "17" in ids["gpu.nvlink"].detail


@pytest.mark.parametrize(
    ("label", "env_changes", "failing_id"),
    [
        (
            "torch built for another CUDA",
            {"torch": "2.11.0+cu126", "torch_cuda": "12.6"},
            "software.torch_cuda",
        ),
        ("torch sees fewer GPUs", {"device_count": 0}, "software.torch_device_count"),
        ("CUDA not usable from torch", {"cuda_available": False}, "software.cuda_available"),
        ("wrong torch", {"torch": "2.10.0+cu130"}, "software.torch"),
        (
            "torch not importable",
            {"torch": {"unavailable": "torch not importable: ModuleNotFoundError"}},
            "software.torch",
        ),
    ],
)
def test_env_faults_fail_their_check(monkeypatch, tmp_path, label, env_changes, failing_id) -> None:
    env = {**replay_host.h100_env_record(), **env_changes}
    results = _gpu_results(monkeypatch, tmp_path, env_record=env)
    ids = by_id(results, "software")
    assert ids[failing_id].status is Status.FAIL, (label, ids[failing_id])


@pytest.mark.parametrize(
    ("error", "phrase"),
    [
        ("NVMLError_LibraryNotFound", "libnvidia-ml.so.1) not found"),
        ("NVMLError_DriverNotLoaded", "driver not loaded"),
        ("NVMLError_LibRmVersionMismatch", "driver/library version mismatch"),
        ("NVMLError_NoPermission", "no permission"),
    ],
)
def test_nvml_init_failures_are_one_clear_failed_check(monkeypatch, error, phrase) -> None:
    from dlverify import snapshot

    nvml_replay.install(monkeypatch, init_error=error)
    snap = snapshot.take(replay_host.h100_spec(), only=("gpu",))
    assert set(snap["nvml"]) == {"unavailable"}
    assert phrase in snap["nvml"]["unavailable"]
    ids = by_id(run_checks(replay_host.h100_spec(), snap, only=("gpu",)))
    assert ids["gpu.nvml"].status is Status.FAIL
    assert phrase in ids["gpu.nvml"].detail
    assert ids["gpu.count"].status is Status.FAIL
    assert ids["gpu.driver"].status is Status.SKIP


def test_no_gpus_fails_the_count(monkeypatch) -> None:
    from dlverify import snapshot

    rec = nvml_replay.load_recording()
    rec["gpus"] = []
    nvml_replay.install(monkeypatch, rec)
    snap = snapshot.take(replay_host.h100_spec(), only=("gpu",))
    ids = by_id(run_checks(replay_host.h100_spec(), snap, only=("gpu",)))
    assert snap["nvml"]["gpu_count"] == 0
    assert ids["gpu.count"].status is Status.FAIL
    assert ids["gpu.count"].observed == "none"


# --- through the CLI: each recording as a snapshot file, judged offline with the example specs ---------


def _cli_check(monkeypatch, tmp_path, capsys, recorded: nvml_replay.Card, spec_of: nvml_replay.Card) -> Any:
    from dlverify.hwspec.loader import load_spec

    snap = replay_host.take_snapshot(monkeypatch, tmp_path, recorded, spec=load_spec(spec_of.example))
    f = tmp_path / f"{recorded.id}.json"
    f.write_text(json.dumps(snap))
    rc = main(["check", str(spec_of.example), "--snapshot", str(f), "--only", "gpu", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == rc
    return rc, {r["id"]: r for r in doc["results"]}


def test_each_card_passes_its_example_spec_through_the_cli(monkeypatch, tmp_path, capsys, card) -> None:
    rc, ids = _cli_check(monkeypatch, tmp_path, capsys, card, card)
    bad = [r for r in ids.values() if r["status"] in ("fail", "warn")]
    assert rc == 0 and not bad, bad
    for cid in ("gpu.count", "gpu.model", "gpu.memory", "gpu.pcie.gen", "gpu.pcie.width", "gpu.ecc.mode"):
        assert ids[cid]["status"] == "pass", ids[cid]
    assert ids["gpu.model"]["observed"] == OBSERVED[card.id]["gpu.model"]
    assert ids["gpu.memory"]["observed"] == OBSERVED[card.id]["gpu.memory"]
    # the example says `nvlink: false`: judged as not expected, not passed
    assert ids["gpu.nvlink"]["status"] == "skip"


@pytest.mark.parametrize(("recorded", "spec_of"), [("h200", "h100"), ("h100", "h200")])
def test_a_card_judged_against_the_other_cards_spec_fails(
    monkeypatch, tmp_path, capsys, recorded, spec_of
) -> None:
    rc, ids = _cli_check(
        monkeypatch, tmp_path, capsys, nvml_replay.CARDS[recorded], nvml_replay.CARDS[spec_of]
    )
    assert rc == 1
    failed = {cid for cid, r in ids.items() if r["status"] == "fail"}
    assert failed == {"gpu.model", "gpu.count"}, failed
    assert ids["gpu.model"]["observed"] == OBSERVED[nvml_replay.CARDS[recorded].id]["gpu.model"]
    assert ids["gpu.model"]["detail"] == "matches no GPU model of the spec"
    assert "missing" in ids["gpu.count"]["detail"]
    # nothing that judges the card against the spec's model passes silently: its memory is not compared
    # with the other card's size (skipped, saying so), and every skip says why
    assert ids["gpu.memory"]["status"] == "skip", ids["gpu.memory"]
    assert "matches no model of the spec" in ids["gpu.memory"]["detail"]
    assert ids["gpu.memory"]["observed"] == OBSERVED[nvml_replay.CARDS[recorded].id]["gpu.memory"]
    assert all(r["detail"] for r in ids.values() if r["status"] == "skip"), ids
