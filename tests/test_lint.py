"""`lint(spec)`: pins that don't fit fail, unknown versions warn, every result names key and file:line."""

from __future__ import annotations

import textwrap

import pytest
from conftest import ROOT

from dlverify.hwspec import load_spec, load_spec_text
from dlverify.hwspec.lint import lint
from dlverify.results import CheckResult, Status


def _lint(text: str) -> dict[str, CheckResult]:
    results = lint(load_spec_text(textwrap.dedent(text).lstrip("\n"), "s.yaml"))
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)), ids
    return {r.id: r for r in results}


def test_seed_notes_example_fails_on_the_two_known_problems() -> None:
    results = lint(load_spec(ROOT / "hwspec" / "examples" / "seed-notes.yaml"))
    fails = {r.id: r for r in results if r.status is Status.FAIL}
    assert set(fails) == {"spec.pytorch.cuda_build", "spec.tensorflow.cuda"}
    torch = fails["spec.pytorch.cuda_build"]
    assert (
        "PyTorch 2.0.0 has no cu121 build" in torch.detail and "cu121 builds start at 2.1.0" in torch.detail
    )
    assert torch.detail.endswith(
        f"(software.frameworks.pytorch at {ROOT}/hwspec/examples/seed-notes.yaml:22)"
    )
    tf = fails["spec.tensorflow.cuda"]
    assert "TensorFlow 2.12 was built and tested with CUDA 11.8 and cuDNN 8.6" in tf.detail
    assert "seed-notes.yaml:23" in tf.detail
    assert all(r.group == "spec" for r in results)


def test_root_spec_is_clean() -> None:
    results = lint(load_spec(ROOT / "hwspec.yaml"))
    assert [r for r in results if r.status is not Status.PASS] == []
    ids = {r.id for r in results}
    assert {
        "spec.cuda.driver",
        "spec.cudnn.cuda",
        "spec.cudnn.package",
        "spec.pytorch.cuda_build",
        "spec.pytorch.python",
        "spec.torchvision.match",
        "spec.torchaudio.match",
        "spec.gpu.driver",
        "spec.gpu.cuda",
    } <= ids


def test_h100_example_only_warns_about_the_os() -> None:
    results = lint(load_spec(ROOT / "hwspec" / "examples" / "h100-sxm-80gb.yaml"))
    bad = [(r.id, r.status) for r in results if r.status is not Status.PASS]
    assert bad == [("spec.os.supported", Status.WARN)]


def test_driver_below_toolkit_minimum() -> None:
    r = _lint('software: {nvidia_driver: "525.60.13", cuda: "12.4"}')["spec.cuda.driver"]
    # 525.60.13 runs CUDA 12.x only through minor version compatibility: not enough for the toolkit
    assert r.status is Status.FAIL and "minor version compatibility" in r.detail and "550.54.14" in r.detail
    r = _lint('software: {nvidia_driver: "520.61.05", cuda: "12.1"}')["spec.cuda.driver"]
    assert (
        r.status is Status.FAIL
        and "needs >= 530.30.02" in r.detail
        and "software.cuda at s.yaml:1" in r.detail
    )
    r = _lint('software: {nvidia_driver: "535.54.03", cuda: "12.2"}')["spec.cuda.driver"]
    assert r.status is Status.WARN and "535.104.05" in r.detail  # the apt package installs 12.2 Update 2
    r = _lint('software: {nvidia_driver: "580.65.06", cuda: "13.0"}')["spec.cuda.driver"]
    assert r.status is Status.WARN


def test_driver_branch_only() -> None:
    out = _lint('software: {nvidia_driver: "535", cuda: "12.1"}')
    assert out["spec.driver.pinned"].status is Status.WARN and "branch" in out["spec.driver.pinned"].detail
    assert out["spec.cuda.driver"].status is Status.PASS
    out = _lint('software: {nvidia_driver: "530", cuda: "12.4"}')
    assert out["spec.cuda.driver"].status is Status.FAIL and "up to 12.1" in out["spec.cuda.driver"].detail


def test_unknown_versions_warn_with_as_of_date() -> None:
    out = _lint(
        'software: {nvidia_driver: "535.54.03", cuda: "12.7", cudnn: "7.6.5", '
        'frameworks: {pytorch: "3.0.0", tensorflow: "9.1.0"}}'
    )
    for key in ("spec.cuda.driver", "spec.pytorch.release", "spec.tensorflow.release"):
        assert out[key].status is Status.WARN
        assert "not in compatibility data as of 20" in out[key].detail and "can't judge" in out[key].detail
    assert out["spec.cudnn.cuda"].status is Status.WARN


def test_cudnn_package_build_is_nvidias_suffix_not_the_specs_minor() -> None:
    """Issue 11: NVIDIA publishes cuDNN 8.9.4-8.9.7 for CUDA 12 only as +cuda12.2; the role installs the build
    this result names (the spec gate hands its `expected` to the cudnn role as cudnn_cuda_build)."""
    r = _lint('software: {cuda: "12.1", cudnn: "8.9.7"}')["spec.cudnn.package"]
    assert (r.status, r.expected) == (Status.PASS, "+cuda12.2")
    assert "not +cuda12.1" in r.detail
    r = _lint('software: {cuda: "12.1", cudnn: "8.9.2.26"}')["spec.cudnn.package"]
    assert (r.status, r.expected) == (Status.PASS, "+cuda12.1")
    assert _lint('software: {cuda: "11.8", cudnn: "8.9.7"}')["spec.cudnn.package"].expected == "+cuda11.8"
    r = _lint('software: {cuda: "12.1", cudnn: "8.6.0"}')["spec.cudnn.package"]
    assert r.status is Status.FAIL and "no libcudnn8 8.6.0 built for CUDA 12.x" in r.detail
    assert _lint('software: {cuda: "12.1", cudnn: "8.4.1"}')["spec.cudnn.package"].status is Status.WARN
    # cuDNN 9 is packaged per CUDA major by name, without a suffix: nothing to say
    assert "spec.cudnn.package" not in _lint('software: {cuda: "12.4", cudnn: "9.1.0"}')


def test_cudnn_for_another_cuda_major() -> None:
    r = _lint('software: {cuda: "12.1", cudnn: "8.6.0"}')["spec.cudnn.cuda"]
    assert r.status is Status.FAIL and "CUDA 10.x or 11.x" in r.detail
    assert _lint('software: {cuda: "13.0", cudnn: "9.19.0"}')["spec.cudnn.cuda"].status is Status.PASS
    assert _lint('software: {cuda: "13.0", cudnn: "9.5.1"}')["spec.cudnn.cuda"].status is Status.FAIL


def test_torch_local_tag_disagrees_with_cuda() -> None:
    out = _lint('software: {nvidia_driver: "535.183.01", cuda: "12.1", frameworks: {pytorch: "2.1.2+cu118"}}')
    assert out["spec.pytorch.cuda_build"].status is Status.PASS
    r = out["spec.pytorch.cuda_match"]
    assert r.status is Status.FAIL and "built for CUDA 11.8, but software.cuda is 12.1 (s.yaml:1)" in r.detail
    assert out["spec.pytorch.driver"].status is Status.PASS  # 535 runs a cu118 build


def test_torch_wheel_may_use_minor_version_compatibility() -> None:
    out = _lint('software: {nvidia_driver: "535.183.01", frameworks: {pytorch: "2.5.1+cu124"}}')
    r = out["spec.pytorch.driver"]
    assert r.status is Status.WARN and "minor version compatibility" in r.detail


def test_torch_build_needs_newer_driver() -> None:
    out = _lint('software: {nvidia_driver: "535.183.01", frameworks: {pytorch: "2.11.0+cu130"}}')
    assert out["spec.pytorch.driver"].status is Status.FAIL
    assert "too old for PyTorch's cu130 build" in out["spec.pytorch.driver"].detail


def test_torch_python_and_companions() -> None:
    out = _lint("""
        software:
          python_env: {python: "3.12"}
          frameworks: {pytorch: "2.1.2", torchvision: "0.16.1", torchaudio: "2.1.2"}
    """)
    assert (
        out["spec.pytorch.python"].status is Status.FAIL
        and "3.8, 3.9, 3.10, 3.11" in out["spec.pytorch.python"].detail
    )
    assert out["spec.pytorch.python"].detail.endswith("(software.python_env.python at s.yaml:2)")
    assert out["spec.torchvision.match"].status is Status.FAIL
    assert "pairs with torchvision 0.16.2, not 0.16.1" in out["spec.torchvision.match"].detail
    assert out["spec.torchaudio.match"].status is Status.PASS
    out = _lint('software: {frameworks: {pytorch: "2.1.2+cu121", torchvision: "0.16.2+cu118"}}')
    assert out["spec.torchvision.match"].status is Status.FAIL


def test_cpu_torch_on_gpu_server_fails() -> None:
    out = _lint('hardware: {gpu: "A100 80GB x2"}\nsoftware: {frameworks: {pytorch: "2.1.2+cpu"}}')
    assert out["spec.pytorch.cuda_build"].status is Status.FAIL


def test_gpu_needs_newer_driver_or_cuda() -> None:
    out = _lint(
        'hardware: {gpu: "NVIDIA H100 80GB HBM3"}\nsoftware: {nvidia_driver: "515.105.01", cuda: "11.7"}'
    )
    assert out["spec.gpu.driver"].status is Status.FAIL and "Hopper" in out["spec.gpu.driver"].detail
    assert out["spec.gpu.cuda"].status is Status.FAIL and "CUDA >= 11.8" in out["spec.gpu.cuda"].detail
    # the H200's first driver has no NVIDIA source in the data: a warning that says so, never a fail
    out = _lint('hardware: {gpu: "H200"}\nsoftware: {nvidia_driver: "535.183.01"}')
    assert out["spec.gpu.driver"].status is Status.WARN and ">= 550.54.14" in out["spec.gpu.driver"].detail
    assert "unsourced" in out["spec.gpu.driver"].detail
    out = _lint('hardware: {gpu: "Tesla V100-SXM2-32GB"}\nsoftware: {cuda: "13.0"}')
    assert out["spec.gpu.cuda"].status is Status.FAIL and "dropped Volta" in out["spec.gpu.cuda"].detail
    out = _lint('hardware: {gpu: "NVIDIA Z9000"}\nsoftware: {cuda: "12.1"}')
    assert out["spec.gpu.known"].status is Status.WARN
    out = _lint('hardware: {gpu: {model: "RTX 4090", architecture: Hopper}}')
    assert out["spec.gpu.architecture"].status is Status.FAIL


def test_tensorflow_rules() -> None:
    out = _lint(
        'software: {cuda: "12.2", cudnn: "8.9.4", python_env: {python: "3.11"}, '
        'frameworks: {tensorflow: "2.15.0"}}'
    )
    assert {k: v.status for k, v in out.items() if k.startswith("spec.tensorflow")} == {
        "spec.tensorflow.cuda": Status.PASS,
        "spec.tensorflow.cudnn": Status.PASS,
        "spec.tensorflow.python": Status.PASS,
    }
    out = _lint(
        'software: {cuda: "11.8", cudnn: "8.1", python_env: {python: "3.12"}, '
        'frameworks: {tensorflow: "2.14.1"}}'
    )
    assert out["spec.tensorflow.cudnn"].status is Status.FAIL  # older than it was built with
    assert out["spec.tensorflow.python"].status is Status.FAIL


def test_os_and_names() -> None:
    out = _lint('software: {os: "Rocky Linux 9.3", frameworks: {pytroch: "2.1.2"}}')
    assert out["spec.os.supported"].status is Status.WARN
    assert "did you mean 'pytorch'" in out["spec.frameworks.name"].detail
    assert _lint('software: {os: "Debian 12"}')["spec.os.supported"].status is Status.PASS


def test_empty_spec_skips_with_reasons() -> None:
    out = _lint("hardware: {}")
    skips = [r for r in out.values() if r.status is Status.SKIP]
    assert skips and all("not set" in r.detail for r in skips)


@pytest.mark.parametrize("cuda", ["11.8", "12.1", "12.2"])
def test_h200_is_hopper_cc90_supported_since_cuda_11_8(cuda: str) -> None:
    """Issue 10: the H200 (compute capability 9.0) is supported from CUDA 11.8 like the H100; its
    `min_cuda: 12.4` failed valid stacks."""
    out = _lint(f'hardware: {{gpu: "4x H200"}}\nsoftware: {{cuda: "{cuda}"}}')
    assert out["spec.gpu.cuda"].status is Status.PASS, out["spec.gpu.cuda"].detail
    assert ">= 11.8" in out["spec.gpu.cuda"].detail


def test_new_cards_are_known_with_their_architecture() -> None:
    for model, arch in (
        ("H200 NVL", "Hopper"),
        ("B200", "Blackwell"),
        ("GH200", "Hopper"),
        ("H20", "Hopper"),
        ("A40", "Ampere"),
        ("A30", "Ampere"),
    ):
        out = _lint(f'hardware: {{gpu: "{model}"}}\nsoftware: {{cuda: "12.8"}}')
        assert "spec.gpu.known" not in out, model
        assert out["spec.gpu.cuda"].status is Status.PASS and arch in out["spec.gpu.cuda"].detail, model
    out = _lint('hardware: {gpu: "B200"}\nsoftware: {cuda: "12.4"}')
    assert out["spec.gpu.cuda"].status is Status.FAIL and "CUDA >= 12.8" in out["spec.gpu.cuda"].detail


def test_cuda_13_1_and_13_2_with_r590_r595() -> None:
    out = _lint('software: {nvidia_driver: "590.48.01", cuda: "13.1"}')
    assert out["spec.cuda.driver"].status is Status.PASS
    out = _lint('software: {nvidia_driver: "595", cuda: "13.2"}')
    assert out["spec.cuda.driver"].status is Status.PASS
    out = _lint('software: {nvidia_driver: "590", cuda: "13.2"}')
    assert out["spec.cuda.driver"].status is Status.FAIL


def test_old_policy_spellings_read_as_fail_and_warn_with_key_and_line() -> None:
    text = """
        hardware: {gpu: "NVIDIA H100 80GB"}
        checks:
          ecc: required
          pcie: max
          persistence_mode: warn
          xid: fail
        """
    spec = load_spec_text(textwrap.dedent(text).lstrip("\n"), "s.yaml")
    assert (spec.checks.ecc, spec.checks.pcie, spec.checks.persistence_mode) == ("fail", "fail", "warn")
    warned = [r for r in lint(spec) if r.id == "spec.checks.policy"]
    assert [r.status for r in warned] == [Status.WARN, Status.WARN]
    assert "checks.ecc: 'required' is deprecated" in warned[0].detail and "s.yaml:3" in warned[0].detail
    assert "checks.pcie: 'max' is deprecated" in warned[1].detail and "s.yaml:4" in warned[1].detail
    # the current vocabulary lints clean
    current = text.replace("required", "fail").replace("max", "fail")
    new = load_spec_text(textwrap.dedent(current).lstrip("\n"))
    assert not [r for r in lint(new) if r.id == "spec.checks.policy"]
