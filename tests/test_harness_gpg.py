"""The mirror's signing key in a deep cache dir (tools/harness/mirror_apt.py ``Gpg``).

gpg-agent puts its sockets in the GnuPG home where /run/user/UID does not exist, and a socket path is limited
to 107 bytes: under a pytest-xdist worker's tmp dir the mirror build failed with "No agent running". A long
home is reached through a short symlink; the key still lives in the home the caller named.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "harness"))

from mirror_apt import Gpg


@pytest.mark.skipif(not shutil.which("gpg"), reason="needs gnupg")
def test_a_deep_gnupg_home_makes_and_exports_the_key_and_leaves_no_link(tmp_path: Path) -> None:
    home = tmp_path / ("d" * 60) / ("e" * 60) / "gnupg"
    gpg = Gpg(home)
    try:
        fpr = gpg.ensure_key()
        link = Path(gpg.homedir)
        assert link != home and link.is_symlink() and link.resolve() == home.resolve()
        assert len(fpr) == 40 and gpg.fingerprint() == fpr
        assert gpg.export(armor=True).startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    finally:
        gpg.close()
    assert (home / "pubring.kbx").is_file(), "the key belongs in the home the caller named"
    assert not link.exists() and not link.is_symlink()
    assert Gpg(home).fingerprint() == fpr, "a second build finds the same key"


def test_a_short_home_is_used_as_is(tmp_path: Path) -> None:
    home = tmp_path / "g"
    assert len(str(home)) < 80
    assert Gpg(home).homedir == str(home)
