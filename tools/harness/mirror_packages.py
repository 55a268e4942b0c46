"""The packages of the mirror's catalogue made into ``DebSpec`` objects (for mirror.py's build).

``repository_specs`` takes each package of catalogue.yaml (read and checked by mirror_catalogue.py) with its
files' contents: wheel members (each wheel opened once), stand-in files and templates, the mirror's key, and
the stand-in daemons with their units. The Miniconda installer is made here too.
"""

from __future__ import annotations

import fnmatch
import json
import zipfile
from pathlib import Path

from mirror_apt import DebSpec
from mirror_catalogue import At, Catalogue, CatalogueError, Source, catalogue
from mirror_common import STANDINS, MirrorError


def wheel_members(wheel: Path, prefix: str) -> dict[str, bytes]:
    """The files under `prefix` in a wheel (a zip), keyed by their path below the prefix."""
    with zipfile.ZipFile(wheel) as zf:
        return {
            info.filename[len(prefix) :]: zf.read(info)
            for info in zf.infolist()
            if info.filename.startswith(prefix)
            and not info.is_dir()
            and not info.filename.endswith("__init__.py")
        }


def daemon_package_files(
    pkg: str, name: str, unit: str, description: str, args: str, unit_text: str | None = None
) -> dict[str, bytes]:
    """A stand-in daemon and its unit: the generic template, or `unit_text` (a copy of the real unit)."""

    def fill(template: str) -> bytes:
        for key, value in {
            "@NAME@": name,
            "@UNIT@": unit,
            "@DESCRIPTION@": description,
            "@PACKAGE@": pkg,
            "@ARGS@": args,
            "@FORKS@": "yes",  # the generic unit and NVIDIA's real daemons are Type=forking
        }.items():
            template = template.replace(key, value)
        return template.encode()

    return {
        f"/usr/bin/{name}": fill((STANDINS / "daemon.sh.in").read_text()),
        f"/lib/systemd/system/{unit}": (
            unit_text.encode()
            if unit_text is not None
            else fill((STANDINS / "daemon.service.in").read_text())
        ),
    }


class _Contents:
    """Takes the files' contents: wheel members (each wheel opened once), stand-in files, the mirror's key."""

    def __init__(self, cat: Catalogue, wheels: dict[str, Path], keyring: bytes) -> None:
        self.cat, self.wheels, self.keyring = cat, wheels, keyring
        self.members: dict[str, dict[str, bytes]] = {}

    def wheel(self, key: str, at: At) -> dict[str, bytes]:
        if key not in self.members:
            if key not in self.wheels:
                raise at.error(f"the wheel {key!r} was not given to the build")
            self.members[key] = wheel_members(self.wheels[key], self.cat.wheels[key].prefix)
        return self.members[key]

    def __call__(self, source: Source) -> bytes:
        if source.kind == "text":
            return str(source.value).encode()
        if source.kind == "standin":
            return (STANDINS / source.value).read_bytes()
        if source.kind == "template":
            text = (STANDINS / source.value).read_text()
            for old, new in source.fill:
                text = text.replace(old, new)
            return text.encode()
        if source.kind == "json":
            return json.dumps(source.value, indent=3).encode() + b"\n"
        if source.kind == "mirror_key":
            return self.keyring
        key, member = source.value
        members = self.wheel(key, source.at)
        if member not in members:
            raise source.at.error(
                f"the wheel {self.wheels[key].name} has no {self.cat.wheels[key].prefix}{member}"
            )
        return members[member]


def repository_specs(
    name: str, wheels: dict[str, Path] | None = None, keyring: bytes = b"", cat: Catalogue | None = None
) -> list[DebSpec]:
    """The packages of one repository of the catalogue (cuda, ubuntu-archive, grafana, container-toolkit,
    harness): `wheels` (key -> the downloaded wheel) and `keyring` where its packages carry them."""
    cat = cat or catalogue()
    if name not in cat.repositories:
        raise CatalogueError(f"{cat.path}: no repository {name!r} under repositories")
    contents = _Contents(cat, wheels or {}, keyring)
    specs = []
    for package in cat.repositories[name]:
        files: dict[str, bytes | Path] = {}
        modes: dict[str, int] = {}
        if package.daemon:
            d = package.daemon
            unit_text = (STANDINS / d["unit_file"]).read_text() if "unit_file" in d else None
            files.update(
                daemon_package_files(
                    package.fields["name"],
                    d["name"],
                    d["unit"],
                    d.get("description", ""),
                    d.get("args", ""),
                    unit_text,
                )
            )
            modes[f"/usr/bin/{d['name']}"] = 0o755
        files.update({path: contents(source) for path, source in package.files.items()})
        modes.update(package.modes)
        for tree in package.wheel_trees:
            for rel, data in contents.wheel(tree.wheel, package.at).items():
                if rel.startswith(tree.under) and not (tree.skip and fnmatch.fnmatch(rel, tree.skip)):
                    files[tree.to + rel[len(tree.under) :]] = data
        specs.append(DebSpec(**package.fields, files=files, modes=modes))
    return specs


def miniconda_installer() -> bytes:
    name = catalogue().miniconda_installer
    template = (STANDINS / "miniconda-installer.sh.in").read_text()
    conda = (STANDINS / "conda.py").read_text()
    conda_body = conda.split("\n", 1)[1] if conda.startswith("#!") else conda
    if "__DLV_STANDIN_CONDA_EOF__" in conda_body:
        raise MirrorError("standins/conda.py contains the installer's heredoc terminator")
    return template.replace("@INSTALLER_NAME@", name).replace("@CONDA_PY@", conda_body.rstrip("\n")).encode()
