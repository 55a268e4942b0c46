"""Print the interpreter's X.Y and the installed versions of the named distributions as JSON.

Run by the pytorch_env role with the env's own python. Reads package metadata only (importing torch
takes seconds and may touch the GPU), so it is cheap enough to run on every play.
"""

import json
import sys
from importlib import metadata


def main(names: list[str]) -> int:
    packages = {}
    for name in names:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = ""
    print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "packages": packages}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
