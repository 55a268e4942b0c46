"""Tests of the offline mirror builder (tools/harness/mirror.py) and its stand-ins.

The end-to-end build uses small wheels made here (same member paths as NVIDIA's) so that it needs no
download; it still runs the real dpkg-deb, dpkg-scanpackages and gpg, and checks the result with gpgv,
the way apt does.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MIRROR_PY = REPO / "tools" / "harness" / "mirror.py"


def load_mirror():
    spec = importlib.util.spec_from_file_location("dlv_harness_mirror", MIRROR_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


mirror = load_mirror()

needs_debian_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dpkg-deb", "dpkg-scanpackages", "gpg", "gpgv")),
    reason="needs dpkg-dev, gnupg and gpgv (apt-get install dpkg-dev gnupg)",
)

EXPECTED_PACKAGES = {
    "cuda-keyring": "1.1-1",
    "nvidia-driver-535": "535.54.03-0ubuntu1",
    "nvidia-driver-535-open": "535.54.03-0ubuntu1",
    "nvidia-headless-535": "535.54.03-0ubuntu1",
    "nvidia-headless-535-open": "535.54.03-0ubuntu1",
    "nvidia-headless-no-dkms-535": "535.54.03-0ubuntu1",
    "nvidia-headless-no-dkms-535-open": "535.54.03-0ubuntu1",
    "xserver-xorg-video-nvidia-535": "535.54.03-0ubuntu1",
    "nvidia-dkms-535": "535.54.03-0ubuntu1",
    "nvidia-dkms-535-open": "535.54.03-0ubuntu1",
    "nvidia-utils-535": "535.54.03-0ubuntu1",
    "nvidia-compute-utils-535": "535.54.03-0ubuntu1",
    "libnvidia-compute-535": "535.54.03-0ubuntu1",
    # NVIDIA publishes the fabric manager as X-1, not as the driver's X-0ubuntu1
    "nvidia-fabricmanager-535": "535.54.03-1",
    "cuda-toolkit-12-1": "12.1.1-1",
    "libcudnn8": "8.9.2.26-1+cuda12.1",
    "libcudnn8-dev": "8.9.2.26-1+cuda12.1",
    "datacenter-gpu-manager-4-core": "1:4.4.1-1",
    "datacenter-gpu-manager-exporter": "4.5.0-1",
}
# Second versions (issue 11), so that a role can move a host up and down: the newer 535 a branch-only pin
# takes, CUDA 12.1's first release, and cuDNN with the suffixes NVIDIA really publishes
# (hwspec/data/cudnn.yaml apt_builds: 8.9.7 exists for CUDA 12 only as +cuda12.2, never +cuda12.1).
SECOND_VERSIONS = {
    *(
        (name, version.replace("535.54.03", "535.104.05"))
        for name, version in EXPECTED_PACKAGES.items()
        if version.startswith("535.54.03")
    ),
    ("cuda-toolkit-12-1", "12.1.0-1"),
    ("cuda-toolkit-12-2", "12.2.2-1"),
    *(
        (name, version)
        for name in ("libcudnn8", "libcudnn8-dev")
        for version in ("8.9.2.26-1+cuda11.8", "8.9.7.29-1+cuda11.8", "8.9.7.29-1+cuda12.2")
    ),
}

FAKE_PTXAS = b"""#!/bin/sh
echo "ptxas: NVIDIA (R) Ptx optimizing assembler"
echo "Copyright (c) 2005-2023 NVIDIA Corporation"
echo "Cuda compilation tools, release 12.1, V12.1.105"
"""
FAKE_CUDNN_VERSION_H = b"#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 9\n#define CUDNN_PATCHLEVEL 2\n"


def make_wheel(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    """A harness cache whose wheel dir already holds look-alikes of NVIDIA's three wheels."""
    cache = tmp_path / "cache"
    wheels = cache / "wheels"
    wheels.mkdir(parents=True)
    tag = "py3-none-manylinux1_x86_64.whl"
    make_wheel(
        wheels / f"nvidia_cuda_nvcc_cu12-12.1.105-{tag}",
        {
            "nvidia/__init__.py": b"",
            "nvidia/cuda_nvcc/bin/ptxas": FAKE_PTXAS,
            "nvidia/cuda_nvcc/include/crt/host_config.h": b"/* crt */\n",
            "nvidia/cuda_nvcc/nvvm/lib64/libnvvm.so": b"not needed",
        },
    )
    make_wheel(
        wheels / f"nvidia_cuda_runtime_cu12-12.1.105-{tag}",
        {
            "nvidia/cuda_runtime/lib/libcudart.so.12": b"\x7fELF cudart",
            "nvidia/cuda_runtime/include/cuda_runtime.h": b"/* cuda_runtime */\n",
        },
    )
    make_wheel(
        wheels / f"nvidia_cudnn_cu12-8.9.2.26-{tag}",
        {
            "nvidia/cudnn/lib/libcudnn.so.8": b"\x7fELF cudnn",
            "nvidia/cudnn/lib/libcudnn_cnn_infer.so.8": b"big and not needed",
            "nvidia/cudnn/include/cudnn.h": b'#include "cudnn_version.h"\n',
            "nvidia/cudnn/include/cudnn_version.h": FAKE_CUDNN_VERSION_H,
            "nvidia/cudnn/include/cudnn_version_v8.h": FAKE_CUDNN_VERSION_H,
        },
    )
    monkeypatch.setenv("DLV_HARNESS_CACHE", str(cache))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("DLV_MIRROR_PORT", str(sock.getsockname()[1]))
    return cache


def parse_packages(text: str) -> list[dict[str, str]]:
    stanzas = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith(" ") and key:
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(": ")
                fields[key] = value
        stanzas.append(fields)
    return stanzas


# --- pure parts -------------------------------------------------------------------------------------------


def test_control_labels_the_package_as_a_stand_in():
    spec = mirror.DebSpec(
        "nvidia-utils-535",
        "535.54.03-0ubuntu1",
        "NVIDIA driver support binaries",
        depends=["a (= 1)", "b"],
        details="line one\n\nline three",
    )
    control = spec.control(12)
    assert "Package: nvidia-utils-535\n" in control
    assert "Depends: a (= 1), b\n" in control
    assert "Description: NVIDIA driver support binaries (STAND-IN)\n" in control
    assert " STAND-IN built by the dlverify test harness, not NVIDIA's package.\n" in control
    # an empty description line must be " ." or dpkg rejects the control file
    assert "\n .\n line three\n" in control
    assert control.endswith("\n")


# The unit NVIDIA's CUDA repository and Ubuntu's archive ship in nvidia-compute-utils-535 (issue 11): static,
# stopped when unneeded, and started WITHOUT persistence mode. The stand-in must not be kinder than this.
REAL_PERSISTENCED_UNIT = {
    "Unit": {
        "Description": "NVIDIA Persistence Daemon",
        "Wants": "syslog.target",
        "StopWhenUnneeded": "true",
        "Before": "systemd-backlight@backlight:nvidia_0.service",
    },
    "Service": {
        "Type": "forking",
        "ExecStart": "/usr/bin/nvidia-persistenced --user nvidia-persistenced"
        " --no-persistence-mode --verbose",
        "ExecStopPost": "/bin/rm -rf /var/run/nvidia-persistenced",
    },
}


def parse_unit(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return sections


def test_persistenced_stand_in_unit_is_the_real_one():
    unit = (REPO / "tools" / "harness" / "standins" / "nvidia-persistenced.service").read_text()
    assert parse_unit(unit) == REAL_PERSISTENCED_UNIT


def test_stand_in_daemon_forks_and_keeps_its_arguments(tmp_path):
    """Both stand-in units are Type=forking, like the real ones: the parent must return, a child must stay."""
    for template in ("daemon.sh.in", "daemon.service.in"):
        text = (REPO / "tools" / "harness" / "standins" / template).read_text()
        assert "exec sleep infinity" not in text
    assert "Type=forking" in (REPO / "tools" / "harness" / "standins" / "daemon.service.in").read_text()
    daemon = tmp_path / "nvidia-persistenced"
    files = mirror.daemon_package_files("p", "nvidia-persistenced", "x.service", "d", "")
    daemon.write_bytes(files["/usr/bin/nvidia-persistenced"])
    daemon.chmod(0o755)
    done = subprocess.run(
        [str(daemon), "--persistence-mode", "--verbose"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert "arguments: --persistence-mode --verbose" in done.stdout
    found = subprocess.run(["pgrep", "-f", f"{daemon} --persistence-mode"], capture_output=True, text=True)
    pids = found.stdout.split()
    try:
        assert pids, "the forked child is not running"
        cmdline = Path(f"/proc/{pids[0]}/cmdline").read_bytes().split(b"\0")
        assert b"--persistence-mode" in cmdline
    finally:
        for pid in pids:
            os.kill(int(pid), 15)


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


needs_gpg = pytest.mark.skipif(not shutil.which("gpg"), reason="needs gnupg (apt-get install gnupg)")


@pytest.fixture(autouse=True)
def _no_gpg_agent_left(tmp_path: Path):
    """Every GnuPG home a test made (keys generated, repositories signed) has its gpg-agent stopped after it:
    no daemon outlives the test run."""
    yield
    if shutil.which("gpgconf"):
        for home in tmp_path.rglob("gnupg"):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


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
def test_key_fingerprints_are_the_primary_keys_not_the_subkeys(tmp_path):
    home = tmp_path / "gnupg"
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
    (www / "miniconda" / mirror.MINICONDA_NAME).write_bytes(b"#!/bin/sh\n")
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


# --- the real build -----------------------------------------------------------------------------------------


@needs_debian_tools
def test_build_makes_a_signed_flat_repo_apt_can_verify(fake_cache, tmp_path, capsys):
    assert mirror.main(["build"]) == 0
    www = fake_cache / "mirror" / "www"
    keyring = www / "keys" / "dlv-mirror.gpg"
    assert (www / "keys" / "dlv-mirror.asc").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")

    for distro in ("ubuntu2204", "debian12"):
        repo = www / "cuda" / "repos" / distro / "x86_64"
        # the signatures verify against the published key, as apt's signed-by does
        for args in (["InRelease"], ["Release.gpg", "Release"]):
            done = subprocess.run(
                ["gpgv", "--keyring", str(keyring), *args],
                cwd=repo,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        # Release vouches for the Packages file apt will read
        release = (repo / "Release").read_text()
        packages_bytes = (repo / "Packages").read_bytes()
        assert f" {hashlib.sha256(packages_bytes).hexdigest()} " in release
        assert gzip.decompress((repo / "Packages.gz").read_bytes()) == packages_bytes

        every = parse_packages(packages_bytes.decode())
        assert {(s["Package"], s["Version"]) for s in every} == set(
            EXPECTED_PACKAGES.items()
        ) | SECOND_VERSIONS
        assert len(every) == len(EXPECTED_PACKAGES) + len(SECOND_VERSIONS)
        stanzas = {
            s["Package"]: s for s in every if (s["Package"], s["Version"]) in EXPECTED_PACKAGES.items()
        }
        for stanza in every:
            assert (
                "STAND-IN built by the dlverify test harness, not NVIDIA's package." in stanza["Description"]
            )
            assert (repo / stanza["Filename"]).is_file()
        assert stanzas["cuda-keyring"]["Architecture"] == "all"
        assert stanzas["libcudnn8-dev"]["Depends"] == "libcudnn8 (= 8.9.2.26-1+cuda12.1)"
        newer = {s["Package"]: s for s in every if s["Version"] == "535.104.05-0ubuntu1"}
        assert "nvidia-compute-utils-535 (= 535.104.05-0ubuntu1)" in newer["nvidia-driver-535"]["Depends"]
        assert ("nvidia-fabricmanager-535", "535.104.05-1") in {(s["Package"], s["Version"]) for s in every}
        dev_797 = next(
            s for s in every if (s["Package"], s["Version"]) == ("libcudnn8-dev", "8.9.7.29-1+cuda12.2")
        )
        assert dev_797["Depends"] == "libcudnn8 (= 8.9.7.29-1+cuda12.2)"

    # Grafana Labs' package as a labelled stand-in in a signed repository of its own
    grafana = www / "grafana" / "deb"
    assert (
        subprocess.run(["gpgv", "--keyring", str(keyring), "InRelease"], cwd=grafana, check=False).returncode
        == 0
    )
    (stanza,) = parse_packages((grafana / "Packages").read_text())
    assert (stanza["Package"], stanza["Version"]) == ("grafana", "9.4.7")
    assert "not Grafana Labs' package" in stanza["Description"]
    contents = subprocess.run(
        ["dpkg-deb", "-c", str(grafana / stanza["Filename"])], capture_output=True, text=True, check=True
    ).stdout
    for path in (
        "./lib/systemd/system/grafana-server.service",
        "./etc/default/grafana-server",
        "./etc/grafana/grafana.ini",
        "./usr/sbin/grafana-server",
    ):
        assert path in contents
    exporter = subprocess.run(
        ["dpkg-deb", "-c", str(next(repo.glob("datacenter-gpu-manager-exporter_*.deb")))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "./lib/systemd/system/nvidia-dcgm-exporter.service" in exporter
    assert "./etc/dcgm-exporter/default-counters.csv" in exporter

    # the harness's own test packages: both versions, signed the same way, not labelled as stand-ins
    harness = www / "harness"
    assert (
        subprocess.run(["gpgv", "--keyring", str(keyring), "InRelease"], cwd=harness, check=False).returncode
        == 0
    )
    assert "Origin: dlverify-harness\n" in (harness / "Release").read_text()
    stanzas = parse_packages((harness / "Packages").read_text())
    assert sorted((s["Package"], s["Version"]) for s in stanzas) == [
        (name, version)
        for name in ("dlv-holdtest", "dlv-test-free", "dlv-test-pinned")
        for version in ("1.0", "2.0")
    ]
    assert not any("STAND-IN" in s["Description"] for s in stanzas)

    # Ubuntu's archive as it is now: every *-535 transitional, pointing at *-580
    archive = www / "ubuntu-archive"
    assert subprocess.run(["gpgv", "--keyring", str(keyring), "InRelease"], cwd=archive).returncode == 0
    stanzas = {(s["Package"], s["Version"]): s for s in parse_packages((archive / "Packages").read_text())}
    transitional = stanzas[("nvidia-driver-535", "535.309.01-0ubuntu0.22.04.2")]
    assert "transitional" in transitional["Description"].lower()
    assert transitional["Depends"] == "nvidia-driver-580 (>= 580)"
    assert ("nvidia-fabricmanager-580", "580.95.05-0ubuntu0.22.04.1") in stanzas

    repo = www / "cuda" / "repos" / "debian12" / "x86_64"
    # cuda-keyring ships exactly the key the repo is signed with
    root = tmp_path / "keyring-pkg"
    subprocess.run(["dpkg-deb", "-x", str(next(repo.glob("cuda-keyring_*.deb"))), str(root)], check=True)
    assert (root / "usr/share/keyrings/cuda-archive-keyring.gpg").read_bytes() == keyring.read_bytes()

    # the toolkit carries the wheel's files, and the stand-in nvcc reports ptxas's release
    root = tmp_path / "toolkit"
    subprocess.run(
        ["dpkg-deb", "-x", str(next(repo.glob("cuda-toolkit-12-1_12.1.1-1_*.deb"))), str(root)], check=True
    )
    cuda = root / "usr/local/cuda-12.1"
    assert (cuda / "lib64/libcudart.so.12.1.105").read_bytes() == b"\x7fELF cudart"
    assert os.readlink(cuda / "lib64/libcudart.so.12") == "libcudart.so.12.1.105"
    assert (cuda / "include/cuda_runtime.h").is_file() and (cuda / "include/crt/host_config.h").is_file()
    assert not list(root.rglob("libnvvm.so")), "only the needed files are taken from the wheels"
    version = subprocess.run(
        [str(cuda / "bin/nvcc"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.splitlines()[0].startswith("nvcc: STAND-IN")
    assert "Cuda compilation tools, release 12.1, V12.1.105" in version.stdout
    assert subprocess.run([str(cuda / "bin/nvcc"), "x.cu"], capture_output=True, check=False).returncode == 1
    assert json.loads((cuda / "version.json").read_text())["cuda"]["version"] == "12.1.1"

    # the other minor's stand-in lives under /usr/local/cuda-12.2, with its own linker entry and alternatives
    root = tmp_path / "toolkit-12-2"
    subprocess.run(["dpkg-deb", "-x", str(next(repo.glob("cuda-toolkit-12-2_*.deb"))), str(root)], check=True)
    assert (root / "etc/ld.so.conf.d/988_cuda-12-2.conf").read_text() == "/usr/local/cuda-12.2/lib64\n"
    assert json.loads((root / "usr/local/cuda-12.2/version.json").read_text())["cuda"]["version"] == "12.2.2"
    assert not (root / "usr/local/cuda-12.1").exists()
    control = subprocess.run(
        ["dpkg-deb", "-e", str(next(repo.glob("cuda-toolkit-12-2_*.deb"))), str(tmp_path / "ctl-12-2")],
        check=True,
    )
    assert control.returncode == 0
    postinst = (tmp_path / "ctl-12-2" / "postinst").read_text()
    assert "update-alternatives --install /usr/local/cuda cuda /usr/local/cuda-12.2 122\n" in postinst
    assert "12.1" not in postinst

    # the persistence daemon's unit is a copy of the real one, installed where Ubuntu's package puts it
    root = tmp_path / "compute-utils"
    subprocess.run(
        ["dpkg-deb", "-x", str(next(repo.glob("nvidia-compute-utils-535_535.54.03-*.deb"))), str(root)],
        check=True,
    )
    installed = (root / "lib/systemd/system/nvidia-persistenced.service").read_text()
    assert parse_unit(installed) == REAL_PERSISTENCED_UNIT
    assert os.access(root / "usr/bin/nvidia-persistenced", os.X_OK)
    driver = next(
        s
        for s in parse_packages((repo / "Packages").read_text())
        if (s["Package"], s["Version"]) == ("nvidia-driver-535", "535.54.03-0ubuntu1")
    )
    assert "nvidia-compute-utils-535 (= 535.54.03-0ubuntu1)" in driver["Depends"]

    root = tmp_path / "cudnn-dev"
    subprocess.run(
        ["dpkg-deb", "-x", str(next(repo.glob("libcudnn8-dev_8.9.2.26-1+cuda12.1_*.deb"))), str(root)],
        check=True,
    )
    assert (root / "usr/include/cudnn_version.h").read_bytes() == FAKE_CUDNN_VERSION_H
    assert not (root / "usr/include/cudnn_version_v8.h").exists()
    # the 8.9.7 stand-in's header says 8.9.7 (the role's tests read it), its library is named for 8.9.7
    root = tmp_path / "cudnn-797"
    for deb in repo.glob("libcudnn8*_8.9.7.29-1+cuda12.2_amd64.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    header = (root / "usr/include/cudnn_version.h").read_text()
    assert "#define CUDNN_PATCHLEVEL 7\n" in header and "STAND-IN" in header
    assert os.readlink(root / "usr/lib/x86_64-linux-gnu/libcudnn.so.8") == "libcudnn.so.8.9.7"

    # a second build with the same inputs changes nothing; --force keeps the key
    capsys.readouterr()
    fingerprint = mirror.Gpg(fake_cache / "mirror" / "gnupg").fingerprint()
    assert mirror.main(["build"]) == 0
    assert "is up to date" in capsys.readouterr().out
    assert mirror.main(["build", "--force"]) == 0
    assert mirror.Gpg(fake_cache / "mirror" / "gnupg").fingerprint() == fingerprint

    # env prints the contract's exports, with the installer's real sha256
    capsys.readouterr()
    assert mirror.main(["env"]) == 0
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in capsys.readouterr().out.splitlines()
    )
    port = os.environ["DLV_MIRROR_PORT"]
    assert exports["DLV_MIRROR_URL"] == f"http://127.0.0.1:{port}"
    assert exports["DLV_MIRROR_CUDA_REPO"] == f"'http://127.0.0.1:{port}/cuda/repos/{{distro}}/x86_64/'"
    assert exports["DLV_MIRROR_KEY_URL"].endswith("/keys/dlv-mirror.asc")
    assert exports["DLV_MIRROR_KEY_FINGERPRINT"] == fingerprint
    installer = www / "miniconda" / "Miniconda3-py310_23.5.2-0-Linux-x86_64.sh"
    assert exports["DLV_MINICONDA_URL"].endswith("/miniconda/" + installer.name)
    assert exports["DLV_MINICONDA_SHA256"] == hashlib.sha256(installer.read_bytes()).hexdigest()
    assert exports["DLV_PIP_INDEX_URL"] == "''"
    assert exports["DLV_MIRROR_HARNESS_REPO"] == f"http://127.0.0.1:{port}/harness/"
    assert exports["DLV_MIRROR_UBUNTU_ARCHIVE"] == f"http://127.0.0.1:{port}/ubuntu-archive/"

    # serve, fetch over HTTP; two runners share the server and the last one stops it
    other_runner = subprocess.Popen(["sleep", "120"])
    try:
        assert mirror.main(["serve", "--user", str(os.getpid())]) == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/keys/dlv-mirror.asc", timeout=5) as resp:
            assert resp.read() == (www / "keys" / "dlv-mirror.asc").read_bytes()
        server = mirror.serving_pid()
        assert mirror.main(["serve", "--user", str(other_runner.pid)]) == 0
        assert mirror.serving_pid() == server  # no second server
        capsys.readouterr()
        assert mirror.main(["build", "--force"]) == 1  # no swapping the tree under a running test
        assert "in use by runner(s)" in capsys.readouterr().err
        assert mirror.main(["stop", "--user", str(os.getpid())]) == 0
        assert mirror.serving_pid() == server  # the other runner still uses it
        other_runner.kill()
        other_runner.wait()
        assert mirror.main(["stop", "--user", str(os.getpid())]) == 0  # its claim died with it
        assert mirror.serving_pid() is None
    finally:
        other_runner.kill()
        mirror.main(["stop"])
    assert mirror.serving_pid() is None


# --- the Miniconda and conda stand-ins ---------------------------------------------------------------


def test_miniconda_installer_and_conda_stand_in(tmp_path):
    installer = tmp_path / "Miniconda3.sh"
    installer.write_bytes(mirror.miniconda_installer())
    head = installer.read_text().splitlines()[1]
    assert "STAND-IN Miniconda3 installer" in head
    prefix = tmp_path / "mc"

    def sh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, check=False)

    assert sh("bash", str(installer), "-b", "-p", str(prefix)).returncode == 0
    again = sh("bash", str(installer), "-b", "-p", str(prefix))
    assert again.returncode == 1 and "use the -u option" in again.stderr
    assert sh("bash", str(installer), "-b", "-u", "-p", str(prefix)).returncode == 0
    assert sh("bash", str(installer), "-p", str(tmp_path / "other")).returncode == 2  # batch mode only

    conda = str(prefix / "bin" / "conda")
    version = sh(conda, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "conda 23.5.2"
    assert "STAND-IN" in version.stderr

    assert sh(conda, "config", "--set", "auto_activate_base", "false").returncode == 0
    created = sh(conda, "create", "-y", "-n", "dl", "python=3.10", "pip", "-c", "conda-forge")
    assert created.returncode == 0, created.stderr
    env = prefix / "envs" / "dl"
    assert (env / "conda-meta").is_dir()
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert ("WARNING" in created.stderr) == (host != "3.10")

    envs = json.loads(sh(conda, "env", "list", "--json").stdout)["envs"]
    assert envs == [str(prefix), str(env)]
    info = json.loads(sh(conda, "info", "--json").stdout)
    assert info["conda_version"] == "23.5.2" and info["root_prefix"] == str(prefix)
    assert info["envs_dirs"] == [str(prefix / "envs")] and "STAND-IN" in info["dlverify_stand_in"]

    ran = sh(conda, "run", "-n", "dl", "python", "-c", "import sys; print(sys.prefix)")
    assert ran.returncode == 0 and ran.stdout.strip() == str(env)
    listed = json.loads(sh(conda, "list", "-n", "dl", "--json").stdout)
    assert "pip" in {p["name"] for p in listed}

    for args in (
        ["install", "-y", "-n", "dl", "pytorch"],
        ["create", "-y", "-n", "x", "python=3.10", "pytorch"],
    ):
        refused = sh(conda, *args)
        assert refused.returncode == 1
        assert "stand-in conda cannot fetch packages from channels" in refused.stderr
    assert not (prefix / "envs" / "x").exists()

    env_file = tmp_path / "env.yml"
    env_file.write_text("name: fromfile\nchannels: [pytorch]\ndependencies:\n  - python=3.10\n  - pytorch\n")
    refused = sh(conda, "env", "create", "-f", str(env_file))
    assert refused.returncode == 1 and "cannot fetch" in refused.stderr
    env_file.write_text("name: fromfile\ndependencies:\n  - python=3.10\n  - pip\n")
    assert sh(conda, "env", "create", "-f", str(env_file)).returncode == 0
    assert (prefix / "envs" / "fromfile" / "bin" / "python").exists()

    assert sh(conda, "env", "remove", "-n", "fromfile").returncode == 0
    assert not (prefix / "envs" / "fromfile").exists()
    assert sh(conda, "frobnicate").returncode == 2


def test_grafana_stand_in_runs_in_the_foreground_as_its_type_simple_unit_needs(tmp_path):
    """Grafana's unit is Type=simple: a server that forked and exited would be seen as stopped by systemd
    (and restarted by every converge: the idempotence failure this test was written after)."""
    spec = mirror.grafana_spec()
    unit = spec.files["/lib/systemd/system/grafana-server.service"]
    assert b"Type=simple" in (unit if isinstance(unit, bytes) else unit.read_bytes())
    server = tmp_path / "grafana-server"
    server.write_bytes(spec.files["/usr/sbin/grafana-server"])  # type: ignore[arg-type]
    server.chmod(0o755)
    proc = subprocess.Popen([str(server), "--config=/etc/grafana/grafana.ini"], stdout=subprocess.PIPE)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.5)
        assert proc.poll() is None, "the stand-in server exited: systemd would see a Type=simple unit stop"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@needs_debian_tools
def test_prometheus_release_stand_in_has_the_upstream_layout(tmp_path: Path) -> None:
    """The release-tarball stand-in repackages Debian's prometheus binaries as upstream's tarball
    (prometheus-X.linux-amd64/{prometheus,promtool,...}) with sha256sums.txt, and says it is a stand-in."""
    import tarfile

    import mirror_releases

    pkg = tmp_path / "pkg"
    for name in ("prometheus", "promtool"):
        exe = pkg / "usr" / "bin" / name
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text(f"#!/bin/sh\necho {name}\n")
        exe.chmod(0o755)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN" / "control").write_text(
        "Package: prometheus\nVersion: 2.42.0+ds-5+b5\nArchitecture: amd64\n"
        "Maintainer: t <t@t>\nDescription: t\n"
    )
    deb = tmp_path / "prometheus_2.42.0+ds-5+b5_amd64.deb"
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(deb)], check=True, capture_output=True)

    version, tarball = mirror_releases.prometheus_tarball(deb, tmp_path / "www" / "prometheus")
    assert version == "2.42.0"
    assert (
        tarball == tmp_path / "www/prometheus/releases/download/v2.42.0/prometheus-2.42.0.linux-amd64.tar.gz"
    )
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        top = "prometheus-2.42.0.linux-amd64"
        assert {f"{top}/prometheus", f"{top}/promtool", f"{top}/DLVERIFY-STAND-IN"} <= set(members)
        assert members[f"{top}/prometheus"].mode & 0o111
        assert tar.extractfile(f"{top}/promtool").read() == b"#!/bin/sh\necho promtool\n"
        assert b"STAND-IN" in tar.extractfile(f"{top}/DLVERIFY-STAND-IN").read()
    digest, name = (tarball.parent / "sha256sums.txt").read_text().split()
    assert name == tarball.name and digest == hashlib.sha256(tarball.read_bytes()).hexdigest()
