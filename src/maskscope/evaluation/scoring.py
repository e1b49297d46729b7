"""Scoring enhanced speech on the test split: quality, gate usage and the MACs actually spent."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from maskscope.core import framing
from maskscope.evaluation.metrics import evaluate_pair
from maskscope.models.conv_fsenet import ConvFSENet
from maskscope.models.demucs import SlimDemucs, SlimDemucsConfig, width_channel_masks

log = logging.getLogger(__name__)


@dataclass
class Enhanced:
    audio: np.ndarray
    # (blocks, channels, frames) 0/1 per STFT frame: DynCP's gates, or the channels a router's width
    # choices leave active; None for models without per-frame decisions
    gates: np.ndarray | None
    choices: np.ndarray | None = None  # a routed DEMUCS: index into its widths, per segment


def segment_of_frames(frames: int, segment: int, segments: int) -> np.ndarray:
    """The router segment of each STFT frame: the one holding its centre sample t * HOP (past the
    last segment: the last)."""
    return np.minimum(np.arange(frames) * framing.HOP // segment, segments - 1)


def router_masks(config: SlimDemucsConfig, choices: np.ndarray, frames: int) -> np.ndarray:
    """Per STFT frame, the active channels of each encoder layer under the router's choices:
    (depth, widest layer's channels, frames), as `width_channel_masks` lays them out; a frame takes
    the width of its `segment_of_frames`."""
    per_width = width_channel_masks(config).numpy().astype(np.uint8)
    return per_width[choices[segment_of_frames(frames, config.segment, choices.size)]].transpose(1, 2, 0)


def enhance(model: ConvFSENet | SlimDemucs, noisy: np.ndarray, uf: float | None = None) -> Enhanced:
    """Run the model over one utterance in eval mode (Conv-FSENet: masked dense; DEMUCS: at `uf`,
    or routed when it has a router and `uf` is None)."""
    with torch.no_grad():
        if isinstance(model, SlimDemucs):
            output = model.eval()(torch.from_numpy(noisy)[None], uf=uf)
            audio = output.audio[0].numpy().astype(np.float32)
            if output.choices is None:
                return Enhanced(audio, None)
            choices = output.choices[0].numpy()
            return Enhanced(audio, router_masks(model.config, choices, framing.frame_count(noisy.size)), choices)
        spectrum = framing.stft(torch.from_numpy(noisy)[None])
        output = model.eval()(spectrum)
        audio = framing.istft(output.spectrum, length=noisy.size)[0].numpy()
    gates = None if output.gates is None else output.gates[0].numpy().astype(np.uint8)
    return Enhanced(audio.astype(np.float32), gates)


def scored_span(clean: np.ndarray) -> slice:
    """The samples quality is scored on: from the first to the last non-zero clean sample. The digital
    silence padded around each utterance has no LPC spectrum, and composite.m's LLR explodes on it."""
    nonzero = np.flatnonzero(clean)
    return slice(int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else slice(0, clean.size)


def scored_frames(clean: np.ndarray) -> np.ndarray:
    """Per STFT frame of `clean`, whether its centre sample lies in the scored span: cost and gate
    usage are counted on the frames whose quality is scored."""
    span = scored_span(clean)
    centres = np.arange(framing.frame_count(clean.size)) * framing.HOP
    return (centres >= span.start) & (centres < span.stop)


def score(job: tuple[np.ndarray, np.ndarray, bool]) -> dict[str, float]:
    """Scores of one (clean, estimate) pair on its scored span; a picklable job for a process pool."""
    clean, estimate, with_composite = job
    span = scored_span(clean)
    clean, estimate = clean[span], estimate[span]
    try:
        return evaluate_pair(clean.astype(np.float64), estimate.astype(np.float64), with_composite=with_composite)
    except ValueError as error:
        # PESQ finds no utterance in some signals (e.g. a silent estimate): one NaN row, logged.
        log.warning("an utterance could not be scored (%s); it counts as missing", error)
        keys = ("pesq", "stoi", "si_sdr", *(("csig", "cbak", "covl") if with_composite else ()))
        return dict.fromkeys(keys, float("nan"))


def mean_scores(rows: list[dict[str, float]], keep: np.ndarray | None = None) -> dict[str, float]:
    """Means over the scored utterances (NaN rows skipped), or over the rows `keep` marks."""
    if keep is not None:
        rows = [row for row, kept in zip(rows, keep, strict=True) if kept]
    keys = rows[0].keys() if rows else []
    return {key: round(float(np.nanmean([row[key] for row in rows])), 4) for key in keys}


def scored_rows(rows: list[dict[str, float]]) -> np.ndarray:
    """Which utterances scored (PESQ is the measure that can fail)."""
    return np.array([np.isfinite(row["pesq"]) for row in rows], dtype=bool)
