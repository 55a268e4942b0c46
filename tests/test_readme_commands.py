"""The README's command blocks and file references, kept true by running what is safe to run here.

- every file path the README names in the repo exists (no `specs/a100.yaml` again);
- every `ansible-playbook site.yml ...` line parses, names specs, hosts and tags that exist, and lists its
  tasks (`--list-tasks`: nothing connects to a host), its `--tags` selecting at least one task;
- the quick start is two commands (`tools/check-this-machine.sh`, `make test`) and its lint of hwspec.yaml
  exits 0; `molecule-run.sh --list` runs;
- no command block starts a command with `sudo` (not installed everywhere: say "as root" instead);
- every `dlverify ...` the README shows (usage lines, examples, inline mentions) names only options and
  choices the command has, and every concrete example in a command block parses.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(BIN)) or shutil.which("ansible-playbook")


def _blocks() -> list[str]:
    # every fenced block pairs up (a ```yaml block must not shift the rest); only shell blocks are commands
    fenced = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)
    return [body for lang, body in fenced if lang in ("", "bash")]


def _command_lines(prefix: str) -> list[str]:
    lines = []
    for block in _blocks():
        for line in block.splitlines():
            line = line.strip()
            if line.startswith(prefix):
                lines.append(line.split("  #")[0].split(" # ")[0].strip())
    return lines


def test_every_repo_path_in_the_readme_exists():
    paths = set(
        re.findall(
            r"(?<![\w/.-])((?:hwspec|specs|tools|roles|playbooks|molecule|inventory|benchmarks|tests|verify)"
            r"/[\w./-]+\.(?:ya?ml|py|sh|json))",
            README,
        )
    )
    assert paths, "no path found: the pattern is broken"
    missing = sorted(p for p in paths if "<" not in p and "*" not in p and not (REPO / p).exists())
    assert missing == [], missing


def test_no_command_block_needs_sudo():
    lines = [line.strip() for block in _blocks() for line in block.splitlines()]
    offenders = [line for line in lines if line.startswith("sudo ")]
    assert offenders == [], offenders


def _site_tags() -> set[str]:
    tags: set[str] = set()
    for path in [*REPO.glob("playbooks/*.yml"), *REPO.glob("roles/*/tasks/*.yml")]:
        for match in re.finditer(r"tags: \[([^\]]*)\]", path.read_text()):
            tags.update(t.strip() for t in match.group(1).split(",") if t.strip())
    return tags


def _inventory_hosts() -> set[str]:
    inventory = yaml.safe_load((REPO / "inventory" / "hosts.yml").read_text())
    return set(inventory["all"]["children"]["gpu_servers"]["hosts"])


SITE_LINES = _command_lines("ansible-playbook site.yml")


def test_the_readme_shows_site_commands():
    assert len(SITE_LINES) >= 4, SITE_LINES
    assert any("--limit" in line for line in SITE_LINES) and any("--tags" in line for line in SITE_LINES)


@pytest.mark.skipif(
    ANSIBLE_PLAYBOOK is None, reason="ansible-playbook not installed (pip install -e '.[harness]')"
)
@pytest.mark.parametrize("line", SITE_LINES)
def test_site_command_lists_its_tasks(line, tmp_path):
    argv = shlex.split(line)
    # -K asks for a password and --check/--diff change nothing in a listing
    args = [a for a in argv[1:] if a not in ("-K", "--ask-become-pass", "--check", "--diff")]
    for i, arg in enumerate(args):
        if arg == "-e" and args[i + 1].startswith("hwspec="):
            assert (REPO / args[i + 1].split("=", 1)[1]).is_file(), line
        if arg == "--limit":
            assert set(args[i + 1].split(",")) <= _inventory_hosts(), line
        if arg == "--tags":
            assert set(args[i + 1].split(",")) <= _site_tags(), line
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, *args, "--list-tasks"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "--tags" in args:
        wanted = args[args.index("--tags") + 1].split(",")
        listed = re.findall(r"^\s{6}(\S.*?)\tTAGS: \[(.*)\]$", proc.stdout, flags=re.M)
        for tag in wanted:
            assert any(tag in tags.split(", ") for _, tags in listed), (tag, proc.stdout)


def test_quick_start_is_two_commands_and_its_lint_exits_0():
    quick = README[README.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", quick, flags=re.S)
    assert block, "the quick start has no command block"
    commands = [ln.split("  #")[0].strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert commands == ["tools/check-this-machine.sh", "make test"], commands
    proc = subprocess.run(  # the script's first step, on the spec it defaults to
        [sys.executable, "-m", "dlverify.cli", "spec", "lint", "hwspec.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_molecule_runner_list_runs():
    assert "tools/harness/molecule-run.sh --list" in _command_lines("tools/harness/molecule-run.sh")
    proc = subprocess.run(
        ["bash", "tools/harness/molecule-run.sh", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "site" in proc.stdout, proc.stdout + proc.stderr


def _dlverify_mentions(inline: bool = True) -> list[str]:
    """Every `dlverify ...` the README shows: command-block lines and (``inline``) inline code spans."""
    found = []
    for block in _blocks():
        found += [ln.strip() for ln in block.splitlines()]
    if inline:
        found += re.findall(r"`([^`\n]+)`", README)
    out = []
    for text in found:
        text = text.split("  #")[0].split(" # ")[0].strip()
        text = re.sub(r"^(?:\S*/)?\.venv/bin/", "", text).replace("\\|", "|")  # markdown tables escape |
        if text.startswith("dlverify ") and not text.startswith("dlverify."):
            out.append(text)
    return sorted(set(out))


def _subparser(parser, words: list[str]):
    import argparse

    for word in words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser = subs[0].choices[word]
    return parser


def test_every_dlverify_option_the_readme_shows_exists():
    """Usage lines, examples and inline mentions: each `--option` (and each listed choice) is one the
    command really has, so the README cannot drift from the parser again."""
    from dlverify.cli import build_parser

    parser = build_parser()
    mentions = _dlverify_mentions()
    assert len(mentions) > 15, mentions  # the pattern finds them
    problems = []
    for text in mentions:
        words = text.split()[1:]
        sub = _subparser(parser, [w for w in words if re.fullmatch(r"[a-z]+", w)][:2])
        known = {s: a for a in sub._actions for s in a.option_strings}
        for token in re.findall(r"--[a-z][a-z0-9-]*(?:[ =][^\s\]\[]+)?", text):
            opt, _, value = token.replace("=", " ").partition(" ")
            if opt not in known:
                problems.append(f"{text!r}: {sub.prog} has no {opt}")
                continue
            choices = known[opt].choices
            if choices and value and "|" in value:
                bad = [v for v in value.strip("[]").split("|") if v not in choices and not v.isupper()]
                if bad:
                    problems.append(f"{text!r}: {opt} has no choice {bad}")
    assert problems == [], problems


def test_every_dlverify_example_without_placeholders_parses():
    from dlverify.cli import build_parser

    parser = build_parser()
    concrete = [
        t
        for t in _dlverify_mentions(inline=False)  # inline spans are fragments ("check --format json")
        if not re.search(r"[\[\]|<>…]|\.\.\.|\b[A-Z]{2,}\b", t)
        and not all(re.fullmatch(r"[a-z]+", w) for w in t.split())  # a command's name, not an example
    ]
    assert concrete, "no concrete example found"
    for text in concrete:
        try:
            parser.parse_args(shlex.split(text)[1:])
        except SystemExit as exc:
            raise AssertionError(f"the README's `{text}` does not parse (exit {exc.code})") from None
