"""The code under test is this checkout's: `dlverify` and its subpackages resolve to files here, every module
is reachable through the installed package (the tests/conftest.py guard), and the Makefile's editable installs
are strict (setuptools maps by plain paths, not by a finder that follows whichever clone installed last)."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, install_problems


@pytest.mark.parametrize(
    ("module", "folder"),
    [("dlverify", "verify"), ("dlverify.hwspec", "hwspec"), ("dlverify.benchmarks", "benchmarks")],
)
def test_the_package_is_this_checkouts(module: str, folder: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__file__ is not None
    where = Path(imported.__file__).resolve()
    assert where == ROOT / folder / "__init__.py", f"{module} is imported from {where}, not from {ROOT}"


def test_every_module_of_the_checkout_is_installed() -> None:
    assert install_problems() == []


def test_a_module_added_since_the_install_is_named(tmp_path: Path) -> None:
    """The guard's check on a copy of links to this checkout's files plus two new files: just those named."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for folder in ("verify", "hwspec", "benchmarks"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                link = tmp_path / path.relative_to(ROOT)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)
    assert install_problems(tmp_path) == []
    (tmp_path / "verify" / "checks" / "scratch_new.py").write_text('"""new since the install"""\n')
    (tmp_path / "hwspec" / "data" / "new.yaml").write_text("{}\n")
    problems = install_problems(tmp_path)
    assert len(problems) == 2, problems
    assert problems[0].startswith("verify/checks/scratch_new.py is not in the installed dlverify.checks")
    assert problems[1].startswith("hwspec/data/new.yaml is not in the installed dlverify.hwspec.data")


def test_the_makefiles_editable_installs_are_strict() -> None:
    makefile = (ROOT / "Makefile").read_text()
    editable = re.search(r"^EDITABLE := (.*)$", makefile, re.M)
    assert editable and editable.group(1) == "--config-settings editable_mode=strict -e"
    installs = [line.strip() for line in makefile.splitlines() if re.search(r"\bpip install\b", line)]
    assert not [line for line in installs if re.search(r"\s-e\s", line)], (
        "an editable install that is not strict"
    )
    assert sum("$(EDITABLE)" in line for line in installs) == 3, installs  # venv, test-venv, release
