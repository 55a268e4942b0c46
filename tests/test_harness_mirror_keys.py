"""The mirror's signed-repository pieces and its command (tools/harness/mirror.py): Release hashes, the pip
index, the key's fingerprint, and what `env` says before and after a build."""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness_mirror import kill_gpg_agents, load_mirror, needs_gpg

mirror = load_mirror()


@pytest.fixture
def gpg_home(tmp_path: Path) -> Iterator[Path]:
    """A GnuPG home for make_keys; its gpg-agent is stopped after the test."""
    yield tmp_path / "gnupg"
    kill_gpg_agents(tmp_path)


def test_release_lists_the_true_hashes_and_sizes(tmp_path):
    (tmp_path / "Packages").write_bytes(b"Package: x\n")
    (tmp_path / "Packages.gz").write_bytes(gzip.compress(b"Package: x\n"))
    text = mirror.release_text(tmp_path, ["Packages", "Packages.gz"], date=0)
    assert "Date: Thu, 01 Jan 1970 00:00:00 GMT" in text
    sha_section = text.split("SHA256:\n", 1)[1]
    for name in ("Packages", "Packages.gz"):
        data = (tmp_path / name).read_bytes()
        assert re.search(
            rf"^ {hashlib.sha256(data).hexdigest()} +{len(data)} {re.escape(name)}$", sha_section, re.M
        )


def test_pip_index_is_pep503(tmp_path):
    wheels = tmp_path / "w"
    wheels.mkdir()
    (wheels / "Foo_Bar-1.0-py3-none-any.whl").write_bytes(b"one")
    (wheels / "foo.bar-2.0-py3-none-any.whl").write_bytes(b"two")
    (wheels / "torch-2.1.0-cp310-cp310-linux_x86_64.whl").write_bytes(b"three")
    assert mirror.write_pip_index(wheels, tmp_path / "simple") == 2
    page = (tmp_path / "simple" / "foo-bar" / "index.html").read_text()
    assert f'href="Foo_Bar-1.0-py3-none-any.whl#sha256={hashlib.sha256(b"one").hexdigest()}"' in page
    assert "foo.bar-2.0-py3-none-any.whl" in page
    assert (tmp_path / "simple" / "foo-bar" / "Foo_Bar-1.0-py3-none-any.whl").read_bytes() == b"one"
    assert 'href="torch/"' in (tmp_path / "simple" / "index.html").read_text()


def test_bad_port_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("DLV_MIRROR_PORT", "http")
    assert mirror.main(["status"]) == 1
    assert "DLV_MIRROR_PORT='http' is not a TCP port number" in capsys.readouterr().err


def test_env_before_build_says_what_to_do(fake_cache, capsys):
    assert mirror.main(["env"]) == 1
    assert "run `mirror.py build` first" in capsys.readouterr().err


def _gpg_test(home: Path, *args: str) -> str:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--passphrase", "", "--pinentry-mode", "loopback", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def make_keys(home: Path, count: int) -> list[str]:
    """`count` fresh ed25519 keys, each with an encryption subkey, in `home`; their primary fingerprints."""
    home.mkdir(mode=0o700, parents=True)
    made: list[str] = []
    for number in range(count):
        uid = f"dlv test {number} <t{number}@example.invalid>"
        _gpg_test(home, "--quick-gen-key", uid, "ed25519", "sign", "never")
        lines = _gpg_test(home, "--with-colons", "--list-secret-keys").splitlines()
        primaries = [lines[i + 1].split(":")[9] for i, line in enumerate(lines) if line.startswith("sec:")]
        fpr = next(f for f in primaries if f not in made)
        _gpg_test(home, "--quick-add-key", fpr, "cv25519", "encr", "never")
        made.append(fpr)
    return made


def export_keys(home: Path, path: Path, *fingerprints: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--armor", "--export", *fingerprints],
            capture_output=True,
            check=True,
        ).stdout
    )
    return path


@needs_gpg
def test_key_fingerprints_are_the_primary_keys_not_the_subkeys(gpg_home, tmp_path):
    home = gpg_home
    first, second = make_keys(home, 2)
    one = export_keys(home, tmp_path / "one.asc", first)
    both = export_keys(home, tmp_path / "both.asc", first, second)
    assert mirror.key_fingerprints(one) == [first]
    assert sorted(mirror.key_fingerprints(both)) == sorted([first, second])
    # an error page where the key should be is an error, not "no fingerprint"
    page = tmp_path / "page.asc"
    page.write_text("<html>404</html>\n")
    with pytest.raises(mirror.MirrorError, match="gpg cannot read the key"):
        mirror.key_fingerprints(page)


@needs_gpg
def test_env_exports_the_served_keys_fingerprint(fake_cache, tmp_path, capsys):
    """The scenarios trust DLV_MIRROR_KEY_FINGERPRINT (.config/molecule/config.yml)."""
    www = fake_cache / "mirror" / "www"
    (www / "miniconda").mkdir(parents=True)
    (www / "miniconda" / mirror.catalogue().miniconda_installer).write_bytes(b"#!/bin/sh\n")
    home = tmp_path / "gnupg"
    first, second = make_keys(home, 2)
    export_keys(home, www / "keys" / "dlv-mirror.asc", first)
    assert mirror.main(["env"]) == 0
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in capsys.readouterr().out.splitlines()
    )
    assert exports["DLV_MIRROR_KEY_FINGERPRINT"] == first
    # a key file of two keys would make the scenarios trust a key the repository is not signed with
    export_keys(home, www / "keys" / "dlv-mirror.asc", first, second)
    assert mirror.main(["env"]) == 1
    assert "holds 2 keys, not one" in capsys.readouterr().err
