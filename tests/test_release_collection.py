"""The Ansible collection (galaxy.yml, meta/runtime.yml): `ansible-galaxy collection build` makes the tarball,
`ansible-galaxy collection install --offline` installs it with no network into a tmp collections path,
`ansible-doc -t role` shows each role's argument_specs, and a user's playbook outside this repo that uses the
roles by FQCN (and the collection's spec gate playbook) passes `--syntax-check`, its roles' shared OS check
(`import_role: os_support`) resolving inside the collection, never to this checkout's roles/.

Marked `release` (with the wheel's test): `pytest -m "not release"` leaves it out; this one takes ~10 s.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

import dlverify

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
ROLES = sorted(p.parent.parent.name for p in REPO.glob("roles/*/meta/argument_specs.yml"))

pytestmark = [pytest.mark.release]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[harness]')")
    return found


def test_the_collection_metadata_matches_the_package() -> None:
    assert GALAXY["version"] == dlverify.__version__, "galaxy.yml's version must be verify/__init__.py's"
    assert GALAXY["license"] == ["Apache-2.0"]
    runtime = yaml.safe_load((REPO / "meta/runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=")
    # every collection a role's task calls is declared
    used = set()
    for f in REPO.glob("roles/*/[th]a*/*.yml"):
        if "molecule" in f.parts:
            continue
        for word in f.read_text().split():
            parts = word.rstrip(":").split(".")
            module_key = len(parts) == 3 and word.endswith(":")
            if module_key and parts[0] in ("community", "ansible") and parts[1] != "builtin":
                used.add(".".join(parts[:2]))
    assert used and used <= set(GALAXY["dependencies"]), used - set(GALAXY["dependencies"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("collection")
    cfg = tmp / "ansible.cfg"
    cfg.write_text("[defaults]\n")  # not the repo's ansible.cfg (roles_path = ./roles)
    (tmp / "no-roles").mkdir()
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        "ANSIBLE_ROLES_PATH": str(tmp / "no-roles"),
        "ANSIBLE_COLLECTIONS_PATH": str(tmp / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def run(*cmd: str | Path, cwd: Path = tmp) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
        )
        assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r

    run(_tool("ansible-galaxy"), "collection", "build", "--output-path", tmp / "dist", REPO, cwd=REPO)
    tarball = tmp / "dist" / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    assert tarball.is_file()
    run(_tool("ansible-galaxy"), "collection", "install", "--offline", "-p", tmp / "collections", tarball)
    return {"tmp": tmp, "tarball": tarball, "run": run}


def test_the_tarball_holds_the_roles_playbooks_and_docs_and_nothing_else(installed: dict) -> None:
    with tarfile.open(installed["tarball"]) as t:
        names = set(t.getnames())
    docs = ("README.md", "LICENSE", "CHANGELOG.md")
    for must in (*docs, "meta/runtime.yml", "playbooks/spec.yml", "MANIFEST.json"):
        assert must in names, must
    for role in ROLES:
        assert f"roles/{role}/meta/argument_specs.yml" in names and f"roles/{role}/tasks/main.yml" in names
    tops = {n.split("/")[0] for n in names}
    assert tops == {*docs, "meta", "playbooks", "roles", "MANIFEST.json", "FILES.json"}
    assert not [n for n in names if "/molecule" in n or n.endswith((".pyc", ".whl"))]


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_shows_each_roles_argument_specs(installed: dict, role: str) -> None:
    r = installed["run"](_tool("ansible-doc"), "-t", "role", f"{FQCN}.{role}")
    specs = yaml.safe_load((REPO / f"roles/{role}/meta/argument_specs.yml").read_text())["argument_specs"]
    assert re.search(rf"ROLE: \*?{re.escape(FQCN)}\.{role}\b", r.stdout), r.stdout[:300]
    for option in specs["main"].get("options", {}):
        assert option in r.stdout, f"{role}: {option} not in ansible-doc"


USER_PLAYBOOK = f"""---
- name: The dlverify spec gate, from the collection
  ansible.builtin.import_playbook: {FQCN}.spec

- name: GPU servers, the collection's roles by FQCN
  hosts: gpu_servers
  become: true
  roles:
    - role: {FQCN}.base
    - role: {FQCN}.nvidia_driver
    - role: {FQCN}.cuda
    - role: {FQCN}.cudnn
    - role: {FQCN}.containers
    - role: {FQCN}.miniconda
    - role: {FQCN}.pytorch_env
    - role: {FQCN}.jupyterlab
    - role: {FQCN}.monitoring
"""


def test_a_playbook_outside_the_repo_uses_the_roles_by_fqcn(installed: dict) -> None:
    user = installed["tmp"] / "user-project"
    user.mkdir()
    (user / "site.yml").write_text(USER_PLAYBOOK)
    (user / "hosts.yml").write_text("gpu_servers:\n  hosts:\n    gpu01:\n      ansible_host: 192.0.2.11\n")
    run = installed["run"]
    run(_tool("ansible-playbook"), "-i", "hosts.yml", "--syntax-check", "site.yml", cwd=user)
    tasks = run(_tool("ansible-playbook"), "-i", "hosts.yml", "--list-tasks", "site.yml", cwd=user).stdout
    # each role's shared OS check (an unqualified import_role: os_support) resolved inside the collection
    for role in ROLES:
        if role != "os_support":
            assert f"{FQCN}.{role} :" in tasks, role
    checks = [line.strip() for line in tasks.splitlines() if "os_support :" in line]
    assert len(checks) >= 5 and all(c.startswith(f"{FQCN}.os_support : ") for c in checks), checks
    assert str(REPO) not in tasks


GATE_PLAYBOOK = f"""---
- name: The dlverify spec gate, from the collection
  ansible.builtin.import_playbook: {FQCN}.spec
"""


@pytest.mark.parametrize("case", ["wheel given", "no wheel", "bad spec"])
def test_the_collections_spec_gate_runs_outside_the_repo(installed: dict, tmp_path: Path, case: str) -> None:
    """The gate play runs on the controller only (the host's connection is local and nothing runs on it)."""
    (tmp_path / "gate.yml").write_text(GATE_PLAYBOOK)
    hosts = "gpu_servers:\n  hosts:\n    gpu01:\n      ansible_connection: local\n"
    (tmp_path / "hosts.yml").write_text(hosts)
    spec = REPO / "hwspec.yaml"
    if case == "bad spec":
        spec = tmp_path / "bad.yaml"
        spec.write_text("software: [\n")
    sha256 = "a" * 64  # the gate checks its form only
    args = ["-i", "hosts.yml", "gate.yml", "-e", f"hwspec={spec}"]
    args += ["-e", f"miniconda_installer_sha256={sha256}"]
    if case != "no wheel":
        args += ["-e", f"dlverify_wheel={tmp_path / 'dlverify-0.0.0-py3-none-any.whl'}"]
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(installed["tmp"] / "collections"),
        "ANSIBLE_CONFIG": str(installed["tmp"] / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    r = subprocess.run(
        [_tool("ansible-playbook"), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    out = r.stdout + r.stderr
    if case == "wheel given":
        assert r.returncode == 0, out[-3000:]
        assert "Hand the spec to every host" in out
    elif case == "no wheel":
        assert r.returncode != 0 and "pass -e dlverify_wheel=PATH" in out, out[-3000:]
    else:
        assert r.returncode != 0 and "no host was touched" in out, out[-3000:]


# ansible-test builds a venv per sanity test (pep8, pylint, validate-modules, yamllint, runtime-metadata)
# and bootstraps pip in it with get-pip.py from ansible's CI file server, unreachable here; what each venv
# installs then comes from PyPI, which is reachable. GET_PIP_STAND_IN (a labelled stand-in) takes get-pip.py's
# place in ansible-test's cache (~/.ansible/test/cache/get_pip_<version>.py, HOME on a scratch folder): as the
# real script does, it installs pip (from that version's wheel, downloaded from PyPI beside it), then runs
# `pip install` with ansible-test's arguments (`--no-setuptools`/`--no-wheel` are get-pip's own flags).
GET_PIP_STAND_IN = """\
\"\"\"Stand-in for get-pip.py (tests/test_release_collection.py): pip from the wheel beside it.\"\"\"
import runpy
import sys
from pathlib import Path

wheel = next(Path(__file__).parent.glob("pip-*.whl"))
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.path.insert(0, str(wheel))
sys.argv = ["pip", "install", "--upgrade", "--force-reinstall", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""
SANITY_TESTS = ("ansible-doc", "pep8", "pylint", "validate-modules", "yamllint", "runtime-metadata")


@pytest.fixture(scope="module")
def sanity(installed: dict, tmp_path_factory: pytest.TempPathFactory):
    """Run `ansible-test sanity --local` on a copy of the installed collection; returns the runner."""
    import ansible_test  # the harness extra installs ansible-core, which ships it

    source = (Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
    found = re.search(r"\bpip='([0-9.]+)'", source)
    assert found, "ansible-test no longer names its pip version where this test reads it"
    home = tmp_path_factory.mktemp("ansible-test-home")
    cache = home / ".ansible/test/cache"
    cache.mkdir(parents=True)
    (cache / f"get_pip_{found[1].replace('.', '_')}.py").write_text(GET_PIP_STAND_IN)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache), f"pip=={found[1]}"],
        check=True,
        timeout=300,
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    py = f"{sys.version_info.major}.{sys.version_info.minor}"

    def run(root: Path, *tests: str) -> subprocess.CompletedProcess[str]:
        args = [a for test in tests for a in ("--test", test)]
        return subprocess.run(
            [_tool("ansible-test"), "sanity", "--local", "--python", py, *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


def test_ansible_test_sanity_passes_on_the_installed_collection(installed: dict, sanity) -> None:
    root = installed["tmp"] / "collections/ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    r = sanity(root, *SANITY_TESTS)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    for test in SANITY_TESTS:
        assert f'Running sanity test "{test}"' in out, test


def test_ansible_test_sanity_fails_a_collection_with_a_broken_file(
    installed: dict, sanity, tmp_path: Path
) -> None:
    """The gate can fail: a role default's duplicated key (yamllint), an invalid meta/runtime.yml."""
    root = tmp_path / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    shutil.copytree(
        installed["tmp"] / "collections/ansible_collections" / GALAXY["namespace"] / GALAXY["name"], root
    )
    defaults = root / "roles/base/defaults/main.yml"
    defaults.write_text(defaults.read_text() + "base_packages: []\nbase_packages: []\n")
    (root / "meta/runtime.yml").write_text("---\nrequires_ansible: 2.16\nno_such_key: true\n")
    r = sanity(root, "yamllint", "runtime-metadata")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-4000:]
    assert "roles/base/defaults/main.yml" in out and "meta/runtime.yml" in out, out[-4000:]
