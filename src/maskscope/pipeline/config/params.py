"""The whole params file: every section, the rules across sections, and validation that names each
bad key."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, model_validator

from maskscope.core.constants import ROUTER_FRAME, SAMPLE_RATE
from maskscope.core.errors import ParamsError
from maskscope.pipeline.config.analysis import EvaluateParams, ProbeParams
from maskscope.pipeline.config.data import (
    CorpusParams,
    DownloadParams,
    LabelParams,
    MixParams,
    NoiseParams,
    SplitParams,
)
from maskscope.pipeline.config.models import ModelParams, NsNet2Params, PruneParams, SlimmingParams, TrainParams
from maskscope.pipeline.config.section import Section, source_of
from maskscope.pipeline.config.variants import DEFAULT_VARIANTS, VariantParams, check_variants


class Params(Section):
    preset: str = Field("default", description="the preset these params came from (informational)")
    seed: int = Field(1234, ge=0, description="base seed; every item's RNG derives from (seed, item id)")
    download: DownloadParams = DownloadParams()
    corpus: CorpusParams = CorpusParams()
    splits: SplitParams = SplitParams()
    noises: NoiseParams = NoiseParams()
    mix: MixParams = MixParams()
    labels: LabelParams = LabelParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    prune: PruneParams = PruneParams()
    slimming: SlimmingParams = SlimmingParams()
    nsnet2: NsNet2Params = NsNet2Params()
    variants: dict[str, VariantParams] = Field(
        DEFAULT_VARIANTS,
        description="the models trained and compared; the DAG has one training per variant "
        "(after a change here: python -m pipelines.compile)",
    )
    evaluate: EvaluateParams = EvaluateParams()
    probes: ProbeParams = ProbeParams()

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Params:
        """Rules across sections, named by params key."""
        source = source_of(info)
        check_variants(self.variants, source)
        for name, variant in self.variants.items():
            if variant.regime == "layerwise" and self.nsnet2.epochs < len(self.nsnet2.exits):
                raise ParamsError(
                    f"{source}: key 'nsnet2.epochs': value {self.nsnet2.epochs} leaves exits untrained by the "
                    f"layer-wise variant '{name}' (one stage per exit: at least {len(self.nsnet2.exits)} epochs)"
                )
            if variant.kind == "nsnet2-static" and variant.exit not in self.nsnet2.exits:
                raise ParamsError(
                    f"{source}: key 'variants.{name}.exit': value {variant.exit!r} is not one of nsnet2.exits "
                    f"({', '.join(self.nsnet2.exits)})"
                )
        crop = round(self.train.segment_seconds * SAMPLE_RATE)
        segment = self.slimming.segment_samples
        if segment % ROUTER_FRAME or not 0 < 2 * segment <= crop:
            raise ParamsError(
                f"{source}: key 'slimming.segment_samples': value {segment} must be a multiple of "
                f"{ROUTER_FRAME} and at most half a training crop ({crop} samples, train.segment_seconds), so the "
                "router sees a segment before the one it decides"
            )
        needs = {"vbd": self.corpus.source == "vbd", "demand": self.noises.source == "demand"}
        for corpus, needed in needs.items():
            if needed and corpus not in self.download.corpora:
                raise ParamsError(f"{source}: key 'download.corpora' must include '{corpus}' for the chosen sources")
        if self.mix.source == "vbd" and self.corpus.source != "vbd":
            raise ParamsError(f"{source}: key 'mix.source': value 'vbd' needs corpus.source 'vbd'")
        return self


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid parameters (nothing was run):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            parent = Params
            for part in item["loc"][:-1]:
                field = parent.model_fields.get(str(part))
                parent = field.annotation if field is not None else None
                if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
                    break
            allowed = ", ".join(parent.model_fields) if isinstance(parent, type) else "see params.yaml"
            lines.append(f"  - unknown key '{key}'; allowed keys here: {allowed}")
        else:
            lines.append(f"  - key '{key}': value {item['input']!r} is not allowed: {item['msg']}")
    return "\n".join(lines)


def validate_params(data: Any, source: str = "params") -> Params:
    """Validate a mapping; fail naming each bad key, its value and what is allowed."""
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: must hold a mapping of keys to values, got {type(data).__name__}")
    try:
        return Params.model_validate(data, context={"source": source})
    except ValidationError as error:
        raise ParamsError(_format_errors(error, source)) from None
