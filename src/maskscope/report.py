"""The report: one self-contained HTML page (figures inlined as PNG data) and a Markdown summary.

Figures: a mask raster over one utterance with per-block usage, gate usage per block for each
Φ_trgt, PESQ versus MACs, probe score versus K, versus causal context and versus mixture SNR, a
per-block probe heat map, probes versus the dedicated baselines (score and cost), and the papers'
numbers beside ours.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on pipeline machines
import matplotlib.pyplot as plt
import numpy as np

from maskscope.masks import MaskSet

TASK_TITLES = {"vad": "VAD accuracy", "noise": "noise-class accuracy", "f0": "F0 R²", "snr": "SNR R²"}
TASK_METRICS = {"vad": "vad_accuracy", "noise": "noise_accuracy", "f0": "f0_r2", "snr": "snr_r2"}
BASELINE_TASK = {"webrtcvad": "vad", "energy": "vad", "harvest": "f0", "dio": "f0", "logmel_logreg": "noise"}


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    png: bytes


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def mask_raster(masks: MaskSet, utt_id: str) -> Figure:
    rows = (masks.keys["utt_id"] == utt_id).to_numpy()
    bits = masks.bits[rows]  # (frames, blocks * H)
    layout = masks.layout
    usage = bits.reshape(len(bits), layout.blocks, layout.hidden).mean(axis=2)  # (frames, blocks)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), height_ratios=[3, 1], sharex=True)
    top.imshow(bits.T, aspect="auto", interpolation="nearest", cmap="Greys", origin="lower")
    for block in range(1, layout.blocks):
        top.axhline(block * layout.hidden - 0.5, color="tab:red", linewidth=0.5)
    top.set_ylabel("block × channel")
    top.set_yticks([(b + 0.5) * layout.hidden for b in range(layout.blocks)], [f"B{b}" for b in range(layout.blocks)])
    for block in range(layout.blocks):
        bottom.plot(usage[:, block], linewidth=0.8, label=f"B{block}")
    bottom.set_xlabel("STFT frame (16 ms)")
    bottom.set_ylabel("usage")
    bottom.legend(ncol=min(layout.blocks, 9), fontsize=6, loc="upper right")
    return Figure(
        "mask_raster",
        f"Gate mask of {utt_id}",
        "Open gates (black) per frame for every block's channels, and each block's fraction of open gates.",
        _png(figure),
    )


def usage_per_block(evaluation: dict[str, Any]) -> Figure:
    figure, axis = plt.subplots(figsize=(7, 3.5))
    for variant, entry in evaluation.items():
        usage = entry.get("gate_usage_per_block") if isinstance(entry, dict) else None
        if usage:
            axis.plot(range(len(usage)), usage, marker="o", label=variant)
    axis.set_xlabel("block")
    axis.set_ylabel("fraction of open gates (test split)")
    axis.set_ylim(0, 1)
    axis.legend()
    caption = "Measured on the test split for each Φ_trgt."
    return Figure("usage_per_block", "Gate usage per block", caption, _png(figure))


def pesq_versus_macs(evaluation: dict[str, Any]) -> Figure:
    """The Pareto plot: every system's PESQ against the MACs it spent per input sample."""
    figure, axis = plt.subplots(figsize=(6.5, 4))
    widths = {name: entry for name, entry in evaluation.items() if "uf" in entry}
    for name, entry in evaluation.items():
        if name == "noisy":
            axis.axhline(entry["pesq"], color="grey", linestyle="--", label="noisy input")
            continue
        routed = "average_uf" in entry
        marker = "s" if routed else ("^" if name in widths else "o")
        axis.scatter(entry["macs_per_sample"], entry["pesq"], marker=marker)
        axis.annotate(name, (entry["macs_per_sample"], entry["pesq"]), fontsize=7)
    if widths:  # the slimmable model's widths as one curve: the static front routing must beat
        points = sorted((entry["macs_per_sample"], entry["pesq"]) for entry in widths.values())
        axis.plot(*zip(*points, strict=True), color="grey", linewidth=0.8, label="slimmable DEMUCS, static UF")
    axis.set_xscale("log")
    axis.set_xlabel("MACs per input sample (gates and router included)")
    axis.set_ylabel("PESQ (wide-band)")
    axis.legend(loc="lower right", fontsize=8)
    caption = (
        "Every system on the test split. Circles: Conv-FSENet variants; triangles: the slimmable DEMUCS at "
        "fixed widths; squares: routed DEMUCS (average cost of the router's choices)."
    )
    return Figure("pesq_macs", "PESQ versus MACs (Pareto)", caption, _png(figure))


def _task_curves(analysis: dict[str, Any], field: str) -> tuple[plt.Figure, list[tuple[Any, str]]]:
    """One panel per task, each variant's `field` curve (x -> scores) drawn in it; (figure, [(axis, task)])."""
    variants = analysis["variants"]
    tasks = list(next(iter(variants.values()))[field])
    figure, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.2))
    panels = list(zip(np.atleast_1d(axes), tasks, strict=True))
    for axis, task in panels:
        for variant, details in variants.items():
            curve = details[field][task]
            xs = sorted(curve, key=int)
            key = "r2" if "r2" in curve[xs[0]] else "accuracy"
            axis.plot([int(x) for x in xs], [curve[x][key] for x in xs], marker="o", label=variant)
        axis.set_title(TASK_TITLES.get(task, task), fontsize=9)
    return figure, panels


def score_versus_k(analysis: dict[str, Any]) -> Figure:
    figure, panels = _task_curves(analysis, "curve")
    for axis, _ in panels:
        axis.set_xscale("log")
        axis.set_xlabel("K selected bits")
    panels[0][0].legend(fontsize=7)
    return Figure(
        "score_k",
        "Probe score versus K",
        "Speaker-disjoint cross-validated score of each probe on the first K bits of its L1 path.",
        _png(figure),
    )


def score_versus_context(analysis: dict[str, Any], baselines: dict[str, Any]) -> Figure:
    figure, panels = _task_curves(analysis, "context_curve")
    for axis, task in panels:
        for method, values in baselines["methods"].items():
            if values.get("task") == task and "accuracy_by_context" in values:
                curve = values["accuracy_by_context"]
                frames = sorted(curve, key=int)
                axis.plot([int(n) for n in frames], [curve[n] for n in frames], "k--", marker="x", label=method)
        axis.set_xscale("log", base=2)
        axis.set_xlabel(f"context (frames of {1000 / analysis['frames_per_second']:g} ms)")
        axis.legend(fontsize=6)
    return Figure(
        "score_context",
        "Probe score versus causal context",
        "The probes on K bits, their outputs averaged over the last N frames of the utterance before deciding"
        " (N = 1: per frame). Dashed: the log-mel noise classifier with the same averaging.",
        _png(figure),
    )


def _scored(points: list[tuple[float, float | None]]) -> tuple[list[float], list[float]]:
    """(xs, ys) in x order, without the points that have no score (an SNR without such frames)."""
    kept = sorted((x, y) for x, y in points if y is not None)
    return [x for x, _ in kept], [y for _, y in kept]


def score_versus_snr(probes: dict[str, Any]) -> Figure:
    variants = {name: entry for name, entry in probes.items() if "by_snr_db" in entry}
    methods = probes["baselines"]["methods"]
    figure, axes = plt.subplots(1, len(TASK_METRICS), figsize=(3.2 * len(TASK_METRICS), 3.2))
    for axis, (task, metric) in zip(axes, TASK_METRICS.items(), strict=True):
        for variant, entry in variants.items():
            points = [(float(snr), scores.get(metric)) for snr, scores in entry["by_snr_db"].items()]
            axis.plot(*_scored(points), marker="o", label=variant)
        for method, values in methods.items():
            if values.get("task") == task and "by_snr_db" in values:
                points = [(float(snr), score) for snr, score in values["by_snr_db"].items()]
                axis.plot(*_scored(points), "--", marker="x", label=method)
        bottom, top = axis.get_ylim()
        axis.set_ylim(max(bottom, -1.0), top)  # a baseline far below zero R² would flatten the probes
        axis.axvspan(0.0, max(axis.get_xlim()[1], 0.0), color="0.9", zorder=0)
        axis.set_title(TASK_TITLES[task], fontsize=9)
        axis.set_xlabel("mixture SNR (dB)")
        axis.legend(fontsize=6)
    return Figure(
        "score_snr",
        "Probe score versus mixture SNR",
        "Per-frame scores (K bits, speaker-disjoint) on the mixtures of each SNR; dashed: the dedicated baselines on"
        " the same frames. Shaded: 0 dB and above, the SNRs of the papers' VoiceBank+DEMAND mixtures.",
        _png(figure),
    )


def block_heat_map(analysis: dict[str, Any], variant: str) -> Figure:
    per_block = analysis["variants"][variant]["per_block"]
    tasks = list(per_block)
    values = np.array([per_block[task] for task in tasks])
    figure, axis = plt.subplots(figsize=(7, 2.8))
    image = axis.imshow(values, aspect="auto", cmap="viridis")
    axis.set_yticks(range(len(tasks)), [TASK_TITLES.get(t, t) for t in tasks])
    axis.set_xticks(range(values.shape[1]), [f"B{b}" for b in range(values.shape[1])])
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white")
    figure.colorbar(image, ax=axis)
    return Figure(
        "block_heat_map",
        f"Which blocks know what ({variant})",
        "Cross-validated score of a probe on all channels of one block.",
        _png(figure),
    )


def probes_versus_baselines(probes: dict[str, Any], variant: str) -> Figure:
    entry, methods = probes[variant], probes["baselines"]["methods"]
    names, scores, costs = [], [], []
    probed = [task for task in TASK_METRICS if task in BASELINE_TASK.values()]  # tasks a baseline also does
    for task in probed:
        key = TASK_METRICS[task]
        names.append(f"probe {task}")
        scores.append(entry[key])
        costs.append(entry["cpu_us_per_frame"][task])
    for method, values in methods.items():
        names.append(f"{method} ({BASELINE_TASK.get(method, values.get('task'))})")
        scores.append(values.get("accuracy", values.get("r2")))
        costs.append(values["cpu_us_per_frame"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    positions = np.arange(len(names))
    colours = ["tab:blue"] * len(probed) + ["tab:orange"] * (len(names) - len(probed))
    left.barh(positions, scores, color=colours)
    left.set_yticks(positions, names, fontsize=8)
    left.set_xlabel("score (accuracy or R²)")
    right.barh(positions, costs, color=colours)
    right.set_xscale("log")
    right.set_xlabel("CPU µs per frame (measured)")
    budgets = entry.get("cpu_budget", {})
    marked = [(budgets[task]["cpu_us_per_frame"], row) for row, task in enumerate(probed) if task in budgets]
    if marked:
        right.plot(*zip(*marked, strict=True), "k|", markersize=16, label="1/100 of the task's cheapest baseline")
        right.legend(fontsize=7)
    return Figure(
        "probes_baselines",
        f"Probes ({variant}) versus dedicated baselines",
        f"Same frames, same noisy audio; probes on K = {entry['k_bits']} bits. Probe cost excludes the SE model"
        " that makes the masks.",
        _png(figure),
    )


def _versus(ours: float, paper: float, unit: str = "") -> str:
    if abs(ours - paper) < 1e-9:
        return "Same as the paper."
    return f"{'Above' if ours > paper else 'Below'} the paper by {abs(ours - paper):.3g}{unit}."


# What differs from the papers' data, by where the mixtures come from (params mix.source, noises.source).
TRAINING_DATA = {
    "synthetic": "Our models train for minutes on CPU on an embedded TTS + synthetic-noise corpus, not on"
    " VoiceBank+DEMAND on a GPU; the `vbd` preset is the like-for-like run.",
    "vbd": "Same corpus as the paper (VoiceBank+DEMAND); our training length, seed and hardware differ.",
}
PADDING = {
    "synthetic": " Truth is an energy VAD on clean speech, and frames include 0.3–1.2 s of noise-only padding.",
    "vbd": " Truth is an energy VAD on the clean VoiceBank files.",
}
NOISE_CLASSES = {
    "synthetic": " Our classes are synthetic (white, pink, brown, hum, traffic, clatter, HVAC, babble, rain),"
    " not recorded noise types, and the folds never share a speaker.",
    "demand": " Our classes are the DEMAND environments the `noises` stage mixed in, with speaker-disjoint folds.",
    "vbd": " Our classes are VoiceBank+DEMAND's noise labels from logfiles.zip, with speaker-disjoint folds.",
}


def paper_comparison(
    evaluation: dict[str, Any], probes: dict[str, Any], mix_source: str, noise_source: str
) -> list[dict[str, str]]:
    """Rows of the papers' numbers beside ours, each with a sentence on the difference; the
    sentences name our data as the run's params made it (`mix.source`, `noises.source`)."""
    noise_origin = "vbd" if mix_source == "vbd" else noise_source
    ours, probe = evaluation["dyncp-25"], probes["dyncp-25"]
    saving, drop = 100 * ours["mac_saving"], 100 * ours["pesq_drop_relative"]
    rows = [
        (
            "DynCP Φ=0.25: MAC saving",
            "29.6 %",
            f"{saving:.1f} %",
            _versus(saving, 29.6, " points")
            + " Our gate predictor is low-rank (B→16→H, 6,144 MACs per block); the paper's predictor cost is"
            " not published, and a full-rank one would cost almost as much as the gated channels save.",
        ),
        (
            "DynCP Φ=0.25: relative PESQ drop vs dense",
            "0.75 %",
            f"{drop:.2f} %",
            _versus(drop, 0.75, " points") + " " + TRAINING_DATA[mix_source],
        ),
        (
            "VAD accuracy from masks",
            "93 %",
            f"{100 * probe['vad_accuracy']:.1f} %",
            _versus(100 * probe["vad_accuracy"], 93, " points")
            + PADDING[mix_source]
            + _in_paper_snr_range(probe, "vad_accuracy", percent=True),
        ),
        (
            "Noise-type accuracy from masks",
            "84 %",
            f"{100 * probe['noise_accuracy']:.1f} %",
            _versus(100 * probe["noise_accuracy"], 84, " points")
            + NOISE_CLASSES[noise_origin]
            + _in_paper_snr_range(probe, "noise_accuracy", percent=True)
            + _in_context(probe["in_context"], probes["baselines"]["methods"]["logmel_logreg"]),
        ),
        (
            "F0 R² from masks",
            "0.86",
            f"{probe['f0_r2']:.3f}",
            _versus(probe["f0_r2"], 0.86)
            + " Truth is WORLD harvest on clean speech, scored on voiced frames of speakers unseen by the probe."
            " Not the gate predictor's low rank: on the default data, DynCP Φ=0.25 with rank 16 / 64 / 256 gave"
            " F0 R² −0.067 / 0.008 / −0.012 and R² of F0 within each speaker −0.065 / −0.094 / −0.079"
            " (benchmarks/probe_gate_rank.py, 2026-12-04). Nor the protocol alone: scoring WORLD's whole track"
            " (0 Hz where unvoiced) with frames dealt to folds at random, the most lenient protocol we tried, gives"
            " 0.536 on the gates and 0.718 on the clean spectrum (benchmarks/probe_representations.py, 2026-12-05)."
            + _in_paper_snr_range(probe, "f0_r2", percent=False),
        ),
        *_probe_cost_row(probe, probes["baselines"]["methods"]),
    ]
    rows += slimming_comparison(evaluation)
    return [{"quantity": q, "paper": paper, "ours": value, "difference": why} for q, paper, value, why in rows]


def _in_paper_snr_range(probe: dict[str, Any], metric: str, percent: bool) -> str:
    """The score on the mixtures at 0 dB SNR and above, when the probes stage measured it."""
    value = probe.get("from_0db", {}).get(metric)
    if value is None:  # metrics from before the SNR breakdown, or no mixture at 0 dB and above
        return ""
    shown = f"{100 * value:.1f} %" if percent else f"{value:.3f}"
    return f" On our mixtures at 0 dB SNR and above (VoiceBank+DEMAND mixes at 0–17.5 dB): {shown}."


def _probe_cost_row(probe: dict[str, Any], methods: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The cost claim: each prediction a sum over open gates, set against each task's cheapest baseline."""
    budgets = probe.get("cpu_budget")
    if not budgets:
        return []
    verdicts = []
    for task, budget in budgets.items():
        cheapest, ours = methods[budget["baseline"]]["cpu_us_per_frame"], probe["cpu_us_per_frame"][task]
        ratio = f"1/{cheapest / ours:,.1f}" if ours < cheapest else f"{ours / cheapest:.1f}×"
        best = budget["best_k"]
        verdicts.append(
            f"{task}: {ours:g} µs, {ratio} of {budget['baseline']} ({cheapest:g} µs);"
            + (
                f" within 1/100 at K = {best['k_bits']} ({best[TASK_METRICS[task]]:.3g})."
                if best
                else " no K on the curve within 1/100."
            )
        )
    return [
        (
            "Probe cost per frame",
            "near zero",
            f"K = {probe['k_bits']}: "
            + ", ".join(f"{task} {probe['cpu_us_per_frame'][task]:g} µs" for task in budgets),
            "Against each task's cheapest dedicated baseline, measured on the same frames — "
            + " ".join(verdicts)
            + " Both timed alike: numpy, one utterance at a time, the least CPU time of 3 runs, so a call's fixed"
            " cost (a few µs) counts; the SE model that makes the masks is not counted.",
        )
    ]


def _in_context(in_context: dict[str, Any], baseline: dict[str, Any]) -> str:
    frames = in_context["frames"]
    return (
        f" With the probe's outputs averaged over the last {frames} frames ({in_context['seconds']:g} s, causal):"
        f" {100 * in_context['noise_accuracy']:.1f} % (the log-mel classifier, averaged alike:"
        f" {100 * baseline['accuracy_by_context'][str(frames)]:.1f} %)."
    )


# arXiv 2507.04879, VoiceBank+DEMAND: static UF -> (PESQ, MACs per sample); routed target % -> (PESQ, average UF)
PAPER_SLIM_STATIC = {"1/8": (2.86, 8944), "1/4": (2.96, 15664), "1/2": (3.00, 29104), "1": (3.01, 55985)}
PAPER_SLIM_ROUTED = {"10": (2.96, 0.18), "25": (2.96, 0.29), "50": (3.03, 0.54)}


def slimming_comparison(evaluation: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The adaptive-slimming rows, when the run trained those models (preset `slimming`)."""
    quarter = evaluation.get("slim-static@1/4")
    if quarter is None:
        return []
    full = evaluation["slim-static@1"]["macs_per_sample"]  # params require the widths to end at 1
    size = (
        f" Our DEMUCS is CPU-sized ({full:,.0f} MACs per sample at full width; the paper's 55,985) and trained"
        " for minutes on the embedded corpus."
    )
    static = [(label, evaluation.get(f"slim-static@{label}")) for label in PAPER_SLIM_STATIC]
    rows = [
        (
            "Slimmable DEMUCS at UF " + ", ".join(label for label, _ in static) + ": PESQ",
            " / ".join(f"{pesq:.2f}" for pesq, _ in PAPER_SLIM_STATIC.values()),
            " / ".join("–" if entry is None else f"{entry['pesq']:.3f}" for _, entry in static),
            "The paper's PESQ gains little above UF 1/4; ours is measured on a much smaller model." + size,
        )
    ]
    for target, (paper_pesq, paper_uf) in PAPER_SLIM_ROUTED.items():
        entry = evaluation.get(f"slim-dyn-{target}")
        if entry is None:
            continue
        rows.append(
            (
                f"Routed DEMUCS, target UF 0.{target}: PESQ / average UF",
                f"{paper_pesq:.2f} / {paper_uf:.2f}",
                f"{entry['pesq']:.3f} / {entry['average_uf']:.2f}",
                "PESQ: " + _versus(entry["pesq"], paper_pesq),
            )
        )
    # The paper's claims against static UF 1/4: routed at 10 % matches its quality with 29 % fewer MACs
    # (PESQ 2.96 both); the issue asks the same of routed at 25 %, which in the paper averages UF 0.29.
    for target, paper in (("10", "2.96 vs 2.96 at 29 % fewer MACs"), ("25", "2.96 vs 2.96 at average UF 0.29")):
        entry = evaluation.get(f"slim-dyn-{target}")
        if entry is None:
            continue
        extra = entry["macs_per_sample"] / quarter["macs_per_sample"] - 1
        rows.append(
            (
                f"Routed (target 0.{target}) vs static UF 1/4: PESQ, MACs per sample",
                paper,
                f"{entry['pesq']:.3f} vs {quarter['pesq']:.3f}; "
                f"{entry['macs_per_sample']:.0f} vs {quarter['macs_per_sample']:.0f} ({100 * extra:+.0f} % MACs)",
                _routed_versus_static(entry, quarter),
            )
        )
    return rows


def _routed_versus_static(routed: dict[str, Any], static: dict[str, Any]) -> str:
    """Whether a routed model matches the static one (PESQ at least as high, MACs no higher), and why not."""
    cheaper = routed["macs_per_sample"] <= static["macs_per_sample"]
    if cheaper and routed["pesq"] >= static["pesq"]:
        return (
            "Matched: at least the static quality at no more cost. The routed model is fine-tuned from the"
            " static one (`slimming.router_epochs` more epochs), so part of its PESQ margin is that training."
        )
    if cheaper:
        return (
            f"Not matched: {static['pesq'] - routed['pesq']:.3f} lower PESQ at fewer MACs (average UF"
            f" {routed['average_uf']:.2f}, below the static width's)."
        )
    router = routed["router_macs_per_sample"]
    if routed["macs_per_sample"] - router <= static["macs_per_sample"]:
        return (
            f"Not matched: more MACs than the static model, by the router's own {router:.1f} MACs per sample:"
            " routing saved less than the router costs."
        )
    return (
        "Not matched: more MACs than the static model even without the router: the router spent above its"
        " budget (the utilization loss did not hold it; `slimming.utilization_weight`)."
    )


def standard_figures(
    evaluation: dict[str, Any], probes: dict[str, Any], analysis: dict[str, Any], masks: MaskSet, focus: str
) -> list[Figure]:
    """The report's figures, in page order; the raster shows the first utterance of `masks`."""
    return [
        mask_raster(masks, str(masks.keys["utt_id"].iloc[0])),
        usage_per_block(evaluation),
        pesq_versus_macs(evaluation),
        score_versus_k(analysis),
        score_versus_context(analysis, probes["baselines"]),
        score_versus_snr(probes),
        block_heat_map(analysis, focus),
        probes_versus_baselines(probes, focus),
    ]


Tables = dict[str, list[dict[str, Any]]]


def render_html(title: str, figures: list[Figure], tables: Tables, notes: list[str]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "figure{margin:2em 0}img{max-width:100%}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:90%}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    for heading, rows in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>")
        parts += [f"<th>{html.escape(key)}</th>" for key in rows[0]]
        parts.append("</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row.values()) + "</tr>")
        parts.append("</table>")
    for figure in figures:
        data = base64.b64encode(figure.png).decode("ascii")
        parts.append(
            f'<figure id="{figure.name}"><h2>{html.escape(figure.title)}</h2>'
            f'<img class="figure" alt="{html.escape(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
        )
    # Marks each figure once the browser has decoded it: a check anyone (and the tests) can read.
    parts.append(
        "<script>window.addEventListener('load',()=>{for(const img of document.images)"
        "{img.dataset.rendered=String(img.complete&&img.naturalWidth>0)}});</script>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(title: str, figures: list[Figure], tables: Tables, notes: list[str]) -> str:
    lines = [f"# {title}", "", *notes, ""]
    for heading, rows in tables.items():
        lines += [f"## {heading}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
        lines.append("")
    for figure in figures:
        lines += [f"## {figure.title}", "", f"![{figure.title}](figures/{figure.name}.png)", "", figure.caption, ""]
    return "\n".join(lines)


def write_report(directory: Path, title: str, figures: list[Figure], tables: Tables, notes: list[str]) -> None:
    """index.html (self-contained), summary.md, and the figures as PNG files for the Markdown."""
    (directory / "figures").mkdir(parents=True, exist_ok=True)
    for figure in figures:
        (directory / "figures" / f"{figure.name}.png").write_bytes(figure.png)
    (directory / "index.html").write_text(render_html(title, figures, tables, notes), encoding="utf-8")
    (directory / "summary.md").write_text(render_markdown(title, figures, tables, notes), encoding="utf-8")
