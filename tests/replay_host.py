"""The recorded hosts, replayed: a spec each recorded machine passes, what its env probe would print, a
filesystem root with its recorded nvcc and os-release, and a snapshot taken by the real snapshot code over
the NVML replay (nvml_replay.py) of its card.

The software side comes from each card's software.json; what the recordings do not hold is said where it is
set (:func:`env_record_for`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nvml_replay import CARDS, Card, install, load_recording


def spec_for(card: Card, **software: Any) -> Any:
    """A spec the recorded host passes (written here from the recordings, not from the probe)."""
    from dlverify.hwspec.model import (
        CpuSpec,
        GpuSpec,
        HardwareSpec,
        OsSpec,
        PythonEnvSpec,
        RamSpec,
        SoftwareSpec,
        Spec,
    )

    sw = {
        "os": OsSpec("Ubuntu", "24.04"),
        "nvidia_driver": "580.159.04",
        "cuda": "13.0",
        "python_env": PythonEnvSpec(name="dl", python="3.12", installer="venv", prefix="/opt/dl"),
        "frameworks": {"pytorch": "2.11.0"},
    }
    sw.update(software)
    return Spec(
        hardware=HardwareSpec(
            cpu=CpuSpec(model="Intel Xeon", cores=16, threads=16, sockets=1),
            gpus=(GpuSpec(model=card.spec_model, count=1, memory_gb=card.memory_gb),),
            ram=RamSpec(size_gib=128),
        ),
        software=SoftwareSpec(**sw),
    )


def h100_spec(**software: Any) -> Any:
    """A spec the recorded H100 host passes."""
    return spec_for(CARDS["h100"], **software)


def env_record_for(card: Card) -> dict[str, Any]:
    """What the env probe's script would print on the recorded host.

    torch/torchvision/torch.version.cuda/cuDNN are from software.json, the device name from the NVML
    recording. cuda_available and device_count are NOT in the recordings: they are set to what the recorded
    ResNet18 run on that one GPU implies (True, 1). NCCL was not recorded: it is left unavailable, saying so.
    """
    sw = card.software()
    return {
        "python_version": "3.12.3",
        "executable": "/opt/dl/bin/python3",
        "torch": sw["torch"],
        "torch_cuda": sw["torch_cuda"],
        "torch_cudnn": sw["cudnn"],
        "cuda_available": True,
        "device_count": 1,
        "device_names": [card.nvml_name()],
        "nccl": {"unavailable": f"not in the {card.label} recording"},
        "torchvision": sw["torchvision"],
    }


def h100_env_record() -> dict[str, Any]:
    """What the env probe's script would print on the H100 host (see :func:`env_record_for`)."""
    return env_record_for(CARDS["h100"])


def make_fake_root(root: Path, env_record: dict[str, Any] | None = None, card: Card | None = None) -> Path:
    """A filesystem root with the card's recorded nvcc and os-release and a STAND-IN interpreter at
    /opt/dl/bin/python3 that prints ``env_record`` as the real probe script would (it ignores its
    arguments)."""
    card = card or CARDS["h100"]
    sw = card.software()
    release = re.search(r"release (\d+\.\d+)", sw["nvcc"])
    assert release, sw["nvcc"]
    cuda_dir = f"cuda-{release.group(1)}"
    nvcc = root / "usr/local" / cuda_dir / "bin/nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("#!/bin/sh\ncat <<'EOF'\n" + sw["nvcc"] + "EOF\n")
    nvcc.chmod(0o755)
    (root / "usr/local/cuda").symlink_to(cuda_dir)
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text(sw["os_release"])
    py = root / "opt/dl/bin/python3"
    py.parent.mkdir(parents=True)
    record = dict(env_record_for(card) if env_record is None else env_record)
    # TensorFlow's own view of the GPUs is asked by a second script (probes.software.TF_SCRIPT)
    tf = record.pop("tensorflow_gpus", None)
    tf_answer = (
        f"echo '{json.dumps({'gpus': tf})}'; exit 0"
        if isinstance(tf, int)
        else f"echo {json.dumps(str((tf or {}).get('unavailable', 'No module named tensorflow')))} >&2; "
        "exit 1"
    )
    doc = json.dumps(record)
    py.write_text(
        "#!/bin/sh\n# dlverify test stand-in for an env interpreter\n"
        f'case "$3" in *list_physical_devices*) {tf_answer} ;; esac\n'
        "cat <<'EOF'\n" + doc + "\nEOF\n"
    )
    py.chmod(0o755)
    return root


def take_snapshot(
    monkeypatch: Any,
    tmp_path: Path,
    card: Card,
    *,
    recording: dict[str, Any] | None = None,
    env_record: dict[str, Any] | None = None,
    spec: Any = None,
) -> dict[str, Any]:
    """Run the real snapshot code (NVML replay of ``card`` + software probe on a fake root) and round-trip
    it to JSON. ``recording`` replaces the card's NVML recording (a changed copy of it, for faults)."""
    import dataclasses

    from dlverify import snapshot

    install(monkeypatch, load_recording(card) if recording is None else recording)
    root = make_fake_root(tmp_path / "root", env_record, card)
    spec = spec or spec_for(card)
    env = dataclasses.replace(spec.software.python_env, prefix=str(root / "opt/dl"))
    spec = dataclasses.replace(spec, software=dataclasses.replace(spec.software, python_env=env))
    snap = snapshot.take(spec, only=("gpu", "software"), root=str(root))
    return json.loads(snapshot.dumps(snap))


def h100_snapshot(
    monkeypatch: Any,
    tmp_path: Path,
    *,
    recording: dict[str, Any] | None = None,
    env_record: dict[str, Any] | None = None,
    spec: Any = None,
) -> dict[str, Any]:
    """:func:`take_snapshot` of the recorded H100."""
    return take_snapshot(
        monkeypatch, tmp_path, CARDS["h100"], recording=recording, env_record=env_record, spec=spec
    )
