"""The harness's podman connection (tools/harness/connection_plugins/dlv_podman.py): a module is one podman
exec fed on stdin, and the container is mounted only when a file moves. Loaded through ansible's own plugin
loader, as Molecule's ansible-playbook loads it; podman is recorded here (the scenarios run it for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("ansible_collections.containers.podman")
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    connection_loader.add_directory(str(REPO / "tools" / "harness" / "connection_plugins"))
    conn = connection_loader.get("dlv_podman", PlayContext(), None)  # the podman plugin wants new_stdin
    assert conn is not None, "ansible does not find the harness connection"
    conn.set_options(var_options={"inventory_hostname": "dlv-test"})
    calls: list[tuple[object, object, object]] = []

    def podman(cmd, cmd_args=None, in_data=None, use_container_id=True):
        calls.append((cmd, cmd_args, in_data))
        return 0, (b"/var/lib/containers/storage/overlay/x/merged" if cmd == "mount" else b"ok"), b""

    monkeypatch.setattr(conn, "_podman", podman)
    conn.calls = calls
    return conn


def test_a_pipelined_module_is_one_podman_exec_reading_stdin(connection) -> None:
    assert connection.has_pipelining and connection.get_option("pipelining") is True
    rc, out, _ = connection.exec_command("/bin/sh -c '/usr/bin/python3 && sleep 0'", in_data=b"MODULE")
    assert (rc, out) == (0, b"ok")
    assert connection.calls == [
        (["exec", "--interactive"], ["/bin/sh", "-c", "/usr/bin/python3 && sleep 0"], b"MODULE")
    ]


def test_a_plain_command_has_no_stdin_and_nothing_is_mounted_until_a_file_moves(connection, tmp_path) -> None:
    connection.exec_command("/bin/sh -c 'echo ~'")
    assert connection.calls == [(["exec"], ["/bin/sh", "-c", "echo ~"], None)]
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(OSError):  # the recorded mount point does not exist here: the copy itself fails
        connection.put_file(str(src), "/tmp/f")
    assert [c[0] for c in connection.calls] == [["exec"], "mount"]
