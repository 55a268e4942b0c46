"""Per-card bench references: the packaged ``benchmarks/references/*.json`` (or given files), and the
entry for a card, mode and precision."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

REFERENCE_SCHEMA = "dlverify.bench.reference/1"


def load_references(paths: Iterable[str | Path] | None = None) -> list[dict[str, Any]]:
    """The per-card reference files: the packaged ones, or the given paths."""
    docs: list[dict[str, Any]] = []
    if paths is None:
        folder = resources.files("dlverify.benchmarks") / "references"
        items = sorted((p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)
        texts = [(p.name, p.read_text(encoding="utf-8")) for p in items]
    else:
        texts = [(str(p), Path(p).read_text(encoding="utf-8")) for p in paths]
    for name, text in texts:
        doc = json.loads(text)
        if doc.get("schema") != REFERENCE_SCHEMA:
            raise ValueError(f"{name}: not a {REFERENCE_SCHEMA} document")
        doc["_file"] = name
        docs.append(doc)
    return docs


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


def precision_class(precision: str) -> str:
    return "fp32" if precision == "fp32" else "mixed"


def find_reference(
    refs: Sequence[dict[str, Any]], card: str | None, mode: str, precision: str, image_size: int | None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if not card:
        return None
    for doc in refs:
        if _norm(card) not in {_norm(m) for m in doc.get("match", [])}:
            continue
        if image_size is not None and doc.get("image_size") not in (None, image_size):
            continue
        for e in doc.get("entries", []):
            if e.get("mode") == mode and e.get("precision") == precision_class(precision):
                return doc, e
    return None
