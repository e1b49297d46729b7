"""Stage `probes`: what the gate masks of each DynCP variant know about VAD, noise class, F0 and SNR.

Fitted on a seeded choice of mixtures of `probes.fit_split` (train), their penalty and budgeted K
chosen by voice-family cross-validation there; scored once on a seeded choice of mixtures from
`probes.splits` (test: the same frames the `baselines` stage uses), overall and per mixture SNR.
The weight tables written are exactly the probes scored, and the tables of every K on the curve are
timed against each task's cost budget (1/COST_RATIO of the measured cost of the task's cheapest
dedicated baseline). Each DynCP variant also gets a bundle, `bundles/VARIANT/` (its model and
those probes), which `maskscope enhance --tracks` reads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa

from maskscope.analysis.costs import cost_budgets
from maskscope.analysis.masks import aligned_bits, read_masks
from maskscope.analysis.probe_study import ProbeFrames, study_variant
from maskscope.analysis.probes import frame_families, mixture_snrs, probe_labels, utterance_spans
from maskscope.core.constants import MODEL_FILE
from maskscope.core.framing import FRAMES_PER_SECOND
from maskscope.core.io import atomic_output_dir, write_parquet
from maskscope.evaluation.tracks import write_probes
from maskscope.pipeline.runner import StageContext


def masked_variants(deps: dict[str, Path]) -> list[str]:
    """Variants with mask inputs, from the input names `masks-<variant>-<split>`."""
    return sorted({name.removeprefix("masks-").rsplit("-", 1)[0] for name in deps if name.startswith("masks-")})


def probe_frames(deps: dict[str, Path], splits: list[str], seed: int, utterances: int) -> tuple[dict[str, Any], Any]:
    """What a seeded choice of mixtures of `splits` holds, and a maker of their frames for one variant."""
    labels = probe_labels(deps["labels"], splits, seed, utterances)
    groups = frame_families(labels, deps["corpus"])
    snrs = mixture_snrs(labels, deps["mix"], splits)
    spans = utterance_spans(labels["utt_id"].to_numpy())

    def for_variant(variant: str) -> tuple[ProbeFrames, Any]:
        masks = [read_masks(deps[f"masks-{variant}-{split}"]) for split in splits]
        bits = aligned_bits(masks, labels, f"masks of {variant} ({', '.join(splits)})")
        return ProbeFrames(labels, groups, snrs, spans, bits), masks[0].layout

    described = {
        "splits": splits,
        "utterances": int(labels["utt_id"].nunique()),
        "frames": len(labels),
        "speakers": int(labels["speaker"].nunique()),
        "families": len(set(groups)),
    }
    return described, for_variant


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps = ctx.params, ctx.deps
    settings = params.probes
    fit_described, fit_frames = probe_frames(deps, [settings.fit_split], params.seed, settings.fit_utterances)
    scored_described, scored_frames = probe_frames(deps, list(settings.splits), params.seed, settings.utterances)
    baselines = json.loads((deps["baselines"] / "baselines.json").read_text())
    budgets = cost_budgets(baselines["methods"])
    metrics: dict[str, Any] = {}
    report: dict[str, Any] = {"fit": fit_described, "scored": scored_described, "variants": {}}
    # The scored frames' figures stay at the top level, where the report reads them.
    report.update({key: report["scored"][key] for key in ("frames", "speakers", "families")})
    with atomic_output_dir(ctx.outs["probes"]) as tmp:
        for variant in masked_variants(deps):
            fit, layout = fit_frames(variant)
            scored, _ = scored_frames(variant)
            study = study_variant(layout, fit, scored, settings, budgets, variant)
            for task, table in study.tables.items():
                write_parquet(pa.Table.from_pandas(table, preserve_index=False), tmp / f"{variant}-{task}.parquet")
            metrics[variant] = study.metrics
            if f"model-{variant}" in deps:
                bundle = tmp / "bundles" / variant
                bundle.mkdir(parents=True)
                shutil.copyfile(deps[f"model-{variant}"] / MODEL_FILE, bundle / MODEL_FILE)
                write_probes(bundle, variant, layout, settings.context_frames, study.probes)
            report["variants"][variant] = study.details
        metrics["baselines"] = baselines
        report["frames_per_second"] = FRAMES_PER_SECOND
        (tmp / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    return metrics
