"""Run as a notebook user with the unit's environment: may this user write any place jupyter reads?

Prints the config and data paths jupyter_core resolves (what ``jupyter --paths`` shows) and every one of them,
or any file below them, that the user could write (or create, for a path that does not exist yet: its nearest
existing parent). A writable one lets the user configure their own server (ip, token, password) or shadow a
kernel, whatever the role wrote. Exit 0 when there is none, 1 otherwise. Installed by the jupyterlab role.
"""

from __future__ import annotations

import json
import os
import sys

from jupyter_core import paths


def writable(path: str) -> list[str]:
    """The path (or its nearest existing parent) and the files below it that this user may write."""
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    found = [probe] if os.access(probe, os.W_OK) else []
    if os.path.isdir(path):
        for top, dirs, files in os.walk(path):
            found += [os.path.join(top, n) for n in dirs + files if os.access(os.path.join(top, n), os.W_OK)]
    return found


def main() -> int:
    config = paths.jupyter_config_path()
    data = paths.jupyter_path()
    bad = sorted({w for p in config + data for w in writable(p)})
    print(json.dumps({"user": os.getuid(), "config": config, "data": data, "writable": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
