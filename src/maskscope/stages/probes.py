"""Stage `probes`: what the gate masks of each DynCP variant know about VAD, noise class, F0 and SNR.

Scored on a seeded choice of mixtures from `probes.splits` (the same frames the `baselines` stage
uses), with speaker-disjoint cross-validation; each final probe is exported as a weight table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from maskscope.baselines import timed
from maskscope.errors import InputFormatError
from maskscope.framing import FRAMES_PER_SECOND
from maskscope.io import atomic_output_dir, write_parquet
from maskscope.masks import MaskSet, read_masks
from maskscope.probes import (
    TASKS,
    block_scores,
    context_curve,
    decide,
    export_probe,
    frame_families,
    held_out_outputs,
    main_score,
    probe_labels,
    scores,
    task_rows,
    task_target,
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
    baselines = json.loads((deps["baselines"] / "baselines.json").read_text())
    metrics: dict[str, Any] = {}
    speakers, families = labels["speaker"].nunique(), len(set(groups_all))
    report: dict[str, Any] = {"frames": len(labels), "speakers": speakers, "families": families, "variants": {}}
    with atomic_output_dir(ctx.outs["probes"]) as tmp:
        for variant in masked_variants(deps):
            masks = [read_masks(deps[f"masks-{variant}-{split}"]) for split in settings.splits]
            bits = aligned_bits(masks, labels, f"masks of {variant}")
            layout = masks[0].layout
            entry: dict[str, Any] = {"k_bits": settings.k_bits, "ops_per_frame": {}, "mean_ops_per_frame": {}}
            in_context: dict[str, Any] = {
                "frames": settings.context_frames,
                "seconds": round(settings.context_frames / FRAMES_PER_SECOND, 3),
                "added_ops_per_frame": {},
            }
            details: dict[str, Any] = {"curve": {}, "context_curve": {}, "per_block": {}}
            for task in tqdm(TASKS, desc=f"probes: {variant}", disable=None):
                rows = task_rows(labels, task)
                target, classes = task_target(labels[rows], task)
                x, groups = bits[rows], groups_all[rows]
                raw = held_out_outputs(x, target, groups, task.kind, ks, settings.folds)
                curve = {k: scores(task.kind, target, decide(task.kind, raw[k])) for k in ks}
                details["curve"][task.name] = {str(k): curve[k] for k in ks}
                utterances = labels["utt_id"].to_numpy()[rows]
                by_context = context_curve(raw[settings.k_bits], target, task.kind, utterances, settings.context_frames)
                details["context_curve"][task.name] = {str(frames): by_context[frames] for frames in by_context}
                details["per_block"][task.name] = block_scores(
                    x, target, groups, task.kind, layout.blocks, BLOCK_FOLDS, BLOCK_FRAMES
                )
                exported = export_probe(x, target, task, settings.k_bits, classes)
                write_parquet_table(exported.table(layout.hidden), tmp / f"{variant}-{task.name}.parquet")
                open_fraction = float(x[:, exported.bits].mean())
                cost = timed(lambda exported=exported, bits=bits: exported.predict(bits))
                entry["ops_per_frame"][task.name] = round(exported.ops_per_frame(), 1)
                entry["mean_ops_per_frame"][task.name] = round(exported.ops_per_frame(open_fraction), 1)
                entry.setdefault("cpu_us_per_frame", {})[task.name] = round(1e6 * cost.cpu_seconds / len(bits), 4)
                # a running sum over the window: add the newest output, subtract the one leaving
                in_context["added_ops_per_frame"][task.name] = 2 * exported.weights.shape[0]
                per_frame, averaged = curve[settings.k_bits], by_context[settings.context_frames]
                for scored, at_k in ((entry, per_frame), (in_context, averaged)):
                    if task.kind == "regression":
                        scored[f"{task.name}_r2"] = round(at_k["r2"], 4)
                        if task.name == "snr":
                            scored["snr_mae_db"] = round(at_k["mae"], 3)
                    else:
                        scored[f"{task.name}_accuracy"] = round(at_k[main_score(task.kind)], 4)
            metrics[variant] = {**entry, "in_context": in_context}
            report["variants"][variant] = details
        metrics["baselines"] = baselines
        report["frames_per_second"] = FRAMES_PER_SECOND
        (tmp / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    return metrics


def write_parquet_table(frame: pd.DataFrame, path: Path) -> None:
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), path)


def masked_variants(deps: dict[str, Path]) -> list[str]:
    """Variants with mask inputs, from the input names `masks-<variant>-<split>`."""
    return sorted({name.removeprefix("masks-").rsplit("-", 1)[0] for name in deps if name.startswith("masks-")})
