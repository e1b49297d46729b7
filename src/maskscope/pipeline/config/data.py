"""Params sections of the data stages: download, corpus, splits, noises, mix, labels."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from maskscope.core.constants import (
    ACTIVE_LEVEL_DB,
    DEMAND_ENVIRONMENTS,
    REAL_SPEAKER_IDS,
    RECORDED_NOISE_CLASSES,
    SYNTHETIC_NOISE_CLASSES,
)
from maskscope.core.errors import ParamsError
from maskscope.pipeline.config.section import Section, source_of


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
        "embedded",
        description="embedded (TTS voices + real speakers from Debian packages) or vbd (VoiceBank clean speech)",
    )
    synthetic_speakers: int = Field(
        25, ge=3, le=64, description="how many voices of the TTS catalogue to use (espeak-ng, flite, festival)"
    )
    sentences_per_speaker: int = Field(
        32, ge=1, description="sentences from the seeded grammar spoken by each synthetic voice"
    )
    real_speakers: list[Literal[REAL_SPEAKER_IDS]] = Field(
        list(REAL_SPEAKER_IDS),
        description="real human speakers (Debian: asterisk-core-sounds-*-g722, festvox-ru, fillets-ng-data-*)",
    )
    real_seconds_per_speaker: float = Field(
        250.0, ge=0, description="seconds of prompts taken from each real speaker (seeded choice)"
    )
    min_utterance_seconds: float = Field(1.0, gt=0, description="shorter real prompts are skipped")
    max_utterance_seconds: float = Field(12.0, gt=0, description="longer real prompts are skipped")

    @model_validator(mode="after")
    def _durations_in_order(self, info: ValidationInfo) -> CorpusParams:
        if self.min_utterance_seconds >= self.max_utterance_seconds:
            raise ParamsError(
                f"{source_of(info)}: key 'corpus.min_utterance_seconds' must be below corpus.max_utterance_seconds"
            )
        return self


class SplitParams(Section):
    valid_fraction: float = Field(0.12, gt=0, lt=0.5, description="share of synthetic speakers held out for validation")
    test_fraction: float = Field(0.17, gt=0, lt=0.5, description="share of synthetic speakers held out for test")
    valid_speakers: list[str] = Field(
        [], description="if set with test_speakers: these speakers validate, the fractions are ignored"
    )
    test_speakers: list[str] = Field([], description="if set with valid_speakers: these speakers are the test split")

    @model_validator(mode="after")
    def _speakers_together(self, info: ValidationInfo) -> SplitParams:
        if bool(self.valid_speakers) != bool(self.test_speakers):
            raise ParamsError(
                f"{source_of(info)}: keys 'splits.valid_speakers' and 'splits.test_speakers' go together: set both"
            )
        return self


class NoiseParams(Section):
    source: Literal["embedded", "demand"] = Field(
        "embedded",
        description="embedded: synthesised and recorded (lincity-ng-data) classes; demand: DEMAND's environments",
    )
    classes: list[str] = Field(
        [*SYNTHETIC_NOISE_CLASSES, *RECORDED_NOISE_CLASSES],
        min_length=2,
        description="noise classes per split: embedded class names, or DEMAND environments for source demand",
    )
    seconds_per_class: float = Field(
        90.0,
        gt=0,
        description="length of each synthesised class's recording per split (recorded ones: all their split's files)",
    )

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, classes: list[str], info: ValidationInfo) -> list[str]:
        source = info.data.get("source", "embedded")
        allowed = (*SYNTHETIC_NOISE_CLASSES, *RECORDED_NOISE_CLASSES) if source == "embedded" else DEMAND_ENVIRONMENTS
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
        ACTIVE_LEVEL_DB, lt=0, description="frames within this many dB of the loudest frame count as active speech"
    )
    pad_seconds: tuple[float, float] = Field(
        (0.3, 1.2), description="range of the silence drawn before and after each utterance (seconds)"
    )
    shard_size: int = Field(256, ge=1, description="mixtures per Parquet shard")

    @model_validator(mode="after")
    def _padding_range(self, info: ValidationInfo) -> MixParams:
        low, high = self.pad_seconds
        if not 0 <= low <= high:
            raise ParamsError(
                f"{source_of(info)}: key 'mix.pad_seconds': value {[low, high]} must be [low, high] with "
                "0 <= low <= high"
            )
        return self


class LabelParams(Section):
    vad_threshold_db: float = Field(
        ACTIVE_LEVEL_DB,
        lt=0,
        description="energy VAD on clean speech: active if within this many dB of the loudest frame",
    )
    f0_floor_hz: float = Field(60.0, gt=0, description="WORLD harvest lower F0 bound")
    f0_ceil_hz: float = Field(500.0, gt=0, description="WORLD harvest upper F0 bound")

    @model_validator(mode="after")
    def _f0_range(self, info: ValidationInfo) -> LabelParams:
        if self.f0_floor_hz >= self.f0_ceil_hz:
            raise ParamsError(
                f"{source_of(info)}: key 'labels.f0_floor_hz': value {self.f0_floor_hz} must be below "
                f"labels.f0_ceil_hz ({self.f0_ceil_hz})"
            )
        return self
