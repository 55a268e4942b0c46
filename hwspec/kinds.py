"""Value kinds of the spec: each one both *loads* a YAML node (with positions for errors) and *describes*
itself as JSON Schema. The loader and the schema are generated from the same tables (``keys.py``), so
they cannot drift apart.

A kind's ``load`` returns the converted value, or :data:`INVALID` after recording an error in the
context; it never raises for bad input, so one pass reports every problem in the file.

Size: over 400 lines on purpose: every kind is a small class with its load and its schema side by side; one
file keeps the kinds comparable.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dlverify.hwspec.errors import SpecError
from dlverify.hwspec.model import Location


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:timestamp",
}


@dataclass
class Context:
    path: str
    errors: list[SpecError] = field(default_factory=list)
    locations: dict[str, Location] = field(default_factory=dict)
    # values visited; YAML aliases can make a small file expand exponentially ("billion laughs")
    budget: int = 20_000

    def spend(self, node: Node, key: str) -> bool:
        """Count one value; False (after one error) once a spec is absurdly large."""
        self.budget -= 1
        if self.budget == 0:
            self.error(node, key, "too many values for a spec (YAML aliases expanding?)")
        return self.budget > 0

    def error(self, node: Node | None, key: str, message: str) -> Any:
        line = node.start_mark.line + 1 if node is not None else None
        col = node.start_mark.column + 1 if node is not None else None
        self.errors.append(SpecError(self.path, line, col, key, message))
        return INVALID

    def record(self, key: str, node: Node) -> None:
        self.locations[key] = Location(self.path, node.start_mark.line + 1, node.start_mark.column + 1, key)


def type_name(node: Node, value: Any = None) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {node.value}"
    if isinstance(value, int):
        return f"integer {node.value}"
    if isinstance(value, float):
        return f"float {value!r}"
    if isinstance(value, (_dt.date, _dt.datetime)):
        return f"date {node.value}"
    return f"string {value!r}"


def scalar(node: Node, key: str, ctx: Context) -> Any:
    """The Python value of a scalar node (SafeLoader rules), or INVALID for an unsupported tag."""
    if node.tag not in _SCALAR_TAGS:
        return ctx.error(node, key, f"unsupported YAML tag {node.tag!r}")
    try:
        return _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # e.g. an impossible date 2024-13-45
        return ctx.error(node, key, f"unreadable value {node.value!r}: {exc}")


def suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class Kind:
    """A value kind: ``expect`` names it in messages; ``description`` goes into the schema."""

    expect = "a value"
    node_type: type[Node] = ScalarNode
    description: str | None = None

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def _with_doc(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            schema = {"description": self.description, **schema}
        return schema

    def _scalar_of(self, node: Node, key: str, ctx: Context, types: tuple[type, ...]) -> Any:
        if not isinstance(node, ScalarNode):
            return ctx.error(node, key, f"expected {self.expect}, got {type_name(node)}")
        value = scalar(node, key, ctx)
        if value is INVALID:
            return INVALID
        if value is None:
            return ctx.error(
                node, key, f"expected {self.expect}, got nothing; remove the key to leave it unpinned"
            )
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return ctx.error(node, key, f"expected {self.expect}, got {type_name(node, value)}")
        return value


@dataclass
class Str(Kind):
    pattern: str | None = None
    expect: str = "a string"
    description: str | None = None

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        value = self._scalar_of(node, key, ctx, (str,))
        if value is INVALID:
            return value
        if not value.strip():
            return ctx.error(node, key, f"expected {self.expect}, got an empty string")
        if self.pattern and not re.search(self.pattern, value):
            return ctx.error(node, key, f"expected {self.expect}, got {value!r}")
        return value

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string", "minLength": 1}
        if self.pattern:
            s["pattern"] = self.pattern
        return self._with_doc(s)


VERSION_PATTERN = r"^v?[0-9]+(\.[0-9A-Za-z]+)*([+~-][0-9A-Za-z.+~-]+)?$"


MAX_HUMAN_TEXT = 200


@dataclass
class Version(Kind):
    """A version string. YAML reads ``12.1`` as a float and ``3.10`` as 3.1, so numbers are refused."""

    pattern: str = VERSION_PATTERN
    example: str = "12.1"
    description: str | None = None

    @property
    def expect(self) -> str:  # type: ignore[override]
        return f'a version string like "{self.example}"'

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        if isinstance(node, ScalarNode):
            value = scalar(node, key, ctx)
            if value is INVALID:
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                as_written = node.value
                shown = f"float {value!r}" if isinstance(value, float) else f"integer {value}"
                if as_written != repr(value) and as_written != str(value):
                    shown += f" (written {as_written})"
                return ctx.error(node, key, f'expected {self.expect}, got {shown} — quote it: "{as_written}"')
        value = self._scalar_of(node, key, ctx, (str,))
        if value is INVALID:
            return value
        if not re.search(self.pattern, value.strip()):
            return ctx.error(node, key, f"expected {self.expect}, got {value!r}")
        return value.strip()

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"type": "string", "pattern": self.pattern})


@dataclass
class Int(Kind):
    minimum: int | None = None
    maximum: int | None = None
    description: str | None = None

    @property
    def expect(self) -> str:  # type: ignore[override]
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an integer of at least {self.minimum}"
        return "an integer"

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        value = self._scalar_of(node, key, ctx, (int,))
        if value is INVALID:
            return value
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            return ctx.error(node, key, f"expected {self.expect}, got {value}")
        return value

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return self._with_doc(s)


@dataclass
class Num(Kind):
    """A number; ``exclusive_minimum`` for sizes and rates that must be above zero."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    description: str | None = None

    @property
    def expect(self) -> str:  # type: ignore[override]
        if self.exclusive_minimum is not None and self.maximum is not None:
            return f"a number greater than {self.exclusive_minimum:g}, at most {self.maximum:g}"
        if self.exclusive_minimum is not None:
            return f"a number greater than {self.exclusive_minimum:g}"
        if self.minimum is not None and self.maximum is not None:
            return f"a number from {self.minimum:g} to {self.maximum:g}"
        return "a number"

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        value = self._scalar_of(node, key, ctx, (int, float))
        if value is INVALID:
            return value
        if value != value or value in (float("inf"), float("-inf")):
            return ctx.error(node, key, f"expected {self.expect}, got {node.value}")
        if (
            (self.exclusive_minimum is not None and value <= self.exclusive_minimum)
            or (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
        ):
            return ctx.error(node, key, f"expected {self.expect}, got {value:g}")
        return value

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "number"}
        for name in ("minimum", "maximum"):
            if getattr(self, name) is not None:
                s[name] = getattr(self, name)
        if self.exclusive_minimum is not None:
            s["exclusiveMinimum"] = self.exclusive_minimum
        return self._with_doc(s)


@dataclass
class Bool(Kind):
    expect: str = "true or false"
    description: str | None = None

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        return self._scalar_of(node, key, ctx, (bool,))

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"type": "boolean"})


@dataclass
class Enum(Kind):
    values: tuple[str, ...] = ()
    description: str | None = None

    @property
    def expect(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(repr(v) for v in self.values)

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        value = self._scalar_of(node, key, ctx, (str,))
        if value is INVALID:
            return value
        if value not in self.values:
            return ctx.error(node, key, f"expected {self.expect}, got {value!r}{suggest(value, self.values)}")
        return value

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"enum": list(self.values)})


@dataclass
class Human(Kind):
    """A string in a human form, converted by ``parser`` (which raises ValueError with the message)."""

    parser: Callable[[str], Any] = str
    expect: str = "a string"
    description: str | None = None
    pattern: str | None = None  # a coarse pattern for the schema; the parser is the real judge

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        value = self._scalar_of(node, key, ctx, (str,))
        if value is INVALID:
            return value
        if len(value) > MAX_HUMAN_TEXT:  # before any pattern runs: regex time must not grow with junk
            return ctx.error(
                node, key, f"too long ({len(value)} characters; a value here is at most {MAX_HUMAN_TEXT})"
            )
        try:
            return self.parser(value)
        except ValueError as exc:
            return ctx.error(node, key, str(exc))

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string", "minLength": 1}
        if self.pattern:
            s["pattern"] = self.pattern
        return self._with_doc(s)


@dataclass
class ListOf(Kind):
    item: Kind = field(default_factory=Str)
    min_items: int = 0
    node_type: type[Node] = SequenceNode
    description: str | None = None

    @property
    def expect(self) -> str:  # type: ignore[override]
        return f"a list of {self.item.expect}"

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        if not isinstance(node, SequenceNode):
            value = scalar(node, key, ctx) if isinstance(node, ScalarNode) else None
            if value is INVALID:
                return value
            return ctx.error(node, key, f"expected {self.expect}, got {type_name(node, value)}")
        if len(node.value) < self.min_items:
            return ctx.error(node, key, f"expected at least {self.min_items} item(s), got {len(node.value)}")
        out = []
        for i, child in enumerate(node.value):
            if not ctx.spend(child, key):
                return INVALID
            child_key = f"{key}[{i}]"
            ctx.record(child_key, child)
            out.append(self.item.load(child, child_key, ctx))
        return INVALID if any(v is INVALID for v in out) else tuple(out)

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            s["minItems"] = self.min_items
        return self._with_doc(s)


@dataclass
class OneOf(Kind):
    """Dispatch on the node's shape: a scalar goes to the scalar alternative, a mapping to the mapping one."""

    options: tuple[Kind, ...] = ()
    description: str | None = None

    @property
    def expect(self) -> str:  # type: ignore[override]
        return " or ".join(o.expect for o in self.options)

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        for option in self.options:
            if isinstance(node, option.node_type):
                return option.load(node, key, ctx)
        value = scalar(node, key, ctx) if isinstance(node, ScalarNode) else None
        if value is INVALID:
            return value
        return ctx.error(node, key, f"expected {self.expect}, got {type_name(node, value)}")

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"oneOf": [o.schema() for o in self.options]})


@dataclass
class AsList(Kind):
    """One item or a list of them; always loads to a tuple."""

    item: Kind = field(default_factory=Str)
    description: str | None = None

    @property
    def expect(self) -> str:  # type: ignore[override]
        return f"{self.item.expect}, or a list of them"

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        if isinstance(node, SequenceNode):
            return ListOf(self.item).load(node, key, ctx)
        value = self.item.load(node, key, ctx)
        return INVALID if value is INVALID else (value,)

    def schema(self) -> dict[str, Any]:
        item = self.item.schema()
        return self._with_doc({"oneOf": [item, {"type": "array", "items": item}]})


@dataclass
class Fields(Kind):
    """A mapping with known keys (``fields``), or free keys whose values are all ``extra``.

    ``build`` turns the dict of loaded values into the model object; a ValueError from it is reported at
    the mapping. ``required`` keys must be present.
    """

    fields: Mapping[str, Kind] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    build: Callable[[dict[str, Any]], Any] | None = None
    extra: Kind | None = None
    extra_key_pattern: str = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    expect: str = "a mapping"
    node_type: type[Node] = MappingNode
    description: str | None = None

    def load(self, node: Node, key: str, ctx: Context) -> Any:
        if not isinstance(node, MappingNode):
            value = scalar(node, key, ctx) if isinstance(node, ScalarNode) else None
            if value is INVALID:
                return value
            return ctx.error(node, key, f"expected {self.expect}, got {type_name(node, value)}")
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        bad = False
        for key_node, value_node in node.value:
            if not ctx.spend(value_node, key):
                return INVALID
            name = scalar(key_node, key, ctx) if isinstance(key_node, ScalarNode) else INVALID
            if not isinstance(name, str):
                if name is not INVALID:
                    ctx.error(key_node, key, f"keys must be strings, got {type_name(key_node, name)}")
                else:
                    ctx.error(key_node, key, "keys must be strings, not a list or mapping")
                bad = True
                continue
            dotted = f"{key}.{name}" if key else name
            if name in seen:
                ctx.error(key_node, dotted, f"duplicate key {name!r} (first given on line {seen[name]})")
                bad = True
                continue
            seen[name] = key_node.start_mark.line + 1
            kind = self.fields.get(name)
            if kind is None and self.extra is not None and name not in self.fields:
                if not re.match(self.extra_key_pattern, name):
                    ctx.error(key_node, dotted, f"not a valid name {name!r}")
                    bad = True
                    continue
                kind = self.extra
            if kind is None:
                where = f"in {key}" if key else "at the top level"
                known = ", ".join(self.fields)
                ctx.error(
                    key_node,
                    dotted,
                    f"unknown key {name!r} {where}{suggest(name, tuple(self.fields))} (known: {known})",
                )
                bad = True
                continue
            ctx.record(dotted, key_node)
            value = kind.load(value_node, dotted, ctx)
            if value is INVALID:
                bad = True
            else:
                out[name] = value
        missing = [r for r in self.required if r not in seen]
        for r in missing:
            ctx.error(node, f"{key}.{r}" if key else r, f"required key {r!r} is missing")
        if bad or missing:
            return INVALID
        if self.build is None:
            return out
        try:
            return self.build(out)
        except ValueError as exc:
            return ctx.error(node, key, str(exc))

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "object"}
        if self.fields:
            s["properties"] = {name: kind.schema() for name, kind in self.fields.items()}
        if self.required:
            s["required"] = list(self.required)
        if self.extra is not None:
            s["propertyNames"] = {"pattern": self.extra_key_pattern}
            s["additionalProperties"] = self.extra.schema()
        else:
            s["additionalProperties"] = False
        return self._with_doc(s)
