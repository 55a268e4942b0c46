"""Where the mirror lives and how its steps fail, shared by mirror.py and its sibling modules.

``DLV_HARNESS_CACHE`` (default /var/cache/dlv-harness) holds the mirror under ``mirror/``; ``DLV_MIRROR_PORT``
(default 8765) is the port it is served on, on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins"


class MirrorError(Exception):
    """A step failed; the message says which and why."""


def cache_dir() -> Path:
    return Path(os.environ.get("DLV_HARNESS_CACHE", "/var/cache/dlv-harness"))


def mirror_dir() -> Path:
    return cache_dir() / "mirror"


def www_dir() -> Path:
    return mirror_dir() / "www"


def port() -> int:
    raw = os.environ.get("DLV_MIRROR_PORT", "8765")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise MirrorError(f"DLV_MIRROR_PORT={raw!r} is not a TCP port number")
    return int(raw)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a host tool; turn a failure into a MirrorError that shows its stderr."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    except FileNotFoundError as exc:
        raise MirrorError(f"'{cmd[0]}' is not installed (apt-get install dpkg-dev gnupg)") from exc
    if done.returncode != 0:
        raise MirrorError(f"{shlex.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return done


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(partial(stream.read, 1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
