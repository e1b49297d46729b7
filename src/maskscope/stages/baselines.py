"""Stage `baselines`: dedicated VAD, F0 and noise-class methods on the probes' frames and noisy audio."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from maskscope.analysis.baseline_study import study_baselines
from maskscope.analysis.probes import frame_families, mixture_snrs, probe_labels
from maskscope.core.io import atomic_output_dir, read_shards
from maskscope.pipeline.runner import StageContext


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps = ctx.params, ctx.deps
    settings = params.probes
    labels = probe_labels(deps["labels"], list(settings.splits), params.seed, settings.utterances)
    mixtures = pd.concat(
        [read_shards(deps["mix"], split, ["utt_id", "noisy"]).to_pandas() for split in settings.splits]
    ).set_index("utt_id")
    groups = frame_families(labels, deps["corpus"])
    snrs = mixture_snrs(labels, deps["mix"], list(settings.splits))
    f0_range = (params.labels.f0_floor_hz, params.labels.f0_ceil_hz)
    found = study_baselines(labels, mixtures, deps["mix"], groups, snrs, settings, f0_range)
    with atomic_output_dir(ctx.outs["baselines"]) as tmp:
        (tmp / "baselines.json").write_text(json.dumps(found, indent=2) + "\n")
    methods = found.pop("methods")
    return {**found, **methods}
