#!/usr/bin/env python3
"""STAND-IN conda, built by the dlverify test harness: NOT Anaconda's conda.

The miniconda role's tests cannot reach Anaconda's servers, so the stand-in Miniconda installer puts
this script at PREFIX/bin/conda. It speaks the subset of conda's command line the roles use, with the
same JSON shapes, and makes "environments" as venvs of the host's python3:

  conda --version                      stdout like conda's; stderr says this is a stand-in
  conda info --json | --envs           conda_version, root_prefix, envs, envs_dirs, python_version, ...
  conda env list --json                {"envs": [...]}
  conda create -y -n NAME|-p PATH python=X.Y [pip]   a venv of the host's pythonX.Y (else python3, warned)
  conda run -n NAME|-p PATH CMD...     CMD with the env's bin first on PATH
  conda list -n NAME|-p PATH [--json]  the env's pip packages
  conda env remove -n NAME|-p PATH, conda remove --all -n NAME|-p PATH
  conda config ..., conda init ...     no-ops
  conda install ..., conda env create -f FILE with conda packages: exit 1 (cannot fetch)
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

CONDA_VERSION = "23.5.2"
ROOT = Path(__file__).resolve().parent.parent
STAND_IN = (
    "STAND-IN conda built by the dlverify test harness (venvs of the host's python3), not Anaconda's conda"
)
NO_FETCH = "stand-in conda cannot fetch packages from channels"
HOST_PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def fail(msg: str, code: int = 1) -> int:
    print(f"CondaError: {msg}", file=sys.stderr)
    return code


def envs_dir() -> Path:
    return ROOT / "envs"


def all_envs() -> list[str]:
    found = [str(ROOT)]
    if envs_dir().is_dir():
        found += sorted(str(p) for p in envs_dir().iterdir() if (p / "conda-meta").is_dir())
    return found


def take_target(args: list[str]) -> tuple[Path | None, list[str]]:
    """Pop -n NAME / --name NAME / -p PATH / --prefix PATH from args."""
    target: Path | None = None
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("-n", "--name"):
            name = next(it, "")
            target = ROOT if name == "base" else envs_dir() / name
        elif arg in ("-p", "--prefix"):
            target = Path(next(it, "")).resolve()
        elif arg.startswith(("--name=", "--prefix=")):
            key, _, value = arg.partition("=")
            target = (envs_dir() / value) if key == "--name" else Path(value).resolve()
        else:
            rest.append(arg)
    return target, rest


def cmd_info(args: list[str]) -> int:
    if "--envs" in args or "-e" in args:
        if "--json" in args:
            print(json.dumps({"envs": all_envs()}, indent=2))
        else:
            print("# conda environments (stand-in):")
            for env in all_envs():
                print(("base" if env == str(ROOT) else Path(env).name).ljust(20), env)
        return 0
    info = {
        "conda_version": CONDA_VERSION,
        "conda_build_version": "not installed",
        "python_version": platform.python_version(),
        "platform": "linux-64",
        "root_prefix": str(ROOT),
        "conda_prefix": str(ROOT),
        "default_prefix": os.environ.get("CONDA_PREFIX", str(ROOT)),
        "active_prefix": os.environ.get("CONDA_PREFIX"),
        "active_prefix_name": None,
        "envs_dirs": [str(envs_dir())],
        "pkgs_dirs": [str(ROOT / "pkgs")],
        "envs": all_envs(),
        "channels": [],
        "sys.version": sys.version,
        "sys.prefix": sys.prefix,
        "dlverify_stand_in": STAND_IN,
    }
    if "--json" in args:
        print(json.dumps(info, indent=2))
    else:
        print(f"     active environment : {info['active_prefix'] or 'None'}")
        print(f"          conda version : {CONDA_VERSION} ({STAND_IN})")
        print(f"       base environment : {ROOT}")
    return 0


def parse_specs(specs: list[str]) -> tuple[str | None, list[str]]:
    """Split conda package specs into the python version asked for and the others."""
    python, others = None, []
    for spec in specs:
        match = re.fullmatch(r"python(?:[=<>~!]=?([0-9][0-9.*]*))?", spec.replace(" ", ""))
        if match:
            python = match.group(1) or HOST_PY
        elif re.fullmatch(r"pip([=<>].*)?", spec):
            continue  # every venv has pip
        else:
            others.append(spec)
    return python, others


def make_env(target: Path, python: str | None) -> int:
    wanted = (python or HOST_PY).rstrip(".*")
    interpreter = sys.executable
    if not (wanted == HOST_PY or wanted.startswith(HOST_PY + ".") or HOST_PY.startswith(wanted + ".")):
        # Like conda, give the env the Python asked for where the host has it (Ubuntu 22.04: python3.11).
        minor = ".".join(wanted.split(".")[:2])
        found = shutil.which(f"python{minor}")
        # a shim (pyenv) may be on PATH without that version behind it: take only one that runs and has venv
        works = (
            found
            and subprocess.run([found, "-c", "import venv"], capture_output=True, check=False).returncode == 0
        )
        if found and works:
            interpreter = found
        else:
            print(
                f"WARNING (stand-in conda): python={python} asked for, the host's python {HOST_PY} is used",
                file=sys.stderr,
            )
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([interpreter, "-m", "venv", str(target)], check=False)
    if done.returncode != 0:
        return fail(f"could not create {target} ({interpreter} -m venv failed)")
    (target / "conda-meta").mkdir(exist_ok=True)
    (target / "conda-meta" / "history").write_text(f"# {STAND_IN}\n# python={python or HOST_PY}\n")
    print(f"# environment created at {target} ({STAND_IN})")
    return 0


def cmd_create(args: list[str]) -> int:
    target, rest = take_target(args)
    if target is None:
        return fail("create needs -n NAME or -p PATH", 2)
    specs, skip_next = [], False
    for arg in rest:
        if skip_next:
            skip_next = False
        elif arg in ("-c", "--channel", "--file"):
            skip_next = True
        elif not arg.startswith("-"):
            specs.append(arg)
    python, others = parse_specs(specs)
    if others:
        return fail(f"{NO_FETCH}: {' '.join(others)}")
    return make_env(target, python)


def cmd_env(args: list[str]) -> int:
    sub, rest = (args[0], args[1:]) if args else ("", [])
    if sub == "list":
        return cmd_info(["--envs", *rest])
    if sub == "remove":
        return cmd_remove(["--all", *rest])
    if sub == "create":
        target, rest = take_target(rest)
        file_arg = next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a in ("-f", "--file")), None)
        if not file_arg:
            return fail("env create needs -f FILE", 2)
        text = Path(file_arg).read_text()
        name = re.search(r"(?m)^name:\s*(\S+)", text)
        deps = re.findall(r"(?m)^\s{2,}-\s*([^\s#:]+)\s*$", text)
        python, others = parse_specs(deps)
        if others:
            return fail(f"{NO_FETCH}: {' '.join(others)}")
        if target is None:
            if not name:
                return fail("env create needs -n NAME, -p PATH or a name: in the file", 2)
            target = envs_dir() / name.group(1)
        return make_env(target, python)
    return fail(f"stand-in conda does not implement 'conda env {sub}'", 2)


def cmd_remove(args: list[str]) -> int:
    target, rest = take_target(args)
    if "--all" not in rest or target is None:
        return fail(f"{NO_FETCH}: stand-in conda only removes whole environments (--all -n NAME)")
    if target == ROOT:
        return fail("cannot remove the base environment", 2)
    shutil.rmtree(target, ignore_errors=True)
    return 0


def cmd_run(args: list[str]) -> int:
    target, rest = take_target(args)
    target = target or ROOT
    rest = [a for a in rest if a not in ("--no-capture-output", "--live-stream", "--no-banner")]
    if not rest:
        return fail("run needs a command", 2)
    if not (target / "bin").is_dir():
        return fail(f"environment not found: {target}", 1)
    env = dict(
        os.environ,
        CONDA_PREFIX=str(target),
        VIRTUAL_ENV=str(target),
        PATH=f"{target / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    try:
        os.execvpe(rest[0], rest, env)
    except FileNotFoundError:
        return fail(f"command not found in {target}: {rest[0]}", 1)
    return 1


def cmd_list(args: list[str]) -> int:
    target, rest = take_target(args)
    target = target or ROOT
    python = target / "bin" / "python"
    if not python.exists():
        return fail(f"environment not found: {target}", 1)
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=False
    )
    pkgs = [
        {
            "name": p["name"].lower(),
            "version": p["version"],
            "channel": "pypi",
            "platform": "pypi",
            "build_string": "pypi_0",
        }
        for p in json.loads(out.stdout or "[]")
    ]
    version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    pkgs.append(
        {
            "name": "python",
            "version": version
            or platform.python_version(),  # the env's own Python, which may not be the base's
            "channel": "stand-in",
            "platform": "linux-64",
            "build_string": "host",
        }
    )
    if "--json" in rest:
        print(json.dumps(sorted(pkgs, key=lambda p: p["name"]), indent=2))
    else:
        print(f"# packages in environment at {target} ({STAND_IN}):")
        for p in sorted(pkgs, key=lambda p: p["name"]):
            print(f"{p['name']:<30}{p['version']:<20}{p['build_string']:<15}{p['channel']}")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] in ("--version", "-V"):
        print(f"conda {CONDA_VERSION}")
        print(STAND_IN, file=sys.stderr)
        return 0
    cmd, rest = argv[0], argv[1:]
    handlers = {
        "info": cmd_info,
        "create": cmd_create,
        "env": cmd_env,
        "run": cmd_run,
        "list": cmd_list,
        "remove": cmd_remove,
    }
    if cmd in handlers:
        return handlers[cmd](rest)
    if cmd in ("config", "init", "clean", "activate", "deactivate"):
        return 0
    if cmd in ("install", "update", "upgrade", "search"):
        return fail(f"{NO_FETCH} (conda {cmd} {' '.join(rest)})")
    return fail(f"stand-in conda does not implement 'conda {cmd}'", 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
