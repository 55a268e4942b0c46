"""The mirror's catalogue: catalogue.yaml (every stand-in package, as data) read and checked.

``load_catalogue`` reads the file and checks every entry: a bad one is a ``CatalogueError`` that names the
file, the key and the line (``catalogue.yaml:42: repositories.cuda[3].depends: ...``), never a traceback.
Placeholders (``{driver}``) and ``each`` groups are expanded as it loads; the files' contents (wheel members,
stand-in files, the mirror's key) are taken when ``mirror_packages.repository_specs`` makes the ``DebSpec``
objects. What is logic rather than data stays in code: the daemons' templates and the Miniconda installer
(``mirror_packages.py``), the second versions derived from the first (``mirror_versions.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mirror_apt import STAND_IN_LINE
from mirror_common import HERE, STANDINS, MirrorError

CATALOGUE = HERE / "catalogue.yaml"


DISTROS = ("ubuntu2204", "debian12")  # the CUDA repository is served once per distribution (NVIDIA's layout)


class CatalogueError(MirrorError):
    """catalogue.yaml says something the loader cannot take; the message says where and what."""


@dataclass(frozen=True)
class At:
    """Where a value is: the file, its key path and its line (1-based)."""

    file: Path
    key: str
    line: int

    def error(self, message: str) -> CatalogueError:
        return CatalogueError(f"{self.file}:{self.line}: {self.key + ': ' if self.key else ''}{message}")

    def child(self, key: str | int, line: int) -> At:
        if isinstance(key, int):
            return At(self.file, f"{self.key}[{key}]", line)
        return At(self.file, f"{self.key}.{key}" if self.key else key, line)


@dataclass(frozen=True)
class Wheel:
    dist: str
    version: str
    prefix: str  # the folder in the wheel whose files the packages take


@dataclass(frozen=True)
class Source:
    """One file's content, taken when the package is made: kind is text, standin, template, wheel, json or
    mirror_key."""

    kind: str
    value: Any
    at: At
    fill: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class WheelTree:
    wheel: str
    under: str
    to: str
    skip: str | None


@dataclass
class Package:
    """A package entry, placeholders filled: DebSpec's fields, the files still as sources."""

    at: At
    fields: dict[str, Any]
    files: dict[str, Source] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    daemon: dict[str, str] | None = None
    wheel_trees: list[WheelTree] = field(default_factory=list)


@dataclass(frozen=True)
class SecondVersions:
    driver_upstream: str
    cuda_toolkit_older: str
    other_minor: tuple[str, str]  # (minor, version)
    cudnn_builds: dict[str, str]


@dataclass(frozen=True)
class Catalogue:
    path: Path
    vars: dict[str, str]
    wheels: dict[str, Wheel]
    miniconda_installer: str
    second_versions: SecondVersions
    repositories: dict[str, list[Package]]


# --- reading YAML with lines ------------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _fill(text: str, values: dict[str, str], at: At) -> str:
    """`text` with each {name} replaced by its value; {{ and }} are literal braces."""

    def one(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            return token[0]
        if name is None:
            raise at.error(f"a lone {token!r} in {text!r} (write {token * 2} for a literal brace)")
        if name not in values:
            raise at.error(f"{{{name}}} in {text!r} is not a var (known: {', '.join(sorted(values))})")
        return values[name]

    return _PLACEHOLDER.sub(one, text)


_KINDS = {
    "int": "a number",
    "float": "a number",
    "bool": "true/false",
    "null": "nothing",
    "timestamp": "a date",
}


def _what(node: Any) -> str:
    """What a node is, for a message: a mapping, a list, or a scalar YAML did not read as a string."""
    kind = node.tag.rsplit(":", 1)[-1]
    if kind in ("map", "seq"):
        return "a mapping" if kind == "map" else "a list"
    return f"{node.value!r}, which YAML reads as {_KINDS.get(kind, kind)} (quote it)"


def _str(node: Any, at: At, values: dict[str, str] | None = None) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
        raise at.error(f"expected a string, got {_what(node)}")
    return node.value if values is None else _fill(node.value, values, at)


def _map(
    node: Any, at: At, allowed: tuple[str, ...] | None = None, required: tuple[str, ...] = ()
) -> dict[str, tuple[Any, At]]:
    """A mapping's values by key, as (node, At) pairs; unknown, duplicate and missing keys are errors."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise at.error(f"expected a mapping, got {_what(node)}")
    out: dict[str, tuple[Any, At]] = {}
    for key_node, value_node in node.value:
        key = _str(key_node, at)
        where = at.child(key, key_node.start_mark.line + 1)
        if key in out:
            raise where.error("duplicate key")
        if allowed is not None and key not in allowed:
            raise where.error(f"unknown key (allowed: {', '.join(allowed)})")
        out[key] = (value_node, where)
    for key in required:
        if key not in out:
            raise at.error(f"missing key {key!r}")
    return out


def _seq(node: Any, at: At) -> list[tuple[Any, At]]:
    import yaml

    if not isinstance(node, yaml.SequenceNode):
        raise at.error(f"expected a list, got {_what(node)}")
    return [(item, at.child(i, item.start_mark.line + 1)) for i, item in enumerate(node.value)]


def _strings(node: Any, at: At, values: dict[str, str]) -> dict[str, str]:
    return {key: _str(value, where, values) for key, (value, where) in _map(node, at).items()}


# --- the catalogue's parts ----------------------------------------------------------------------------------

PACKAGE_KEYS = (
    "name",
    "version",
    "summary",
    "arch",
    "section",
    "depends",
    "conflicts",
    "details",
    "files",
    "symlinks",
    "maintainer_scripts",
    "daemon",
    "wheel_trees",
    "stand_in",
    "stand_in_line",
)
SOURCE_KINDS = ("standin", "template", "wheel", "json", "mirror_key")
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "triggers")
_MODE = re.compile(r"0?[0-7]{3}")


def _standin(name: str, at: At) -> str:
    if "/" in name or not (STANDINS / name).is_file():
        raise at.error(f"no stand-in file {name!r} in {STANDINS}")
    return name


def _json_value(node: Any, at: At, values: dict[str, str]) -> Any:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return {k: _json_value(v, w, values) for k, (v, w) in _map(node, at).items()}
    if isinstance(node, yaml.SequenceNode):
        return [_json_value(v, w, values) for v, w in _seq(node, at)]
    return _str(node, at, values)


def _source(node: Any, at: At, values: dict[str, str], wheels: dict[str, Wheel]) -> tuple[Source, int | None]:
    """A file's content and its mode (None: the default 0644)."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        return Source("text", _str(node, at, values), at), None
    keys = _map(node, at, (*SOURCE_KINDS, "member", "fill", "mode"))
    kinds = [k for k in keys if k in SOURCE_KINDS]
    if len(kinds) != 1:
        raise at.error(
            f"a file needs a string or exactly one of {', '.join(SOURCE_KINDS)} (got {kinds or 'none'})"
        )
    kind = kinds[0]
    value_node, where = keys[kind]
    extra = {k for k in keys if k not in (kind, "mode")}
    wanted = {"wheel": {"member"}, "template": {"fill"}}.get(kind, set())
    if extra != wanted:
        raise at.error(
            f"{kind} takes {', '.join(sorted(wanted)) or 'no other key'} (and mode), got {sorted(extra)}"
        )
    mode = None
    if "mode" in keys:
        text = _str(*keys["mode"])
        if not _MODE.fullmatch(text):
            raise keys["mode"][1].error(f'expected an octal mode like "0755", got {text!r}')
        mode = int(text, 8)
    if kind == "json":
        return Source(kind, _json_value(value_node, where, values), at), mode
    if kind == "mirror_key":
        if not (value_node.tag == "tag:yaml.org,2002:bool" and value_node.value == "true"):
            raise where.error("write mirror_key: true")
        return Source(kind, None, at), mode
    if kind == "wheel":
        wheel = _str(value_node, where)
        if wheel not in wheels:
            raise where.error(f"no wheel {wheel!r} (wheels: {', '.join(wheels)})")
        return Source(kind, (wheel, _str(*keys["member"], values)), at), mode
    name = _standin(_str(value_node, where), where)
    fill = tuple(_strings(*keys["fill"], values).items()) if kind == "template" else ()
    return Source(kind, name, at, fill), mode


def _package(node: Any, at: At, values: dict[str, str], wheels: dict[str, Wheel]) -> Package:
    import yaml

    keys = _map(node, at, PACKAGE_KEYS, required=("name", "version", "summary"))
    fields: dict[str, Any] = {}
    for key in ("name", "version", "summary", "arch", "section", "details", "stand_in_line"):
        if key in keys:
            fields[key] = _str(*keys[key], values)
    for key in ("depends", "conflicts"):
        if key in keys:
            fields[key] = [_str(item, where, values) for item, where in _seq(*keys[key])]
    if "stand_in" in keys:
        value, where = keys["stand_in"]
        if not isinstance(value, yaml.ScalarNode) or value.tag != "tag:yaml.org,2002:bool":
            raise where.error(f"expected true or false, got {_what(value)}")
        fields["stand_in"] = value.value == "true"
    if "symlinks" in keys:
        fields["symlinks"] = {_fill(k, values, at): v for k, v in _strings(*keys["symlinks"], values).items()}
    if "maintainer_scripts" in keys:
        scripts = _map(*keys["maintainer_scripts"], MAINTAINER_SCRIPTS)
        fields["maintainer_scripts"] = {k: _str(v, w, values) for k, (v, w) in scripts.items()}
    package = Package(at, fields)
    if "daemon" in keys:
        daemon = _map(*keys["daemon"], ("name", "unit", "description", "args", "unit_file"), ("name", "unit"))
        package.daemon = {k: _str(v, w, values) for k, (v, w) in daemon.items()}
        if "unit_file" in package.daemon:
            _standin(package.daemon["unit_file"], daemon["unit_file"][1])
    for path, (value, where) in (_map(*keys["files"]) if "files" in keys else {}).items():
        path = _fill(path, values, where)
        if not path.startswith("/"):
            raise where.error("a file's path must be absolute")
        package.files[path], mode = _source(value, where, values, wheels)
        if mode is not None:
            package.modes[path] = mode
    for item, where in _seq(*keys["wheel_trees"]) if "wheel_trees" in keys else []:
        tree = _map(item, where, ("wheel", "under", "to", "skip"), ("wheel", "under", "to"))
        wheel = _str(*tree["wheel"])
        if wheel not in wheels:
            raise tree["wheel"][1].error(f"no wheel {wheel!r} (wheels: {', '.join(wheels)})")
        skip = _str(*tree["skip"], values) if "skip" in tree else None
        package.wheel_trees.append(
            WheelTree(wheel, _str(*tree["under"], values), _str(*tree["to"], values), skip)
        )
    return package


def _packages(node: Any, at: At, values: dict[str, str], wheels: dict[str, Wheel]) -> list[Package]:
    """A repository's list: packages, and {each: rows, packages: [...]} groups expanded row by row."""
    import yaml

    out: list[Package] = []
    for item, where in _seq(node, at):
        if isinstance(item, yaml.MappingNode) and any(_str(k, where) == "each" for k, _ in item.value):
            group = _map(item, where, ("each", "packages"), ("each", "packages"))
            for row, row_at in _seq(*group["each"]):
                row_values = {**values, **_strings(row, row_at, values)}
                out += _packages(*group["packages"], row_values, wheels)
        else:
            out.append(_package(item, where, values, wheels))
    return out


def _second_versions(node: Any, at: At) -> SecondVersions:
    names = ("driver_upstream", "cuda_toolkit_older", "cuda_toolkit_other_minor", "cudnn_builds")
    keys = _map(node, at, names, names)
    minor = _map(*keys["cuda_toolkit_other_minor"], ("minor", "version"), ("minor", "version"))
    return SecondVersions(
        _str(*keys["driver_upstream"]),
        _str(*keys["cuda_toolkit_older"]),
        (_str(*minor["minor"]), _str(*minor["version"])),
        _strings(*keys["cudnn_builds"], {}),
    )


def load_catalogue(path: Path = CATALOGUE) -> Catalogue:
    """catalogue.yaml, checked; a CatalogueError names the file, the key and the line of what is wrong."""
    try:
        import yaml
    except ImportError as exc:  # Debian: python3-yaml
        raise MirrorError(f"reading {path.name} needs PyYAML (apt-get install python3-yaml)") from exc
    try:
        root = yaml.compose(path.read_text())
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read it: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CatalogueError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    top = At(path, "", 1)
    if root is None:
        raise top.error("the file is empty")
    keys = _map(
        root,
        top,
        ("vars", "wheels", "miniconda_installer", "second_versions", "repositories"),
        ("vars", "wheels", "miniconda_installer", "second_versions", "repositories"),
    )
    values = {"stand_in_line": STAND_IN_LINE}
    for name, (value, where) in _map(*keys["vars"]).items():
        values[name] = _str(value, where, values)
    wheels = {}
    for key, (value, where) in _map(*keys["wheels"]).items():
        wheel = _map(value, where, ("dist", "version", "prefix"), ("dist", "version", "prefix"))
        wheels[key] = Wheel(*(_str(*wheel[k], values) for k in ("dist", "version", "prefix")))
    repositories = {
        name: _packages(value, where, values, wheels)
        for name, (value, where) in _map(*keys["repositories"]).items()
    }
    return Catalogue(
        path,
        values,
        wheels,
        _str(*keys["miniconda_installer"], values),
        _second_versions(*keys["second_versions"]),
        repositories,
    )


@cache
def catalogue() -> Catalogue:
    """The checkout's catalogue.yaml, read once."""
    return load_catalogue()
