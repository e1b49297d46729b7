"""Tracks: voice activity, noise class, SNR and F0 per frame, read from a DynCP model's gates by the
probes the `probes` stage exported, in the pass that enhances.

A probe bundle is one directory a user can copy to a device: the model (`model.pt`) and its probes
(`probes.json`: the mask layout, the context the noise class is averaged over, and one weight table
per task, each prediction the bias plus the weights of the selected gates that are open).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from maskscope.analysis.masks import MaskLayout
from maskscope.analysis.probes import TASKS, ExportedProbe, causal_mean
from maskscope.core.errors import MaskscopeError
from maskscope.core.framing import HOP
from maskscope.core.io import atomic_write_text, write_parquet

PROBES_FILE = "probes.json"
# Where the `probes` stage writes each DynCP variant's bundle.
BUNDLES_DIR = Path("data/probes/bundles")
TRACK_FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class ProbeBundle:
    variant: str
    layout: MaskLayout
    context_frames: int  # the noise class is decided on its logits' causal mean over this many frames
    probes: dict[str, ExportedProbe]  # one per task of TASKS


def write_probes(
    directory: Path, variant: str, layout: MaskLayout, context_frames: int, probes: dict[str, ExportedProbe]
) -> None:
    entry = {
        "variant": variant,
        "layout": {"blocks": layout.blocks, "hidden": layout.hidden},
        "context_frames": context_frames,
        "probes": {task: probe.to_dict() for task, probe in probes.items()},
    }
    atomic_write_text(directory / PROBES_FILE, json.dumps(entry, indent=1) + "\n")


def read_probes(directory: Path) -> ProbeBundle:
    """The bundle's probes; a clear error when there are none or they are not a bundle's."""
    path = directory / PROBES_FILE
    if not path.is_file():
        raise MaskscopeError(
            f"{directory}: has no {PROBES_FILE}, so --tracks cannot read this model's gates; run the probes "
            f"stage (`dvc repro probes`, or `make repro`) and pass its bundle, {BUNDLES_DIR}/VARIANT "
            "(a DynCP variant such as dyncp-25)"
        )
    try:
        entry = json.loads(path.read_text())
        layout = MaskLayout(int(entry["layout"]["blocks"]), int(entry["layout"]["hidden"]))
        probes = {task.name: ExportedProbe.from_dict(task.name, entry["probes"][task.name]) for task in TASKS}
        return ProbeBundle(str(entry["variant"]), layout, int(entry["context_frames"]), probes)
    except (ValueError, KeyError, TypeError) as error:
        raise MaskscopeError(
            f"{path}: is not a probe bundle's probes file ({type(error).__name__}: {error}); rerun the probes stage"
        ) from None


def frame_tracks(bundle: ProbeBundle, gates: np.ndarray, sample_rate: int) -> pd.DataFrame:
    """One row per frame from (frames, blocks, hidden) 0/1 gates: `time_s` (the frame's centre), `vad`
    and `vad_probability`, `noise_class` (decided on the causal mean of the last `context_frames`
    frames' logits), and `snr_db` and `f0_hz` where the VAD probe says speech (empty elsewhere)."""
    frames = gates.shape[0]
    expected = (bundle.layout.blocks, bundle.layout.hidden)
    if gates.shape[1:] != expected:
        raise MaskscopeError(
            f"the model's gates are {gates.shape[1:]} (blocks, channels) but the probes were fitted on {expected}: "
            f"the bundle's probes belong to another model ({bundle.variant}); rerun the probes stage"
        )
    bits = gates.reshape(frames, -1)
    probes = bundle.probes
    vad_logit = probes["vad"].raw(bits)[:, 0]
    speech = vad_logit > 0
    noise_logits = causal_mean(probes["noise"].raw(bits), np.zeros(frames), bundle.context_frames)
    classes = np.asarray(probes["noise"].classes)
    return pd.DataFrame(
        {
            "frame": np.arange(frames, dtype=np.int32),
            "time_s": np.arange(frames) * HOP / sample_rate,
            "vad": speech,
            "vad_probability": 1.0 / (1.0 + np.exp(-vad_logit)),
            "noise_class": classes[noise_logits.argmax(axis=1)],
            "snr_db": np.where(speech, probes["snr"].raw(bits)[:, 0], np.nan),
            "f0_hz": np.where(speech, probes["f0"].raw(bits)[:, 0], np.nan),
        }
    )


def tracks_summary(tracks: pd.DataFrame) -> dict[str, Any]:
    """Speech fraction, the noise class most frames have, and median SNR and F0 over speech frames."""

    def median(column: str) -> float | None:
        values = tracks[column].dropna()
        return None if values.empty else round(float(values.median()), 1)

    return {
        "speech_fraction": round(float(tracks["vad"].mean()), 3) if len(tracks) else 0.0,
        "noise_class": str(tracks["noise_class"].mode().iloc[0]) if len(tracks) else None,
        "median_snr_db": median("snr_db"),
        "median_f0_hz": median("f0_hz"),
    }


def summary_line(name: str, summary: dict[str, Any]) -> str:
    def shown(value: float | None, unit: str) -> str:
        return "n/a" if value is None or math.isnan(value) else f"{value:g} {unit}"

    return (
        f"{name}: speech {100 * summary['speech_fraction']:.0f} %, noise {summary['noise_class']}, "
        f"SNR {shown(summary['median_snr_db'], 'dB')}, F0 {shown(summary['median_f0_hz'], 'Hz')}"
    )


def write_tracks(tracks: pd.DataFrame, path: Path, fmt: str) -> None:
    """The tracks as Parquet or CSV at `path` (a temporary the caller renames)."""
    if fmt == "csv":
        tracks.to_csv(path, index=False, float_format="%.4f")
    else:
        write_parquet(pa.Table.from_pandas(tracks, preserve_index=False), path)


def tracks_figure(
    noisy: np.ndarray,
    enhanced: np.ndarray,
    tracks: pd.DataFrame,
    sample_rate: int,
    reference: pd.DataFrame | None = None,
) -> Any:
    """A matplotlib figure: spectrograms of the input and the output with the tracks drawn over time;
    `reference` (frame labels with `vad` and `f0_hz`, 0 where unvoiced) is drawn dashed beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True, height_ratios=[3, 3, 1.4])
    for axis, audio, title in ((axes[0], noisy, "input"), (axes[1], enhanced, "enhanced")):
        axis.specgram(audio, NFFT=512, Fs=sample_rate, noverlap=512 - HOP, cmap="magma", vmin=-130)
        axis.set_ylim(0, 4000)
        axis.set_ylabel(f"{title}\nHz")
    time = tracks["time_s"].to_numpy()
    axes[1].plot(time, tracks["f0_hz"], color="cyan", linewidth=1.2, label="F0 (probe)")
    axes[2].fill_between(time, 0, tracks["vad"].astype(float), step="mid", color="tab:green", alpha=0.4, label="VAD")
    axes[2].plot(time, tracks["vad_probability"], color="tab:green", linewidth=0.8)
    if reference is not None:
        count = min(len(reference), len(time))
        truth_f0 = reference["f0_hz"].to_numpy(np.float64)[:count]
        axes[1].plot(time[:count], np.where(truth_f0 > 0, truth_f0, np.nan), "w--", linewidth=0.8, label="F0 (labels)")
        axes[2].step(time[:count], reference["vad"].to_numpy(float)[:count], "k--", where="mid", linewidth=0.8)
    axes[1].legend(loc="upper right", fontsize=8)
    snr = axes[2].twinx()
    snr.plot(time, tracks["snr_db"], color="tab:blue", linewidth=1.0)
    snr.set_ylabel("SNR dB", color="tab:blue")
    axes[2].set_ylabel("speech")
    axes[2].set_xlabel("time (s)")
    classes = tracks["noise_class"].to_numpy()
    for start in np.flatnonzero(np.r_[True, classes[1:] != classes[:-1]]):
        axes[0].text(time[start], 3800, classes[start], color="white", fontsize=8, va="top")
    figure.tight_layout()
    return figure


def plot_tracks(noisy: np.ndarray, enhanced: np.ndarray, tracks: pd.DataFrame, sample_rate: int, path: Path) -> None:
    """`tracks_figure` as PNG at `path`."""
    import matplotlib.pyplot as plt

    figure = tracks_figure(noisy, enhanced, tracks, sample_rate)
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
