"""Lint passes for the other frameworks: TensorFlow's tested CUDA/cuDNN/Python, and framework names."""

from __future__ import annotations

import difflib

from dlverify.hwspec import compat
from dlverify.hwspec.lint_base import LintOut
from dlverify.results import Status

KNOWN_FRAMEWORKS = (
    "pytorch",
    "torchvision",
    "torchaudio",
    "tensorflow",
    "jax",
    "jaxlib",
    "onnxruntime",
    "tensorrt",
    "triton",
    "xformers",
    "deepspeed",
    "transformers",
    "apex",
    "mxnet",
    "paddlepaddle",
    "keras",
)


def lint_tensorflow(out: LintOut) -> None:
    sw = out.spec.software
    version = sw.frameworks.get("tensorflow")
    if version is None:
        return
    key = "software.frameworks.tensorflow"
    rel = compat.tf_release(version)
    if rel is None:
        out.unknown(
            "spec.tensorflow.release",
            "TensorFlow release",
            key,
            f"TensorFlow {version}",
            "tensorflow",
            version,
        )
        return
    series = compat.major_minor(version)
    built = f"TensorFlow {series} was built and tested with CUDA {rel['cuda']} and cuDNN {rel['cudnn']}"
    if sw.cuda is not None:
        have, want = compat.vkey(sw.cuda), compat.vkey(rel["cuda"])
        if have[:1] != want[:1]:
            out.at("spec.tensorflow.cuda", "TensorFlow vs CUDA", key).fail(
                sw.cuda, rel["cuda"], f"{built}; its wheels do not load CUDA {sw.cuda} libraries"
            )
        elif have[:2] != want[:2]:
            out.at("spec.tensorflow.cuda", "TensorFlow vs CUDA", key).warn(
                sw.cuda, rel["cuda"], f"{built}; CUDA {sw.cuda} is the same major, not the tested version"
            )
        else:
            out.at("spec.tensorflow.cuda", "TensorFlow vs CUDA", key).ok(sw.cuda, rel["cuda"], built)
    if sw.cudnn is not None:
        have, want = compat.vkey(sw.cudnn), compat.vkey(rel["cudnn"])
        if have[:1] != want[:1] or have[:2] < want[:2]:
            out.at("spec.tensorflow.cudnn", "TensorFlow vs cuDNN", key).fail(
                sw.cudnn,
                rel["cudnn"],
                f"{built}; cuDNN {sw.cudnn} is {'another major' if have[:1] != want[:1] else 'older'}",
            )
        elif have[:2] != want[:2]:
            out.at("spec.tensorflow.cudnn", "TensorFlow vs cuDNN", key).warn(
                sw.cudnn, rel["cudnn"], f"{built}; cuDNN {sw.cudnn} is a newer minor than tested"
            )
        else:
            out.at("spec.tensorflow.cudnn", "TensorFlow vs cuDNN", key).ok(sw.cudnn, rel["cudnn"], built)
    if sw.python_env is not None:
        py = compat.major_minor(sw.python_env.python)
        status = Status.PASS if py in rel["python"] else Status.FAIL
        out.at("spec.tensorflow.python", "TensorFlow vs Python", "software.python_env").status(
            status,
            sw.python_env.python,
            ", ".join(rel["python"]),
            ""
            if status is Status.PASS
            else f"TensorFlow {series} has no build for Python {py} (it supports {', '.join(rel['python'])})",
        )


def lint_names(out: LintOut) -> None:
    for name in out.spec.software.frameworks:
        if name in KNOWN_FRAMEWORKS or name == "torch":
            continue
        close = difflib.get_close_matches(name, KNOWN_FRAMEWORKS, n=1, cutoff=0.75)
        if close:
            out.at("spec.frameworks.name", "framework name", f"software.frameworks.{name}").warn(
                name, close[0], f"unknown framework {name!r}; did you mean {close[0]!r}? (not checked)"
            )
