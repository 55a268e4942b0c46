"""Issue 13's service checks: dockerd with the nvidia runtime, and each JupyterLab unit judged as the network
sees it (bound where the spec says, refusing a request without credentials). Probes run against fake /proc
tables and real local HTTP servers; the judges against recorded snapshot sections, broken cases included."""

from __future__ import annotations

import http.server
import json
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlverify.checks import run_checks
from dlverify.hwspec import load_spec_text
from dlverify.probes import services
from dlverify.results import Status
from dlverify.snapshot import SnapshotError, validate

SPEC = """
software:
  containers: {docker: "20.10.24", nvidia_container_toolkit: "1.13.1", docker_source: docker.io}
  jupyter: {users: [alice], listen: 127.0.0.1, port: 8888}
"""

# /proc/net/tcp as the kernel writes it: 127.0.0.1:8888 and 0.0.0.0:8889 listening, one established socket
PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:22B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 00000000:22B9 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 100 0 0 10 0
   2: 0100007F:22B8 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
"""
# [::]:8889 and [::1]:8890
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:22B9 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:22BA 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def _spec(text: str = SPEC):
    return load_spec_text(textwrap.dedent(text).lstrip("\n"), "s.yaml")


def _unit(listen: list[str], status: int | dict, active: str = "active") -> dict:
    return {"active": active, "port": 8888, "listen": listen, "anon_status": status}


def _snap(unit: dict, docker: dict | None = None, version: object = "4.6.6") -> dict:
    docker = docker or {"active": "active", "runtimes": {"nvidia": "nvidia-container-runtime"}, "cdi": []}
    return {
        "software": {
            "tools": {"docker": "20.10.24", "nvidia_container_toolkit": "1.13.1"},
            "services": {"docker": docker, "jupyter": {"version": version, "units": {"alice": unit}}},
        }
    }


def _results(snap: dict, spec_text: str = SPEC) -> dict:
    return {r.id: r for r in run_checks(_spec(spec_text), snap, only=["software"])}


# --- judges ---------------------------------------------------------------------------------------------


def test_a_loopback_server_that_refuses_anonymous_requests_passes() -> None:
    res = _results(_snap(_unit(["127.0.0.1"], 403)))
    for cid in ("unit", "listen", "auth"):
        assert res[f"software.jupyter[alice].{cid}"].status is Status.PASS, res[
            f"software.jupyter[alice].{cid}"
        ]
    assert res["software.jupyter.version"].observed == "4.6.6"
    assert res["software.containers.runtime"].status is Status.PASS
    assert res["software.containers.dockerd"].status is Status.PASS


def test_the_notes_server_on_all_addresses_without_auth_fails_twice() -> None:
    """0.0.0.0 with /api/status answering 200 to anyone: the notes' setup, the case this exists for."""
    res = _results(_snap(_unit(["0.0.0.0"], 200)))
    listen, auth = res["software.jupyter[alice].listen"], res["software.jupyter[alice].auth"]
    assert listen.status is Status.FAIL and "0.0.0.0" in listen.detail
    assert auth.status is Status.FAIL and "without credentials" in auth.detail


def test_a_login_redirect_is_a_refusal_and_a_dead_unit_fails() -> None:
    res = _results(_snap(_unit(["127.0.0.1"], 302)))
    assert res["software.jupyter[alice].auth"].status is Status.PASS
    res = _results(_snap(_unit([], {"unavailable": "connection refused"}, active="failed")))
    assert res["software.jupyter[alice].unit"].status is Status.FAIL
    assert res["software.jupyter[alice].listen"].status is Status.FAIL
    assert "connection refused" in res["software.jupyter[alice].auth"].detail


def test_a_spec_that_allows_all_addresses_with_auth_passes_the_address() -> None:
    spec = SPEC.replace("listen: 127.0.0.1", "listen: 0.0.0.0, tls_cert: /c.pem, tls_key: /k.pem")
    res = _results(_snap(_unit(["0.0.0.0"], 403)), spec)
    assert res["software.jupyter[alice].listen"].status is Status.PASS


def test_docker_without_the_nvidia_runtime_fails_and_says_how_to_fix_it() -> None:
    docker = {"active": "inactive", "runtimes": {"runc": "runc"}, "cdi": []}
    res = _results(_snap(_unit(["127.0.0.1"], 403), docker))
    assert res["software.containers.dockerd"].status is Status.FAIL
    assert res["software.containers.runtime"].status is Status.FAIL
    assert "nvidia-ctk runtime configure" in res["software.containers.runtime"].detail
    docker = {"active": "active", "runtimes": {}, "cdi": ["/etc/cdi/nvidia.yaml"]}
    assert (
        _results(_snap(_unit(["127.0.0.1"], 403), docker))["software.containers.runtime"].status
        is Status.PASS
    )


def test_jupyterlab_not_installed_fails_and_no_services_section_is_a_skip() -> None:
    res = _results(_snap(_unit(["127.0.0.1"], 403), version={"unavailable": "not installed"}))
    assert res["software.jupyter.version"].status is Status.FAIL
    res = _results({"software": {"tools": {}}})
    assert res["software.services"].status is Status.SKIP


def test_a_snapshot_whose_service_values_have_the_wrong_type_is_refused_by_path() -> None:
    base = {"schema": "dlverify.snapshot/1", "nvml": {"unavailable": "x"}, "host": {"unavailable": "x"}}
    good = {**base, **_snap(_unit(["127.0.0.1"], 403))}
    validate(json.loads(json.dumps(good)), "snap.json")
    bad = json.loads(json.dumps(good))
    bad["software"]["services"]["jupyter"]["units"]["alice"]["anon_status"] = "403"
    with pytest.raises(SnapshotError, match=r"software\.services\.jupyter\.units\.alice\.anon_status"):
        validate(bad, "snap.json")


# --- probes ---------------------------------------------------------------------------------------------


def test_listening_addresses_come_from_the_kernels_tables(tmp_path: Path) -> None:
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "tcp").write_text(PROC_TCP)
    (tmp_path / "proc" / "net" / "tcp6").write_text(PROC_TCP6)
    assert services.listening_on(8888, tmp_path) == ["127.0.0.1"]
    assert services.listening_on(8889, tmp_path) == ["0.0.0.0", "::"]
    assert services.listening_on(8890, tmp_path) == ["::1"]
    assert services.listening_on(9999, tmp_path) == []


def test_daemon_json_runtimes_and_a_malformed_file(tmp_path: Path) -> None:
    (tmp_path / "etc" / "docker").mkdir(parents=True)
    daemon = tmp_path / "etc" / "docker" / "daemon.json"
    daemon.write_text(
        '{"log-driver": "journald", "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}'
    )
    assert services.probe_docker(tmp_path)["runtimes"] == {"nvidia": "nvidia-container-runtime"}
    daemon.write_text('{"log-driver": ')
    got = services.probe_docker(tmp_path)["runtimes"]
    assert isinstance(got, services.Unavailable) and "/etc/docker/daemon.json" in got.reason


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 403

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[http.server.HTTPServer, type[_Handler]]]:
    handler = type("H", (_Handler,), {})
    srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, handler
    srv.shutdown()
    srv.server_close()


def test_the_anonymous_request_reports_what_a_real_server_answers(server) -> None:
    srv, handler = server
    port = srv.server_address[1]
    assert services.anonymous_status("127.0.0.1", port, tls=False) == 403
    handler.status = 200
    assert services.anonymous_status("127.0.0.1", port, tls=False) == 200
    srv.shutdown()
    srv.server_close()
    refused = services.anonymous_status("127.0.0.1", port, tls=False)
    assert isinstance(refused, services.Unavailable)
