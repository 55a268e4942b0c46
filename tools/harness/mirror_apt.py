"""The apt side of the mirror: stand-in .debs built with dpkg-deb, and flat repositories signed like NVIDIA's.

A ``DebSpec`` is one package (control fields, files, maintainer scripts); ``build_deb`` stages and builds it;
``Gpg`` holds the mirror's signing key (made once, in the cache); ``write_flat_repo`` indexes a folder of
.debs and signs its Release (``deb [signed-by=KEYRING] URL /``, NVIDIA's layout).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from mirror_common import MirrorError, run

MAINTAINER = "dlverify test harness <harness@dlverify.invalid>"


STAND_IN_LINE = "STAND-IN built by the dlverify test harness, not NVIDIA's package."


KEY_UID = "dlverify test mirror (STAND-IN repository key, dlverify test harness) <mirror@dlverify.invalid>"

# the longest GnuPG home given to gpg as is: its agent sockets (S.gpg-agent.browser) must fit in 107 bytes
_GPG_HOME_MAX = 80


@dataclass
class DebSpec:
    """One stand-in package: control fields plus the files it installs."""

    name: str
    version: str
    summary: str
    arch: str = "amd64"
    depends: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    section: str = "multiverse/devel"
    details: str = ""
    files: dict[str, bytes | Path] = field(default_factory=dict)  # absolute path in the package -> content
    modes: dict[str, int] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)  # absolute link path -> target
    maintainer_scripts: dict[str, str] = field(default_factory=dict)  # postinst/prerm/triggers -> text
    stand_in: bool = True  # False only for the harness's own test packages, which imitate nothing
    stand_in_line: str = STAND_IN_LINE  # names whose package this is not (NVIDIA's, Grafana Labs')

    def control(self, installed_kib: int) -> str:
        lines = [
            f"Package: {self.name}",
            f"Version: {self.version}",
            f"Architecture: {self.arch}",
            f"Maintainer: {MAINTAINER}",
            f"Installed-Size: {max(installed_kib, 1)}",
        ]
        if self.depends:
            lines.append(f"Depends: {', '.join(self.depends)}")
        if self.conflicts:
            lines.append(f"Conflicts: {', '.join(self.conflicts)}")
        lines += [f"Section: {self.section}", "Priority: optional"]
        details = self.details.split("\n") if self.details else []
        body = [self.stand_in_line, *details] if self.stand_in else details or [self.summary]
        lines.append(f"Description: {self.summary}{' (STAND-IN)' if self.stand_in else ''}")
        lines += [f" {line}" if line.strip() else " ." for line in body]
        return "\n".join(lines) + "\n"


def stand_in_note(spec: DebSpec) -> bytes:
    return (
        f"{spec.name} {spec.version}\n{STAND_IN_LINE}\n"
        "It has NVIDIA's package name and version so that provisioning roles can be tested on hosts\n"
        "without NVIDIA's repositories or a GPU. Files from NVIDIA's PyPI wheels are NVIDIA's own;\n"
        "everything else in it is a labelled stand-in.\n"
    ).encode()


def build_deb(spec: DebSpec, out_dir: Path) -> Path:
    """Stage the files of `spec` and build a .deb with dpkg-deb (root-owned, gzip for speed)."""
    with tempfile.TemporaryDirectory(prefix=f"deb-{spec.name}-") as tmp:
        root = Path(tmp)
        files = dict(spec.files)
        if spec.stand_in:
            files.setdefault(f"/usr/share/doc/{spec.name}/STAND-IN", stand_in_note(spec))
        for dest, content in files.items():
            target = root / dest.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
            target.chmod(spec.modes.get(dest, 0o644))
        for link, link_target in spec.symlinks.items():
            path = root / link.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(link_target)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        debian = root / "DEBIAN"
        debian.mkdir()
        (debian / "control").write_text(spec.control(size // 1024))
        for script, text in spec.maintainer_scripts.items():
            (debian / script).write_text(text)
            (debian / script).chmod(0o755 if script != "triggers" else 0o644)
        out_dir.mkdir(parents=True, exist_ok=True)
        deb = out_dir / f"{spec.name}_{spec.version.replace(':', '%3a')}_{spec.arch}.deb"
        run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)])
    return deb


CUDA_ORIGIN = ("dlverify-mirror", "dlverify stand-in CUDA repository (STAND-IN, not NVIDIA's)")


GRAFANA_ORIGIN = ("dlverify-mirror", "dlverify stand-in Grafana repository (STAND-IN, not Grafana Labs')")


HARNESS_ORIGIN = ("dlverify-harness", "dlverify harness test packages (hold and blacklist tests)")


UBUNTU_ORIGIN = ("Ubuntu", "dlverify stand-in of Ubuntu's jammy-updates restricted (STAND-IN, not Ubuntu's)")


TOOLKIT_ORIGIN = (
    "dlverify-mirror",
    "dlverify stand-in of NVIDIA's libnvidia-container repository (STAND-IN, not NVIDIA's)",
)


def release_text(
    repo: Path, files: Iterable[str], date: float | None = None, origin: tuple[str, str] = CUDA_ORIGIN
) -> str:
    """A flat repository's Release file: what apt verifies (via InRelease) before trusting Packages."""
    lines = [
        f"Origin: {origin[0]}",
        f"Label: {origin[1]}",
        "Architectures: amd64 all",
        f"Date: {formatdate(date if date is not None else time.time(), usegmt=True)}",
        "Acquire-By-Hash: no",
    ]
    for field_name, algo in (("MD5Sum", "md5"), ("SHA256", "sha256")):
        lines.append(f"{field_name}:")
        for name in files:
            data = (repo / name).read_bytes()
            lines.append(f" {hashlib.new(algo, data).hexdigest()} {len(data):>16} {name}")
    return "\n".join(lines) + "\n"


class Gpg:
    """The mirror's signing key, in a GnuPG home of its own under the cache dir."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._link: Path | None = None

    @property
    def homedir(self) -> str:
        """The path gpg is given. gpg-agent's sockets live in the home (where /run/user/UID does not exist),
        and a socket path is limited to 107 bytes: a deep cache dir (a pytest worker's tmp dir) made key
        generation fail with "No agent running". A long home is reached through a short symlink instead."""
        if len(str(self.home)) <= _GPG_HOME_MAX:
            return str(self.home)
        if self._link is None:
            digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
            link = Path(tempfile.gettempdir()) / f"dlv-gnupg-{digest}"
            if not (link.is_symlink() and link.readlink() == self.home):
                link.unlink(missing_ok=True)
                link.symlink_to(self.home)
            self._link = link
        return str(self._link)

    def _gpg(self, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return run(["gpg", "--homedir", self.homedir, "--batch", "--yes", "--no-tty", *args], **kwargs)

    def close(self) -> None:
        """Stop the gpg-agent that signing started, so no daemon outlives the build."""
        kill = ["gpgconf", "--homedir", self.homedir, "--kill", "gpg-agent"]
        subprocess.run(kill, capture_output=True, check=False)
        if self._link is not None:
            self._link.unlink(missing_ok=True)
            self._link = None

    def fingerprint(self) -> str | None:
        if not self.home.is_dir():
            return None
        out = subprocess.run(
            ["gpg", "--homedir", self.homedir, "--batch", "--with-colons", "--list-secret-keys"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        fprs = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]
        return fprs[0] if fprs else None

    def ensure_key(self) -> str:
        existing = self.fingerprint()
        if existing:
            return existing
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        self._gpg(
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-gen-key",
            KEY_UID,
            "rsa3072",
            "sign",
            "never",
        )
        made = self.fingerprint()
        if not made:
            raise MirrorError(f"gpg made no key in {self.home}")
        return made

    def export(self, armor: bool) -> bytes:
        cmd = ["gpg", "--homedir", self.homedir, "--batch", "--export", *(["--armor"] if armor else [])]
        done = subprocess.run(cmd, capture_output=True, check=False)
        if done.returncode != 0 or not done.stdout:
            raise MirrorError(f"gpg --export failed: {done.stderr.decode(errors='replace')}")
        return done.stdout

    def sign(self, release: Path) -> None:
        fpr = self.ensure_key()
        common = ["--local-user", fpr, "--digest-algo", "SHA256"]
        self._gpg(*common, "--clearsign", "-o", str(release.parent / "InRelease"), str(release))
        self._gpg(
            *common, "--armor", "--detach-sign", "-o", str(release.parent / "Release.gpg"), str(release)
        )


def key_fingerprints(key_file: Path) -> list[str]:
    """The fingerprints of the primary keys in an OpenPGP key file, as the cuda role reads them.

    ``gpg --show-keys`` in a throwaway home: the key is read, never imported.
    """
    with tempfile.TemporaryDirectory(prefix="dlv-gpg.") as home:
        done = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--quiet", "--with-colons", "--show-keys", str(key_file)],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise MirrorError(f"gpg cannot read the key {key_file}: {done.stderr.strip()}")
    fingerprints: list[str] = []
    primary = False
    for line in done.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "fpr" and primary:
            fingerprints.append(fields[9])
        primary = fields[0] == "pub"
    return fingerprints


def write_flat_repo(repo: Path, gpg: Gpg, origin: tuple[str, str] = CUDA_ORIGIN) -> None:
    """Index and sign the .debs in `repo`: Packages(.gz), Release, InRelease, Release.gpg."""
    packages = run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=repo).stdout
    if not packages.strip():
        raise MirrorError(f"dpkg-scanpackages found no package in {repo}")
    (repo / "Packages").write_text(packages)
    with gzip.GzipFile(repo / "Packages.gz", "wb", mtime=0) as stream:
        stream.write(packages.encode())
    (repo / "Release").write_text(release_text(repo, ["Packages", "Packages.gz"], origin=origin))
    gpg.sign(repo / "Release")
