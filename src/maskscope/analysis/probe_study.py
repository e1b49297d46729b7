"""Everything the `probes` stage finds for one masked variant: per task, the score-versus-K curve,
the in-context curve, the per-block map, the exported weight table of every K with its measured
cost, scores per mixture SNR and the best K within the task's cost budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from maskscope.analysis.costs import best_within_budget, measured_us_per_frame
from maskscope.analysis.masks import MaskLayout
from maskscope.analysis.probes import (
    TASKS,
    block_scores,
    context_curve,
    curve_scores,
    decide,
    export_probes,
    held_out_outputs,
    main_score,
    metric_name,
    scores_by_snr,
    task_rows,
    task_target,
)
from maskscope.core.framing import FRAMES_PER_SECOND

# The per-block map fits nine probes per task: two speaker-disjoint folds on a subsample keep it affordable.
BLOCK_FOLDS = 2
BLOCK_FRAMES = 8000


@dataclass(frozen=True)
class ProbeFrames:
    """The frames every variant's probes are fitted and scored on, with what scoring needs of them."""

    labels: pd.DataFrame
    groups: np.ndarray  # voice family per frame: cross-validation folds keep families apart
    snrs: np.ndarray  # mixture SNR per frame
    spans: list[tuple[int, int]]  # each utterance's rows, for timing one utterance at a time


@dataclass(frozen=True)
class VariantStudy:
    metrics: dict[str, Any]
    details: dict[str, Any]  # curves and maps for analysis.json
    tables: dict[str, pd.DataFrame]  # task -> exported weight table at probes.k_bits


def study_variant(
    bits: np.ndarray, layout: MaskLayout, frames: ProbeFrames, settings: Any, budgets: dict[str, Any], variant: str
) -> VariantStudy:
    labels = frames.labels
    ks = sorted(set(settings.k_curve) | {settings.k_bits})
    entry: dict[str, Any] = {"k_bits": settings.k_bits, "ops_per_frame": {}, "mean_ops_per_frame": {}}
    entry["cpu_us_per_frame"] = {}
    in_context: dict[str, Any] = {
        "frames": settings.context_frames,
        "seconds": round(settings.context_frames / FRAMES_PER_SECOND, 3),
        "added_ops_per_frame": {},
    }
    by_snr: dict[str, dict[str, float | None]] = {}
    from_0db: dict[str, float | None] = {}
    within_budget: dict[str, Any] = {}
    details: dict[str, Any] = {"curve": {}, "cost_curve": {}, "context_curve": {}, "per_block": {}}
    tables: dict[str, pd.DataFrame] = {}
    for task in tqdm(TASKS, desc=f"probes: {variant}", disable=None):
        rows = task_rows(labels, task)
        target, classes = task_target(labels[rows], task)
        x, groups = bits[rows], frames.groups[rows]
        raw = held_out_outputs(x, target, groups, task.kind, ks, settings.folds)
        curve = curve_scores(task.kind, target, raw)
        details["curve"][task.name] = {str(k): curve[k] for k in ks}
        utterances = labels["utt_id"].to_numpy()[rows]
        by_context = context_curve(raw[settings.k_bits], target, task.kind, utterances, settings.context_frames)
        details["context_curve"][task.name] = {str(count): by_context[count] for count in by_context}
        details["per_block"][task.name] = block_scores(
            x, target, groups, task.kind, layout.blocks, BLOCK_FOLDS, BLOCK_FRAMES
        )
        exported_by_k = export_probes(x, target, task, ks, classes)
        costs = {k: measured_us_per_frame(probe, bits, frames.spans) for k, probe in exported_by_k.items()}
        details["cost_curve"][task.name] = {
            str(k): {"ops_per_frame": exported_by_k[k].ops_per_frame(), "cpu_us_per_frame": costs[k]} for k in ks
        }
        if task.name in budgets:
            budget = budgets[task.name]
            best = best_within_budget(curve, costs, budget["cpu_us_per_frame"], task)
            within_budget[task.name] = {**budget, "best_k": best}
        exported = exported_by_k[settings.k_bits]
        tables[task.name] = exported.table(layout.hidden)
        open_fraction = float(x[:, exported.bits].mean())
        entry["ops_per_frame"][task.name] = round(exported.ops_per_frame(), 1)
        entry["mean_ops_per_frame"][task.name] = round(exported.ops_per_frame(open_fraction), 1)
        entry["cpu_us_per_frame"][task.name] = costs[settings.k_bits]
        in_context["added_ops_per_frame"][task.name] = exported.running_mean_ops()
        name = metric_name(task)
        per_snr, in_paper_range = scores_by_snr(
            task.kind, target, decide(task.kind, raw[settings.k_bits]), frames.snrs[rows]
        )
        for snr, score in per_snr.items():
            by_snr.setdefault(snr, {})[name] = score
        from_0db[name] = in_paper_range
        per_frame, averaged = curve[settings.k_bits], by_context[settings.context_frames]
        for scored, at_k in ((entry, per_frame), (in_context, averaged)):
            scored[name] = round(at_k[main_score(task.kind)], 4)
            if task.name == "snr":
                scored["snr_mae_db"] = round(at_k["mae"], 3)
    metrics = {
        **entry,
        "in_context": in_context,
        "by_snr_db": by_snr,
        "from_0db": from_0db,
        "cpu_budget": within_budget,
    }
    return VariantStudy(metrics, details, tables)
