"""The offline mirror's real build (tools/harness/mirror.py build): signed flat repositories apt can verify,
every package at its versions, the files the roles rely on, a second build that changes nothing, env, serve.

One build, with look-alikes of NVIDIA's wheels (the fake_cache fixture, tests/conftest.py), run by the real
dpkg-deb, dpkg-scanpackages and gpg, and checked with gpgv the way apt does.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import urllib.request

from harness_mirror import (
    FAKE_CUDNN_VERSION_H,
    REAL_PERSISTENCED_UNIT,
    load_mirror,
    needs_debian_tools,
    parse_packages,
    parse_unit,
)

mirror = load_mirror()

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
