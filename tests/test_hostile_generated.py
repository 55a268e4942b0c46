"""Issue 10: a generated hostile-input corpus, hundreds of cases, each under a time limit.

Mutations of real inputs (the repo's hwspec.yaml and a snapshot of the recorded H100 taken by the real
snapshot code): truncated at many offsets, single bytes replaced by YAML/JSON syntax characters, lines
dropped or doubled, and every leaf of the snapshot swapped for a value of another type. Each goes through
the real CLI in process (`dlverify.cli.main`). The rule for every case: an exit code that means something
(0, 1 or 2), never an exception, never longer than the limit, and on exit 2 a message naming the file.
Fixed seeds: the corpus is the same on every run.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import replay_host

from dlverify import cli

ROOT = Path(__file__).resolve().parents[1]
SPEC_TEXT = (ROOT / "hwspec.yaml").read_text()
H100_SPEC = ROOT / "hwspec/examples/h100-sxm-80gb.yaml"
LIMIT_S = 5
SYNTAX = [*":{}[]&*!|>'\"#%@,-?\t\n\x00\\", "\u2028", "\ufeff"]
HOSTILE_VALUES: list[Any] = [
    "false",
    "",
    "x" * 5000,
    -1,
    0,
    10**30,
    1e308,
    -1e308,
    [],
    {},
    None,
    True,
    [[[[[]]]]],
    {"unavailable": 7},
    "NaN",
]


def _spec_mutations() -> Iterator[tuple[str, str]]:
    rnd = random.Random(10)
    n = len(SPEC_TEXT)
    for k in range(60):
        cut = n * k // 60
        yield f"truncate-{cut}", SPEC_TEXT[:cut]
    for k in range(120):
        at = rnd.randrange(n)
        yield f"byte-{at}-{k}", SPEC_TEXT[:at] + rnd.choice(SYNTAX) + SPEC_TEXT[at + 1 :]
    lines = SPEC_TEXT.splitlines(keepends=True)
    for k in range(40):
        i = rnd.randrange(len(lines))
        if k % 2:
            yield f"drop-line-{i}", "".join(lines[:i] + lines[i + 1 :])
        else:
            yield f"double-line-{i}", "".join(lines[: i + 1] + lines[i:])


SPEC_CASES = list(_spec_mutations())


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def _expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), _time_limit(LIMIT_S):
        rc = cli.main(argv)
    return rc, err.getvalue()


def _judge(rc: int, err: str, path: Path) -> None:
    assert rc in (0, 1, 2), f"exit {rc}: {err[-500:]}"
    assert "Traceback" not in err
    if rc == 2:
        assert path.name in err, f"exit 2 without naming {path.name}: {err[-500:]}"


@pytest.mark.parametrize(("name", "text"), SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_mutated_spec(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / "hwspec.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    rc, err = _run(["spec", "lint", str(path)])
    _judge(rc, err, path)


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict) and doc and set(doc) != {"unavailable"}:
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list) and doc:
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


@pytest.fixture(scope="module")
def h100_snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    mp = pytest.MonkeyPatch()
    try:
        return replay_host.h100_snapshot(mp, tmp_path_factory.mktemp("snap"))
    finally:
        mp.undo()


N_SNAPSHOT_CASES = 240  # every leaf of the snapshot (~90 for one GPU) two or three times, other values


@pytest.mark.parametrize("k", range(N_SNAPSHOT_CASES))
def test_mutated_snapshot(tmp_path: Path, h100_snapshot: dict[str, Any], k: int) -> None:
    leaves = sorted(_leaves(h100_snapshot), key=repr)
    assert len(leaves) > 50  # a real snapshot
    leaf = leaves[k % len(leaves)]
    doc = json.loads(json.dumps(h100_snapshot))
    old = _get(doc, leaf)
    new = random.Random(k).choice(HOSTILE_VALUES)
    _set(doc, leaf, new)
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(doc))  # NaN and 1e308 as Python writes them
    rc, err = _run(["check", str(H100_SPEC), "--snapshot", str(snap), "--only", "gpu", "--format", "json"])
    _judge(rc, err, snap)
    # a value of another type (or an impossible one) is a malformed snapshot: exit 2 naming the field,
    # never judged as data. A missing value (null, or unavailable with a reason) is not malformed.
    retyped = _kind(old) not in ("unavailable", "NoneType") and _kind(new) not in (
        _kind(old),
        "unavailable",
        "NoneType",
    )
    negative = _kind(old) == "number" and old >= 0 and _kind(new) == "number" and new < 0
    if retyped or negative or (_kind(new) == "object" and set(new) == {"unavailable"}):
        assert rc == 2, f"{_dotted(leaf)}: {old!r} -> {new!r} gave exit {rc}"
        assert _dotted(leaf).split("[")[0].split(".")[-1] in err


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, dict) and set(v) == {"unavailable"}:
        return "unavailable" if isinstance(v["unavailable"], str) else "object"
    return type(v).__name__


def _dotted(path: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
