"""The one configuration: pydantic models are the single truth of params.yaml.

They give the defaults (params.yaml is generated from them), the JSON schema exported for
Snakemake, and the validation every stage runs before any work. Presets are overlays on the
defaults, kept in pipelines/presets/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from maskscope.errors import ParamsError
from maskscope.io import atomic_write_text

SYNTHETIC_NOISE_CLASSES = ("white", "pink", "brown", "hum", "traffic", "clatter", "hvac", "babble", "rain")
# DEMAND's environments (mirrors real_corpora.DEMAND_ENVIRONMENTS; config stays free of audio imports).
DEMAND_ENVIRONMENTS = (
    *("DKITCHEN", "DLIVING", "DWASHING", "NFIELD", "NPARK", "NRIVER", "OHALLWAY", "OMEETING", "OOFFICE"),
    *("PCAFETER", "PRESTO", "PSTATION", "SCAFE", "SPSQUARE", "STRAFFIC", "TBUS", "TCAR", "TMETRO"),
)
RealSpeakerId = Literal["asterisk-fr", "asterisk-it", "asterisk-ru"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DownloadParams(Section):
    corpora: list[Literal["vbd", "demand"]] = Field(
        [], description="real corpora to download (pipelines/archives.json); none for the embedded default"
    )
    mirror: str | None = Field(None, description="base address serving the archives by file name, instead of theirs")
    retries: int = Field(5, ge=1, description="tries per archive on transient failures (dropped connection, 5xx)")
    backoff_seconds: float = Field(2.0, ge=0, description="wait before the 2nd try, doubled for each further one")
    timeout_seconds: float = Field(60.0, gt=0, description="read timeout of a silent connection")


class CorpusParams(Section):
    source: Literal["embedded", "vbd"] = Field(
        "embedded", description="embedded (TTS + asterisk prompts) or vbd (VoiceBank clean speech, as published)"
    )
    synthetic_speakers: int = Field(
        25, ge=3, le=64, description="how many voices of the TTS catalogue to use (espeak-ng, flite, festival)"
    )
    sentences_per_speaker: int = Field(
        32, ge=1, description="sentences from the seeded grammar spoken by each synthetic voice"
    )
    real_speakers: list[RealSpeakerId] = Field(
        ["asterisk-fr", "asterisk-it", "asterisk-ru"],
        description="real human speakers from Debian's asterisk-core-sounds-*-g722 packages",
    )
    real_seconds_per_speaker: float = Field(
        250.0, ge=0, description="seconds of prompts taken from each real speaker (seeded choice)"
    )
    min_utterance_seconds: float = Field(1.0, gt=0, description="shorter real prompts are skipped")
    max_utterance_seconds: float = Field(12.0, gt=0, description="longer real prompts are skipped")


class SplitParams(Section):
    valid_fraction: float = Field(0.12, gt=0, lt=0.5, description="share of synthetic speakers held out for validation")
    test_fraction: float = Field(0.17, gt=0, lt=0.5, description="share of synthetic speakers held out for test")
    valid_speakers: list[str] = Field(
        [], description="if set with test_speakers: these speakers validate, the fractions are ignored"
    )
    test_speakers: list[str] = Field([], description="if set with valid_speakers: these speakers are the test split")


class NoiseParams(Section):
    source: Literal["synthetic", "demand"] = Field(
        "synthetic", description="synthesised classes, or DEMAND recordings (one class per environment)"
    )
    classes: list[str] = Field(
        list(SYNTHETIC_NOISE_CLASSES),
        min_length=2,
        description="noise classes per split: synthetic class names, or DEMAND environments for source demand",
    )
    seconds_per_class: float = Field(
        90.0, gt=0, description="length of each synthetic class's recording per split (DEMAND: all of it)"
    )

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, classes: list[str], info: ValidationInfo) -> list[str]:
        source = info.data.get("source", "synthetic")
        allowed = SYNTHETIC_NOISE_CLASSES if source == "synthetic" else DEMAND_ENVIRONMENTS
        unknown = [name for name in classes if name not in allowed]
        if unknown:
            raise ValueError(f"{unknown} are not {source} noise classes; allowed: {', '.join(allowed)}")
        if len(set(classes)) != len(classes):
            raise ValueError("noise classes must be unique")
        return classes


class MixParams(Section):
    source: Literal["synthetic", "vbd"] = Field(
        "synthetic", description="mix speech with noises here, or take VoiceBank+DEMAND's official noisy files"
    )
    snrs_db: list[float] = Field(
        [-5.0, 0.0, 5.0, 10.0, 15.0], min_length=1, description="SNRs (dB, vs active speech level) drawn per mixture"
    )
    mixtures_per_utterance: int = Field(1, ge=1, le=8, description="noisy versions of each clean utterance")
    active_threshold_db: float = Field(
        -35.0, lt=0, description="frames within this many dB of the loudest frame count as active speech"
    )
    pad_seconds: tuple[float, float] = Field(
        (0.3, 1.2), description="range of the silence drawn before and after each utterance (seconds)"
    )
    shard_size: int = Field(256, ge=1, description="mixtures per Parquet shard")


class LabelParams(Section):
    vad_threshold_db: float = Field(
        -35.0, lt=0, description="energy VAD on clean speech: active if within this many dB of the loudest frame"
    )
    f0_floor_hz: float = Field(60.0, gt=0, description="WORLD harvest lower F0 bound")
    f0_ceil_hz: float = Field(500.0, gt=0, description="WORLD harvest upper F0 bound")


class ModelParams(Section):
    bottleneck: int = Field(128, ge=1, description="Conv-FSENet bottleneck channels B")
    hidden: int = Field(256, ge=1, description="channels H inside each block (the gated ones)")
    stacks: int = Field(3, ge=1, description="stacks of blocks")
    blocks_per_stack: int = Field(3, ge=1, description="blocks per stack, dilations 1, 2, 4, ...")
    kernel: int = Field(3, ge=1, description="depthwise kernel size")
    causal: bool = Field(True, description="left padding only: no look-ahead")
    gate_rank: int = Field(16, ge=1, description="rank of the gate predictor B -> rank -> H")


class TrainParams(Section):
    epochs: int = Field(
        40, ge=1, description="passes over the training split (one random crop of every utterance each)"
    )
    batch_size: int = Field(16, ge=1, description="crops per optimiser step")
    segment_seconds: float = Field(2.0, gt=0, description="length of the random training crops")
    learning_rate: float = Field(1.5e-3, gt=0, description="Adam learning rate at the start; cosine decay to 1/10")
    gate_estimator: Literal["ste", "gumbel"] = Field(
        "ste", description="surrogate gradient of the binary gates: straight-through sigmoid or Gumbel-sigmoid"
    )
    ste_slope: float = Field(1.0, gt=0, description="slope of the sigmoid whose derivative the STE uses")
    gumbel_temperature: float = Field(1.0, gt=0, description="Gumbel-sigmoid temperature")
    dcp_weight: float = Field(1.0, ge=0, description="weight λ of L_DCP, the pull of gate usage to the target")
    valid_utterances: int = Field(64, ge=1, description="validation utterances scored after each epoch")


class PruneParams(Section):
    start: Literal["dense", "scratch"] = Field(
        "dense",
        description="pruned variants start from the trained dense model (magnitude-pruned for static) or from scratch",
    )
    epochs: int = Field(14, ge=1, description="fine-tuning epochs of a pruned variant that starts from dense")


class SlimmingParams(Section):
    """The slimmable DEMUCS of the adaptive-slimming variants (kinds slim-static and slim-dyn)."""

    hidden: int = Field(16, ge=1, description="channels of the first encoder layer (doubling with depth)")
    depth: int = Field(4, ge=1, description="encoder (and decoder) layers")
    kernel: int = Field(8, ge=1, description="kernel of the strided convolutions")
    stride: int = Field(4, ge=1, description="stride of the strided convolutions")
    resample: Literal[1, 2, 4] = Field(1, description="input upsampling factor before the encoder")
    gru: Literal["plain", "grouped"] = Field("plain", description="bottleneck GRU: plain, or grouped as in the paper")
    gru_groups: int = Field(2, ge=1, description="groups of a grouped GRU")
    gru_layers: int = Field(2, ge=1, description="GRU layers in the bottleneck")
    widths: list[float] = Field(
        [0.125, 0.25, 0.5, 1.0], min_length=1, description="utilization factors UF every layer can run at"
    )
    segment_samples: int = Field(1024, ge=1, description="input samples per router decision")
    epochs: int = Field(20, ge=1, description="epochs of the slim-static model, trained at every width each step")
    router_epochs: int = Field(8, ge=1, description="epochs of a slim-dyn model, fine-tuned from slim-static")
    learning_rate: float = Field(
        6e-3,
        gt=0,
        description="Adam learning rate at the start; cosine decay to 1/10 (6e-3 measured best of 1e-3..1e-2)",
    )
    utilization_weight: float = Field(
        4.0,
        ge=0,
        description="weight of the router's utilization loss (expected MAC share - static's at the target UF)**2",
    )
    gumbel_temperature: float = Field(1.0, gt=0, description="Gumbel-softmax temperature of the router")
    rest_weight: float = Field(
        0.5, ge=0, description="weight of the router's expected MAC share on segments of silent clean speech"
    )


VARIANT_KINDS = ("dense", "dyncp", "static", "slim-static", "slim-dyn")
# A variant of these kinds starts from the trained model of the base variant with this fixed name.
BASE_OF_KIND = {"dyncp": "dense", "static": "dense", "slim-dyn": "slim-static"}


class VariantParams(Section):
    kind: Literal["dense", "dyncp", "static", "slim-static", "slim-dyn"] = Field(
        description="Conv-FSENet: no gates, DynCP gates, or a fixed smaller H; DEMUCS: slimmable, or routed"
    )
    target_usage: float | None = Field(
        None,
        gt=0,
        le=1,
        description="DynCP: Φ_trgt; static: the Φ whose DynCP MAC budget sets H; slim-dyn: the UF of its MAC budget",
    )


# Names carry no dots: DVC reads `variants.<name>` as a dotted path of keys.
DEFAULT_VARIANTS = {
    "dense": VariantParams(kind="dense"),
    "dyncp-25": VariantParams(kind="dyncp", target_usage=0.25),
    "dyncp-50": VariantParams(kind="dyncp", target_usage=0.5),
    "dyncp-75": VariantParams(kind="dyncp", target_usage=0.75),
    "static-25": VariantParams(kind="static", target_usage=0.25),
}
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def variants_of_kind(variants: dict[str, VariantParams], *kinds: str) -> tuple[str, ...]:
    """Names of the variants of the given kinds, in params order."""
    return tuple(name for name, variant in variants.items() if variant.kind in kinds)


def gated_variants(variants: dict[str, VariantParams]) -> tuple[str, ...]:
    """Variants whose per-frame decisions are dumped as masks and probed: DynCP gates, router choices."""
    return variants_of_kind(variants, "dyncp", "slim-dyn")


class EvaluateParams(Section):
    test_utterances: int = Field(0, ge=0, description="test mixtures scored (0: all)")
    composite: bool = Field(True, description="also compute CSIG/CBAK/COVL")


class ProbeParams(Section):
    splits: list[Literal["train", "valid", "test"]] = Field(
        ["valid", "test"],
        min_length=1,
        description="splits whose masks are probed (the SE model never trained on these)",
    )
    utterances: int = Field(
        80, ge=0, description="mixtures drawn (seeded) from those splits for probes and baselines alike (0: all)"
    )
    k_bits: int = Field(200, ge=1, description="mask bits each exported probe keeps (first K on the L1 path)")
    k_curve: list[int] = Field(
        [1, 2, 5, 10, 25, 50, 100, 200], min_length=1, description="K values of the score-versus-K curves"
    )
    folds: int = Field(4, ge=2, description="speaker-disjoint cross-validation folds")
    context_frames: int = Field(
        32, ge=1, description="the in-context scores average each probe's outputs over the last N frames (32: 0.5 s)"
    )


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
    variants: dict[str, VariantParams] = Field(
        DEFAULT_VARIANTS,
        description="the models trained and compared; the DAG has one training per variant "
        "(after a change here: python -m pipelines.compile)",
    )
    evaluate: EvaluateParams = EvaluateParams()
    probes: ProbeParams = ProbeParams()


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
        params = Params.model_validate(data)
    except ValidationError as error:
        raise ParamsError(_format_errors(error, source)) from None
    if params.labels.f0_floor_hz >= params.labels.f0_ceil_hz:
        raise ParamsError(
            f"{source}: key 'labels.f0_floor_hz': value {params.labels.f0_floor_hz} must be below "
            f"labels.f0_ceil_hz ({params.labels.f0_ceil_hz})"
        )
    _check_variants(params.variants, source)
    _check_slimming(params.slimming, params.train, source)
    low, high = params.mix.pad_seconds
    if not 0 <= low <= high:
        raise ParamsError(
            f"{source}: key 'mix.pad_seconds': value {[low, high]} must be [low, high] with 0 <= low <= high"
        )
    if params.corpus.min_utterance_seconds >= params.corpus.max_utterance_seconds:
        raise ParamsError(f"{source}: key 'corpus.min_utterance_seconds' must be below corpus.max_utterance_seconds")
    _check_sources(params, source)
    return params


# The report's headline numbers are about this variant (the papers' Φ = 0.25), so it must exist.
FOCUS_VARIANT = "dyncp-25"
NUMBERED_VARIANT = re.compile(r"^(dyncp|static|slim-dyn)-(\d+)$")


def _check_variants(variants: dict[str, VariantParams], source: str) -> None:
    """Names usable as paths and DVC keys; every derived variant has its base to start from; a
    name that states a target states the right one (the report matches the papers' rows by name)."""
    if FOCUS_VARIANT not in variants or variants[FOCUS_VARIANT].kind != "dyncp":
        raise ParamsError(
            f"{source}: key 'variants.{FOCUS_VARIANT}' must be a dyncp variant: the report's headline and "
            "`maskscope enhance`'s default model are about it"
        )
    for name, variant in variants.items():
        key = f"variants.{name}"
        if not VARIANT_NAME.match(name) or name == "noisy":
            raise ParamsError(
                f"{source}: key '{key}': a variant name takes lowercase letters, digits and '-' only, and "
                "'noisy' is taken by the unprocessed input"
            )
        numbered = NUMBERED_VARIANT.match(name)
        if numbered and (variant.target_usage is None or round(100 * variant.target_usage) != int(numbered[2])):
            raise ParamsError(
                f"{source}: key '{key}.target_usage': the name says {int(numbered[2]) / 100:g}, the value is "
                f"{variant.target_usage}; rename the variant or fix the target"
            )
        if name in BASE_OF_KIND.values() and variant.kind != name:
            raise ParamsError(f"{source}: key '{key}.kind' must be '{name}' (the base other variants start from)")
        if variant.kind in ("dense", "slim-static"):
            if variant.kind != name:
                raise ParamsError(f"{source}: key '{key}': a '{variant.kind}' variant must be named '{variant.kind}'")
            continue
        if variant.target_usage is None:
            raise ParamsError(f"{source}: key '{key}.target_usage' is required for kind '{variant.kind}'")
        base = BASE_OF_KIND[variant.kind]
        if base not in variants:
            raise ParamsError(f"{source}: key '{key}': kind '{variant.kind}' starts from variant '{base}': define it")


ROUTER_FRAME = 256  # samples per router feature frame (models/demucs.py's default)


def _check_slimming(slimming: SlimmingParams, train: TrainParams, source: str) -> None:
    """What SlimDemucsConfig would refuse, named by params key, before any stage runs."""
    widths = list(slimming.widths)
    if widths != sorted(set(widths)) or widths[0] <= 0 or widths[-1] != 1.0:
        raise ParamsError(
            f"{source}: key 'slimming.widths': value {widths} must be strictly increasing, in (0, 1], and end "
            "with 1.0 (the full width, the reference of every saving)"
        )
    if slimming.kernel < slimming.stride:
        raise ParamsError(f"{source}: key 'slimming.kernel' must be >= slimming.stride ({slimming.stride})")
    bottleneck = slimming.hidden * 2 ** (slimming.depth - 1)
    if slimming.gru == "grouped" and bottleneck % slimming.gru_groups:
        raise ParamsError(
            f"{source}: key 'slimming.gru_groups': {slimming.gru_groups} must divide the bottleneck width "
            f"({bottleneck} = hidden * 2**(depth-1))"
        )
    crop = round(train.segment_seconds * 16000)
    if slimming.segment_samples % ROUTER_FRAME or not 0 < 2 * slimming.segment_samples <= crop:
        raise ParamsError(
            f"{source}: key 'slimming.segment_samples': value {slimming.segment_samples} must be a multiple of "
            f"{ROUTER_FRAME} and at most half a training crop ({crop} samples, train.segment_seconds), so the "
            "router sees a segment before the one it decides"
        )


def _check_sources(params: Params, source: str) -> None:
    """Real-corpus settings that only work together."""
    needs = {"vbd": params.corpus.source == "vbd", "demand": params.noises.source == "demand"}
    for corpus, needed in needs.items():
        if needed and corpus not in params.download.corpora:
            raise ParamsError(f"{source}: key 'download.corpora' must include '{corpus}' for the chosen sources")
    if params.mix.source == "vbd" and params.corpus.source != "vbd":
        raise ParamsError(f"{source}: key 'mix.source': value 'vbd' needs corpus.source 'vbd'")
    if bool(params.splits.valid_speakers) != bool(params.splits.test_speakers):
        raise ParamsError(f"{source}: keys 'splits.valid_speakers' and 'splits.test_speakers' go together: set both")


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
    "# maskscope parameters. The embedded default is generated from src/maskscope/config.py;\n"
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
                out.append(f"  {key}: {json.dumps(item.model_dump(mode='json'), ensure_ascii=False)}\n")
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
