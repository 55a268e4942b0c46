"""Talk to one JupyterLab the way a user and an attacker would; print what happened as JSON.

Run on the test host with the jupyterlab venv's Python (it has websocket-client, a jupyter_server dependency):
    python jupyter_api.py URL PASSWORD [KERNEL CODE]
1. GET /api/status without credentials; 2. POST /login with a wrong password, then /api/status; 3. POST /login
with PASSWORD, then /api/status; when that login worked: 4. the kernelspecs; 5. (with KERNEL and CODE) start
KERNEL, run CODE as a cell over the kernel's websocket, collect its stdout, stop the kernel. Every step's
result is in the JSON; the caller asserts.
"""

from __future__ import annotations

import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import websocket


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def opener() -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect()), jar


def status(op: urllib.request.OpenerDirector, url: str, data: bytes | None = None, **headers: str) -> int:
    try:
        with op.open(urllib.request.Request(url, data=data, headers=headers), timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def login(base: str, password: str) -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar, int]:
    op, jar = opener()
    status(op, base + "/login")  # sets the _xsrf cookie
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
    form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
    return op, jar, status(op, base + "/login?next=%2Flab", form)


def api(
    op: urllib.request.OpenerDirector,
    jar: http.cookiejar.CookieJar,
    url: str,
    method: str = "GET",
    body: Any = None,
) -> Any:
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"}
    )
    with op.open(req, timeout=60) as resp:
        text = resp.read().decode()
    return json.loads(text) if text else None


def run_cell(
    base: str, op: urllib.request.OpenerDirector, jar: http.cookiejar.CookieJar, kernel: str, code: str
) -> dict[str, Any]:
    started = api(op, jar, base + "/api/kernels", "POST", {"name": kernel})
    kid = started["id"]
    ws_url = base.replace("http", "ws", 1) + f"/api/kernels/{kid}/channels"
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    out: dict[str, Any] = {"kernel": started.get("name"), "stdout": "", "error": None, "status": None}
    ws = websocket.create_connection(
        ws_url, header=[f"Cookie: {cookie}"], timeout=120, sslopt={"cert_reqs": 0}
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "dlv",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream" and msg["content"]["name"] == "stdout":
                out["stdout"] += msg["content"]["text"]
            elif kind == "stream":
                out["stderr"] = out.get("stderr", "") + msg["content"]["text"]
            elif kind == "error":
                out["error"] = f"{msg['content']['ename']}: {msg['content']['evalue']}"
            elif kind == "execute_reply":
                out["status"] = msg["content"]["status"]
                break
    finally:
        ws.close()
        api(op, jar, base + f"/api/kernels/{kid}", "DELETE")
    return out


def main() -> int:
    base, password = sys.argv[1:3]
    anon, _ = opener()
    result: dict[str, Any] = {"anonymous": status(anon, base + "/api/status")}
    op, jar, result["wrong_login"] = login(base, password + "-wrong")
    result["wrong_status"] = status(op, base + "/api/status")
    op, jar, result["login"] = login(base, password)
    result["status"] = status(op, base + "/api/status")
    if result["status"] == 200:
        specs = api(op, jar, base + "/api/kernelspecs")
        result["kernelspecs"] = {name: s["spec"]["argv"] for name, s in specs["kernelspecs"].items()}
        if len(sys.argv) == 5:
            result["cell"] = run_cell(base, op, jar, sys.argv[3], sys.argv[4])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
