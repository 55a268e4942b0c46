"""Stand-ins for upstream release tarballs, for mirror.py: Prometheus' `prometheus-X.linux-amd64.tar.gz`.

github.com is not a registry the tests may rely on. The monitoring role installs Prometheus from the official
release tarball (sha256-checked) when the apt sources do not ship the spec's version; to test that path for
real, this module repackages the *real* Prometheus and promtool binaries of Debian's `prometheus` package
(fetched with `apt-get download` on the controller, which runs Debian) in the upstream tarball's layout
(`prometheus-X.linux-amd64/{prometheus,promtool,LICENSE,NOTICE}`), X being the package's upstream version,
plus a `DLVERIFY-STAND-IN` file that says what it is. Served at GitHub's path under the mirror:
`/prometheus/releases/download/vX/prometheus-X.linux-amd64.tar.gz`, with `sha256sums.txt` next to it, as
upstream does.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

STAND_IN_NOTE = (
    b"STAND-IN built by the dlverify test harness, not the Prometheus project's release tarball: the\n"
    b"binaries are Debian's prometheus package's (the real Prometheus and promtool of that version).\n"
)


class ReleaseError(RuntimeError):
    """The stand-in cannot be built (no apt, no Debian prometheus package): said, not hidden."""


def debian_prometheus(cache: Path) -> Path:
    """Debian's prometheus .deb, downloaded once into `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("prometheus_*.deb"))
    if found:
        return found[-1]
    try:
        done = subprocess.run(
            ["apt-get", "download", "-qq", "prometheus"],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReleaseError(f"apt-get download prometheus failed: {exc}") from exc
    found = sorted(cache.glob("prometheus_*.deb"))
    if done.returncode != 0 or not found:
        raise ReleaseError(f"apt-get download prometheus: rc {done.returncode}: {done.stderr.strip()[-300:]}")
    return found[-1]


def upstream_version(deb: Path) -> str:
    """2.42.0 of prometheus_2.42.0+ds-5+b5_amd64.deb."""
    full = deb.name.split("_")[1]
    return full.split(":")[-1].split("+")[0].split("-")[0]


def prometheus_tarball(deb: Path, out_dir: Path) -> tuple[str, Path]:
    """Write the stand-in and sha256sums.txt into out_dir/releases/download/vX/; return (version, tarball)."""
    version = upstream_version(deb)
    top = f"prometheus-{version}.linux-amd64"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True, capture_output=True)
        root = Path(tmp)
        members: dict[str, tuple[bytes, int]] = {
            "prometheus": ((root / "usr/bin/prometheus").read_bytes(), 0o755),
            "promtool": ((root / "usr/bin/promtool").read_bytes(), 0o755),
            "DLVERIFY-STAND-IN": (STAND_IN_NOTE, 0o644),
            "NOTICE": (b"Prometheus\nCopyright 2012-2015 The Prometheus Authors\n" + STAND_IN_NOTE, 0o644),
        }
        licence = root / "usr/share/doc/prometheus/copyright"
        members["LICENSE"] = (licence.read_bytes() if licence.is_file() else b"Apache License 2.0\n", 0o644)
    release = out_dir / "releases" / "download" / f"v{version}"
    release.mkdir(parents=True, exist_ok=True)
    tarball = release / f"{top}.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode) in sorted(members.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    tarball.write_bytes(buf.getvalue())
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    (release / "sha256sums.txt").write_text(f"{digest}  {tarball.name}\n")
    return version, tarball
