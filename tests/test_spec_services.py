"""Issue 13's spec keys and lint rules: software.containers (docker, its source, the Container Toolkit)
and software.jupyter (who, where, TLS, the kernel env)."""

from __future__ import annotations

import textwrap

import pytest

from dlverify.hwspec import SpecError, load_spec_text
from dlverify.hwspec.lint import lint
from dlverify.hwspec.model import JupyterSpec
from dlverify.results import CheckResult, Status
from dlverify.spec_init import spec_from_snapshot


def _load(text: str):
    return load_spec_text(textwrap.dedent(text).lstrip("\n"), "s.yaml")


def _lint(text: str) -> dict[str, CheckResult]:
    return {r.id: r for r in lint(_load(text))}


def _err(text: str) -> str:
    with pytest.raises(SpecError) as exc:
        _load(text)
    return str(exc.value)


# --- loader ------------------------------------------------------------------------------------------


def test_containers_notes_keys_and_source() -> None:
    sw = _load("""
        software:
          containers: {docker: "20.10.24", nvidia_container_toolkit: "1.13.1", docker_source: docker-ce}
    """).software
    # docker_source is not a tool: the version checks iterate containers and must not see it
    assert sw.containers == {"docker": "20.10.24", "nvidia_container_toolkit": "1.13.1"}
    assert sw.docker_source == "docker-ce"
    assert _load('software: {containers: {docker: "24.0.7"}}').software.docker_source is None


def test_jupyter_defaults_and_kernel_env_follows_python_env() -> None:
    sw = _load("""
        software:
          python_env: {name: torch, installer: conda}
          jupyter: {users: [alice, bob]}
    """).software
    assert sw.jupyter == JupyterSpec(
        enabled=True, users=("alice", "bob"), listen="127.0.0.1", port=8888, kernel_env="torch"
    )
    assert sw.jupyter.loopback
    assert _load("software: {jupyter: {}}").software.jupyter == JupyterSpec()
    assert _load("software: {}").software.jupyter is None


def test_jupyter_normalises_address_and_none() -> None:
    jup = _load("""
        software:
          jupyter: {listen: "::1", port: 9999, tls_cert: none, tls_key: none, kernel_env: dl}
    """).software.jupyter
    assert jup is not None
    assert (jup.listen, jup.port, jup.tls_cert, jup.tls_key, jup.kernel_env) == (
        "::1",
        9999,
        None,
        None,
        "dl",
    )
    assert jup.loopback
    assert not _load('software: {jupyter: {listen: "0.0.0.0"}}').software.jupyter.loopback  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('software:\n  jupyter: {port: "x"}\n', "software.jupyter.port: expected an integer"),
        ("software:\n  jupyter: {port: 70000}\n", "software.jupyter.port"),
        ("software:\n  jupyter: {enabled: maybe}\n", "software.jupyter.enabled"),
        ("software:\n  jupyter: {users: alice}\n", "software.jupyter.users"),
        ("software:\n  jupyter: {users: [Alice!]}\n", "software.jupyter.users[0]"),
        ("software:\n  jupyter: {listen: everywhere}\n", "software.jupyter.listen: expected an IP"),
        (
            "software:\n  jupyter: {tls_cert: cert.pem}\n",
            "software.jupyter.tls_cert: expected an absolute path",
        ),
        ("software:\n  jupyter: {tls_cert: /etc/c.pem}\n", "give both tls_cert and tls_key"),
        ("software:\n  jupyter: {users: [root]}\n", "never runs as root"),
        ("software:\n  jupyter: {password: x}\n", "software.jupyter.password: unknown key"),
        (
            "software:\n  containers: {docker: 20.10}\n",
            "software.containers.docker: expected a version string",
        ),
        ("software:\n  containers: {docker_source: snap}\n", "software.containers.docker_source"),
    ],
)
def test_bad_jupyter_and_containers_name_file_line_key(text: str, needle: str) -> None:
    err = _err(text)
    assert needle in err and err.startswith("s.yaml:2:"), err


def test_spec_init_leaves_jupyter_out() -> None:
    snap = {"software": {"tools": {"docker": "24.0.7", "nvidia_container_toolkit": "1.13.1"}}}
    spec = spec_from_snapshot(snap)
    assert spec["software"] == {"containers": {"docker": "24.0.7", "nvidia_container_toolkit": "1.13.1"}}
    assert _load_dict(spec).software.jupyter is None


def _load_dict(d: dict) -> object:
    import yaml

    return load_spec_text(yaml.safe_dump(d), "init.yaml")


# --- lint: JupyterLab's exposure ---------------------------------------------------------------------


def test_jupyter_beyond_loopback_without_tls_is_an_error() -> None:
    r = _lint("""
        software:
          jupyter: {users: [alice], listen: "0.0.0.0"}
    """)["spec.jupyter.exposure"]
    assert r.status is Status.FAIL  # an error, not a warning
    assert "without TLS" in r.detail and "ssh -L 8888:127.0.0.1:8888" in r.detail
    assert "always requires a password" in r.detail
    assert r.detail.endswith("(software.jupyter.listen at s.yaml:2)")


def test_the_tunnel_the_lint_offers_uses_the_specs_port() -> None:
    r = _lint("""
        software:
          jupyter: {users: [alice], port: 18873}
    """)["spec.jupyter.exposure"]
    assert r.status is Status.PASS
    assert "ssh -L 18873:127.0.0.1:18873 HOST" in r.detail and "8888" not in r.detail


def test_jupyter_loopback_or_tls_passes_and_says_password() -> None:
    ok = _lint("software:\n  jupyter: {users: [alice]}\n")["spec.jupyter.exposure"]
    assert ok.status is Status.PASS and "always requires a password" in ok.detail
    tls = _lint("""
        software:
          jupyter: {listen: "10.0.0.5", tls_cert: /etc/jupyter/c.pem, tls_key: /etc/jupyter/k.pem}
    """)["spec.jupyter.exposure"]
    assert tls.status is Status.PASS and "/etc/jupyter/c.pem" in tls.detail
    assert "spec.jupyter.exposure" not in _lint('software:\n  jupyter: {enabled: false, listen: "0.0.0.0"}\n')


def test_jupyter_kernel_env_other_than_python_env_warns() -> None:
    r = _lint("""
        software:
          python_env: {name: dl, installer: conda}
          jupyter: {kernel_env: base}
    """)["spec.jupyter.kernel"]
    assert r.status is Status.WARN and "'base'" in r.detail and "'dl'" in r.detail
    assert "spec.jupyter.kernel" not in _lint("software:\n  python_env: {installer: conda}\n  jupyter: {}\n")


# --- lint: the Container Toolkit's driver ------------------------------------------------------------


def test_toolkit_needs_its_minimum_driver() -> None:
    r = _lint("""
        software:
          nvidia_driver: "410.48"
          containers: {nvidia_container_toolkit: "1.13.1"}
    """)["spec.containers.toolkit_driver"]
    assert r.status is Status.FAIL and "418.81.07" in r.detail
    assert "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/" in r.detail
    ok = _lint("""
        software:
          nvidia_driver: "535"
          containers: {nvidia_container_toolkit: "1.13.1"}
    """)["spec.containers.toolkit_driver"]
    assert ok.status is Status.PASS
    branch = _lint("""
        software:
          nvidia_driver: "418"
          containers: {nvidia_container_toolkit: "1.13.1"}
    """)["spec.containers.toolkit_driver"]
    assert branch.status is Status.PASS  # the branch's newest release is new enough
    unknown = _lint("""
        software:
          nvidia_driver: "535"
          containers: {nvidia_container_toolkit: "2.0.0"}
    """)["spec.containers.toolkit_driver"]
    assert unknown.status is Status.WARN and "can't judge" in unknown.detail


# --- lint: a docker version its source ships ---------------------------------------------------------

JAMMY = 'software:\n  os: "Ubuntu 22.04"\n  containers: {%s}\n'


def test_docker_ce_pin_that_docker_io_does_not_ship_warns() -> None:
    r = _lint(JAMMY % 'docker: "20.10.24", docker_source: docker.io')["spec.containers.docker"]
    assert r.status is Status.WARN
    assert "docker.io (software.containers.docker_source) does not ship it" in r.detail
    assert "launchpad.net" in r.expected and "data caveat" in r.detail
    ok = _lint(JAMMY % 'docker: "20.10.24", docker_source: docker-ce')["spec.containers.docker"]
    assert ok.status is Status.PASS and "docker-ce" in ok.detail


def test_docker_io_version_passes_and_older_than_jammy_docker_ce_warns() -> None:
    assert _lint(JAMMY % 'docker: "24.0.7", docker_source: docker.io')["spec.containers.docker"].status is (
        Status.PASS
    )
    old = _lint(JAMMY % 'docker: "20.10.11", docker_source: docker-ce')["spec.containers.docker"]
    assert old.status is Status.WARN and "20.10.13 and later" in old.expected


def test_docker_without_source_says_which_ships_it() -> None:
    r = _lint(JAMMY % 'docker: "20.10.24"')["spec.containers.docker"]
    assert r.status is Status.PASS and "set docker_source: docker-ce" in r.detail
    never = _lint(JAMMY % 'docker: "19.03.15"')["spec.containers.docker"]
    assert never.status is Status.WARN and "neither docker.io nor docker-ce" in never.detail


def test_docker_on_an_os_without_data_cannot_be_judged() -> None:
    r = _lint('software:\n  os: "Debian 12"\n  containers: {docker: "24.0.7"}\n')["spec.containers.docker"]
    assert r.status is Status.WARN and "can't judge" in r.detail
    assert (
        _lint('software:\n  containers: {docker: "24.0.7"}\n')["spec.containers.docker"].status is Status.SKIP
    )
