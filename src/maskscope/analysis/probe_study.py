"""Everything the `probes` stage finds for one masked variant, by the papers' protocol: each probe
is selected and fitted on the masks of one split (train: the voices and noise recordings the SE
model learnt from), its penalty and its budgeted K are chosen by voice-family cross-validation
inside that split, and the fitted weight tables, exactly the ones exported, are scored once on the
scored split (test: unseen voices, unseen noise recordings).

Per task: the score-versus-K curve (scored split, beside the fit split's cross-validated one), the
in-context curve, the per-block map, the weight table of every K with its measured cost, scores per
mixture SNR and the best K within the task's cost budget."""

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
    ExportedProbe,
    block_scores,
    context_curve,
    curve_scores,
    decide,
    export_probes,
    held_out_outputs,
    main_score,
    metric_name,
    pitch_scores,
    ranked_folds,
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
    """Frames every variant's probes are fitted or scored on, with what that needs of them."""

    labels: pd.DataFrame
    groups: np.ndarray  # voice family per frame: cross-validation folds keep families apart
    snrs: np.ndarray  # mixture SNR per frame
    spans: list[tuple[int, int]]  # each utterance's rows, for timing one utterance at a time
    bits: np.ndarray  # the variant's mask bits, one row per label row


@dataclass(frozen=True)
class VariantStudy:
    metrics: dict[str, Any]
    details: dict[str, Any]  # curves and maps for analysis.json
    tables: dict[str, pd.DataFrame]  # task -> exported weight table at probes.k_bits
    probes: dict[str, ExportedProbe]  # task -> the probe of that table


def study_variant(
    layout: MaskLayout, fit: ProbeFrames, scored: ProbeFrames, settings: Any, budgets: dict[str, Any], variant: str
) -> VariantStudy:
    ks = sorted(set(settings.k_curve) | {settings.k_bits})
    entry: dict[str, Any] = {"decision_bits": layout.bits, "k_bits": settings.k_bits}
    entry |= {"ops_per_frame": {}, "mean_ops_per_frame": {}}
    entry["cpu_us_per_frame"] = {}
    in_context: dict[str, Any] = {
        "frames": settings.context_frames,
        "seconds": round(settings.context_frames / FRAMES_PER_SECOND, 3),
        "added_ops_per_frame": {},
    }
    cross_validated: dict[str, Any] = {"inverse_penalty": {}}
    by_snr: dict[str, dict[str, float | None]] = {}
    from_0db: dict[str, float | None] = {}
    within_budget: dict[str, Any] = {}
    details: dict[str, Any] = {"curve": {}, "fit_curve": {}, "cost_curve": {}, "context_curve": {}, "per_block": {}}
    tables: dict[str, pd.DataFrame] = {}
    probes: dict[str, ExportedProbe] = {}
    for task in tqdm(TASKS, desc=f"probes: {variant}", disable=None):
        fit_rows, scored_rows = task_rows(fit.labels, task), task_rows(scored.labels, task)
        fit_target, classes = task_target(fit.labels[fit_rows], task)
        target, _ = task_target(scored.labels[scored_rows], task, classes)
        fit_x, fit_groups, x = fit.bits[fit_rows], fit.groups[fit_rows], scored.bits[scored_rows]
        # The penalty and the budgeted K are chosen on the fit split alone, never on scored frames.
        folds = ranked_folds(fit_x, fit_target, fit_groups, task.kind, max(ks), settings.folds)
        penalty, fit_curve = _cross_validated(fit_x, fit_target, fit_groups, task.kind, ks, folds, settings)
        cross_validated["inverse_penalty"][task.name] = penalty
        details["fit_curve"][task.name] = {str(k): fit_curve[k] for k in ks}
        exported_by_k = export_probes(fit_x, fit_target, task, ks, classes, penalty)
        raw = {k: exported_by_k[k].raw(x) for k in ks}
        curve = curve_scores(task.kind, target, raw)
        details["curve"][task.name] = {str(k): curve[k] for k in ks}
        utterances = scored.labels["utt_id"].to_numpy()[scored_rows]
        by_context = context_curve(raw[settings.k_bits], target, task.kind, utterances, settings.context_frames)
        details["context_curve"][task.name] = {str(count): by_context[count] for count in by_context}
        details["per_block"][task.name] = block_scores(
            fit_x, fit_target, fit_groups, task.kind, layout.blocks, BLOCK_FOLDS, BLOCK_FRAMES
        )
        costs = {k: measured_us_per_frame(probe, scored.bits, scored.spans) for k, probe in exported_by_k.items()}
        details["cost_curve"][task.name] = {
            str(k): {"ops_per_frame": exported_by_k[k].ops_per_frame(), "cpu_us_per_frame": costs[k]} for k in ks
        }
        if task.name in budgets:
            budget = budgets[task.name]
            best = best_within_budget(fit_curve, curve, costs, budget["cpu_us_per_frame"], task)
            within_budget[task.name] = {**budget, "best_k": best}
        exported = exported_by_k[settings.k_bits]
        tables[task.name] = exported.table(layout.hidden)
        probes[task.name] = exported
        open_fraction = float(x[:, exported.bits].mean())
        entry["ops_per_frame"][task.name] = round(exported.ops_per_frame(), 1)
        entry["mean_ops_per_frame"][task.name] = round(exported.ops_per_frame(open_fraction), 1)
        entry["cpu_us_per_frame"][task.name] = costs[settings.k_bits]
        in_context["added_ops_per_frame"][task.name] = exported.running_mean_ops()
        name = metric_name(task)
        per_snr, in_paper_range = scores_by_snr(
            task.kind, target, decide(task.kind, raw[settings.k_bits]), scored.snrs[scored_rows]
        )
        for snr, score in per_snr.items():
            by_snr.setdefault(snr, {})[name] = score
        from_0db[name] = in_paper_range
        per_frame, averaged = curve[settings.k_bits], by_context[settings.context_frames]
        cross_validated[name] = round(fit_curve[settings.k_bits][main_score(task.kind)], 4)
        for scored_at, at_k in ((entry, per_frame), (in_context, averaged)):
            scored_at[name] = round(at_k[main_score(task.kind)], 4)
            if task.name == "snr":
                scored_at["snr_mae_db"] = round(at_k["mae"], 3)
        if task.name == "f0":  # pitch error as the F0 baselines report it beside their R²
            pitch = pitch_scores(target, decide(task.kind, raw[settings.k_bits]))
            entry["f0_pitch"] = {key: round(value, 4) if np.isfinite(value) else None for key, value in pitch.items()}
    metrics = {
        **entry,
        "in_context": in_context,
        "cross_validated_on_fit_split": cross_validated,
        "by_snr_db": by_snr,
        "from_0db": from_0db,
        "cpu_budget": within_budget,
    }
    return VariantStudy(metrics, details, tables, probes)


def _cross_validated(
    x: np.ndarray, target: np.ndarray, groups: np.ndarray, kind: Any, ks: list[int], folds: list, settings: Any
) -> tuple[float, dict[int, dict[str, float]]]:
    """The penalty that cross-validates best at probes.k_bits (ties: the stronger one), and the
    score-versus-K curve at it, all on the fit split's voice-family folds."""
    key = main_score(kind)
    at_k = {
        penalty: curve_scores(
            kind, target, held_out_outputs(x, target, groups, kind, [settings.k_bits], folds, penalty)
        )[settings.k_bits][key]
        for penalty in settings.inverse_penalties
    }
    penalty = max(at_k, key=lambda value: (at_k[value], -value))
    return penalty, curve_scores(kind, target, held_out_outputs(x, target, groups, kind, ks, folds, penalty))
