"""The report's figures, as PNG bytes: a mask raster over one utterance with per-block usage, gate
usage per block for each Φ_trgt, PESQ versus MACs, probe score versus K, versus causal context and versus mixture SNR, a
per-block probe heat map, probes versus the dedicated baselines (score and cost).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on pipeline machines
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from maskscope.analysis.baselines import TIMING_REPEATS, timed
from maskscope.analysis.masks import MaskSet
from maskscope.core.audio import SAMPLE_RATE
from maskscope.evaluation.tracks import ProbeBundle, frame_tracks, tracks_figure

TASK_TITLES = {"vad": "VAD accuracy", "noise": "noise-class accuracy", "f0": "F0 R²", "snr": "SNR R²"}
TASK_METRICS = {"vad": "vad_accuracy", "noise": "noise_accuracy", "f0": "f0_r2", "snr": "snr_r2"}
BASELINE_TASK = {
    "silero": "vad",
    "webrtcvad": "vad",
    "energy": "vad",
    "energy_causal": "vad",
    "harvest": "f0",
    "dio": "f0",
    "pyin": "f0",
    "logmel_logreg": "noise",
}


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


def _finish_pesq_axes(axis: plt.Axes, cost_label: str) -> None:
    """The shared frame of the quality-versus-cost figures: log cost axis, PESQ, legend."""
    axis.set_xscale("log")
    axis.set_xlabel(cost_label)
    axis.set_ylabel("PESQ (wide-band)")
    axis.legend(loc="lower right", fontsize=8)


def pesq_versus_macs(evaluation: dict[str, Any]) -> Figure:
    """The Pareto plot: every system's PESQ against the MACs it spent per input sample."""
    figure, axis = plt.subplots(figsize=(6.5, 4))
    widths = {name: entry for name, entry in evaluation.items() if "uf" in entry}
    for name, entry in evaluation.items():
        if name == "noisy":
            axis.axhline(entry["pesq"], color="grey", linestyle="--", label="noisy input")
            continue
        if "macs_per_sample" not in entry:  # a peer: on the CPU-time figure
            continue
        routed = "average_uf" in entry
        marker = "s" if routed else ("^" if name in widths else "o")
        axis.scatter(entry["macs_per_sample"], entry["pesq"], marker=marker)
        axis.annotate(name, (entry["macs_per_sample"], entry["pesq"]), fontsize=7)
    for prefix, label, style in (("dyncp-", "DynCP", "-"), ("static-", "static (smaller H)", ":")):
        family = [entry for name, entry in evaluation.items() if name.startswith(prefix) or name == "dense"]
        if len(family) > 2:  # dense plus at least two operating points: the family's front
            points = sorted((entry["macs_per_sample"], entry["pesq"]) for entry in family)
            axis.plot(*zip(*points, strict=True), linestyle=style, linewidth=0.9, label=label)
    if widths:  # the slimmable model's widths as one curve: the static front routing must beat
        points = sorted((entry["macs_per_sample"], entry["pesq"]) for entry in widths.values())
        axis.plot(*zip(*points, strict=True), color="grey", linewidth=0.8, label="slimmable DEMUCS, static UF")
    _finish_pesq_axes(axis, "MACs per input sample (gates and router included)")
    caption = (
        "Every system on the test split, cost counted on the scored span (the frames whose quality is scored)."
        " Circles: Conv-FSENet variants (lines join DynCP and the static models of equal cost to the dense one);"
        " triangles: the slimmable DEMUCS at fixed widths; squares: routed DEMUCS (average cost of its choices)."
    )
    return Figure("pesq_macs", "PESQ versus MACs (Pareto)", caption, _png(figure))


def early_exits(evaluation: dict[str, Any]) -> Figure | None:
    """PESQ against MACs per frame at each exit of every nsNet2 with exits, beside the static nsNet2
    truncated at each exit (None when the run trained no nsNet2)."""
    exits = {name: entry for name, entry in evaluation.items() if "exit" in entry}
    if not exits:
        return None
    figure, axis = plt.subplots(figsize=(6.5, 4))
    axis.axhline(evaluation["noisy"]["pesq"], color="grey", linestyle="--", label="noisy input")
    variants = sorted({name.split("@")[0] for name in exits if "@" in name})
    for variant in variants:
        points = [
            (entry["macs_per_frame"], entry["pesq"]) for name, entry in exits.items() if name.startswith(f"{variant}@")
        ]
        line = axis.plot(*zip(*sorted(points), strict=True), marker="o", label=f"{variant} (incremental MACs)")[0]
        policy = evaluation.get(f"{variant}@policy")
        if policy is not None:
            axis.scatter(policy["macs_per_frame"], policy["pesq"], marker="*", s=120, color=line.get_color())
    static = sorted((entry["macs_per_frame"], entry["pesq"]) for name, entry in exits.items() if "@" not in name)
    if static:
        axis.plot(*zip(*static, strict=True), "k:", marker="s", label="static nsNet2 truncated at an exit")
    _finish_pesq_axes(axis, "MACs per frame")
    return Figure(
        "early_exits",
        "nsNet2: quality at each exit versus a smaller static model",
        "Each nsNet2 with exits at every exit, costed at its incremental MACs (the frame has computed every"
        " earlier exit's head too); stars: its causal exit policy (mean MACs of the exits taken); squares: the"
        " static nsNet2 truncated at each exit and trained alone.",
        _png(figure),
    )


def pesq_versus_cpu(evaluation: dict[str, Any]) -> Figure:
    """Ours and the peers on one axis of cost: measured CPU time per second of audio."""
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for name, entry in evaluation.items():
        if name == "noisy":
            axis.axhline(entry["pesq"], color="grey", linestyle="--", label="noisy input")
        elif "cpu_seconds_per_audio_second" in entry:
            peer = "macs_per_sample" not in entry
            axis.scatter(entry["cpu_seconds_per_audio_second"], entry["pesq"], marker="D" if peer else "o")
            axis.annotate(name, (entry["cpu_seconds_per_audio_second"], entry["pesq"]), fontsize=7)
    _finish_pesq_axes(axis, "CPU seconds per second of audio (one thread)")
    caption = (
        "Every system on the test split against its measured CPU time, one utterance at a time on one thread:"
        " Conv-FSENet through its streaming sparse path, the peers (diamonds: RNNoise, DeepFilterNet3,"
        " spectral gating) frame by frame as a streaming user calls them, DEMUCS over the whole file."
    )
    return Figure("pesq_cpu", "PESQ versus CPU time, beside the peers", caption, _png(figure))


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
        "Score on the scored split (test) of each probe on the first K bits of its L1 path, selected and fitted on"
        " the fit split (train).",
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
        "Per-frame scores (K bits, fitted on train, scored on test) on the mixtures of each SNR; dashed: the"
        " dedicated baselines on the same frames. Shaded: 0 dB and above, the SNRs of the papers'"
        " VoiceBank+DEMAND mixtures.",
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
        "Voice-family cross-validated score, inside the fit split, of a probe on all channels of one block.",
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


def tracks_of_one_utterance(
    bundle: ProbeBundle, model: Any, noisy: np.ndarray, reference: pd.DataFrame, utt_id: str
) -> Figure:
    """What `maskscope enhance --tracks` gives for one test mixture, beside its frame labels."""
    from maskscope.models.streaming import StreamingFSENet

    streaming = StreamingFSENet.from_model(model)
    streaming.enhance_with_gates(noisy[:4096])  # the kernel compiles outside the timing
    enhancing = timed(lambda: streaming.enhance_with_gates(noisy), TIMING_REPEATS)
    enhanced, gates = enhancing.value
    reading = timed(lambda: frame_tracks(bundle, gates, SAMPLE_RATE), TIMING_REPEATS)
    tracks = reading.value
    per_frame = {
        name: 1e6 * run.cpu_seconds / len(gates) for name, run in (("enhance", enhancing), ("tracks", reading))
    }
    return Figure(
        "tracks",
        f"Tracks of {utt_id} ({bundle.variant})",
        "`maskscope enhance --tracks` on one test mixture: the probes read the gates of the pass that enhances."
        " Green: VAD (filled: decision, line: probability; dashed black: the labels). Cyan: F0 on speech frames"
        " (dashed white: WORLD on the clean speech). Blue: SNR. Top: the noise class, decided over the last"
        f" {bundle.context_frames} frames. Measured on this mixture (one thread, least CPU time of"
        f" {TIMING_REPEATS} runs): the tracks add {per_frame['tracks']:.1f} µs per frame to the"
        f" {per_frame['enhance']:.1f} µs of the streaming enhance pass"
        f" ({100 * per_frame['tracks'] / per_frame['enhance']:.1f} %).",
        _png(tracks_figure(noisy, enhanced, tracks, SAMPLE_RATE, reference)),
    )


def standard_figures(
    evaluation: dict[str, Any], probes: dict[str, Any], analysis: dict[str, Any], masks: MaskSet, focus: str
) -> list[Figure]:
    """The report's figures, in page order; the raster shows the first utterance of `masks`."""
    optional = [figure for figure in (early_exits(evaluation),) if figure is not None]
    return [
        mask_raster(masks, str(masks.keys["utt_id"].iloc[0])),
        usage_per_block(evaluation),
        pesq_versus_macs(evaluation),
        pesq_versus_cpu(evaluation),
        score_versus_k(analysis),
        score_versus_context(analysis, probes["baselines"]),
        score_versus_snr(probes),
        block_heat_map(analysis, focus),
        probes_versus_baselines(probes, focus),
        *optional,
    ]
