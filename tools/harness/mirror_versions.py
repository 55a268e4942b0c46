"""The second versions of the CUDA repository's packages, derived from the first (catalogue.yaml's
``second_versions``), so that the roles can move a host up and down (issue 11).

NVIDIA's repository holds every release of a branch side by side, and a spec change in either direction
must converge: the driver's newer 535 (the newest a branch-only pin takes), CUDA 12.1's first release, a
second CUDA minor, and cuDNN 8.9.7 and the CUDA 11 builds with the "+cuda" suffixes NVIDIA really publishes,
read from the same data lint and the role use (hwspec/data/cudnn.yaml). The copies carry the first versions'
files.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from mirror_apt import STAND_IN_LINE, DebSpec
from mirror_catalogue import Catalogue, catalogue
from mirror_common import HERE, MirrorError

CUDNN_DATA = HERE.parent.parent / "hwspec" / "data" / "cudnn.yaml"


def cudnn_suffixes() -> dict[str, dict[str, str]]:
    """``apt_builds`` of hwspec/data/cudnn.yaml: cuDNN release -> {CUDA major: the +cuda suffix's M.N}."""
    try:
        import yaml
    except ImportError as exc:  # Debian: python3-yaml
        raise MirrorError(
            "mirror: reading hwspec/data/cudnn.yaml needs PyYAML (apt-get install python3-yaml)"
        ) from exc
    data = yaml.safe_load(CUDNN_DATA.read_text())
    return {str(k): {str(m): str(b) for m, b in v.items()} for k, v in data["apt_builds"].items()}


def cudnn_version_header(release: str) -> bytes:
    major, minor, patch = release.split(".")
    return (
        f"/* {STAND_IN_LINE} cuDNN {release}'s version numbers only. */\n"
        f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR {minor}\n#define CUDNN_PATCHLEVEL {patch}\n"
        "#define CUDNN_VERSION (CUDNN_MAJOR * 1000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)\n"
    ).encode()


def other_minor_toolkit(toolkit: DebSpec, minor: str, version: str) -> DebSpec:
    """cuda-toolkit-12-2 12.2.2-1: the 12.1 stand-in moved to /usr/local/cuda-12.2 (its ld.so.conf.d entry and
    alternatives too), for the test that a CUDA minor change leaves no old toolkit behind. Same NVIDIA files
    (ptxas says 12.1); version.json says 12.2.2."""
    dashed, prio = minor.replace(".", "-"), minor.replace(".", "")

    def move(text: str) -> str:
        return (
            text.replace("cuda-12.1", f"cuda-{minor}")
            .replace("cuda-12-1", f"cuda-{dashed}")
            .replace(" 121", f" {prio}")
        )

    files: dict[str, bytes | Path] = {}
    for path, content in toolkit.files.items():
        if path.endswith("/version.json") and isinstance(content, bytes):
            doc = json.loads(content)
            doc["cuda"]["version"] = version.split("-")[0]
            content = json.dumps(doc, indent=3).encode() + b"\n"
        elif path.endswith(".conf") and isinstance(content, bytes):
            content = move(content.decode()).encode()
        files[move(path)] = content
    return replace(
        toolkit,
        name=f"cuda-toolkit-{dashed}",
        version=version,
        summary=f"CUDA Toolkit {minor} meta-package",
        details=toolkit.details
        + f"\nA second minor for the harness: the 12.1 stand-in's files under cuda-{minor}.",
        files=files,
        modes={move(k): v for k, v in toolkit.modes.items()},
        symlinks={move(k): v for k, v in toolkit.symlinks.items()},
        maintainer_scripts={k: move(v) for k, v in toolkit.maintainer_scripts.items()},
    )


def second_version_specs(specs: list[DebSpec], cat: Catalogue | None = None) -> list[DebSpec]:
    """Copies of `specs` (the cuda repository's packages) at the other versions: driver 535.104.05 (each
    package, with its exact dependencies), cuda-toolkit-12-1 12.1.0-1, cuda-toolkit-12-2, and libcudnn8/-dev
    for every (release, CUDA major) of cudnn_builds with the data's suffix. The copies carry the same NVIDIA
    files as the originals (the 12.1.1 toolkit's, cuDNN 8.9.2's library); version.json and cudnn_version.h say
    their own version."""
    cat = cat or catalogue()
    second, upstream = cat.second_versions, cat.vars["driver_upstream"]
    out: list[DebSpec] = []
    for spec in specs:
        if spec.version in (cat.vars["driver"], cat.vars["fabricmanager"]):
            out.append(
                replace(
                    spec,
                    version=spec.version.replace(upstream, second.driver_upstream),
                    depends=[d.replace(upstream, second.driver_upstream) for d in spec.depends],
                )
            )
        elif spec.name == "cuda-toolkit-12-1":
            files = dict(spec.files)
            version_json = "/usr/local/cuda-12.1/version.json"
            current = files[version_json]
            doc = json.loads(current if isinstance(current, bytes) else current.read_bytes())
            doc["cuda"]["version"] = second.cuda_toolkit_older.split("-")[0]
            files[version_json] = json.dumps(doc, indent=3).encode() + b"\n"
            out.append(replace(spec, version=second.cuda_toolkit_older, files=files))
            out.append(other_minor_toolkit(spec, *second.other_minor))
    base = {s.name: s for s in specs if s.name in ("libcudnn8", "libcudnn8-dev")}
    suffixes = cudnn_suffixes()
    libdir = cat.vars["libdir"]
    carried = cat.wheels["cudnn"].version.rsplit(".", 1)[0]  # the release whose files the packages carry
    for release, build in second.cudnn_builds.items():
        for major, suffix in sorted(suffixes[release].items()):
            version = f"{build}-1+cuda{suffix}"
            if version == cat.vars["cudnn"]:
                continue  # the catalogue has it
            lib, dev = base["libcudnn8"], base["libcudnn8-dev"]
            so = lib.files[f"{libdir}/libcudnn.so.{carried}"]
            note = f"\nA second version for the harness: cuDNN {build} for CUDA {major}.x with {carried}'s"
            note += " files."
            out.append(
                replace(
                    lib,
                    version=version,
                    details=lib.details + note,
                    files={f"{libdir}/libcudnn.so.{release}": so},
                    symlinks={f"{libdir}/libcudnn.so.8": f"libcudnn.so.{release}"},
                )
            )
            dev_files = dict(dev.files)
            if release != carried:
                dev_files["/usr/include/cudnn_version.h"] = cudnn_version_header(release)
            out.append(
                replace(
                    dev,
                    version=version,
                    depends=[f"libcudnn8 (= {version})"],
                    details=dev.details + note + " cudnn_version.h says its own version.",
                    files=dev_files,
                )
            )
    return out
