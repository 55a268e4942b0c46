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


# Roles whose installed-state assertions live once, in molecule/site/verify-<role>.yml, run by molecule/site,
# molecule/site-jammy and the role's own scenario where it has one, which only adds version moves
# (README "Tests": CI budget). base has none: site.yml converges it, site-jammy checks it in --check mode;
# containers neither: molecule/site's spec pins software.containers (Debian's docker.io has it, jammy's not).
FOLDED_INTO_SITE = {"base", "containers", "cuda", "cudnn", "miniconda", "pytorch_env"}


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_role_has_a_molecule_scenario(role: Path):
    if role.name in FOLDED_INTO_SITE:
        verify = REPO / "molecule" / "site" / f"verify-{role.name}.yml"
        assert verify.is_file(), "a role folded into site keeps its assertions"
        assert "ansible.builtin.assert" in verify.read_text()
        imports = [
            p.get("ansible.builtin.import_playbook")
            for p in yaml.safe_load((REPO / "molecule" / "site" / "verify.yml").read_text())
        ]
        assert verify.name in imports, "site's verify.yml must run the folded role's assertions"
        stages = (REPO / "playbooks").glob("*.yml")
        assert any(f"role: {role.name}\n" in p.read_text() for p in stages), "site.yml must converge it"
        own = role / "molecule" / "default" / "verify.yml"
        if own.exists():  # a scenario of its own (version moves) runs the same assertions, not a copy,
            # first; plays of its own may follow (cuda: what its repository tasks make of other entries)
            plays = yaml.safe_load(own.read_text())
            key = "ansible.builtin.import_playbook"
            imported = [p[key] for p in plays if key in p]
            assert imported == [f"../../../../molecule/site/{verify.name}"], imported
            assert key in plays[0], "the shared assertions run first"
        return
    scenario = role / "molecule" / "default"
    assert (scenario / "molecule.yml").is_file()
    assert (scenario / "converge.yml").is_file()
    assert (scenario / "verify.yml").is_file(), "a scenario without assertions proves nothing"


def test_site_converge_gives_base_the_key_verify_base_logs_in_with():
    """base's own scenario is folded into site: its test key must reach the role before site.yml runs,
    from a play that changes nothing on the host (site-jammy runs converge.yml with --check first)."""
    plays = yaml.safe_load((REPO / "molecule" / "site" / "converge.yml").read_text())
    site = next(
        i for i, p in enumerate(plays) if "site.yml" in p.get("ansible.builtin.import_playbook", "")
    )  # the checkout's ../../site.yml, or site-jammy's user playbook (DLV_SITE_PLAYBOOK)
    keyed = [
        i
        for i, p in enumerate(plays)
        if any(
            "base_admin_authorized_keys" in t.get("ansible.builtin.set_fact", {}) for t in p.get("tasks", [])
        )
    ]
    assert keyed and keyed[0] < site, "converge.yml must give base_admin_authorized_keys before site.yml"
    verify = (REPO / "molecule" / "site" / "verify-base.yml").read_text()
    assert "/id_ed25519" in verify and "/id_ed25519" in str(plays[keyed[0]]), (
        "verify logs in with the same key"
    )
    assert not (REPO / "roles" / "base" / "molecule").exists(), "one place for base's assertions"


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


# --- nvidia_driver against the real packages (issue 11) -------------------------------------------------


def _role_tasks(role: str, name: str) -> list[dict]:
    return yaml.safe_load((REPO / "roles" / role / "tasks" / name).read_text())


def _render(template: str, facts: dict[str, object], role: str = "nvidia_driver") -> str:
    """Render a role expression with plain Jinja: the role's defaults and vars, plus the given facts."""
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["bool"] = lambda v: str(v).lower() in ("1", "true", "yes", "on")
    env.filters["regex_replace"] = lambda v, pattern, repl="": __import__("re").sub(pattern, repl, str(v))
    raw: dict[str, object] = {}
    for part in ("defaults", "vars"):
        raw.update(yaml.safe_load((REPO / "roles" / role / part / "main.yml").read_text()) or {})
    raw.update(facts)

    def value(v: object, depth: int = 0) -> object:
        if isinstance(v, str) and "{{" in v and depth < 8:
            return value(env.from_string(v).render(**context()), depth + 1)
        return v

    def context() -> dict[str, object]:
        return {
            k: (_Lazy(lambda v=v: value(v)) if isinstance(v, str) and "{{" in v else v)
            for k, v in raw.items()
        }

    return str(value(template))


class _Lazy:
    """A role variable rendered only when a template reads it (the way Ansible templates lazily)."""

    def __init__(self, get):
        self._get = get

    def __str__(self) -> str:
        return str(self._get())

    def __len__(self) -> int:
        return len(str(self))

    def __getattr__(self, name):
        return getattr(str(self), name)

    def __eq__(self, other) -> bool:
        return str(self) == other

    __hash__ = None


def test_fabric_manager_version_is_nvidias_x_dash_1():
    """NVIDIA publishes nvidia-fabricmanager-535_535.183.01-1 next to nvidia-driver-535_535.183.01-0ubuntu1:
    the role must ask apt for a version that matches -1, not the driver's Debian revision."""
    import fnmatch

    task = next(t for t in _role_tasks("nvidia_driver", "fabricmanager.yml") if "ansible.builtin.apt" in t)
    wanted = _render(
        task["ansible.builtin.apt"]["name"],
        {
            "_nvidia_driver_deb_version": "535.183.01-0ubuntu1",
            "_nvidia_driver_userspace_version": "535.183.01",
        },
    )
    name, _, version = wanted.partition("=")
    assert name == "nvidia-fabricmanager-535"
    assert fnmatch.fnmatch("535.183.01-1", version), f"asks apt for {wanted}"
    assert not fnmatch.fnmatch("535.309.01-0ubuntu0.22.04.2", version)


def test_nvidia_driver_turns_persistence_mode_on():
    """The packaged nvidia-persistenced.service runs --no-persistence-mode; the role must override ExecStart
    (reset, then the same command with --persistence-mode) in a drop-in of that unit."""
    tasks = _role_tasks("nvidia_driver", "services.yml")
    copies = [t["ansible.builtin.copy"] for t in tasks if "ansible.builtin.copy" in t]
    dropins = [
        c for c in copies if "nvidia-persistenced.service.d/" in _render(c["dest"], {}) and "content" in c
    ]
    assert len(dropins) == 1, "no drop-in for nvidia-persistenced.service"
    lines = [line.strip() for line in dropins[0]["content"].splitlines()]
    starts = [line.partition("=")[2] for line in lines if line.startswith("ExecStart=")]
    assert starts[0] == "", "ExecStart= must first be reset, or systemd refuses a second ExecStart"
    argv = starts[1].split()
    assert argv[0] == "/usr/bin/nvidia-persistenced"
    assert "--persistence-mode" in argv and "--no-persistence-mode" not in argv
    assert argv[argv.index("--user") + 1] == "nvidia-persistenced"
    assert "[Service]" in lines


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_role_has_a_readme_naming_each_variable(role: Path):
    """geerlingguy-style: requirements, variables, dependencies, an example, what it leaves behind."""
    readme = role / "README.md"
    assert readme.is_file(), f"{role.name}: no README.md"
    text = readme.read_text()
    for heading in ("## Requirements", "## Role variables", "## Dependencies", "## Example playbook"):
        assert heading in text, f"{role.name}/README.md lacks {heading}"
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = {name for entry in specs.values() for name in entry.get("options", {})}
    assert sorted(n for n in options if f"`{n}`" not in text) == [], "variables missing from the README"


def test_driver_hold_covers_what_the_driver_pulls_in():
    """nvidia-driver-535 pulls in xserver-xorg-video-nvidia-535 and nvidia-firmware-535-<version>: the hold,
    the apt pin and the unattended-upgrades blacklist (one regex) must name them, and no other branch."""
    import re

    regex = _render("{{ _nvidia_driver_branch_regex | trim }}", {}).strip()
    held = [
        "nvidia-driver-535",
        "nvidia-driver-535-open",
        "nvidia-compute-utils-535",
        "libnvidia-compute-535",
        "libnvidia-gl-535",
        "nvidia-kernel-common-535",
        "xserver-xorg-video-nvidia-535",
        "nvidia-firmware-535-535.54.03",
        "nvidia-fabricmanager-535",
    ]
    free = ["nvidia-driver-580", "nvidia-firmware-580-580.95.05", "libnvidia-compute-5350", "nvidia-settings"]
    assert [p for p in held if not re.search(regex, p)] == []
    assert [p for p in free if re.search(regex, p)] == []


JAMMY_NVIDIA_NAMES = REPO / "tests" / "fixtures" / "jammy-nvidia-package-names.txt"


@pytest.mark.parametrize("branch", ["535", "470", "550", "580"])
def test_the_pin_globs_name_exactly_what_the_branch_regex_names(branch: str):
    """The apt pin uses globs (a /regex/ pin made every apt cache open ~2 s slower): over every nvidia
    package name Ubuntu 22.04 has, the globs pick the same packages as the regex of the hold and blacklist."""
    import re
    from fnmatch import fnmatchcase

    facts = {"nvidia_driver_branch": branch}
    regex = re.compile(_render("{{ _nvidia_driver_branch_regex | trim }}", facts).strip())
    globs = _render("{{ _nvidia_driver_branch_globs | trim }}", facts).split()
    assert globs and all("/" not in g for g in globs)
    names = [n for n in JAMMY_NVIDIA_NAMES.read_text().split("\n") if n and not n.startswith("#")]
    by_regex = {n for n in names if regex.search(n)}
    by_globs = {n for n in names if any(fnmatchcase(n, g) for g in globs)}
    assert len(by_regex) > 10, f"no {branch} packages in the fixture"
    assert sorted(by_regex ^ by_globs) == []


def test_the_pin_file_lists_the_globs_and_no_regex():
    """The rendered preferences file: one Package line of globs (apt's list form), the version pin, 1001."""
    jinja2 = pytest.importorskip("jinja2")
    text = (REPO / "roles" / "nvidia_driver" / "templates" / "nvidia-driver.pref.j2").read_text()
    facts = {
        "nvidia_driver_branch": "535",
        "nvidia_driver_version": "535.54.03",
        "_nvidia_driver_deb_pin": "535.54.03-0ubuntu1",
    }
    context = {
        name: _render("{{ " + name + " | trim }}", facts)
        for name in ("nvidia_driver_branch", "_nvidia_driver_pin_glob", "_nvidia_driver_branch_globs")
    }
    rendered = jinja2.Template(text).render(ansible_managed="managed", **context)
    fields = dict(line.split(": ", 1) for line in rendered.splitlines() if not line.startswith("#"))
    first = ["nvidia*-535", "nvidia*-535-535.*", "nvidia*-535-open", "nvidia*-535-open-535.*"]
    assert fields["Package"].split()[:4] == first
    assert "/" not in fields["Package"]
    assert fields["Pin"] == "version 535.54.03-*" and fields["Pin-Priority"] == "1001"


FAKE_APT_CACHE = r"""#!/bin/sh
# madison and show as apt-cache answers on a jammy host with NVIDIA's repository and jammy-updates
CUDA=http://127.0.0.1:9/cuda/repos/ubuntu2204/x86_64
UBUNTU=http://archive.ubuntu.com/ubuntu
case "$1" in
  madison)
    echo "nvidia-driver-535 | 535.309.01-0ubuntu0.22.04.2 | $UBUNTU jammy-updates/restricted amd64 Packages"
    echo "nvidia-driver-535 | 535.183.01-0ubuntu1 | $CUDA  Packages"
    echo "nvidia-driver-535 | 535.54.03-0ubuntu1 | $CUDA  Packages"
    echo "nvidia-driver-535 | 535.54.03-0ubuntu0.22.04.1 | $UBUNTU jammy-security/restricted amd64 Packages"
    ;;
  show)
    case "$2" in
      *=535.309.*) echo "Description: Transitional package for nvidia-driver-580" ;;
      *) echo "Description: NVIDIA driver metapackage" ;;
    esac
    ;;
esac
"""


@pytest.mark.parametrize(
    ("source", "version", "chosen"),
    [
        ("cuda_repo", "", "535.183.01-0ubuntu1"),  # branch only: NVIDIA's newest, not Ubuntu's transitional
        ("cuda_repo", "535.54.03", "535.54.03-0ubuntu1"),  # exact: NVIDIA's build, not Ubuntu's
        ("distro", "", "535.54.03-0ubuntu0.22.04.1"),  # distro: the newest real one, transitional refused
        ("distro", "535.183.01", ""),  # nothing real: the role stops and says why
    ],
)
def test_driver_version_comes_from_the_source_and_is_never_transitional(tmp_path, source, version, chosen):
    """Ubuntu's jammy-updates ships every *-535 as a transitional package (535.309.01) depending on *-580:
    apt's choice for "535.*" would install the 580 driver. The role picks the version itself (issue 11)."""
    import subprocess

    task = next(
        t
        for t in _role_tasks("nvidia_driver", "install.yml")
        if "ansible.builtin.shell" in t and "madison" in t["ansible.builtin.shell"]
    )
    script = _render(
        task["ansible.builtin.shell"].replace(" | quote", ""),
        {
            "nvidia_driver_source": source,
            "nvidia_driver_version": version,
            "cuda_repo_source_url": "http://127.0.0.1:9/cuda/repos/ubuntu2204/x86_64/",
            "_nvidia_driver_packages": ["nvidia-driver-535"],
        },
    )
    fake = tmp_path / "bin" / "apt-cache"
    fake.parent.mkdir()
    fake.write_text(FAKE_APT_CACHE)
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": f"{fake.parent}:/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [*done.stdout.splitlines(), ""][0] == chosen, done.stderr
    if not version:  # Ubuntu's transitional 535.309.01 is turned away, and said so
        assert "535.309.01" in done.stderr


USERS_OF_OS_SUPPORT = [r for r in ROLES if r.name != "os_support"]


@pytest.mark.parametrize("role", USERS_OF_OS_SUPPORT, ids=[r.name for r in USERS_OF_OS_SUPPORT])
def test_every_role_uses_the_one_os_support_check(role: Path):
    """One OS check (roles/os_support), not a copy per role (issue 9)."""
    tasks = "\n".join(p.read_text() for p in (role / "tasks").glob("*.yml"))
    assert "name: os_support" in tasks
    own_vars = role / "vars" / "main.yml"
    assert "supported_platforms" not in tasks + (own_vars.read_text() if own_vars.is_file() else "")


def test_cuda_refuses_every_package_that_pulls_in_a_driver():
    """cuda, cuda-12-1, cuda-runtime-X-Y (any version) and cuda-drivers[-NNN] bring a driver behind the
    nvidia_driver role's back (issue 11: cuda-12-1 and other versions' cuda-runtime slipped through)."""
    import re

    cuda_vars = yaml.safe_load((REPO / "roles" / "cuda" / "vars" / "main.yml").read_text())
    regex = cuda_vars["_cuda_forbidden_regex"].strip()
    # the role matches the bare name: what _cuda_package_names strips (=version, :arch)
    assert "'regex_replace', '[:=<>].*$', ''" in cuda_vars["_cuda_package_names"]

    def bare(p: str) -> str:
        return re.sub(r"[:=<>].*$", "", p)

    refused = ["cuda", "cuda-12-1", "cuda-11-8", "cuda-runtime-12-1", "cuda-runtime-12-4", "cuda-drivers"]
    refused += ["cuda-drivers-535", "cuda-drivers-fabricmanager-535"]
    # with a version or an architecture (issue 11: "cuda-12-1=12.1.1-1" slipped through), and the driver's own
    # packages, which the install (allow_change_held_packages) would move off the nvidia_driver role's hold
    refused += ["cuda-12-1=12.1.1-1", "cuda-runtime-12-2:amd64", "nvidia-utils-535=535.104.05-0ubuntu1"]
    refused += ["nvidia-driver-535", "libnvidia-compute-535", "xserver-xorg-video-nvidia-535"]
    allowed = ["cuda-toolkit-12-1", "cuda-nvcc-12-1", "cuda-libraries-12-1", "cuda-compat-12-1"]
    allowed += ["cuda-keyring", "cuda-toolkit-12-1=12.1.1-1", "libcublas-12-1"]
    assert [p for p in refused if not re.match(regex, bare(p))] == []
    assert [p for p in allowed if re.match(regex, bare(p))] == []


def test_a_module_that_does_not_load_after_the_reboot_fails_the_host():
    """Issue 11: a GPU host without its module, though the role may reboot it, got only a debug line."""
    tasks = _role_tasks("nvidia_driver", "module.yml")
    fails = [t for t in tasks if "ansible.builtin.fail" in t]
    assert fails, "no task fails when the module is not loaded"
    when = fails[0]["when"]
    assert "_nvidia_driver_loaded.rc != 0" in when
    assert "_nvidia_driver_gpus | length > 0" in when
    assert any("in_container" in w for w in when) and any("_local" in w for w in when)


def _conditions(node, where=""):
    """Every `that:` / `when:` / `*_when:` / `until:` entry of a parsed playbook or task file."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("that", "when", "failed_when", "changed_when", "until"):
                for item in value if isinstance(value, list) else [value]:
                    yield f"{where}.{key}", item
            yield from _conditions(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _conditions(value, f"{where}[{i}]")


def test_every_condition_is_a_string_not_a_mapping():
    """A plain YAML scalar holding ': ' (`search('^Signed-By: /etc')`) parses as a mapping, and Ansible fails
    the task at run time with "Conditional expressions must be strings" (it did, in the monitoring verify,
    in CI). Caught here, before a test host runs."""
    files = [
        *REPO.glob("roles/**/*.yml"),
        *REPO.glob("molecule/**/*.yml"),
        *REPO.glob("playbooks/**/*.yml"),
        REPO / "site.yml",
    ]
    bad = []
    for f in files:
        doc = yaml.safe_load(f.read_text())
        bad += [
            f"{f.relative_to(REPO)}{where}: {item!r}"
            for where, item in _conditions(doc)
            if not isinstance(item, (str, bool))
        ]
    assert len(files) > 100
    assert bad == [], bad


@pytest.mark.parametrize(
    ("headless", "open_modules", "first"),
    [
        (True, False, "nvidia-headless-535"),
        (True, True, "nvidia-headless-535-open"),
        (False, False, "nvidia-driver-535"),
    ],
)
def test_driver_metapackage_is_headless_unless_asked(headless: bool, open_modules: bool, first: str):
    """nvidia-driver-535 pulls the X server (xserver-xorg-video-nvidia-535 -> xserver-xorg-core) onto a
    server: the default is the headless metapackage; the desktop one only when nvidia_driver_headless
    is false.
    The first package is the one whose versions the role looks up, so it must be the metapackage."""
    facts = {"nvidia_driver_headless": headless, "nvidia_driver_open_kernel_modules": open_modules}
    packages = [_render(f"{{{{ _nvidia_driver_cuda_repo_packages[{i}] }}}}", facts).strip() for i in range(4)]
    assert packages[0] == first
    assert "nvidia-utils-535" in packages  # nvidia-smi: the headless metapackage does not carry it
    assert headless == all("nvidia-driver-" not in p for p in packages)
