"""The ResNet18 recipes: the fastest honest training and inference step stock PyTorch gives, and their timing.

Inference: eval model with BN statistics calibrated on the batch, fp16 (or bf16) weights, channels_last,
cudnn.benchmark, torch.compile with inductor freezing (BN folded into the convolutions). Training: AMP
(bf16, or fp16 with a GradScaler where the card lacks bf16), channels_last, fused SGD, torch.compile.
Data is synthetic, made once on the device: no host copies in the timed loop. Compilation and warm-up are
timed apart from throughput, which is the median over repeated windows timed with CUDA events.

A fast number from a broken step is not a result. Training: before timing, the fast step's loss and
gradients on the batch are compared, layer by layer, with an fp32 eager step from the same weights on the
same batch, and the loss must fall over the run. Inference: the whole batch's outputs, less the batch mean
(untrained logits share a large common part that any input-blind output would match), must agree with an
fp32 eager model image by image. Learning alone is no proof: one fixed batch is memorised by a step that
skips half the network, freezes the backbone or ignores its input.

Imports torch at module level: only the worker process (and tests) import this module.

Size: over 400 lines on purpose: the timed steps and the guard that proves them honest belong in one file,
so that a change to a step is read beside the check of that step.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision

from dlverify.benchmarks import soak
from dlverify.benchmarks.config import BenchConfig, wedge

Progress = Callable[[str, float, float], None]  # (phase, done, total)

LOSS_MIN_DROP = 0.05  # training must lower the fixed batch's loss by at least 5 % over the run
# Inference logits less the batch mean vs an fp32 eager model, per image. Measured on the CPU at 32-128 px:
# honest fp16 0.9999, bf16 0.992-0.997; every broken recipe at or below 0.0 (an input-blind output has
# nothing left once the batch mean is gone: uncentred, one scored 0.98).
AGREEMENT_MIN_COSINE = 0.95
LOSS_MAX_REL_DIFF = 0.02  # the fast step's first loss vs the fp32 eager step's, same weights and batch
# The fast step's gradient vs the fp32 eager step's, per parameter tensor. Measured on the CPU at 32-96 px,
# batch 8-64 (tests/test_bench_recipe.py): an honest bf16 autocast step's worst tensor is at 0.90 (median
# 0.94), fp16 0.985; every broken recipe in BROKEN has a tensor at or below 0.0 (skipped, frozen or wrong).
GRAD_MIN_COSINE = 0.5
NUM_CLASSES = 1000
REF_CHUNK = 256  # the fp32 eager inference reference runs in chunks (eval mode: chunking is exact)
# Test hooks: fast paths broken the ways a too-good number has been got; the guard must reject each one.
BROKEN = ("skip_blocks", "freeze", "ignore_input", "partial_batch", "half_res", "zeros")


class GuardError(RuntimeError):
    """The correctness guard rejected a step."""


@dataclass(frozen=True)
class Precision:
    name: str  # "fp32" | "bf16" | "fp16"
    weights: torch.dtype  # dtype of the weights and the input
    autocast: torch.dtype | None  # mixed precision for training
    scaler: bool  # fp16 training needs loss scaling

    def describe(self, mode: str) -> str:
        if self.name == "fp32":
            return "fp32 (TF32 off)"
        if mode == "infer":
            return f"{self.name} weights"
        return f"{self.name} autocast" + (" + GradScaler" if self.scaler else "")


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(mode: str, precision: str, device: str) -> Precision:
    """`auto`: fp16 weights for inference, bf16 autocast for training (fp16 if the card lacks bf16);
    fp32 on the CPU, where reduced precision is slow rather than fast."""
    if precision == "auto":
        if device == "cpu":
            precision = "fp32"
        elif mode == "infer":
            precision = "fp16"
        else:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return Precision("fp32", torch.float32, None, False)
    dt = _DTYPES[precision]
    if mode == "infer":
        return Precision(precision, dt, None, False)
    return Precision(precision, torch.float32, dt, precision == "fp16" and device != "cpu")


def configure_torch(cfg: BenchConfig) -> None:
    """Global switches, set once per worker before anything is compiled."""
    torch.backends.cudnn.benchmark = True
    if cfg.precision == "fp32":
        # fp32 means fp32: TF32 would silently turn a forced-fp32 run into a reduced-precision one
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if cfg.compile:
        import torch._inductor.config as inductor_config

        # freezing only acts on graphs compiled without grad (the inference one)
        inductor_config.freezing = bool(cfg.freezing)
        inductor_config.fx_graph_cache = True


@dataclass
class Workload:
    """One mode, ready to time: `step()` runs one iteration and returns its loss or output."""

    mode: str
    batch: int
    precision: Precision
    step: Callable[[], torch.Tensor]
    guard: Callable[[torch.Tensor, torch.Tensor], dict[str, Any]]  # (first, last) -> guard record
    info: dict[str, Any] = field(default_factory=dict)
    check: Callable[[], dict[str, Any]] | None = None  # before timing (compiles): the step vs fp32 eager


def _skipping_forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ResNet18 with the second block of every stage skipped (test hook: half the residual blocks)."""
    m: Any = model
    h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
        h = layer[0](h)
    return m.fc(torch.flatten(m.avgpool(h), 1))


Forward = Callable[[torch.Tensor], torch.Tensor]


def _forward(model: torch.nn.Module, fault: str | None, x: torch.Tensor) -> Forward:
    """The model's forward, or (test hooks) a broken one; `x` shapes the stand-in input of ignore_input."""
    if fault == "skip_blocks":
        return lambda t: _skipping_forward(model, t)
    if fault == "ignore_input":
        gen = torch.Generator(device=x.device).manual_seed(7)
        other = torch.randn(x.shape, device=x.device, generator=gen)
        other = other.to(x.dtype).contiguous(memory_format=torch.channels_last)
        return lambda _t: model(other)
    if fault == "partial_batch":
        return lambda t: model(t[: max(1, t.shape[0] // 4)])
    if fault == "half_res":
        return lambda t: model(torch.nn.functional.interpolate(t, scale_factor=0.5))
    if fault == "zeros":
        return lambda t: model(t) * 0
    return model


def _cosine(a: torch.Tensor | None, b: torch.Tensor) -> float:
    """Cosine of two flattened tensors; a missing or all-zero `a` against a non-zero `b` is 0."""
    if a is None:
        return 0.0
    a, b = a.detach().float().flatten(), b.detach().float().flatten()
    na, nb = float(a.norm()), float(b.norm())
    if nb == 0.0:
        return 1.0 if na == 0.0 else 0.0
    if na == 0.0 or not math.isfinite(na):
        return 0.0
    return float(a @ b) / (na * nb)


def _model(device: torch.device) -> torch.nn.Module:
    return torchvision.models.resnet18(weights=None, num_classes=NUM_CLASSES).to(device)


def _calibrate_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Give eval-mode BN real statistics (those of the synthetic batch), so activations stay in range
    in fp16 and the outputs mean something; with freshly initialised running stats they can overflow."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def build_infer(
    cfg: BenchConfig, device: torch.device, prec: Precision, batch: int, fault: str | None = None
) -> Workload:
    size = cfg.image_size
    assert size is not None
    cl = torch.channels_last
    gen = torch.Generator(device=device).manual_seed(0)
    x32 = torch.randn(batch, 3, size, size, device=device, generator=gen).contiguous(memory_format=cl)
    model = _model(device).to(memory_format=cl)
    _calibrate_bn(model, x32[: min(batch, 64)])
    ref_model = copy.deepcopy(model)  # fp32 eager: the yardstick for the compiled, reduced-precision one
    model = model.to(dtype=prec.weights)
    x = x32.to(prec.weights)
    del x32
    if fault == "nan":
        x[0, 0, 0, 0] = float("nan")
    for p in model.parameters():
        p.requires_grad_(False)
    fwd = _forward(model, fault, x)
    if fault == "partial_batch":
        part = fwd
        fwd = lambda t: part(t).repeat(4, 1)[: t.shape[0]]  # noqa: E731
    if cfg.compile:
        fwd = torch.compile(fwd, mode=cfg.compile_mode_infer, dynamic=False)

    # no_grad for the compiled model (how inductor's freezing is exercised upstream), inference_mode eager
    no_grad = torch.no_grad if cfg.compile else torch.inference_mode

    def step() -> torch.Tensor:
        with no_grad():
            return fwd(x)

    def guard(first: torch.Tensor, last: torch.Tensor) -> dict[str, Any]:
        out = last.float()
        finite = bool(torch.isfinite(out).all()) and out.shape == (batch, NUM_CLASSES)
        with torch.inference_mode():
            ref = torch.cat([ref_model(c.float()) for c in x.split(REF_CHUNK)]).float()
        if finite:
            # less the batch mean: what is left depends on the image, and an input-blind output has none
            cos = torch.nn.functional.cosine_similarity(out - out.mean(0), ref - ref.mean(0), dim=1)
            cos = torch.nan_to_num(cos, nan=0.0)
            worst = int(cos.argmin())
            cos_min = float(cos[worst])
        else:
            worst, cos_min = -1, float("nan")
        ok = finite and cos_min >= AGREEMENT_MIN_COSINE
        if not finite:
            detail = f"inference produced non-finite or misshapen outputs ({tuple(out.shape)})"
        elif not ok:
            detail = (
                f"outputs disagree with an fp32 eager model: min cosine {cos_min:.4f} "
                f"< {AGREEMENT_MIN_COSINE} (image {worst} of {batch}, batch mean removed)"
            )
        else:
            detail = (
                f"outputs finite; all {batch} agree with fp32 eager "
                f"(min cosine {cos_min:.4f}, batch mean removed)"
            )
        return {"ok": ok, "detail": detail, "finite": finite, "min_cosine": cos_min}

    return Workload(
        "infer",
        batch,
        prec,
        step,
        guard,
        {
            "recipe": (
                f"eval, {prec.describe('infer')}, channels_last, cudnn.benchmark, "
                + (
                    f"torch.compile(mode={cfg.compile_mode_infer!r}"
                    + (", inductor freezing)" if cfg.freezing else ")")
                    if cfg.compile
                    else "eager"
                )
            ),
        },
    )


def _sgd(params: Any, lr: float, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    """Fused SGD where this torch has it for the device, else the foreach implementation."""
    try:
        return torch.optim.SGD(params, lr=lr, momentum=0.9, fused=True), "fused"
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.SGD(params, lr=lr, momentum=0.9, foreach=True), "foreach"


def build_train(
    cfg: BenchConfig, device: torch.device, prec: Precision, batch: int, fault: str | None = None
) -> Workload:
    size = cfg.image_size
    assert size is not None
    cl = torch.channels_last
    gen = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(batch, 3, size, size, device=device, generator=gen).contiguous(memory_format=cl)
    y = torch.randint(0, NUM_CLASSES, (batch,), device=device, generator=gen)
    if fault == "nan":
        x[0, 0, 0, 0] = float("nan")
    model = _model(device).to(memory_format=cl).train()
    initial = copy.deepcopy(model.state_dict())  # the fp32 eager reference starts from these weights
    if fault == "freeze":
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("fc."))
    lr = 0.0 if fault == "lr0" else cfg.lr
    opt, opt_kind = _sgd([p for p in model.parameters() if p.requires_grad], lr, device)
    crit = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type) if prec.scaler else None
    fwd = _forward(model, fault, x)
    if cfg.compile:
        fwd = torch.compile(fwd, mode=cfg.compile_mode_train, dynamic=False)
    amp = prec.autocast is not None

    def fast_loss() -> torch.Tensor:
        with torch.autocast(device.type, dtype=prec.autocast or torch.float32, enabled=amp):
            out = fwd(x)
            return crit(out, y[: out.shape[0]])

    def check() -> dict[str, Any]:
        """The fast step's loss and gradients on the batch vs an fp32 eager step from the same weights."""
        opt.zero_grad(set_to_none=True)
        loss = fast_loss()
        scale = 1.0
        if scaler is not None:
            scale = float(scaler.get_scale())
            (loss * scale).backward()
        else:
            loss.backward()
        fast = {
            n: None if p.grad is None else p.grad.detach().float() / scale
            for n, p in model.named_parameters()
        }
        opt.zero_grad(set_to_none=True)
        ref = _model(device).to(memory_format=cl)
        ref.load_state_dict(initial)
        ref.train()
        ref_loss = crit(ref(x), y)
        ref_loss.backward()
        l_fast, l_ref = float(loss.detach()), float(ref_loss.detach())
        cosines = {n: _cosine(fast.get(n), p.grad) for n, p in ref.named_parameters() if p.grad is not None}
        del ref
        worst = min(cosines, key=lambda n: cosines[n])
        rel = abs(l_fast - l_ref) / max(abs(l_ref), 1e-12) if math.isfinite(l_fast) else math.inf
        rec: dict[str, Any] = {
            "loss_fast": l_fast,
            "loss_fp32_eager": l_ref,
            "loss_rel_diff": rel,
            "min_grad_cosine": cosines[worst],
            "min_grad_cosine_param": worst,
            "params_compared": len(cosines),
        }
        bad = [n for n, c in cosines.items() if not c >= GRAD_MIN_COSINE]
        if not rel <= LOSS_MAX_REL_DIFF:
            rec["error"] = (
                f"first loss {l_fast:.4f} differs from an fp32 eager step's {l_ref:.4f} by "
                f"{rel:.1%} (> {LOSS_MAX_REL_DIFF:.0%}) on the same weights and batch"
            )
        elif bad:
            rec["error"] = (
                f"gradients disagree with an fp32 eager step in {len(bad)} of {len(cosines)} "
                f"parameter tensors (worst {worst}: cosine {cosines[worst]:.3f} "
                f"< {GRAD_MIN_COSINE}): the step does not compute the model's gradient"
            )
        return rec

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = fast_loss()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss.detach()

    def guard(first: torch.Tensor, last: torch.Tensor) -> dict[str, Any]:
        l0, l1 = float(first), float(last)
        finite = math.isfinite(l0) and math.isfinite(l1)
        ok = finite and l1 <= l0 * (1.0 - LOSS_MIN_DROP)
        if not finite:
            detail = f"loss is not finite (first {l0}, last {l1})"
        elif not ok:
            detail = (
                f"loss did not drop on a fixed batch: first {l0:.4f}, last {l1:.4f} "
                f"(needs at least {LOSS_MIN_DROP:.0%} lower): the step is not learning"
            )
        else:
            detail = f"loss fell from {l0:.4f} to {l1:.4f} on the fixed batch"
        return {"ok": ok, "detail": detail, "finite": finite, "loss_first": l0, "loss_last": l1}

    return Workload(
        "train",
        batch,
        prec,
        step,
        guard,
        {
            "recipe": (
                f"train, {prec.describe('train')}, channels_last, cudnn.benchmark, SGD({opt_kind}), "
                + (f"torch.compile(mode={cfg.compile_mode_train!r})" if cfg.compile else "eager")
            ),
            "optimizer": opt_kind,
        },
        check,
    )


class _Timer:
    """Elapsed milliseconds of a window: CUDA events on the GPU (device time), perf_counter on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        if self.cuda:
            self._a = torch.cuda.Event(enable_timing=True)
            self._b = torch.cuda.Event(enable_timing=True)
        self._t0 = 0.0

    def start(self) -> None:
        if self.cuda:
            self._a.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> float:
        if self.cuda:
            self._b.record()
            self._b.synchronize()
            return float(self._a.elapsed_time(self._b))
        return (time.perf_counter() - self._t0) * 1e3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    w: Workload,
    cfg: BenchConfig,
    device: torch.device,
    progress: Progress | None = None,
    slow_s: float = 0.0,
    sync: Callable[[], bool] | None = None,
    hang_in: str | None = None,
    soak_s: float | None = None,
) -> dict[str, Any]:
    """Compile (first call), warm up, then time windows until `duration_s` of timed work is done.

    `sync` (the runner's barrier) is called between warm-up and timing: every GPU starts timing together.
    `hang_in` (test hook ``hang_warmup``/``hang_timed``): stop for good in that phase, for the watchdog.
    `soak_s` (``--soak``): after the timed windows, keep the same load going that long (:mod:`soak`).
    """

    def step() -> torch.Tensor:
        out = w.step()
        if slow_s:
            time.sleep(slow_s)  # test hook: a deliberately slow worker
        return out

    duration = float(cfg.duration_s or 0.0)
    window_s = float(cfg.window_s or 0.1)
    report = progress or (lambda *_: None)

    report("compile", 0.0, duration)
    t = time.perf_counter()
    checked = w.check() if w.check is not None else None  # compiles the step on its first call
    first = step()
    first = first.clone()
    _sync(device)
    compile_s = time.perf_counter() - t

    report("warmup", 0.0, duration)
    if hang_in == "warmup":
        wedge()
    t = time.perf_counter()
    n_warm = 0
    while n_warm < 3 or (time.perf_counter() - t) < min(window_s, 1.0):
        step()
        n_warm += 1
        _sync(device)
    warmup_s = time.perf_counter() - t
    per_iter = warmup_s / n_warm
    iters = max(1, round(window_s / max(per_iter, 1e-6)))

    report("sync", 0.0, duration)
    synced = sync() if sync is not None else True
    timer = _Timer(device)
    windows_ms: list[float] = []
    timed_s = 0.0
    last = first
    report("timed", 0.0, duration)
    while timed_s < duration or len(windows_ms) < cfg.min_windows:
        timer.start()
        for _ in range(iters):
            last = step()
        ms = timer.stop()
        windows_ms.append(ms)
        timed_s += ms / 1e3
        report("timed", min(timed_s, duration), duration)
        if hang_in == "timed":
            wedge()  # after one window: the watchdog's limit, not the lack of a first event, must catch it
    soaked = None
    if soak_s:
        report("soak", duration, duration)

        def one_window() -> float:
            nonlocal last
            timer.start()
            for _ in range(iters):
                last = step()
            return timer.stop()

        soaked = soak.run(
            one_window,
            w.batch * iters,
            soak_s,
            float(cfg.soak_window_s or window_s),
            lambda _done: report("timed", duration, duration),
        )
    last = last.clone()
    _sync(device)

    rates = sorted(w.batch * iters / (ms / 1e3) for ms in windows_ms)
    med = statistics.median(rates)
    guard = w.guard(first, last)
    if checked is not None:
        guard["vs_fp32_eager"] = checked
        if "error" in checked and guard["ok"]:
            guard["ok"] = False
            guard["detail"] = checked["error"]
        elif "error" in checked:
            guard["detail"] = f"{checked['error']}; {guard['detail']}"
    out: dict[str, Any] = {
        "mode": w.mode,
        "precision": w.precision.name,
        "batch_size": w.batch,
        "image_size": cfg.image_size,
        "img_s": med,
        "img_s_min": rates[0],
        "img_s_max": rates[-1],
        "spread_pct": 100.0 * (rates[-1] - rates[0]) / med if med else 0.0,
        "windows": len(rates),
        "iters_per_window": iters,
        "iterations": iters * len(rates),
        "timed_s": timed_s,
        "compile_s": compile_s,
        "warmup_s": warmup_s,
        "warmup_iters": n_warm,
        "synced": synced,
        "guard": guard,
        **w.info,
    }
    if soaked is not None:
        out["soak"] = soaked
    if device.type == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    report("done", duration, duration)
    return out
