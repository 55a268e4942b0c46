"""The committed JSON Schema equals the generated one, and schema and loader agree on good and bad specs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT

from dlverify.hwspec import SpecError, load_spec_text
from dlverify.hwspec.schema import schema_text, spec_schema

SPECS = [*sorted((ROOT / "hwspec" / "examples").glob("*.yaml")), ROOT / "hwspec.yaml"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "hwspec" / "hwspec.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one() -> None:
    committed = (ROOT / "hwspec" / "hwspec.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), (
        "regenerate: python -m dlverify.hwspec.schema > hwspec/hwspec.schema.json"
    )


def test_module_prints_the_schema() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dlverify.hwspec.schema"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == spec_schema()


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_example_validates(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    validator.validate(yaml.safe_load(path.read_text(encoding="utf-8")))


BAD = {
    "unknown key": "hardware: {}\nsofware: {cuda: '12.1'}\n",
    "unknown nested key": "software: {cuda_version: '12.1'}\n",
    "wrong type": "hardware:\n  gpu:\n    - {model: A100, count: four}\n",
    "float version": "software: {cuda: 12.1}\n",
    "enum out of range": "checks: {ecc: sometimes}\n",
    "zero count": "hardware:\n  gpu:\n    - {model: A100, count: 0}\n",
    "bad size": "hardware:\n  storage:\n    - {type: NVMe SSD, size: 2 terabytes}\n",
    "list for mapping": "software: {frameworks: [pytorch]}\n",
}


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_schema_and_loader_both_reject(validator: jsonschema.Draft202012Validator, text: str) -> None:
    assert list(validator.iter_errors(yaml.safe_load(text))), "schema accepted it"
    with pytest.raises(SpecError):
        load_spec_text(text, "bad.yaml")


def test_both_forms_accepted_by_schema(validator: jsonschema.Draft202012Validator) -> None:
    doc = {
        "hardware": {
            "gpu": "4x H100 80GB SXM",
            "ram": {"size_gb": 512, "ecc": True},
            "network": [{"speed_gbps": 100, "rdma": "roce"}, "2x 25GbE"],
        },
        "software": {"os": {"name": "Ubuntu", "version": "22.04"}},
    }
    validator.validate(doc)
    load_spec_text(yaml.safe_dump(doc), "x.yaml")
