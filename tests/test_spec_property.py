"""Property: whatever YAML a person (or a fuzzer) writes, the loader returns a Spec or raises SpecError.

Specs are generated around the real key tables: valid keys and values mixed with misspelt keys, wrong
types, junk strings, versions as floats, nested lists/mappings, so most examples get deep into the loader.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlverify.hwspec import SpecError, load_spec_text
from dlverify.hwspec.keys import SPEC
from dlverify.hwspec.kinds import AsList, Bool, Enum, Fields, Int, Kind, ListOf, Num, OneOf, Version
from dlverify.hwspec.model import Spec

GOOD_STRINGS = [
    "NVIDIA A100 80GB × 4",
    "4x H100 80GB SXM",
    "512GB DDR4 ECC",
    "2TB",
    "480GiB",
    "100GbE RoCE",
    "2x 25GbE",
    "AMD EPYC 7543, 32C/64T",
    "Ubuntu 22.04 LTS",
    "12.1",
    "535.54.03",
    "8.9.2",
    "2.1.2+cu121",
    "3.10",
    "NVMe SSD",
    "/data",
    "conda",
    "required",
    "gpu_idle",
    "roce",
    "warn",
]
scalars = st.one_of(
    st.sampled_from(GOOD_STRINGS),
    st.text(max_size=12),
    st.integers(-5, 1000),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
)


VERSIONS = ["12.1", "535.54.03", "2.1.2+cu121", "3.10", "9.19.0", "13.0", "580.159.04", "22.04"]


def from_table(kind: Kind) -> st.SearchStrategy[object]:
    """Values shaped by the key table: mostly plausible, sometimes junk, so the loader is exercised deep."""
    if isinstance(kind, Fields):
        if kind.extra is not None:
            good_map = st.dictionaries(
                st.sampled_from(["pytorch", "tensorflow", "torchvision", "pytroch", "x y"]),
                from_table(kind.extra),
                max_size=4,
            )
        else:
            good_map = st.fixed_dictionaries({}, optional={k: from_table(v) for k, v in kind.fields.items()})
        typo = st.dictionaries(
            st.sampled_from([k[:-1] or "x" for k in kind.fields] or ["x"]), scalars, max_size=1
        )
        mixed = st.tuples(good_map, typo).map(lambda p: {**p[0], **p[1]})
        return st.one_of(good_map, good_map, good_map, mixed, scalars)
    if isinstance(kind, OneOf):
        return st.one_of(*(from_table(o) for o in kind.options))
    if isinstance(kind, (AsList, ListOf)):
        item = from_table(kind.item)
        return (
            st.one_of(item, st.lists(item, max_size=3))
            if isinstance(kind, AsList)
            else st.lists(item, max_size=3)
        )
    if isinstance(kind, Enum):
        good: st.SearchStrategy[object] = st.sampled_from(kind.values)
    elif isinstance(kind, Int):
        good = st.integers((kind.minimum or 0) - 1, (kind.maximum or 200) + 1)
    elif isinstance(kind, Num):
        good = st.floats(-1, 2000, allow_nan=False)
    elif isinstance(kind, Bool):
        good = st.booleans()
    elif isinstance(kind, Version):
        good = st.sampled_from(VERSIONS)
    else:
        good = st.sampled_from(GOOD_STRINGS)
    return st.one_of(good, good, good, scalars)


KEYS = st.one_of(
    st.sampled_from(["hardware", "software", "checks", "gpu", "cuda"]), st.text(min_size=1, max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=20,
)
documents = st.one_of(from_table(SPEC), from_table(SPEC), from_table(SPEC), values)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_generated_documents_give_spec_or_spec_error(doc: object) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    try:
        spec = load_spec_text(text, "gen.yaml")
    except SpecError as e:
        assert e.errors and all(x.path == "gen.yaml" and x.message for x in e.errors)
        return
    assert isinstance(spec, Spec)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_gives_spec_or_spec_error(text: str) -> None:
    try:
        load_spec_text(text, "t.yaml")
    except SpecError as e:
        assert str(e).startswith("t.yaml")
