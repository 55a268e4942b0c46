"""Load a spec file into :class:`Spec`, or raise :class:`SpecError` naming file, line, column and key.

The YAML is *composed* (not constructed) so every key keeps its position; values are then converted by
the key tables in ``keys.py``. All problems found in one pass are reported together.
"""

from __future__ import annotations

import dataclasses
import os

import yaml
from yaml.nodes import MappingNode

from dlverify.hwspec import compat
from dlverify.hwspec.errors import SpecError
from dlverify.hwspec.fileread import InputFileError, decode_text, read_bytes
from dlverify.hwspec.keys import SPEC
from dlverify.hwspec.kinds import INVALID, Context, scalar, type_name
from dlverify.hwspec.model import Spec

MAX_BYTES = 4 * 1024 * 1024  # a spec is a page of YAML; refuse to parse anything absurd


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read and validate a spec file (a regular file of at most ``MAX_BYTES``, UTF-8)."""
    name = str(path)
    try:
        text = decode_text(read_bytes(name, MAX_BYTES, "spec file"), name, "spec file")
    except InputFileError as exc:
        raise SpecError(name, None, None, "", exc.reason) from None
    return load_spec_text(text, name)


def load_spec_text(text: str, path: str = "<memory>") -> Spec:
    """Validate spec text; ``path`` is only used in messages and locations."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(
            path,
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
            "",
            f"malformed YAML: {what}",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(path, None, None, "", f"malformed YAML: {exc}") from None
    except RecursionError:
        raise SpecError(path, None, None, "", "malformed YAML: nested too deeply") from None
    if root is None:
        raise SpecError(
            path,
            None,
            None,
            "",
            "the file is empty; a spec needs at least a 'hardware:' or 'software:' section",
        )
    if not isinstance(root, MappingNode):
        raise SpecError(
            path,
            root.start_mark.line + 1,
            root.start_mark.column + 1,
            "",
            f"the top level must be a mapping of sections (hardware:, software:, checks:, bench:, "
            f"monitoring:, fleet:), got {_describe(root)}",
        )
    ctx = Context(path)
    try:
        spec = SPEC.load(root, "", ctx)
    except RecursionError:
        raise SpecError(path, None, None, "", "nested too deeply") from None
    if ctx.errors or spec is INVALID:
        if not ctx.errors:  # pragma: no cover - every INVALID records an error
            ctx.error(root, "", "invalid spec")
        raise SpecError.collect(ctx.errors)
    return _with_derived(dataclasses.replace(spec, path=path, locations=ctx.locations))


def _describe(node: yaml.Node) -> str:
    """Name a node's type without constructing it (an alias bomb stays a cheap node tree)."""
    if isinstance(node, yaml.ScalarNode):
        value = scalar(node, "", Context("<describe>"))
        return "an unreadable value" if value is INVALID else type_name(node, value)
    return type_name(node)


def _with_derived(spec: Spec) -> Spec:
    """Fill each GPU's architecture from the compatibility data when the spec leaves it out."""
    gpus = []
    for gpu in spec.hardware.gpus:
        if gpu.architecture is None:
            info = compat.find_gpu(gpu.model)
            if info is not None:
                gpu = dataclasses.replace(gpu, architecture=info.architecture)
        gpus.append(gpu)
    hardware = dataclasses.replace(spec.hardware, gpus=tuple(gpus))
    return dataclasses.replace(spec, hardware=hardware)
