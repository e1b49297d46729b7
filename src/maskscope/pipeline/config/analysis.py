"""Params sections of evaluation and analysis: evaluate, probes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, model_validator

from maskscope.core.constants import PEER_NAMES
from maskscope.core.errors import ParamsError
from maskscope.pipeline.config.section import Section, source_of


class EvaluateParams(Section):
    test_utterances: int = Field(0, ge=0, description="test mixtures scored (0: all)")
    composite: bool = Field(True, description="also compute CSIG/CBAK/COVL")
    peers: list[Literal[PEER_NAMES]] = Field(
        list(PEER_NAMES),
        description="other enhancers scored on the same test mixtures (a peer that cannot load is left out, logged)",
    )
    timing_utterances: int = Field(
        32, ge=1, description="first test mixtures whose CPU time per second of audio is measured, for every system"
    )


class ProbeParams(Section):
    splits: list[Literal["train", "valid", "test"]] = Field(
        ["test"],
        min_length=1,
        description="splits the probes are scored on, once (the baselines too); the SE model never trained on them",
    )
    utterances: int = Field(
        80, ge=0, description="mixtures drawn (seeded) from those splits for probes and baselines alike (0: all)"
    )
    fit_split: Literal["train", "valid", "test"] = Field(
        "train", description="split whose masks select and fit the probes and choose their penalty and budgeted K"
    )
    fit_utterances: int = Field(160, ge=0, description="mixtures drawn (seeded) from the fit split (0: all)")
    inverse_penalties: list[float] = Field(
        [0.1, 1.0, 10.0],
        min_length=1,
        description="C of the logistic probes (ridge: alpha = 1/C) tried by cross-validation on the fit split",
    )
    k_bits: int = Field(200, ge=1, description="mask bits each exported probe keeps (first K on the L1 path)")
    k_curve: list[int] = Field(
        [1, 2, 5, 10, 25, 50, 100, 200], min_length=1, description="K values of the score-versus-K curves"
    )
    folds: int = Field(4, ge=2, description="voice-family cross-validation folds (probes: inside the fit split)")
    context_frames: int = Field(
        32, ge=1, description="the in-context scores average each probe's outputs over the last N frames (32: 0.5 s)"
    )

    @model_validator(mode="after")
    def _fit_apart_from_scored(self, info: ValidationInfo) -> ProbeParams:
        if self.fit_split in self.splits:
            raise ParamsError(
                f"{source_of(info)}: key 'probes.fit_split' ({self.fit_split}) is also in probes.splits: the probes "
                "would be scored on frames they were fitted on; pick a split outside probes.splits"
            )
        if any(value <= 0 for value in self.inverse_penalties):
            raise ParamsError(f"{source_of(info)}: key 'probes.inverse_penalties' must hold positive values")
        return self
