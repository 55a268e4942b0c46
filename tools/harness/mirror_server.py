"""Serving the built mirror on 127.0.0.1 (one background server shared by concurrent runners, each holding a
claim), and the shell exports the scenarios read (``mirror.py env``).
"""

from __future__ import annotations

import http.server
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path

from mirror_apt import key_fingerprints
from mirror_catalogue import catalogue
from mirror_common import MirrorError, mirror_dir, port, sha256_file, www_dir

MIRROR_PY = Path(__file__).resolve().parent / "mirror.py"


def pid_file() -> Path:
    return mirror_dir() / "serve.pid"


def url() -> str:
    return f"http://127.0.0.1:{port()}"


def serving_pid() -> int | None:
    """The pid of our running server, if the pid file names a live mirror.py process."""
    try:
        pid = int(pid_file().read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"mirror.py" in cmdline and b"_serve" in cmdline else None


def answers(timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url()}/keys/dlv-mirror.asc", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")


def _stop_serving(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve_foreground() -> int:
    handler = partial(QuietHandler, directory=str(www_dir()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port()), handler)
    signal.signal(signal.SIGTERM, _stop_serving)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def users_dir() -> Path:
    return mirror_dir() / "users"


def live_users() -> list[int]:
    """Pids of the runners that said they use the server (`serve --user PID`) and still run."""
    live = []
    for entry in users_dir().glob("*") if users_dir().is_dir() else []:
        if entry.name.isdigit() and Path(f"/proc/{entry.name}").exists():
            live.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return sorted(live)


def serve(user: int | None = None) -> int:
    if user is not None:
        users_dir().mkdir(parents=True, exist_ok=True)
        (users_dir() / str(user)).touch()
    if not (www_dir() / ".build-stamp").is_file():
        print("mirror: nothing to serve yet; run `mirror.py build` first", file=sys.stderr)
        return 1
    pid = serving_pid()
    if pid and answers():
        print(f"mirror: already serving {www_dir()} at {url()} (pid {pid})")
        return 0
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port()))
        except OSError as exc:
            print(
                f"mirror: 127.0.0.1:{port()} is taken by another program ({exc.strerror}); "
                "set DLV_MIRROR_PORT to a free port",
                file=sys.stderr,
            )
            return 1
    log = (mirror_dir() / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(MIRROR_PY), "_serve"],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file().write_text(f"{proc.pid}\n")
    for _ in range(50):
        if answers(0.5):
            print(
                f"mirror: serving {www_dir()} at {url()} (pid {proc.pid}, log {mirror_dir() / 'serve.log'})"
            )
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    print(f"mirror: the server did not come up; see {mirror_dir() / 'serve.log'}", file=sys.stderr)
    return 1


def stop(user: int | None = None) -> int:
    """Stop the server; with `user`, only drop that runner's claim and stop when no one else holds one."""
    if user is not None:
        (users_dir() / str(user)).unlink(missing_ok=True)
        others = live_users()
        if others:
            print(f"mirror: still used by runner(s) {', '.join(map(str, others))}; left running")
            return 0
    pid = serving_pid()
    if pid is None:
        pid_file().unlink(missing_ok=True)
        print("mirror: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file().unlink(missing_ok=True)
    print(f"mirror: stopped (pid {pid})")
    return 0


def prometheus_release_env(base: str) -> dict[str, str]:
    """The Prometheus release-tarball stand-in's version and sha256 (empty when the build did not make it)."""
    sums = sorted((www_dir() / "prometheus" / "releases" / "download").glob("v*/sha256sums.txt"))
    if not sums:
        return {"DLV_PROMETHEUS_RELEASE_VERSION": "", "DLV_PROMETHEUS_RELEASE_SHA256": ""}
    digest = sums[-1].read_text().split()[0]
    return {
        "DLV_PROMETHEUS_RELEASE_VERSION": sums[-1].parent.name[1:],
        "DLV_PROMETHEUS_RELEASE_SHA256": digest,
    }


def env_lines() -> list[str]:
    name = catalogue().miniconda_installer
    installer = www_dir() / "miniconda" / name
    if not installer.is_file():
        raise MirrorError("the mirror is not built; run `mirror.py build` first")
    base = url()
    pip_index = f"{base}/pypi/simple/" if (www_dir() / "pypi" / "simple").is_dir() else ""
    fingerprints = key_fingerprints(www_dir() / "keys" / "dlv-mirror.asc")
    if len(fingerprints) != 1:
        raise MirrorError(f"the mirror's key file holds {len(fingerprints)} keys, not one: {fingerprints}")
    values = {
        "DLV_MIRROR_URL": base,
        "DLV_MIRROR_CUDA_REPO": f"{base}/cuda/repos/{{distro}}/x86_64/",
        "DLV_MIRROR_KEY_URL": f"{base}/keys/dlv-mirror.asc",
        # the fingerprint of that key (cuda_repo_key_fingerprints): the roles check it, as they check NVIDIA's
        "DLV_MIRROR_KEY_FINGERPRINT": fingerprints[0],
        "DLV_MINICONDA_URL": f"{base}/miniconda/{name}",
        "DLV_MINICONDA_SHA256": sha256_file(installer),
        "DLV_PIP_INDEX_URL": pip_index,
        # Not in the roles' contract: a signed flat repo of dlv-* test packages (1.0 and 2.0) for
        # tests of upgrade policy, same key as the CUDA repo.
        "DLV_MIRROR_HARNESS_REPO": f"{base}/harness/",
        # NVIDIA's libnvidia-container repository (the Container Toolkit), as the containers role names it
        "DLV_MIRROR_TOOLKIT_REPO": f"{base}/libnvidia-container/stable/deb/$(ARCH)",
        # Not in the roles' contract: Ubuntu's archive as a real jammy host sees it (transitional *-535).
        "DLV_MIRROR_UBUNTU_ARCHIVE": f"{base}/ubuntu-archive/",
        **prometheus_release_env(base),
    }
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def status() -> int:
    pid = serving_pid()
    built = (www_dir() / ".build-stamp").is_file()
    print(
        json.dumps(
            {
                "built": built,
                "www": str(www_dir()),
                "serving": bool(pid and answers()),
                "pid": pid,
                "url": url(),
            },
            indent=2,
        )
    )
    return 0 if built and pid else 1
