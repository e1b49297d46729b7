"""Frame labels aligned with the model's STFT frames: WORLD F0, energy VAD, per-frame SNR."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.framing import FRAME_PERIOD_MS, HOP, active_frames, energy_db, frame_count, frame_energy

SNR_CLIP_DB = 60.0
F0_MARGIN_FRAMES = 4


@dataclass(frozen=True)
class FrameLabels:
    f0_hz: np.ndarray  # float32, 0 where unvoiced
    voiced: np.ndarray  # bool
    vad: np.ndarray  # bool, energy VAD on clean speech
    snr_db: np.ndarray  # float32, clean vs noise energy per frame, clipped to ±SNR_CLIP_DB


def world_f0(clean: np.ndarray, floor_hz: float, ceil_hz: float) -> np.ndarray:
    """WORLD harvest F0 on clean speech, one value per STFT frame (frame t at sample t*hop).

    Harvest costs ~0.3 s per second of audio whatever it holds, so it runs only on the span
    between the first and last non-zero sample (plus a margin); the digital silence padded
    around an utterance is unvoiced by definition. The span starts on a frame boundary, so
    harvest's frame k is the model's frame first + k.
    """
    with warnings.catch_warnings():
        # pyworld imports the deprecated pkg_resources; the warning says nothing about our data.
        warnings.simplefilter("ignore", UserWarning)
        import pyworld

    frames = frame_count(len(clean))
    f0 = np.zeros(frames, dtype=np.float32)
    nonzero = np.flatnonzero(np.asarray(clean) != 0)
    if nonzero.size == 0:
        return f0
    first = max(0, int(nonzero[0]) // HOP - F0_MARGIN_FRAMES)
    last = min(frames - 1, int(nonzero[-1]) // HOP + F0_MARGIN_FRAMES)
    segment = np.asarray(clean[first * HOP : last * HOP + 1], dtype=np.float64)
    values, _ = pyworld.harvest(segment, SAMPLE_RATE, f0_floor=floor_hz, f0_ceil=ceil_hz, frame_period=FRAME_PERIOD_MS)
    # harvest gives 1 + floor(duration / period) values, the same instants as the STFT centres.
    count = min(values.size, last - first + 1)
    f0[first : first + count] = values[:count]
    return f0


def frame_snr_db(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    noise = np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    snr = energy_db(frame_energy(clean)) - energy_db(frame_energy(noise))
    return np.clip(snr, -SNR_CLIP_DB, SNR_CLIP_DB).astype(np.float32)


def frame_labels(
    clean: np.ndarray, noisy: np.ndarray, vad_threshold_db: float, f0_floor_hz: float, f0_ceil_hz: float
) -> FrameLabels:
    f0 = world_f0(clean, f0_floor_hz, f0_ceil_hz)
    return FrameLabels(
        f0_hz=f0, voiced=f0 > 0, vad=active_frames(clean, vad_threshold_db), snr_db=frame_snr_db(clean, noisy)
    )
