"""The mirror's catalogue (tools/harness/catalogue.yaml, read by mirror_catalogue.py): it makes exactly the
packages the catalogue-as-code made (a recorded fixture), and a bad entry is a message with the file, the key
and the line, never a traceback.

tests/fixtures/mirror-catalogue.json was recorded from the catalogue as Python code (main at 05aba11, before
issue 9 moved it into catalogue.yaml), with the look-alike wheels of tests/harness_mirror.py and the keyring
b"KEYRING". A deliberate change to the packages rewrites it: DLV_UPDATE_GOLDEN=1 .venv/bin/python -m pytest
tests/test_harness_mirror_catalogue.py, and the diff of the fixture is the review.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES
from harness_mirror import HARNESS, load_mirror, spec_json, write_fake_wheels

mirror = load_mirror()
GOLDEN = FIXTURES / "mirror-catalogue.json"
REPOSITORIES = ("cuda", "ubuntu-archive", "grafana", "harness", "container-toolkit")


def test_control_labels_the_package_as_a_stand_in():
    spec = mirror.DebSpec(
        "nvidia-utils-535",
        "535.54.03-0ubuntu1",
        "NVIDIA driver support binaries",
        depends=["a (= 1)", "b"],
        details="line one\n\nline three",
    )
    control = spec.control(12)
    assert "Package: nvidia-utils-535\n" in control
    assert "Depends: a (= 1), b\n" in control
    assert "Description: NVIDIA driver support binaries (STAND-IN)\n" in control
    assert " STAND-IN built by the dlverify test harness, not NVIDIA's package.\n" in control
    # an empty description line must be " ." or dpkg rejects the control file
    assert "\n .\n line three\n" in control
    assert control.endswith("\n")


def test_the_catalogue_makes_the_packages_the_code_made(tmp_path: Path) -> None:
    wheels = write_fake_wheels(tmp_path / "wheels")
    cuda = mirror.repository_specs("cuda", wheels, b"KEYRING")
    made = {"cuda": cuda + mirror.second_version_specs(cuda)}
    made |= {name: mirror.repository_specs(name) for name in REPOSITORIES[1:]}
    got = {repo: [spec_json(spec) for spec in specs] for repo, specs in made.items()}
    if os.environ.get("DLV_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1))
        pytest.skip(f"rewrote {GOLDEN}")
    want = json.loads(GOLDEN.read_text())
    assert list(got) == list(want)
    for repo in want:
        assert [(s["name"], s["version"]) for s in got[repo]] == [
            (s["name"], s["version"]) for s in want[repo]
        ]
        for mine, recorded in zip(got[repo], want[repo], strict=True):
            for key in recorded:
                assert mine[key] == recorded[key], f"{repo}: {recorded['name']} {recorded['version']}: {key}"
    assert mirror.catalogue().miniconda_installer == "Miniconda3-py310_23.5.2-0-Linux-x86_64.sh"
    assert {k: (w.dist, w.version) for k, w in mirror.catalogue().wheels.items()} == {
        "nvcc": ("nvidia-cuda-nvcc-cu12", "12.1.105"),
        "cudart": ("nvidia-cuda-runtime-cu12", "12.1.105"),
        "cudnn": ("nvidia-cudnn-cu12", "8.9.2.26"),
    }


# (what the good file says, what the broken one says instead, the key path named, what the message says)
BROKEN = {
    "a number for a string": (
        "      version: 1.1-1\n",
        "      version: 2\n",
        "repositories.cuda[0].version",
        "expected a string, got '2', which YAML reads as a number (quote it)",
    ),
    "a misspelt key": (
        "      depends: [xserver-xorg-core]\n",
        "      depend: [xserver-xorg-core]\n",
        "repositories.cuda[2].depend",
        "unknown key (allowed: name, version",
    ),
    "an unknown placeholder": (
        '      version: "{fabricmanager}"\n',
        '      version: "{fabric_manager}"\n',
        "repositories.cuda[6].version",
        "{fabric_manager} in '{fabric_manager}' is not a var",
    ),
    "a file from no wheel": (
        "{wheel: cudnn, member: lib/libcudnn.so.8}",
        "{wheel: cudnn9, member: lib/libcudnn.so.8}",
        "repositories.cuda[8].files.{libdir}/libcudnn.so.8.9.2.wheel",
        "no wheel 'cudnn9' (wheels: nvcc, cudart, cudnn)",
    ),
    "a missing stand-in file": (
        "{standin: dcgm-default-counters.csv}",
        "{standin: dcgm-counters.csv}",
        "default-counters.csv.standin",
        "no stand-in file 'dcgm-counters.csv'",
    ),
    "a mode that is not octal": (
        '{standin: nvcc, mode: "0755"}',
        '{standin: nvcc, mode: "755x"}',
        "bin/nvcc.mode",
        "expected an octal mode like \"0755\", got '755x'",
    ),
    "a duplicate key": (
        "      summary: NVIDIA compute utilities\n",
        "      summary: NVIDIA compute utilities\n      summary: again\n",
        "repositories.cuda[4].summary",
        "duplicate key",
    ),
    "a package that is a list": (
        "    - name: libnvidia-compute-535\n",
        "    - [libnvidia-compute-535]\n    - name: libnvidia-compute-535\n",
        "repositories.cuda[5]",
        "expected a mapping, got a list",
    ),
    "a value for true": (
        "          stand_in: false\n",
        "          stand_in: no-thanks\n",
        "repositories.harness[0].packages[0].stand_in",
        "expected true or false, got 'no-thanks'",
    ),
    "not YAML": (
        "  cuda_wheels: 12.1.105\n",
        "  cuda_wheels: [12.1.105\n",
        "",
        "not valid YAML",
    ),
}


def broken_catalogue(tmp_path: Path, good: str, bad: str) -> tuple[Path, int]:
    """A copy of catalogue.yaml with `good` replaced by `bad`; and the line the message must name."""
    text = (HARNESS / "catalogue.yaml").read_text()
    assert text.count(good) == 1, good
    start = text.index(good)
    path = tmp_path / "catalogue.yaml"
    path.write_text(text.replace(good, bad))
    # the line of the first line that differs
    good_lines, bad_lines = text[start:].splitlines(), path.read_text()[start:].splitlines()
    offset = next(i for i, (a, b) in enumerate(zip(good_lines, bad_lines, strict=False)) if a != b)
    return path, text[:start].count("\n") + 1 + offset


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_bad_entry_names_the_file_the_key_and_the_line(tmp_path: Path, case: str) -> None:
    good, bad, key, says = BROKEN[case]
    path, line = broken_catalogue(tmp_path, good, bad)
    with pytest.raises(mirror.CatalogueError) as caught:
        mirror.load_catalogue(path)
    message = str(caught.value)
    if case == "not YAML":  # the parser's own line: where it gave up, at or after the broken line
        assert message.startswith(f"{path}:") and says in message, message
        assert int(message.split(":")[1]) >= line, message
        return
    assert message.startswith(f"{path}:{line}: "), message
    assert key in message and says in message, message


def test_the_command_says_the_error_without_a_traceback(tmp_path: Path) -> None:
    """mirror.py with a broken catalogue: one line on stderr, exit 1 (as any failed step)."""
    harness = tmp_path / "tools" / "harness"
    shutil.copytree(HARNESS, harness, ignore=shutil.ignore_patterns("__pycache__"))
    good, bad, key, says = BROKEN["a misspelt key"]
    broken, line = broken_catalogue(tmp_path, good, bad)
    shutil.copy(broken, harness / "catalogue.yaml")
    done = subprocess.run(
        [sys.executable, str(harness / "mirror.py"), "env"],
        capture_output=True,
        text=True,
        env={**os.environ, "DLV_HARNESS_CACHE": str(tmp_path / "cache")},
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"mirror: {harness / 'catalogue.yaml'}:{line}: {key}: {says}"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
