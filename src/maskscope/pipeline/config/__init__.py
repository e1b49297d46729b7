"""The one configuration: pydantic models are the single truth of params.yaml.

They give the defaults (params.yaml is generated from them), the JSON schema exported for
Snakemake, and the validation every stage runs before any work; rules across keys are validators
of the models, and each names the key it refuses. Presets are overlays on the defaults, kept in
pipelines/presets/. Modules: `section` (the base), `data`, `models`, `variants`, `analysis` (the
sections by the stages that read them), `params` (the whole file), `files` (reading, presets,
writing, schema).
"""

from maskscope.pipeline.config.files import (
    load_params,
    params_schema,
    params_slice,
    preset_params,
    read_yaml,
    render_params,
    write_params,
)
from maskscope.pipeline.config.params import Params, validate_params
from maskscope.pipeline.config.variants import VariantParams, gated_variants, rendered_variant, variants_of_kind

__all__ = [
    "Params",
    "VariantParams",
    "gated_variants",
    "load_params",
    "params_schema",
    "params_slice",
    "preset_params",
    "read_yaml",
    "render_params",
    "rendered_variant",
    "validate_params",
    "variants_of_kind",
    "write_params",
]
