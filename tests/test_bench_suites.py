"""The bandwidth suites (issue 12): busbw arithmetic, the judges on healthy and on derived faulty records,
and every code path on the CPU (per-GPU suites in process; the whole run, gloo collectives included, through
the CLI with two worker processes).

Healthy numbers are derived from the packaged H100 references (NHC thresholds, datasheet peaks): no GPU run
of these suites is recorded yet (issue 16).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from conftest import one

from dlverify.benchmarks.collective import bandwidth, bus_factor, sizes
from dlverify.benchmarks.config import SUITES, BenchConfig, parse_suites
from dlverify.benchmarks.judge import judge, load_references
from dlverify.benchmarks.runner import RECORD_SCHEMA
from dlverify.cli import main
from dlverify.results import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Status, exit_code

REFS = load_references()
CARD = "NVIDIA H100 80GB HBM3"
N = 8


# --- busbw as nccl-tests define it (doc/PERFORMANCE.md: busBw = algBw * factor) ---------------------------


def test_bus_factor_is_nccl_tests_definition() -> None:
    assert bus_factor("allreduce", 8) == pytest.approx(2 * 7 / 8) == 1.75
    assert bus_factor("allreduce", 2) == 1.0
    assert bus_factor("allgather", 8) == pytest.approx(7 / 8)
    # all_reduce_perf, 8 ranks: 1 GiB (1073741824 B) in 4.0 ms -> algbw 268.4 GB/s, busbw 469.8 GB/s
    alg, bus = bandwidth("allreduce", 1 << 30, 4.0e-3, 8)
    assert alg == pytest.approx(268.435, abs=1e-3) and bus == pytest.approx(469.762, abs=1e-3)
    # all_gather_perf counts the whole output buffer as the size
    alg, bus = bandwidth("allgather", 1 << 30, 4.0e-3, 8)
    assert bus == pytest.approx(alg * 7 / 8)
    with pytest.raises(ValueError):
        bus_factor("broadcast", 8)
    assert sizes(1 << 10, 1 << 18) == [1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18]
    assert sizes(1 << 20, 4 << 30)[-1] == 4 << 30


def test_suite_selection() -> None:
    assert parse_suites("all") == SUITES
    assert parse_suites("p2p, H2D") == ("h2d", "p2p")  # canonical order
    with pytest.raises(ValueError, match="'nccl'"):
        parse_suites("resnet18,nccl")
    assert BenchConfig().suites == ("resnet18",)  # today's default is unchanged
    assert BenchConfig(suites=("h2d",)).timed_modes == ()
    assert BenchConfig.from_dict({"device": "cpu"}).suites == ("resnet18",)  # an old record's config


def test_unknown_suite_is_usage_error(capsys) -> None:
    assert main(["bench", "--device", "cpu", "--suite", "h2d,nvlink"]) == EXIT_USAGE
    assert "unknown suite 'nvlink'" in capsys.readouterr().err


# --- the judges, on a healthy 8x H100 record and on derived faulty ones ---------------------------------


def _suites(h2d: float = 53.0, d2h: float = 54.0, hbm: float = 2900.0, tflops: float = 720.0) -> dict:
    def v(x: float, unit: str, **kw: Any) -> dict:
        return {
            "value": x,
            "unit": unit,
            "max": x * 1.01,
            "spread_pct": 1.0,
            "samples": 20,
            "synced": True,
            **kw,
        }

    return {
        "h2d": v(h2d, "GB/s"),
        "d2h": v(d2h, "GB/s"),
        "hbm": v(hbm, "GB/s"),
        "matmul": v(tflops, "TFLOP/s", n=8192, dtype="bfloat16"),
    }


def _worker(i: int, **suites: float) -> dict:
    return {
        "slot": i,
        "index": i,
        "label": f"gpu{i}",
        "name": CARD,
        "status": "ok",
        "phases": [],
        "result": {"name": CARD, "wall_s": 5.0, "modes": {}, "suites": _suites(**suites)},
        "telemetry": {"unavailable": "not under test"},
    }


def _collectives(n: int = N, allreduce: float = 470.0, p2p: float = 300.0) -> dict:
    def sweep(bus: float, op: str) -> dict:
        rows = [
            {"bytes": s, "busbw_gb_s": bus * min(1.0, s / (1 << 30)), "algbw_gb_s": 0.0, "time_s": 0.0}
            for s in sizes(1 << 20, 4 << 30)
        ]
        return {"busbw_gb_s": bus, "sizes": rows, "plateau": True, "definition": op}

    return {
        "ranks": [f"gpu{i}" for i in range(n)],
        "world_size": n,
        "backend": "nccl",
        "allreduce": sweep(allreduce, "2(n-1)/n"),
        "allgather": sweep(allreduce * 0.8, "(n-1)/n"),
        "p2p": {"gb_s": [[0.0 if i == j else p2p for j in range(n)] for i in range(n)]},
    }


def _record(workers: list[dict], coll: dict | None = None, suites: tuple = SUITES[1:]) -> dict:
    cfg = {
        "device": "cuda",
        "modes": ["train", "infer"],
        "image_size": 224,
        "compile": True,
        "suites": list(suites),
    }
    rec = {"schema": RECORD_SCHEMA, "config": cfg, "sequential": False, "sampler": None, "workers": workers}
    if coll is not None:
        rec["collectives"] = coll
    return rec


def _healthy() -> dict:
    return _record([_worker(i) for i in range(N)], _collectives())


SUITE_IDS = ("bench.h2d.bandwidth", "bench.d2h.bandwidth", "bench.hbm.bandwidth", "bench.matmul.tflops")


def test_a_healthy_node_passes_every_suite() -> None:
    res = judge(_healthy(), references=REFS)
    for cid in SUITE_IDS:
        for g in range(N):
            assert one(res, cid, f"gpu{g}").status is Status.PASS, cid
            assert one(res, cid.rsplit(".", 1)[0] + ".straggler", f"gpu{g}").status is Status.PASS
    for cid in ("bench.allreduce.busbw", "bench.p2p.matrix"):
        assert one(res, cid, "bench").status is Status.PASS
    # no all-gather reference is packaged: measured and shown, judged against nothing
    assert one(res, "bench.allgather.busbw", "bench").status is Status.SKIP
    assert "Azure NHC" in one(res, "bench.h2d.bandwidth", "gpu0").detail
    assert not [r for r in res if r.id.startswith("bench.train") or r.id.startswith("bench.infer")]
    assert exit_code(res) == EXIT_OK


def test_a_link_trained_down_fails_h2d_by_name() -> None:
    """gpu3's PCIe link at Gen4 x16 speed (~25 GB/s) on a Gen5 node: h2d and d2h fail for gpu3 only."""
    rec = _healthy()
    rec["workers"][3] = _worker(3, h2d=25.1, d2h=26.0)
    res = judge(rec, references=REFS)
    for d in ("h2d", "d2h"):
        bad = [
            r
            for r in res
            if r.id in (f"bench.{d}.bandwidth", f"bench.{d}.straggler") and r.status is Status.FAIL
        ]
        assert {(r.id, r.group) for r in bad} == {
            (f"bench.{d}.bandwidth", "gpu3"),
            (f"bench.{d}.straggler", "gpu3"),
        }
    h2d = one(res, "bench.h2d.bandwidth", "gpu3")
    assert h2d.expected == ">= 48 GB/s" and "PCIe link trained down" in h2d.detail
    assert "gpu3 is" in one(res, "bench.h2d.straggler", "gpu3").detail
    assert exit_code(res) == EXIT_FAIL


def test_a_slow_hbm_or_matmul_is_a_straggler_and_warns_against_the_datasheet() -> None:
    rec = _healthy()
    rec["workers"][5] = _worker(5, hbm=1800.0, tflops=400.0)
    res = judge(rec, references=REFS)
    assert one(res, "bench.hbm.straggler", "gpu5").status is Status.FAIL
    assert one(res, "bench.matmul.straggler", "gpu5").status is Status.FAIL
    # datasheet peaks are not measured by dlverify yet: short of them is a warning, not a failure
    assert one(res, "bench.hbm.bandwidth", "gpu5").status is Status.WARN
    assert "unmeasured" in one(res, "bench.matmul.tflops", "gpu5").detail


def test_a_matmul_straggler_is_explained_by_its_own_window_of_telemetry() -> None:
    rec = _healthy()
    rec["workers"][2] = _worker(2, tflops=450.0)
    for w in rec["workers"]:
        slow = w["label"] == "gpu2"
        w["telemetry"] = {
            "run": {"samples": 50},
            "matmul": {
                "samples": 20,
                "sm_clock_mhz": {"median": 1200 if slow else 1980},
                "reasons": {"hw_power_brake_slowdown": 0.6} if slow else {},
            },
        }
    detail = one(judge(rec, references=REFS), "bench.matmul.straggler", "gpu2").detail
    assert "hw_power_brake_slowdown in 60% of samples" in detail and "SM clock median 1200 MHz" in detail


def test_collectives_leave_out_a_failed_gpu_and_say_so(monkeypatch) -> None:
    from dlverify.benchmarks import runner

    calls: list[list[str]] = []

    def fake_workers(slots, cfg, **_kw):
        return [
            {"slot": s.slot, "label": s.label, "status": "failed" if s.slot == 1 else "ok"} for s in slots
        ]

    def fake_coll(slots, cfg, timeout_s):
        calls.append([s.label for s in slots])
        return {"ranks": [s.label for s in slots], "world_size": len(slots), "skipped": "test"}

    import dlverify.benchmarks.collective as coll_mod

    monkeypatch.setattr(runner, "run_workers", fake_workers)
    monkeypatch.setattr(coll_mod, "run_collectives", fake_coll)
    rec = runner.run_bench(runner.cpu_slots("0,1,2"), BenchConfig(device="cpu", suites=("p2p",)))
    assert calls == [["cpu0", "cpu2"]] and rec["collectives"]["left_out"] == ["cpu1"]


def test_one_slow_link_is_named_exactly() -> None:
    coll = _collectives()
    coll["p2p"]["gb_s"][2][5] = 38.0  # gpu2 -> gpu5 through PCIe instead of NVLink
    res = judge(_record([_worker(i) for i in range(N)], coll), references=REFS)
    r = one(res, "bench.p2p.matrix", "bench")
    assert r.status is Status.FAIL
    slow = r.detail.split(" (")[0]
    assert slow == "slow link(s): gpu2->gpu5 38.0 GB/s"
    assert "slowest gpu2->gpu5" in r.observed


def test_allreduce_below_the_nhc_threshold_fails() -> None:
    res = judge(_record([_worker(i) for i in range(N)], _collectives(allreduce=300.0)), references=REFS)
    r = one(res, "bench.allreduce.busbw", "bench")
    assert r.status is Status.FAIL and r.expected == ">= 460 GB/s" and "check_nccl_allreduce 460" in r.detail
    # the reference is for 8 GPUs: a 4-GPU run is measured, not judged against it
    four = judge(_record([_worker(i) for i in range(4)], _collectives(4, allreduce=300.0)), references=REFS)
    assert one(four, "bench.allreduce.busbw", "bench").status is Status.SKIP


def test_collective_failure_and_single_gpu() -> None:
    err = {"ranks": ["gpu0", "gpu1"], "world_size": 2, "backend": "nccl", "error": "DistBackendError: boom"}
    res = judge(_record([_worker(0), _worker(1)], err), references=REFS)
    assert one(res, "bench.allreduce.busbw", "bench").status is Status.FAIL
    assert "boom" in one(res, "bench.p2p.matrix", "bench").detail
    alone = {"ranks": ["gpu0"], "world_size": 1, "skipped": "one GPU: nothing to measure"}
    res = judge(_record([_worker(0)], alone), references=REFS)
    assert one(res, "bench.p2p.matrix", "bench").status is Status.SKIP


def test_a_failed_suite_in_a_worker_fails_its_check() -> None:
    w = _worker(1)
    w["result"]["suites"]["hbm"] = {"error": "RuntimeError: hbm: the copied data differs from the source"}
    res = judge(_record([_worker(0), w], _collectives(2)), references=REFS)
    assert one(res, "bench.hbm.bandwidth", "gpu1").status is Status.FAIL
    assert "differs" in one(res, "bench.hbm.bandwidth", "gpu1").detail


def test_a_record_without_suites_judges_as_before() -> None:
    rec = _healthy()
    rec["config"].pop("suites")
    for w in rec["workers"]:
        w["result"].pop("suites")
    rec.pop("collectives")
    ids = {r.id for r in judge(rec, references=REFS)}
    assert not {i for i in ids if i.split(".")[1] in ("h2d", "d2h", "hbm", "matmul", "allreduce", "p2p")}
    assert "bench.train.correctness" in ids  # resnet18 is still what a record without suites means


def test_packaged_suite_references_name_their_sources() -> None:
    seen = 0
    for doc in REFS:
        for key, e in (doc.get("suites") or {}).items():
            seen += 1
            assert e["source"] and e["kind"] and e["unit"] and ("min" in e or "expected" in e), key
            assert e.get("measured") is False  # none measured by dlverify yet (issue 16)
    assert seen >= 15


# --- every code path on the CPU ---------------------------------------------------------------------------


def test_per_gpu_suites_run_on_the_cpu_in_process() -> None:
    torch = pytest.importorskip("torch")
    from dlverify.benchmarks import suites

    cfg = BenchConfig(device="cpu", suites=SUITES, suite_iters=3).resolved()
    events: list[tuple] = []
    out = suites.run_per_gpu(torch, torch.device("cpu"), cfg, lambda *a, **kw: events.append((a, kw)))
    assert set(out) == {"h2d", "d2h", "hbm", "matmul"}
    assert all(v["value"] > 0 and v["synced"] for v in out.values()), out
    assert "CPU run: memcpy between two host tensors" in out["h2d"]["method"]
    assert out["matmul"]["dtype"] == "float32" and out["matmul"]["rel_error"] < 1e-3


def test_the_whole_run_on_cpu_with_gloo_collectives(tmp_path, monkeypatch) -> None:
    """Two worker processes (per-GPU suites behind the barrier), then two gloo ranks (all-reduce, all-gather,
    p2p) through `dlverify bench --device cpu`: the record, the arithmetic, the judgement."""
    pytest.importorskip("torch")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "--device",
            "cpu",
            "--gpus",
            "0,1",
            "--suite",
            "h2d,hbm,matmul,allreduce,p2p",
            "--format",
            "json",
            "-o",
            str(out),
            "-q",
        ]
    )
    doc = json.loads(out.read_text())
    rec = doc["meta"]["bench"]
    assert rc == EXIT_OK, [r for r in doc["results"] if r["status"] == "fail"]
    assert rec["config"]["suites"] == ["h2d", "hbm", "matmul", "allreduce", "p2p"]
    for w in rec["workers"]:
        assert w["status"] == "ok" and w["result"]["modes"] == {}
        assert set(w["result"]["suites"]) == {"h2d", "d2h", "hbm", "matmul"}
    coll = rec["collectives"]
    assert coll["backend"] == "gloo" and coll["world_size"] == 2 and coll["ranks"] == ["cpu0", "cpu1"]
    for op in ("allreduce", "allgather"):
        rows = coll[op]["sizes"]
        assert [r["bytes"] for r in rows] == [1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18]
        for r in rows:  # what was recorded is nccl-tests' arithmetic on what was timed
            alg, bus = bandwidth(op, r["bytes"], r["time_s"], 2)
            assert r["algbw_gb_s"] == pytest.approx(alg) and r["busbw_gb_s"] == pytest.approx(bus)
        assert coll[op]["busbw_gb_s"] == max(r["busbw_gb_s"] for r in rows)
    m = coll["p2p"]["gb_s"]
    assert m[0][0] == m[1][1] == 0 and m[0][1] > 0 and m[1][0] > 0
    ids = {(r["id"], r["status"]) for r in doc["results"]}
    assert ("bench.allreduce.busbw", "skip") in ids and ("bench.p2p.matrix", "skip") in ids
    assert ("bench.h2d.bandwidth", "skip") in ids  # a host memcpy: no reference

    # the same recorded numbers, derived into a faulty GPU record, fail by name
    bad = copy.deepcopy(rec)
    bad["config"]["device"] = "cuda"
    bad["collectives"]["backend"] = "nccl"
    bad["collectives"]["p2p"]["gb_s"][1][0] = m[1][0] / 10
    for w, h2d in zip(bad["workers"], (1.0, 0.1), strict=True):
        w["result"]["suites"]["h2d"]["value"] = h2d
    res = judge(bad, references=REFS)
    assert "cpu1->cpu0" in one(res, "bench.p2p.matrix", "bench").detail
    assert one(res, "bench.h2d.straggler", "cpu1").status is Status.FAIL
    assert one(res, "bench.h2d.straggler", "cpu0").status is Status.PASS
