#!/usr/bin/env python3
"""The offline, GPG-signed mirror the role tests (and air-gapped users) install from.

NVIDIA's and Anaconda's servers are unreachable where the roles are tested, so this tool builds, on
127.0.0.1, what the roles would otherwise download:

* a flat apt repository like NVIDIA's (``deb [signed-by=KEYRING] URL /``) at
  ``/cuda/repos/{ubuntu2204,debian12}/x86_64/``, signed with a key generated at build time, holding
  stand-in packages with NVIDIA's names and versions. Each says "STAND-IN" in its description and
  carries NVIDIA's real user-space files where PyPI ships them (ptxas, libcudart, libcudnn, headers);
* NVIDIA's libnvidia-container repository (the Container Toolkit) at
  ``/libnvidia-container/stable/deb/amd64/``, Grafana Labs' at ``/grafana/deb/``, Ubuntu's transitional 535
  packages at ``/ubuntu-archive/`` and the harness's own test packages at ``/harness/``;
* a stand-in Miniconda installer with its sha256 at ``/miniconda/``;
* optionally a PEP 503 pip index at ``/pypi/simple/`` of wheels put in ``$CACHE/mirror/pip-wheels``.

The command (this file) builds and hands out; the rest lives beside it: ``catalogue.yaml`` (every stand-in
package as data: names, versions, relations, files), ``mirror_catalogue.py`` (reads and checks it),
``mirror_packages.py`` (makes the packages), ``mirror_versions.py`` (the second versions derived from the
first), ``mirror_common.py`` (paths, errors), ``mirror_apt.py`` (stand-in .debs, signed flat repositories),
``mirror_releases.py`` (Prometheus' release tarball), ``mirror_server.py`` (serve, stop, env, status).

Usage: mirror.py build [--force] | serve | stop | env | status
Env:   DLV_HARNESS_CACHE (default /var/cache/dlv-harness), DLV_MIRROR_PORT (default 8765)
Exit:  0 ok, 1 the operation failed, 2 usage error or a missing host tool.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules (mirror_*.py)
import mirror_releases  # noqa: E402
from mirror_apt import (  # noqa: E402
    GRAFANA_ORIGIN,
    HARNESS_ORIGIN,
    TOOLKIT_ORIGIN,
    UBUNTU_ORIGIN,
    DebSpec,
    Gpg,
    build_deb,
    key_fingerprints,
    release_text,
    write_flat_repo,
)
from mirror_catalogue import CATALOGUE, DISTROS, CatalogueError, catalogue, load_catalogue  # noqa: E402
from mirror_common import STANDINS, MirrorError, cache_dir, mirror_dir, run, sha256_file, www_dir  # noqa: E402
from mirror_packages import daemon_package_files, miniconda_installer, repository_specs  # noqa: E402
from mirror_server import (  # noqa: E402
    env_lines,
    live_users,
    serve,
    serve_foreground,
    serving_pid,
    status,
    stop,
)
from mirror_versions import CUDNN_DATA, second_version_specs  # noqa: E402

# what tests and other tools reach through this module
__all__ = [
    "CatalogueError",
    "DebSpec",
    "Gpg",
    "catalogue",
    "daemon_package_files",
    "key_fingerprints",
    "load_catalogue",
    "main",
    "miniconda_installer",
    "release_text",
    "repository_specs",
    "second_version_specs",
    "serving_pid",
    "write_pip_index",
]

# where catalogue.yaml's container-toolkit repository is served below www/
TOOLKIT_REPO_PATH = "libnvidia-container/stable/deb/amd64"  # NVIDIA's path, with $(ARCH) = amd64


def fetch_wheels() -> dict[str, Path]:
    """NVIDIA's wheels from PyPI, downloaded once into $CACHE/wheels with pip."""
    wheel_dir = cache_dir() / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, wheel in catalogue().wheels.items():
        dist, version = wheel.dist, wheel.version
        pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
        hits = sorted(wheel_dir.glob(pattern))
        if hits:
            found[key] = hits[0]
        else:
            missing.append(f"{dist}=={version}")
    if missing:
        print(f"mirror: downloading {', '.join(missing)} from PyPI into {wheel_dir}", flush=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--progress-bar",
                "off",
                "--platform",
                "manylinux1_x86_64",
                "--python-version",
                "3.10",
                "-d",
                str(wheel_dir),
                *missing,
            ]
        )
        return fetch_wheels()
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def write_pip_index(wheel_dir: Path, index_dir: Path) -> int:
    """A PEP 503 simple index of the wheels in `wheel_dir`; returns how many projects it lists."""
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(wheel_dir.glob("*.whl")):
        projects.setdefault(normalize(wheel.name.split("-")[0]), []).append(wheel)
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    links = []
    for project, wheels in sorted(projects.items()):
        (index_dir / project).mkdir()
        rows = []
        for wheel in wheels:
            target = index_dir / project / wheel.name
            if wheel.stat().st_dev == index_dir.stat().st_dev:
                os.link(wheel, target)
            else:
                shutil.copy(wheel, target)
            name = html.escape(wheel.name)
            rows.append(f'<a href="{name}#sha256={sha256_file(wheel)}">{name}</a><br>')
        (index_dir / project / "index.html").write_text(
            f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n"
            + "\n".join(rows)
            + "\n</body></html>\n"
        )
        links.append(f'<a href="{project}/">{project}</a><br>')
    (index_dir / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
    )
    return len(projects)


def inputs_hash(wheels: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    sources = [*sorted(HERE.glob("mirror*.py")), CATALOGUE, CUDNN_DATA]  # this command, its modules, the data
    for path in [*sources, *sorted(STANDINS.iterdir())]:
        digest.update(path.name.encode() + path.read_bytes())
    for key in sorted(wheels):
        digest.update(wheels[key].name.encode())
    pip_wheels = mirror_dir() / "pip-wheels"
    if pip_wheels.is_dir():
        for wheel in sorted(pip_wheels.glob("*.whl")):
            digest.update(wheel.name.encode())
    return digest.hexdigest()[:16]


def build(force: bool) -> int:
    for tool in ("dpkg-deb", "dpkg-scanpackages", "gpg"):
        if not shutil.which(tool):
            print(f"mirror: '{tool}' is missing (apt-get install dpkg-dev gnupg)", file=sys.stderr)
            return 2
    start = time.monotonic()
    wheels = fetch_wheels()
    stamp = www_dir() / ".build-stamp"
    want = inputs_hash(wheels)
    if not force and stamp.is_file() and stamp.read_text().strip() == want:
        print(f"mirror: {www_dir()} is up to date (inputs {want})")
        return 0
    users = live_users()
    if users and serving_pid():
        # Swapping the tree under a running test would mix old indexes with new packages.
        print(
            f"mirror: the inputs changed but the mirror is in use by runner(s) {', '.join(map(str, users))}; "
            "build again when they are done",
            file=sys.stderr,
        )
        return 1
    gpg = Gpg(mirror_dir() / "gnupg")
    gpg.ensure_key()
    staging = Path(tempfile.mkdtemp(prefix="www.", dir=mirror_dir()))
    try:
        keys = staging / "keys"
        keys.mkdir()
        (keys / "dlv-mirror.asc").write_bytes(gpg.export(armor=True))
        keyring = gpg.export(armor=False)
        (keys / "dlv-mirror.gpg").write_bytes(keyring)

        pool = staging / "pool"
        specs = repository_specs("cuda", wheels, keyring)
        debs = [build_deb(spec, pool) for spec in specs + second_version_specs(specs)]
        for distro in DISTROS:
            repo = staging / "cuda" / "repos" / distro / "x86_64"
            repo.mkdir(parents=True)
            for deb in debs:
                os.link(deb, repo / deb.name)
            write_flat_repo(repo, gpg)
        shutil.rmtree(pool)

        archive_repo = staging / "ubuntu-archive"
        for spec in repository_specs("ubuntu-archive"):
            build_deb(spec, archive_repo)
        write_flat_repo(archive_repo, gpg, origin=UBUNTU_ORIGIN)
        grafana_repo = staging / "grafana" / "deb"
        for spec in repository_specs("grafana"):
            build_deb(spec, grafana_repo)
        write_flat_repo(grafana_repo, gpg, origin=GRAFANA_ORIGIN)
        toolkit_repo = staging / TOOLKIT_REPO_PATH
        for spec in repository_specs("container-toolkit"):
            build_deb(spec, toolkit_repo)
        write_flat_repo(toolkit_repo, gpg, origin=TOOLKIT_ORIGIN)

        try:
            deb = mirror_releases.debian_prometheus(mirror_dir() / "downloads")
            version, _ = mirror_releases.prometheus_tarball(deb, staging / "prometheus")
            print(
                f"mirror: Prometheus {version} release-tarball stand-in (Debian's binaries) from {deb.name}"
            )
        except mirror_releases.ReleaseError as exc:
            print(
                f"mirror: WARNING: NO PROMETHEUS RELEASE TARBALL ({exc}); the monitoring role's tarball path "
                "cannot be tested",
                file=sys.stderr,
            )

        harness_repo = staging / "harness"
        for spec in repository_specs("harness"):
            build_deb(spec, harness_repo)
        write_flat_repo(harness_repo, gpg, origin=HARNESS_ORIGIN)

        conda_dir = staging / "miniconda"
        conda_dir.mkdir()
        name = catalogue().miniconda_installer
        installer = conda_dir / name
        installer.write_bytes(miniconda_installer())
        installer.chmod(0o755)
        (conda_dir / f"{name}.sha256").write_text(f"{sha256_file(installer)}  {name}\n")

        pip_wheels = mirror_dir() / "pip-wheels"
        if pip_wheels.is_dir() and any(pip_wheels.glob("*.whl")):
            count = write_pip_index(pip_wheels, staging / "pypi" / "simple")
            print(f"mirror: pip index of {count} project(s) from {pip_wheels}")

        (staging / ".build-stamp").write_text(want + "\n")
        staging.chmod(0o755)
        old = mirror_dir() / "www.old"
        shutil.rmtree(old, ignore_errors=True)
        if www_dir().exists():
            www_dir().rename(old)
        staging.rename(www_dir())
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        gpg.close()
    print(
        f"mirror: built {len(debs)} signed stand-in packages for {', '.join(DISTROS)}, the harness test "
        f"repo and the Miniconda stand-in in {time.monotonic() - start:.1f}s -> {www_dir()}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mirror.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_p = sub.add_parser(
        "build", help="build (or refresh) the signed repository and the Miniconda stand-in"
    )
    build_p.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    serve_p = sub.add_parser("serve", help="serve the mirror on 127.0.0.1 in the background")
    stop_p = sub.add_parser("stop", help="stop the background server")
    for sub_p in (serve_p, stop_p):
        sub_p.add_argument(
            "--user",
            type=int,
            metavar="PID",
            help="a runner's pid: serve records its claim; stop drops it, stopping when no claim is left",
        )
    sub.add_parser("env", help="print shell exports for the roles (DLV_MIRROR_URL, ...)")
    sub.add_parser("status", help="print whether the mirror is built and served (JSON)")
    sub.add_parser("_serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            mirror_dir().mkdir(parents=True, exist_ok=True)
            return build(args.force)
        if args.command == "serve":
            return serve(args.user)
        if args.command == "_serve":
            return serve_foreground()
        if args.command == "stop":
            return stop(args.user)
        if args.command == "status":
            return status()
        print("\n".join(env_lines()))
        return 0
    except MirrorError as exc:
        print(f"mirror: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
