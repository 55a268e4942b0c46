"""House rules every role must keep, checked statically (no host needed).

Each variable a role defines in defaults/main.yml is documented in meta/argument_specs.yml (Ansible
validates inventories against those specs at run time), with the same default where the spec states
one, and carries the role's name as prefix. Every role has a Molecule scenario the runner will find.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_default_is_documented_with_its_value(role: Path):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"
    ]
    assert sorted(set(defaults) - set(options)) == [], "undocumented in meta/argument_specs.yml"
    for name, value in defaults.items():
        # a spec may leave out a default (templated or empty ones); one it states must be the real one
        if "default" in options[name]:
            assert options[name]["default"] == value, (
                f"{name}: argument_specs default differs from defaults/main.yml"
            )
    prefix = f"{role.name}_"
    assert [n for n in (*defaults, *options) if not n.startswith(prefix)] == []


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_role_has_a_molecule_scenario(role: Path):
    scenario = role / "molecule" / "default"
    assert (scenario / "molecule.yml").is_file()
    assert (scenario / "converge.yml").is_file()
    assert (scenario / "verify.yml").is_file(), "a scenario without assertions proves nothing"


def test_pytorch_env_companions_follow_the_compatibility_data():
    """The role pairs torch with torchvision/torchaudio when the spec pins neither; that table must say what
    hwspec/data/pytorch.yaml (the data `dlverify spec lint` judges with) says, for every release from 2.1 on
    (the first with a CUDA 12 build). Update the role's vars/main.yml from the data when a release ships."""
    data = yaml.safe_load((REPO / "hwspec" / "data" / "pytorch.yaml").read_text())
    want = {
        patch: pair
        for release in data["releases"].values()
        for patch, pair in release["patches"].items()
        if tuple(int(x) for x in patch.split(".")) >= (2, 1, 0)
    }
    have = yaml.safe_load((REPO / "roles" / "pytorch_env" / "vars" / "main.yml").read_text())[
        "_pytorch_env_companions"
    ]
    assert have == want, {
        "missing in the role": sorted(set(want) - set(have)),
        "not in the data": sorted(set(have) - set(want)),
        "differ": sorted(k for k in set(want) & set(have) if want[k] != have[k]),
    }
