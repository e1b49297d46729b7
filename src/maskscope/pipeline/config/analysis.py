"""Params sections of evaluation and analysis: evaluate, probes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from maskscope.core.constants import PEER_NAMES
from maskscope.pipeline.config.section import Section


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
