"""Scoring enhanced speech on the test split: quality, gate usage and the MACs actually spent."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from maskscope import framing
from maskscope.metrics import evaluate_pair
from maskscope.models.conv_fsenet import ConvFSENet

log = logging.getLogger(__name__)


@dataclass
class Enhanced:
    audio: np.ndarray
    gates: np.ndarray | None  # (n_blocks, H, frames) 0/1, None for ungated models


def enhance(model: ConvFSENet, noisy: np.ndarray) -> Enhanced:
    """Run the (masked dense) model over one utterance in eval mode."""
    with torch.no_grad():
        spectrum = framing.stft(torch.from_numpy(noisy)[None])
        output = model.eval()(spectrum)
        audio = framing.istft(output.spectrum, length=noisy.size)[0].numpy()
    gates = None if output.gates is None else output.gates[0].numpy().astype(np.uint8)
    return Enhanced(audio.astype(np.float32), gates)


def score(job: tuple[np.ndarray, np.ndarray, bool]) -> dict[str, float]:
    """Scores of one (clean, estimate) pair; a picklable job for a process pool."""
    clean, estimate, with_composite = job
    # Score the span between the first and last non-zero clean sample: the digital silence padded
    # around each utterance has no LPC spectrum, and composite.m's LLR explodes on such frames.
    nonzero = np.flatnonzero(clean)
    if nonzero.size:
        clean, estimate = clean[nonzero[0] : nonzero[-1] + 1], estimate[nonzero[0] : nonzero[-1] + 1]
    try:
        return evaluate_pair(clean.astype(np.float64), estimate.astype(np.float64), with_composite=with_composite)
    except ValueError as error:
        # PESQ finds no utterance in some signals (e.g. a silent estimate): one NaN row, logged.
        log.warning("an utterance could not be scored (%s); it counts as missing", error)
        keys = ("pesq", "stoi", "si_sdr", *(("csig", "cbak", "covl") if with_composite else ()))
        return dict.fromkeys(keys, float("nan"))


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """Means over the scored utterances (NaN rows skipped)."""
    keys = rows[0].keys() if rows else []
    return {key: round(float(np.nanmean([row[key] for row in rows])), 4) for key in keys}
