"""Software probe: nvcc, cuDNN, the env's own interpreter (real and stand-in), tools; the software judges."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import nvml_replay
import pytest
import replay_host

from dlverify.checks.software import check_software
from dlverify.hwspec.model import PythonEnvSpec
from dlverify.probes.nvml import Unavailable
from dlverify.probes.software import (
    cudnn_version_from_int,
    parse_nvcc,
    probe_cuda_toolkit,
    probe_cudnn,
    probe_python_env,
    probe_software,
    probe_tool,
)
from dlverify.results import Status
from dlverify.snapshot import to_jsonable


def _exe(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_parsers() -> None:
    sw = json.loads((nvml_replay.H100 / "software.json").read_text())
    assert parse_nvcc(sw["nvcc"]) == {"version": "13.0", "build": "13.0.88"}
    assert isinstance(parse_nvcc("bash: nvcc: command not found"), Unavailable)
    assert cudnn_version_from_int(sw["cudnn"]) == "9.19.0"
    assert cudnn_version_from_int(8902) == "8.9.2"


def test_cudnn_from_header_then_soname(tmp_path: Path) -> None:
    assert isinstance(probe_cudnn(tmp_path), Unavailable)
    lib = tmp_path / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libcudnn.so.8", "libcudnn.so.8.9.2", "libcudnn.so"):
        (lib / name).write_text("")
    assert probe_cudnn(tmp_path) == {
        "version": "8.9.2",
        "source": "/usr/lib/x86_64-linux-gnu/libcudnn.so.8.9.2",
    }
    hdr = tmp_path / "usr/include/x86_64-linux-gnu/cudnn_version_v9.h"
    hdr.parent.mkdir(parents=True)
    hdr.write_text("#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 1\n#define CUDNN_PATCHLEVEL 0\n")
    assert probe_cudnn(tmp_path)["version"] == "9.1.0"


def test_toolkit_lists_installs_and_default(tmp_path: Path) -> None:
    root = replay_host.make_fake_root(tmp_path)
    (root / "usr/local/cuda-12.1").mkdir()
    (root / "usr/local/cuda-12.1/version.json").write_text(
        '{"cuda": {"name": "CUDA SDK", "version": "12.1.1"}}'
    )
    tk = to_jsonable(probe_cuda_toolkit(root))
    assert tk["installs"] == {"/usr/local/cuda-12.1": "12.1.1", "/usr/local/cuda-13.0": "13.0"}
    assert tk["default"] == "/usr/local/cuda-13.0"
    assert tk["nvcc"]["version"] == "13.0"


def test_env_probe_failures_say_why(tmp_path: Path) -> None:
    gone = probe_python_env(str(tmp_path / "envs/dl/bin/python"))
    assert isinstance(gone, Unavailable) and "does not exist" in gone.reason
    broken = _exe(
        tmp_path / "broken",
        "echo 'ImportError: libstdc++.so.6: version GLIBCXX_3.4.30 not found' >&2; exit 1",
    )
    r = probe_python_env(str(broken))
    assert isinstance(r, Unavailable) and "GLIBCXX" in r.reason
    slow = _exe(tmp_path / "slow", "sleep 5")
    r = probe_python_env(str(slow), timeout=0.3)
    assert isinstance(r, Unavailable) and "did not answer" in r.reason


def test_real_env_probe_on_this_venv() -> None:
    """The real script in a real interpreter: this test venv's torch (CPU use only here)."""
    torch = pytest.importorskip("torch")
    got = probe_python_env(sys.executable)
    assert not isinstance(got, Unavailable), got
    assert got["torch"] == torch.__version__
    assert got["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert got["cuda_available"] is torch.cuda.is_available()
    assert got["device_count"] == torch.cuda.device_count()
    assert (got["torch_cuda"] == torch.version.cuda) or ("unavailable" in got["torch_cuda"])


def test_every_framework_the_spec_pins_is_probed_by_its_distribution_name() -> None:
    """Not only the usual five: molecule/site's spec pins onnxruntime, whose version the env probe never asked
    for (dlverify check then failed it as 'not probed' on a host where it was installed)."""
    import yaml as pyyaml

    from dlverify.hwspec.loader import load_spec
    from dlverify.snapshot import spec_frameworks

    spec = load_spec(Path(__file__).resolve().parents[1] / "molecule/site/spec/hwspec-ci.yaml")
    assert spec_frameworks(spec) == ["onnxruntime"]
    pytest.importorskip("torch")
    sw = to_jsonable(
        probe_software("/", interpreter=sys.executable, tools=[], frameworks=["PyYAML", "dlv-no-such-dist"])
    )
    env = sw["python_env"]
    assert env["PyYAML"] == pyyaml.__version__
    assert "PackageNotFoundError" in env["dlv-no-such-dist"]["unavailable"]


def test_tools_on_path(tmp_path: Path, monkeypatch) -> None:
    _exe(tmp_path / "docker", "echo 'Docker version 24.0.5, build ced0996'")
    _exe(
        tmp_path / "nvidia-ctk", "echo 'NVIDIA Container Toolkit CLI version 1.13.1'; echo 'commit: 28b7066'"
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    assert probe_tool("docker") == "24.0.5"
    assert probe_tool("nvidia_container_toolkit") == "1.13.1"
    assert probe_tool("prometheus") == Unavailable("prometheus not installed (not on PATH)")
    sw = to_jsonable(probe_software(tmp_path, tools=["docker", "grafana"], env=False))
    assert sw["python_env"] == {"unavailable": "not probed (--no-env)"}
    assert sw["tools"]["docker"] == "24.0.5"
    assert "not installed" in sw["tools"]["grafana"]["unavailable"]


def _sw_snapshot(monkeypatch, tmp_path, **env_changes) -> dict:
    env = {**replay_host.h100_env_record(), **env_changes}
    return replay_host.h100_snapshot(monkeypatch, tmp_path, env_record=env)


def _ids(spec, snap) -> dict:
    return {r.id: r for r in check_software(spec, snap)}


def test_toolkit_installed_but_not_default_warns(monkeypatch, tmp_path) -> None:
    snap = _sw_snapshot(monkeypatch, tmp_path)
    snap["software"]["cuda_toolkit"]["installs"]["/usr/local/cuda-12.1"] = "12.1.1"
    spec = replay_host.h100_spec(cuda="12.1")
    ids = _ids(spec, snap)
    assert ids["software.cuda_toolkit"].status is Status.WARN
    assert "/usr/local/cuda-12.1" in ids["software.cuda_toolkit"].detail
    del snap["software"]["cuda_toolkit"]["installs"]["/usr/local/cuda-12.1"]
    assert _ids(spec, snap)["software.cuda_toolkit"].status is Status.FAIL


def test_cudnn_and_framework_and_tool_pins(monkeypatch, tmp_path) -> None:
    snap = _sw_snapshot(monkeypatch, tmp_path)
    snap["software"]["cudnn"] = {"version": "9.19.0", "source": "/usr/include/cudnn_version.h"}
    snap["software"]["tools"] = {
        "docker": "28.2.2",
        "prometheus": {"unavailable": "prometheus not installed"},
    }
    spec = replay_host.h100_spec(
        cudnn="9.19",
        frameworks={"pytorch": "2.11.0+cu130", "torchvision": "0.26.0", "tensorflow": "2.12.0"},
        containers={"docker": "20.10.17"},
        monitoring={"prometheus": "2.42.0"},
    )
    ids = _ids(spec, snap)
    assert ids["software.cudnn"].status is Status.PASS
    assert ids["software.torch"].status is Status.PASS  # full pin with the build tag
    assert ids["software.framework.torchvision"].status is Status.PASS
    assert ids["software.framework.tensorflow"].status is Status.FAIL
    assert ids["software.containers.docker"].status is Status.FAIL
    assert ids["software.containers.docker"].observed == "28.2.2"
    assert ids["software.monitoring.prometheus"].status is Status.FAIL
    ids = _ids(dataclasses.replace(spec, software=dataclasses.replace(spec.software, cudnn="8.9.2")), snap)
    assert ids["software.cudnn"].status is Status.FAIL


def test_torch_pin_with_another_build_tag_fails(monkeypatch, tmp_path) -> None:
    snap = _sw_snapshot(monkeypatch, tmp_path)
    ids = _ids(replay_host.h100_spec(frameworks={"pytorch": "2.11.0+cu126"}), snap)
    assert ids["software.torch"].status is Status.FAIL


def test_no_env_skips_env_checks(monkeypatch, tmp_path) -> None:
    snap = _sw_snapshot(monkeypatch, tmp_path)
    snap["software"]["python_env"] = {"unavailable": "not probed (--no-env)"}
    ids = _ids(replay_host.h100_spec(), snap)
    for cid in ("software.python", "software.torch", "software.torch_device_count"):
        assert ids[cid].status is Status.SKIP and "--no-env" in ids[cid].detail


def test_missing_env_fails(monkeypatch, tmp_path) -> None:
    snap = _sw_snapshot(monkeypatch, tmp_path)
    snap["software"]["python_env"] = {"unavailable": "interpreter /opt/dl/bin/python3 does not exist"}
    spec = replay_host.h100_spec(python_env=PythonEnvSpec("dl", "3.12", "venv", "/opt/dl"))
    ids = _ids(spec, snap)
    assert ids["software.python"].status is Status.FAIL and "does not exist" in ids["software.python"].detail
    assert ids["software.torch"].status is Status.FAIL


@pytest.mark.parametrize(
    ("seen", "status"),
    [
        (1, Status.PASS),  # the recorded H100 host has one GPU
        (0, Status.FAIL),  # a CPU-only wheel, or CUDA libraries TensorFlow cannot load
        ({"unavailable": "tensorflow could not list the GPUs: ImportError"}, Status.FAIL),
    ],
)
def test_pinned_tensorflow_must_see_the_gpus(monkeypatch, tmp_path, seen, status) -> None:
    snap = _sw_snapshot(monkeypatch, tmp_path, tensorflow="2.15.0", tensorflow_gpus=seen)
    spec = replay_host.h100_spec(frameworks={"pytorch": "2.11.0+cu130", "tensorflow": "2.15.0"})
    ids = _ids(spec, snap)
    assert ids["software.framework.tensorflow"].status is Status.PASS
    assert ids["software.framework.tensorflow.gpus"].status is status
    if status is Status.FAIL:
        assert ids["software.framework.tensorflow.gpus"].detail


def test_tensorflow_gpus_probed_in_its_own_interpreter(tmp_path) -> None:
    """TensorFlow is asked apart from torch (two cuDNN builds in one process can crash it); a failing
    import is a reason, not an exception."""
    from dlverify.probes.software import probe_tensorflow_gpus

    good = tmp_path / "good-python"
    good.write_text('#!/bin/sh\necho "2026 tf logs on stdout"\necho \'{"gpus": 8}\'\n')
    bad = tmp_path / "bad-python"
    bad.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'tensorflow'\" >&2\nexit 1\n")
    for exe in (good, bad):
        exe.chmod(0o755)
    assert probe_tensorflow_gpus(str(good)) == 8
    why = probe_tensorflow_gpus(str(bad))
    assert not isinstance(why, int) and "ModuleNotFoundError" in str(why)
