"""Test-harness connection: containers.podman.podman with pipelining; the container is mounted only when a
file moves.

Why: the collection's plugin runs six podman commands per module (mount, `echo ~`, mkdir, chmod, the module,
rm), about 150 ms each on the 2-core CI machine: the per-task cost, not the roles, was most of Molecule's
time. With pipelining (what production gets over SSH: ansible.cfg sets it) a module is one `podman exec -i`
that reads it on stdin, as `ssh` does. Files (copy, template, fetch) still go through the container's mount,
taken on first use. Every scenario uses it through .config/molecule/config.yml (connection_options).
"""

from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

# ansible reads a plugin's options from this literal (not from the parent class): the parent's, renamed.
DOCUMENTATION = """
    name: dlv_podman
    short_description: containers.podman.podman with pipelining (dlverify test harness)
    description:
        - containers.podman's podman connection, running each module as one C(podman exec -i) fed on stdin.
    options:
      remote_addr:
        description: The ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: User (name or UID) that runs the commands inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to pass to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      pipelining:
        description: Feed modules on stdin (async tasks still copy theirs in, as over SSH).
        default: true
        type: boolean
        env:
          - name: ANSIBLE_PIPELINING
        vars:
          - name: ansible_pipelining
      podman_executable:
        description: Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""


class Connection(PodmanConnection):
    transport = "dlv_podman"
    has_pipelining = True

    def _connect(self) -> Connection:
        ConnectionBase._connect(self)
        self._mount_point = None
        self._mounted = False
        self._connected = True
        return self

    def _mount(self) -> None:
        """The container's root on this machine, for put_file and fetch_file (podman cp when it cannot)."""
        if self._mounted:
            return
        self._mounted = True
        PodmanConnection._connect(self)

    @ensure_connect
    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"] + (["--interactive"] if in_data is not None else [])
        if self.user:
            args += ["--user", self.user]
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path: str, out_path: str) -> None:
        self._mount()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        self._mount()
        super().fetch_file(in_path, out_path)
