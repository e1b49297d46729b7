"""params.yaml as a file: reading and validating it, the slice a stage may read, presets as overlays
on the embedded default, writing it with each key's description, and its JSON schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from maskscope.core.errors import ParamsError
from maskscope.core.io import atomic_write_text
from maskscope.pipeline.config.params import Params, validate_params


def read_yaml(path: Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ParamsError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: is not valid YAML: {error}") from None


def load_params(path: Path | str) -> Params:
    """Read and validate a params file."""
    return validate_params(read_yaml(Path(path)), str(path))


def params_slice(params: Params, keys: list[str]) -> dict[str, Any]:
    """The values of the dotted `keys`, as a nested dict (what one stage may read)."""
    full = params.model_dump(mode="json")
    result: dict[str, Any] = {}
    for key in keys:
        value: Any = full
        for part in key.split("."):
            value = value[part]
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


def _merge(base: dict[str, Any], overlay: dict[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if prefix == "variants." and key not in base:  # a preset may add variants
            merged[key] = value
            continue
        if key not in base:
            raise ParamsError(f"{source}: unknown key '{prefix}{key}'; allowed keys here: {', '.join(base)}")
        if isinstance(value, dict) and isinstance(base[key], dict):
            merged[key] = _merge(base[key], value, source, f"{prefix}{key}.")
        else:
            merged[key] = value
    return merged


def preset_params(presets_dir: Path, name: str) -> Params:
    """The embedded default with the named overlay applied."""
    path = Path(presets_dir) / f"{name}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in Path(presets_dir).glob("*.yaml"))
        raise ParamsError(f"preset '{name}' not found in {presets_dir}; available: {', '.join(available)}")
    overlay = read_yaml(path) or {}
    if not isinstance(overlay, dict):
        raise ParamsError(f"{path}: must hold a mapping of keys to values")
    merged = _merge(Params().model_dump(mode="json"), overlay, str(path))
    merged["preset"] = name
    return validate_params(merged, str(path))


HEADER = (
    "# maskscope parameters. The embedded default is generated from src/maskscope/pipeline/config/;\n"
    "# `maskscope preset NAME` rewrites this file from pipelines/presets/NAME.yaml. Edit freely:\n"
    "# each stage reruns only when a key it reads changes.\n"
)


def render_params(params: Params) -> str:
    """YAML with each key's description as a comment above it."""
    out = [HEADER, "\n"]
    for name, field in Params.model_fields.items():
        value = getattr(params, name)
        if isinstance(value, dict):
            out.append(f"\n# {field.description}\n{name}:\n")
            for key, item in value.items():
                out.append(f"  {key}: {json.dumps(item.rendered(), ensure_ascii=False)}\n")
        elif isinstance(value, BaseModel):
            out.append(f"\n{name}:\n")
            for sub_name, sub_field in type(value).model_fields.items():
                if sub_field.description:
                    out.append(f"  # {sub_field.description}\n")
                rendered = json.dumps(getattr(value, sub_name), ensure_ascii=False)
                out.append(f"  {sub_name}: {rendered}\n")
        else:
            if field.description:
                out.append(f"# {field.description}\n")
            out.append(f"{name}: {json.dumps(value, ensure_ascii=False)}\n")
    return "".join(out)


def write_params(params: Params, path: Path) -> None:
    atomic_write_text(Path(path), render_params(params))


def params_schema() -> dict[str, Any]:
    """JSON schema of params.yaml, as exported to workflow/schemas/ for Snakemake."""
    schema = Params.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
