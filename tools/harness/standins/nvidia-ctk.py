#!/usr/bin/python3
"""STAND-IN nvidia-ctk (dlverify test harness), NOT NVIDIA's Go binary.

It does what the roles depend on, the way NVIDIA's CLI does it: `runtime configure --runtime=docker` loads
daemon.json (a missing file is an empty config; unreadable JSON is an error and the file is left alone), adds
the runtime `nvidia` ({"args": [], "path": "nvidia-container-runtime"}), keeps every other key, and writes
the file back as Go's json.MarshalIndent does (keys sorted, four-space indent, no final newline), logging as
logrus does. `cdi generate` fails as the real one does on a host without the NVIDIA driver. `--version`.
"""

import argparse
import json
import os
import sys

VERSION = "@VERSION@"


def log(level: str, msg: str) -> None:
    print(f"{level}[0000] {msg}", file=sys.stderr)


def configure(args: argparse.Namespace) -> int:
    if args.runtime != "docker":
        log("ERRO", f"unrecognized runtime '{args.runtime}' (STAND-IN supports docker only)")
        return 1
    path = args.config or "/etc/docker/daemon.json"
    config: dict = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
            config = json.loads(text) if text.strip() else {}
        except (OSError, ValueError) as exc:
            log("ERRO", f"unable to load config for runtime: unable to read config: {exc}")
            return 1
        if not isinstance(config, dict):
            log("ERRO", "unable to load config for runtime: unable to read config: not a JSON object")
            return 1
    runtimes = config.get("runtimes") or {}
    runtimes[args.nvidia_runtime_name] = {"args": [], "path": args.nvidia_runtime_path}
    config["runtimes"] = runtimes
    if args.set_as_default:
        config["default-runtime"] = args.nvidia_runtime_name
    out = json.dumps(config, indent=4, sort_keys=True, ensure_ascii=False)
    if args.dry_run:
        print(out)
        return 0
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(out)
    log("INFO", f"Wrote updated config to {path}")
    log("INFO", "It is recommended that docker daemon be restarted.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="nvidia-ctk")
    parser.add_argument("--version", action="store_true")
    sub = parser.add_subparsers(dest="cmd")
    runtime = sub.add_parser("runtime").add_subparsers(dest="sub")
    conf = runtime.add_parser("configure")
    conf.add_argument("--runtime", default="docker")
    conf.add_argument("--config", default="")
    conf.add_argument("--dry-run", action="store_true")
    conf.add_argument("--set-as-default", action="store_true")
    conf.add_argument("--nvidia-runtime-name", default="nvidia")
    conf.add_argument("--nvidia-runtime-path", default="nvidia-container-runtime")
    cdi = sub.add_parser("cdi").add_subparsers(dest="sub")
    gen = cdi.add_parser("generate")
    gen.add_argument("--output", default="")
    args = parser.parse_args()
    if args.version:
        print(f"NVIDIA Container Toolkit CLI version {VERSION}\ncommit: STAND-IN (dlverify test harness)")
        return 0
    if args.cmd == "runtime" and args.sub == "configure":
        return configure(args)
    if args.cmd == "cdi" and args.sub == "generate":
        log(
            "ERRO",
            "failed to generate CDI spec: failed to create device CDI specs: failed to initialize NVML: "
            "ERROR_LIBRARY_NOT_FOUND",
        )
        return 1
    parser.print_help(sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
