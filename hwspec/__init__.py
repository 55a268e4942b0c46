"""The spec: model, loader, JSON Schema, compatibility data, lint."""

from __future__ import annotations

from typing import Any

from dlverify.hwspec.compat import gpu_info, gpu_model_matches
from dlverify.hwspec.errors import SpecError
from dlverify.hwspec.loader import load_spec, load_spec_text

__all__ = ["SpecError", "gpu_info", "gpu_model_matches", "load_spec", "load_spec_text", "spec_to_yaml"]


def spec_to_yaml(spec_dict: dict[str, Any], header: str = "") -> str:
    """Dump a spec mapping as YAML that loads back: keys in the order given, versions kept as strings
    (quoted, so ``"3.10"`` never turns into 3.1), unicode as written."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        # quote anything YAML would read back as a number, bool, null or date
        try:
            plain_ok = value != "" and yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain_ok = False
        style = None if plain_ok else '"'
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    body = yaml.dump(
        spec_dict, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=110
    )
    return (header + body) if header else body
