"""Headless Chromium (Debian's) opens a JupyterLab's login page, logs in through the form, opens the lab, and
keeps a screenshot of each. Runs on the controller; the scenario's test host shares its network.

    python screenshot.py URL PASSWORD OUT_DIR
Prints JSON: whether the login page showed a password field, whether the lab's shell and launcher rendered,
and the PNG files. Exit 0 with {"skipped": ...} when there is no Chromium (the caller says so loudly).
Talks the Chrome DevTools Protocol over a minimal stdlib websocket (no client library on the controller).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class WebSocket:
    """Just enough of RFC 6455 for CDP: text frames, client-masked, continuation frames joined."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:80]!r}")

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        head = struct.pack("!B", 0x81)
        if n < 126:
            head += struct.pack("!B", 0x80 | n)
        elif n < 65536:
            head += struct.pack("!BH", 0x80 | 126, n)
        else:
            head += struct.pack("!BQ", 0x80 | 127, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class Page:
    def __init__(self, ws_url: str) -> None:
        self.ws = WebSocket(ws_url)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    def js(self, expr: str) -> Any:
        return (
            self.call("Runtime.evaluate", expression=expr, returnByValue=True).get("result", {}).get("value")
        )

    def wait_for(self, expr: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.js(expr):
                return True
            time.sleep(0.5)
        return False

    def shot(self, path: Path) -> str:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return str(path)


def main() -> int:
    url, password, out = sys.argv[1].rstrip("/"), sys.argv[2], Path(sys.argv[3])
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print(json.dumps({"skipped": "no chromium on the controller"}))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dlv-chromium-") as profile:
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1280,800",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            port = None
            end = time.monotonic() + 60
            while port is None and time.monotonic() < end:
                line = proc.stderr.readline()
                found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                port = int(found.group(1)) if found else None
                if not line and proc.poll() is not None:
                    raise RuntimeError(f"chromium exited {proc.returncode} before DevTools listened")
            if port is None:
                raise RuntimeError("chromium: DevTools did not listen within 60 s")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
                targets = json.load(resp)
            page = Page(next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"))
            page.call("Page.enable")
            page.call("Page.navigate", url=f"{url}/login?next=%2Flab")
            result: dict[str, Any] = {}
            result["login_form"] = page.wait_for("!!document.querySelector('input[type=password]')", 30)
            time.sleep(1)
            result["login_png"] = page.shot(out / "login.png")
            page.js(
                "document.querySelector('input[type=password]').value = " + json.dumps(password) + ";"
                "document.querySelector('input[type=password]').form.submit(); true"
            )
            shell = (
                "!!document.querySelector('#jp-main-dock-panel') && !!document.querySelector('.jp-Launcher')"
            )
            result["lab"] = page.wait_for(shell, 90)
            time.sleep(3)  # the launcher's icons load after the shell
            result["lab_url"] = page.js("location.href")
            result["lab_png"] = page.shot(out / "lab.png")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
