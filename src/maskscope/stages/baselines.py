"""Stage `baselines`: dedicated VAD, F0 and noise-class methods on the probes' frames and noisy audio,
fitted (where they need it) on the probes' fit split and scored on the probes' scored split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from maskscope.analysis.baseline_study import AudioFrames, study_baselines
from maskscope.analysis.probes import mixture_snrs, probe_labels
from maskscope.core.io import atomic_output_dir, read_shards
from maskscope.pipeline.runner import StageContext


def audio_frames(deps: dict[str, Path], splits: list[str], seed: int, utterances: int) -> AudioFrames:
    """The same seeded choice of mixtures the probes take from `splits`, with their noisy audio."""
    labels = probe_labels(deps["labels"], splits, seed, utterances)
    mixtures = pd.concat([read_shards(deps["mix"], split, ["utt_id", "noisy"]).to_pandas() for split in splits])
    chosen = mixtures[mixtures["utt_id"].isin(set(labels["utt_id"]))].set_index("utt_id")
    return AudioFrames(labels, chosen, deps["mix"], mixture_snrs(labels, deps["mix"], splits))


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps = ctx.params, ctx.deps
    settings = params.probes
    fit = audio_frames(deps, [settings.fit_split], params.seed, settings.fit_utterances)
    scored = audio_frames(deps, list(settings.splits), params.seed, settings.utterances)
    f0_range = (params.labels.f0_floor_hz, params.labels.f0_ceil_hz)
    found = study_baselines(fit, scored, settings, f0_range)
    with atomic_output_dir(ctx.outs["baselines"]) as tmp:
        (tmp / "baselines.json").write_text(json.dumps(found, indent=2) + "\n")
    methods = found.pop("methods")
    return {**found, **methods}
