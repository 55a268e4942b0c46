"""The real ResNet18 recipe and timing code, run on the CPU with real torch at a tiny size.

The correctness guard must accept an honest step (fp32 and bf16) and reject one that does not learn
(lr=0), produces NaN, or is broken in any of the ways a too-good number has been got (recipe.BROKEN: skipped
blocks, frozen backbone, ignored input, a quarter of the batch, half resolution, zeros), each of which still
memorises one fixed batch: a fast number from a broken step is a failure, not a result.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from dlverify.benchmarks import recipe  # noqa: E402
from dlverify.benchmarks.config import BenchConfig  # noqa: E402
from dlverify.benchmarks.worker import _run_mode  # noqa: E402

CPU = torch.device("cpu")
TINY = BenchConfig(
    device="cpu", image_size=32, train_batch=2, infer_batch=4, duration_s=0.05, window_s=0.01, min_windows=3
).resolved()


BATCH8 = BenchConfig(
    device="cpu", image_size=32, train_batch=8, infer_batch=8, duration_s=0.05, window_s=0.01, min_windows=3
).resolved()


def _measure(mode: str, fault: str | None = None, cfg: BenchConfig = TINY, precision: str = "auto") -> dict:
    torch.manual_seed(0)
    prec = recipe.resolve_precision(mode, precision, "cpu")
    build = recipe.build_train if mode == "train" else recipe.build_infer
    w = build(cfg, CPU, prec, cfg.train_batch if mode == "train" else cfg.infer_batch, fault)
    return recipe.measure(w, cfg, CPU)


@pytest.mark.parametrize(
    ("mode", "broken"),
    [("train", b) for b in recipe.BROKEN] + [("infer", b) for b in recipe.BROKEN if b != "freeze"],
)  # nothing trains in infer
def test_guard_rejects_every_broken_recipe(mode: str, broken: str) -> None:
    r = _measure(mode, broken, BATCH8)
    g = r["guard"]
    assert not g["ok"], g
    assert r["img_s"] > 0  # it ran, and it is still not a result
    if mode == "train":
        if broken != "zeros":  # it did memorise the fixed batch: a loss-drop guard alone passed it
            assert g["loss_last"] < g["loss_first"] * (1 - recipe.LOSS_MIN_DROP)
        assert "fp32 eager" in g["detail"]
    else:
        assert "disagree" in g["detail"] and f"of {BATCH8.infer_batch}" in g["detail"]


@pytest.mark.parametrize("mode", ["train", "infer"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_guard_accepts_an_honest_step_in_reduced_precision(mode: str, precision: str) -> None:
    g = _measure(mode, None, BATCH8, precision)["guard"]
    assert g["ok"], g
    if mode == "train":
        v = g["vs_fp32_eager"]
        assert v["params_compared"] == 62 and v["min_grad_cosine"] >= recipe.GRAD_MIN_COSINE
        assert v["loss_rel_diff"] <= recipe.LOSS_MAX_REL_DIFF


def test_training_step_learns_and_is_timed_in_windows() -> None:
    r = _measure("train")
    assert r["guard"]["ok"], r["guard"]
    assert r["guard"]["loss_last"] < r["guard"]["loss_first"] * (1 - recipe.LOSS_MIN_DROP)
    assert r["windows"] >= 3 and r["iterations"] == r["windows"] * r["iters_per_window"]
    assert r["img_s_min"] <= r["img_s"] <= r["img_s_max"] and r["img_s"] > 0
    assert r["compile_s"] > 0 and r["warmup_iters"] >= 3
    assert r["precision"] == "fp32" and r["batch_size"] == 2
    assert r["optimizer"] in ("fused", "foreach")


def test_guard_catches_a_step_that_does_not_learn() -> None:
    r = _measure("train", fault="lr0")
    assert not r["guard"]["ok"]
    assert "did not drop" in r["guard"]["detail"]
    assert r["img_s"] > 0  # it was fast, and still not a result


def test_guard_catches_nan_in_training_and_inference() -> None:
    assert "not finite" in _measure("train", fault="nan")["guard"]["detail"]
    g = _measure("infer", fault="nan")["guard"]
    assert not g["ok"] and not g["finite"]


def test_inference_outputs_agree_with_fp32_eager() -> None:
    g = _measure("infer")["guard"]
    assert g["ok"] and g["finite"] and g["min_cosine"] > recipe.AGREEMENT_MIN_COSINE


def test_out_of_memory_halves_an_automatic_batch_but_not_a_forced_one() -> None:
    events: list[dict] = []

    def send(event: str, **kw: object) -> None:
        events.append({"event": event, **kw})

    r = _run_mode(recipe, torch, TINY, "infer", CPU, "oom", send)
    assert r["batch_size"] == TINY.infer_batch // 2 and r["batch_reduced_from"] == TINY.infer_batch
    assert any("oom: retry" in str(e.get("phase")) for e in events)
    forced = BenchConfig(**{**TINY.to_dict(), "modes": ("infer",), "batch_forced": True})
    with pytest.raises(torch.cuda.OutOfMemoryError):
        _run_mode(recipe, torch, forced, "infer", CPU, "oom", send)


@pytest.mark.parametrize(
    ("mode", "precision", "device", "name", "weights", "autocast"),
    [
        ("infer", "auto", "cpu", "fp32", torch.float32, None),
        ("infer", "fp16", "cuda", "fp16", torch.float16, None),
        ("infer", "bf16", "cuda", "bf16", torch.bfloat16, None),
        ("train", "bf16", "cuda", "bf16", torch.float32, torch.bfloat16),
        ("train", "fp32", "cuda", "fp32", torch.float32, None),
    ],
)
def test_precision_resolution(mode, precision, device, name, weights, autocast) -> None:
    p = recipe.resolve_precision(mode, precision, device)
    assert (p.name, p.weights, p.autocast) == (name, weights, autocast)


def test_fp16_training_uses_a_grad_scaler() -> None:
    assert recipe.resolve_precision("train", "fp16", "cuda").scaler
    assert not recipe.resolve_precision("train", "bf16", "cuda").scaler


def test_fault_spec_parsing() -> None:
    cfg = BenchConfig(fault="crash@1;hang@2,3")
    assert [cfg.fault_for(i) for i in range(4)] == [None, "crash", "hang", "hang"]
    assert BenchConfig(fault="nan").fault_for(7) == "nan"
    with pytest.raises(ValueError, match="unknown test fault"):
        BenchConfig(fault="explode").fault_for(0)


def test_out_of_memory_is_classified_for_the_report() -> None:
    from dlverify.benchmarks.worker import _is_oom

    assert _is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert _is_oom(RuntimeError("CUDA error: out of memory"))
    assert not _is_oom(RuntimeError("CUDA error: an illegal memory access was encountered"))
