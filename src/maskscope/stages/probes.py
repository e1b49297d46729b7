"""Stage `probes`: what the gate masks of each DynCP variant know about VAD, noise class, F0 and SNR.

Scored on a seeded choice of mixtures from `probes.splits` (the same frames the `baselines` stage
uses), with speaker-disjoint cross-validation, overall and per mixture SNR; each final probe is
exported as a weight table, and the tables of every K on the curve are timed against each task's
cost budget (1/COST_RATIO of the measured cost of the task's cheapest dedicated baseline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from maskscope.analysis.costs import cost_budgets
from maskscope.analysis.masks import aligned_bits, read_masks
from maskscope.analysis.probe_study import ProbeFrames, study_variant
from maskscope.analysis.probes import frame_families, mixture_snrs, probe_labels, utterance_spans
from maskscope.core.framing import FRAMES_PER_SECOND
from maskscope.core.io import atomic_output_dir, write_parquet
from maskscope.pipeline.runner import StageContext


def masked_variants(deps: dict[str, Path]) -> list[str]:
    """Variants with mask inputs, from the input names `masks-<variant>-<split>`."""
    return sorted({name.removeprefix("masks-").rsplit("-", 1)[0] for name in deps if name.startswith("masks-")})


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps = ctx.params, ctx.deps
    settings = params.probes
    labels = probe_labels(deps["labels"], list(settings.splits), params.seed, settings.utterances)
    frames = ProbeFrames(
        labels,
        frame_families(labels, deps["corpus"]),
        mixture_snrs(labels, deps["mix"], list(settings.splits)),
        utterance_spans(labels["utt_id"].to_numpy()),
    )
    baselines = json.loads((deps["baselines"] / "baselines.json").read_text())
    budgets = cost_budgets(baselines["methods"])
    metrics: dict[str, Any] = {}
    speakers, families = labels["speaker"].nunique(), len(set(frames.groups))
    report: dict[str, Any] = {"frames": len(labels), "speakers": speakers, "families": families, "variants": {}}
    with atomic_output_dir(ctx.outs["probes"]) as tmp:
        for variant in masked_variants(deps):
            masks = [read_masks(deps[f"masks-{variant}-{split}"]) for split in settings.splits]
            bits = aligned_bits(masks, labels, f"masks of {variant}")
            study = study_variant(bits, masks[0].layout, frames, settings, budgets, variant)
            for task, table in study.tables.items():
                write_parquet(pa.Table.from_pandas(table, preserve_index=False), tmp / f"{variant}-{task}.parquet")
            metrics[variant] = study.metrics
            report["variants"][variant] = study.details
        metrics["baselines"] = baselines
        report["frames_per_second"] = FRAMES_PER_SECOND
        (tmp / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    return metrics
