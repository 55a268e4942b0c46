"""The NVML telemetry sampler, fed by a FAKE NVML (a labelled stand-in: no GPU here).

The fake answers the pynvml calls the sampler makes, with values shaped like the real H100 recording
(tests/fixtures/h100-sxm-80gb/nvml_snapshot.json): power in mW, clocks in MHz, the clocks-event bitmask.
The real query()/Unavailable layer of dlverify.probes.nvml is used unchanged.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from dlverify.benchmarks import sampler as sampler_mod
from dlverify.benchmarks.sampler import REASON_BITS, Sampler, decode_reasons
from dlverify.probes import nvml as real_nvml

SNAP = json.loads((Path(__file__).parent / "fixtures/h100-sxm-80gb/nvml_snapshot.json").read_text())
H100 = SNAP["gpus"][0]


class FakeNotSupported(Exception):
    """What the fake raises where the real card raised NVMLError_NotSupported."""


class FakePynvml:
    """FAKE pynvml: GPU 0 runs at the recorded H100's limits; GPU 1 is hot and thermally throttled
    every other sample, and has no power sensor."""

    NVML_CLOCK_SM = 0
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.calls = 0

    def nvmlDeviceGetHandleByIndex(self, i: int) -> object:
        if i > 1:
            raise FakeNotSupported("no such GPU")
        return SimpleNamespace(i=i, n=0)

    def nvmlDeviceGetEnforcedPowerLimit(self, h) -> int:
        return H100["power_limit_mw"]

    def nvmlDeviceGetMaxClockInfo(self, h, kind) -> int:
        return H100["clock_sm_max"]

    def nvmlDeviceGetClockInfo(self, h, kind) -> int:
        self.calls += 1
        if kind == self.NVML_CLOCK_MEM:
            return H100["clock_mem_max"]
        return 1980 if h.i == 0 else 1500 + 100 * (h.n % 2)

    def nvmlDeviceGetPowerUsage(self, h) -> int:
        if h.i == 1:
            raise FakeNotSupported("Not Supported")
        return 650_000 + 10_000 * (h.n % 3)

    def nvmlDeviceGetTemperature(self, h, kind) -> int:
        return 60 if h.i == 0 else 88

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=100, memory=40)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h) -> int:
        h.n += 1
        if h.i == 0:
            return REASON_BITS["sw_power_cap"]
        return REASON_BITS["hw_thermal_slowdown"] if h.n % 2 else 0


class FakeNvmlModule:
    """FAKE stand-in for dlverify.probes.nvml: its session() yields FakePynvml; query() is the real one."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.nv = FakePynvml()
        self.query = real_nvml.query
        self.shutdowns = 0

    @contextlib.contextmanager
    def session(self):
        if self.fail:
            raise real_nvml.NvmlInitError(self.fail)
        try:
            yield self.nv
        finally:
            self.shutdowns += 1


def test_decode_reasons() -> None:
    assert decode_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert decode_reasons(0) == []


def test_sampler_summarises_each_gpu_from_a_fake_nvml() -> None:
    fake = FakeNvmlModule()
    with Sampler([(0, 0), (1, 1)], interval_s=0.01, nvml=fake) as s:
        time.sleep(0.3)
    assert fake.shutdowns == 1
    a, b = s.summary(0), s.summary(1)
    assert a["samples"] >= 5 and a["samples"] == b["samples"]
    assert a["sm_clock_mhz"] == {"min": 1980.0, "median": 1980.0, "max": 1980.0}
    assert a["power_w"]["min"] == 650.0 and a["power_w"]["max"] in (660.0, 670.0)
    assert a["power_limit_w"] == 700.0 and a["sm_clock_max_mhz"] == 1980
    assert a["reasons"] == {"sw_power_cap": 1.0}
    assert b["sm_clock_mhz"]["min"] == 1500.0 and b["sm_clock_mhz"]["max"] == 1600.0
    assert 0.3 <= b["reasons"]["hw_thermal_slowdown"] <= 0.7
    assert "power_w" not in b and "Not Supported" in b["unavailable_metrics"]["power_w"]
    assert b["temperature_c"]["max"] == 88.0


def test_summary_over_a_time_window_and_the_samplers_own_cost() -> None:
    fake = FakeNvmlModule()
    s = Sampler([(0, 0)], interval_s=0.01, nvml=fake).start()
    time.sleep(0.1)
    t0 = time.monotonic()
    time.sleep(0.1)
    t1 = time.monotonic()
    time.sleep(0.05)
    s.stop()
    inside = s.summary(0, t0, t1)["samples"]
    assert 0 < inside < s.summary(0)["samples"]
    assert s.summary(0, t1 + 10, t1 + 20)["unavailable"] == "no samples in this interval"
    # the sampler times itself: CPU per sweep (here, of the fake; on a GPU host, of real NVML calls)
    assert s.cpu_ms_per_sweep is not None and 0 < s.cpu_ms_per_sweep < 50


def test_without_nvml_the_sampler_says_why_and_does_not_raise() -> None:
    s = Sampler([(0, 0)], nvml=FakeNvmlModule(fail="NVIDIA driver not loaded")).start()
    s.stop()
    assert s.error == "NVIDIA driver not loaded"
    assert s.summary(0) == {"unavailable": "no telemetry: NVIDIA driver not loaded"}


def test_a_gpu_without_a_handle_is_reported_not_fatal() -> None:
    with Sampler([(0, 0), (5, 5)], interval_s=0.01, nvml=FakeNvmlModule()) as s:
        time.sleep(0.05)
    assert s.summary(0)["samples"] > 0
    gone = s.summary(5)
    assert gone["samples"] == 0 and gone["unavailable"] == "no samples in this interval"


@pytest.mark.parametrize("n_gpus", [8])
def test_sampler_cost_per_sweep_with_fake_nvml(n_gpus: int, capsys) -> None:
    """Measures the sampler's Python-side CPU time per sweep (8 GPUs, fake NVML calls cost ~nothing):
    the overhead the sampler itself adds; real NVML call latency is measured on the GPU machine."""
    fake = FakeNvmlModule()
    fake.nv.nvmlDeviceGetHandleByIndex = lambda i: SimpleNamespace(i=i % 2, n=0)  # 8 fake cards
    s = Sampler([(i, i) for i in range(n_gpus)], nvml=fake).start()
    t = time.thread_time()
    for _ in range(200):
        s.sample_once()
    per = (time.thread_time() - t) / 200 * 1e3
    s.stop()
    with capsys.disabled():
        print(
            f"\n[fake NVML] sampler CPU per sweep of {n_gpus} GPUs: {per:.3f} ms "
            f"({per * 10 / 1000:.3%} of one core at 10 Hz)"
        )
    assert per < 20
    assert sampler_mod.METRICS  # summary keys are part of the record
