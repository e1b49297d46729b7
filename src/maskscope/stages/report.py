"""Stage `report`: reports/index.html (self-contained) and reports/summary.md from the run's results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from maskscope.analysis.masks import read_masks
from maskscope.core.audio import decode_audio
from maskscope.core.constants import FOCUS_VARIANT, MODEL_FILE
from maskscope.core.io import atomic_output_dir, read_shards
from maskscope.evaluation.tracks import PROBES_FILE, read_probes
from maskscope.models.checkpoint import load_model
from maskscope.pipeline.runner import StageContext
from maskscope.report.figures import standard_figures, tracks_of_one_utterance
from maskscope.report.papers import paper_comparison
from maskscope.report.render import write_report
from maskscope.report.tables import (
    dynamic_versus_static,
    gate_dynamics_table,
    probed_decisions_table,
    quality_table,
    replaced_models_table,
)


def test_mixture(deps: dict[str, Path], utt_id: str) -> tuple[np.ndarray, pd.DataFrame]:
    """The noisy audio of one test mixture and its frame labels."""
    table = read_shards(deps["mix"], "test", ["utt_id", "noisy"]).to_pandas().set_index("utt_id")
    labels = pq.read_table(deps["labels"] / "test.parquet", columns=["utt_id", "frame", "vad", "f0_hz"]).to_pandas()
    noisy = decode_audio(table.loc[utt_id, "noisy"], f"{deps['mix']}: {utt_id} (noisy)")
    return noisy, labels[labels["utt_id"] == utt_id].sort_values("frame").reset_index(drop=True)


def run(ctx: StageContext) -> dict[str, Any]:
    deps = ctx.deps
    evaluation = json.loads(deps["evaluation"].read_text())
    probes = json.loads(deps["probes"].read_text())
    analysis = json.loads((deps["analysis"] / "analysis.json").read_text())
    masks = read_masks(deps["masks"])
    figures = standard_figures(evaluation, probes, analysis, masks, FOCUS_VARIANT)
    bundle = deps["analysis"] / "bundles" / FOCUS_VARIANT
    if (bundle / PROBES_FILE).is_file():  # the focus variant is a DynCP model with a probe bundle
        utt_id = str(masks.keys["utt_id"].iloc[0])  # the utterance of the mask raster
        figures.append(
            tracks_of_one_utterance(
                read_probes(bundle), load_model(bundle / MODEL_FILE)[0], *test_mixture(deps, utt_id), utt_id
            )
        )
    comparison = paper_comparison(evaluation, probes, ctx.params.mix.source, ctx.params.noises.source)
    tables = {
        "Quality and cost on the test split": quality_table(evaluation),
        "DynCP against static pruning at equal cost": dynamic_versus_static(evaluation),
        "The papers and us": comparison,
        "How dynamic the gates are (scored frames)": gate_dynamics_table(evaluation),
        "What the free lunch replaces: probes against dedicated models on the same test frames": (
            replaced_models_table(probes, FOCUS_VARIANT)
        ),
        "What each model's per-frame decisions know (probes per frame, test split)": probed_decisions_table(probes),
    }
    tables = {heading: rows for heading, rows in tables.items() if rows}
    fit = analysis["fit"]
    notes = [
        f"Probes and baselines: fitted on {fit['frames']} frames of {fit['utterances']} {'+'.join(fit['splits'])}"
        f" mixtures ({fit['speakers']} speakers), their penalty and K chosen by voice-family cross-validation"
        f" there; scored once on {analysis['frames']} frames of {analysis['speakers']} unseen speakers"
        f" ({analysis['families']} voice families) and unseen noise recordings.",
    ]
    with atomic_output_dir(ctx.outs["report"]) as tmp:
        write_report(tmp, "maskscope: dynamic channel pruning and what its masks know", figures, tables, notes)
    return {}
