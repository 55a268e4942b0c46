"""Type-check the installed package with mypy, as `make lint` does.

The checkout maps folders to import names (pyproject's ``package-dir``: ``verify/`` is ``dlverify``,
``hwspec/`` is ``dlverify.hwspec``, ``benchmarks/`` is ``dlverify.benchmarks``), which mypy cannot follow from
the tree itself. This builds that layout from symlinks in a temporary folder and runs mypy on it with the
``[tool.mypy]`` settings of pyproject.toml. Exit status: mypy's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Ubuntu 22.04): mypy depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def link_tree(dest: Path) -> None:
    """dest/dlverify/... as the installed package: every module a symlink to its file in the checkout."""
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for name, folder in dirs.items():
        target = dest.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for src in (ROOT / folder).rglob("*.py"):
            rel = src.relative_to(ROOT / folder)
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, out)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dlverify-mypy-") as tmp:
        link_tree(Path(tmp))
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "dlverify"]
        return subprocess.call(cmd, cwd=tmp)


if __name__ == "__main__":
    raise SystemExit(main())
