"""Stage `probes`: what the gate masks of each DynCP variant know about VAD, noise class, F0 and SNR.

Scored on a seeded choice of mixtures from `probes.splits` (the same frames the `baselines` stage
uses), with speaker-disjoint cross-validation, overall and per mixture SNR; each final probe is
exported as a weight table, and the tables of every K on the curve are timed against each task's
cost budget (1/100 of the measured cost of the task's cheapest dedicated baseline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from maskscope.baselines import TIMING_REPEATS, timed
from maskscope.errors import InputFormatError
from maskscope.framing import FRAMES_PER_SECOND
from maskscope.io import atomic_output_dir, write_parquet
from maskscope.masks import MaskSet, read_masks
from maskscope.probes import (
    TASKS,
    ExportedProbe,
    Task,
    block_scores,
    context_curve,
    curve_scores,
    decide,
    export_probes,
    frame_families,
    held_out_outputs,
    main_score,
    metric_name,
    mixture_snrs,
    probe_labels,
    scores_by_snr,
    task_rows,
    task_target,
    utterance_spans,
)
from maskscope.stages import StageContext

# The per-block map fits nine probes per task: two speaker-disjoint folds on a subsample keep it affordable.
BLOCK_FOLDS = 2
BLOCK_FRAMES = 8000


def aligned_bits(masks: list[MaskSet], labels: pd.DataFrame, origin: str) -> np.ndarray:
    """Mask bits in the order of the label rows; every label frame must have its mask."""
    keys = pd.concat([m.keys for m in masks], ignore_index=True)
    bits = np.concatenate([m.bits for m in masks])
    index = pd.Series(np.arange(len(keys)), index=pd.MultiIndex.from_frame(keys[["utt_id", "frame"]]))
    wanted = pd.MultiIndex.from_frame(labels[["utt_id", "frame"]].astype({"frame": keys["frame"].dtype}))
    rows = index.reindex(wanted)
    if rows.isna().any():
        missing = labels.loc[rows.isna().to_numpy(), ["utt_id", "frame"]].head(3).to_dict("records")
        raise InputFormatError(f"{origin}: no mask for label frames such as {missing}; rerun dump_masks")
    return bits[rows.to_numpy(np.int64)]


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps = ctx.params, ctx.deps
    settings = params.probes
    ks = sorted(set(settings.k_curve) | {settings.k_bits})
    labels = probe_labels(deps["labels"], list(settings.splits), params.seed, settings.utterances)
    groups_all = frame_families(labels, deps["corpus"])
    snrs_all = mixture_snrs(labels, deps["mix"], list(settings.splits))
    spans = utterance_spans(labels["utt_id"].to_numpy())
    baselines = json.loads((deps["baselines"] / "baselines.json").read_text())
    budgets = cost_budgets(baselines["methods"])
    metrics: dict[str, Any] = {}
    speakers, families = labels["speaker"].nunique(), len(set(groups_all))
    report: dict[str, Any] = {"frames": len(labels), "speakers": speakers, "families": families, "variants": {}}
    with atomic_output_dir(ctx.outs["probes"]) as tmp:
        for variant in masked_variants(deps):
            masks = [read_masks(deps[f"masks-{variant}-{split}"]) for split in settings.splits]
            bits = aligned_bits(masks, labels, f"masks of {variant}")
            layout = masks[0].layout
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
            for task in tqdm(TASKS, desc=f"probes: {variant}", disable=None):
                rows = task_rows(labels, task)
                target, classes = task_target(labels[rows], task)
                x, groups = bits[rows], groups_all[rows]
                raw = held_out_outputs(x, target, groups, task.kind, ks, settings.folds)
                curve = curve_scores(task.kind, target, raw)
                details["curve"][task.name] = {str(k): curve[k] for k in ks}
                utterances = labels["utt_id"].to_numpy()[rows]
                by_context = context_curve(raw[settings.k_bits], target, task.kind, utterances, settings.context_frames)
                details["context_curve"][task.name] = {str(frames): by_context[frames] for frames in by_context}
                details["per_block"][task.name] = block_scores(
                    x, target, groups, task.kind, layout.blocks, BLOCK_FOLDS, BLOCK_FRAMES
                )
                exported_by_k = export_probes(x, target, task, ks, classes)
                costs = {k: measured_us_per_frame(probe, bits, spans) for k, probe in exported_by_k.items()}
                details["cost_curve"][task.name] = {
                    str(k): {"ops_per_frame": exported_by_k[k].ops_per_frame(), "cpu_us_per_frame": costs[k]}
                    for k in ks
                }
                if task.name in budgets:
                    budget = budgets[task.name]
                    best = best_within_budget(curve, costs, budget["cpu_us_per_frame"], task)
                    within_budget[task.name] = {**budget, "best_k": best}
                exported = exported_by_k[settings.k_bits]
                write_parquet_table(exported.table(layout.hidden), tmp / f"{variant}-{task.name}.parquet")
                open_fraction = float(x[:, exported.bits].mean())
                entry["ops_per_frame"][task.name] = round(exported.ops_per_frame(), 1)
                entry["mean_ops_per_frame"][task.name] = round(exported.ops_per_frame(open_fraction), 1)
                entry["cpu_us_per_frame"][task.name] = costs[settings.k_bits]
                in_context["added_ops_per_frame"][task.name] = exported.running_mean_ops()
                name = metric_name(task)
                per_snr, in_paper_range = scores_by_snr(
                    task.kind, target, decide(task.kind, raw[settings.k_bits]), snrs_all[rows]
                )
                for snr, score in per_snr.items():
                    by_snr.setdefault(snr, {})[name] = score
                from_0db[name] = in_paper_range
                per_frame, averaged = curve[settings.k_bits], by_context[settings.context_frames]
                for scored, at_k in ((entry, per_frame), (in_context, averaged)):
                    scored[name] = round(at_k[main_score(task.kind)], 4)
                    if task.name == "snr":
                        scored["snr_mae_db"] = round(at_k["mae"], 3)
            metrics[variant] = {
                **entry,
                "in_context": in_context,
                "by_snr_db": by_snr,
                "from_0db": from_0db,
                "cpu_budget": within_budget,
            }
            report["variants"][variant] = details
        metrics["baselines"] = baselines
        report["frames_per_second"] = FRAMES_PER_SECOND
        (tmp / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    return metrics


# The cost target: a probe at most 1/100 of the cheapest dedicated baseline's measured cost.
COST_RATIO = 100


def cost_budgets(methods: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task with a dedicated baseline: the cheapest one and 1/COST_RATIO of its measured CPU time
    per frame (SNR has no baseline, so no budget)."""
    budgets: dict[str, dict[str, Any]] = {}
    for name in sorted(methods, key=lambda name: methods[name]["cpu_us_per_frame"]):
        cost = methods[name]["cpu_us_per_frame"]
        budgets.setdefault(methods[name]["task"], {"baseline": name, "cpu_us_per_frame": round(cost / COST_RATIO, 4)})
    return budgets


def measured_us_per_frame(probe: ExportedProbe, bits: np.ndarray, spans: list[tuple[int, int]]) -> float:
    """CPU microseconds per frame of the weight table, applied to one utterance (`spans`: its rows) at
    a time, the least of TIMING_REPEATS runs each, as the baselines are timed."""
    seconds = sum(
        timed(lambda start=start, end=end: probe.predict(bits[start:end]), TIMING_REPEATS).cpu_seconds
        for start, end in spans
    )
    return round(1e6 * seconds / len(bits), 4)


def best_within_budget(
    curve: dict[int, dict[str, float]], costs: dict[int, float], budget_us: float, task: Task
) -> dict[str, Any] | None:
    """The best-scoring K on the curve whose measured cost is within the budget (None if none is)."""
    affordable = [k for k in curve if costs[k] <= budget_us]
    if not affordable:
        return None
    best = max(affordable, key=lambda k: (curve[k][main_score(task.kind)], -k))
    return {
        "k_bits": best,
        metric_name(task): round(curve[best][main_score(task.kind)], 4),
        "cpu_us_per_frame": costs[best],
    }


def write_parquet_table(frame: pd.DataFrame, path: Path) -> None:
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)


def masked_variants(deps: dict[str, Path]) -> list[str]:
    """Variants with mask inputs, from the input names `masks-<variant>-<split>`."""
    return sorted({name.removeprefix("masks-").rsplit("-", 1)[0] for name in deps if name.startswith("masks-")})
