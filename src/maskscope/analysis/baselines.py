"""Dedicated baselines the mask probes are compared with, on the same frames and noisy audio.

VAD: webrtcvad, and an energy threshold on the noisy frame energy (tuned on the fitting folds).
F0: WORLD harvest and dio (+ stonemask) on the noisy audio. Noise class: logistic regression on
log-mel features of the noisy audio. Each reports the probe's score and its measured CPU time.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from maskscope.core import framing
from maskscope.core.audio import SAMPLE_RATE

WEBRTC_CHUNK = 160  # 10 ms at 16 kHz, one of the three lengths webrtcvad accepts
MEL_BANDS = 40


@dataclass
class Timed:
    value: object
    cpu_seconds: float


# Costs are the least CPU time of a few runs: the run least disturbed by other work on the machine.
TIMING_REPEATS = 3


def timed(function: Callable[[], object], repeats: int = 1) -> Timed:
    """The function's value and the least CPU time of `repeats` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        value = function()
        best = min(best, time.process_time() - started)
    return Timed(value, best)


def _pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()


def webrtc_vad(noisy: np.ndarray, aggressiveness: int = 2) -> np.ndarray:
    """Speech flag per STFT frame: majority of the 10 ms webrtcvad decisions within ±8 ms of its centre."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # webrtcvad imports pkg_resources
        import webrtcvad

    detector = webrtcvad.Vad(aggressiveness)
    pcm = _pcm16(noisy)
    chunks = len(noisy) // WEBRTC_CHUNK
    size = 2 * WEBRTC_CHUNK  # bytes of one chunk
    decisions = np.array([detector.is_speech(pcm[i * size : (i + 1) * size], SAMPLE_RATE) for i in range(chunks)])
    decisions = decisions.astype(float)
    frames = framing.frame_count(len(noisy))
    centres = np.arange(frames) * framing.HOP
    first = np.clip((centres - framing.HOP // 2) // WEBRTC_CHUNK, 0, max(chunks - 1, 0))
    last = np.clip((centres + framing.HOP // 2) // WEBRTC_CHUNK, 0, max(chunks - 1, 0))
    if chunks == 0:
        return np.zeros(frames, dtype=bool)
    cumulative = np.concatenate([[0.0], np.cumsum(decisions)])
    votes = (cumulative[last + 1] - cumulative[first]) / (last - first + 1)
    return votes >= 0.5


def noisy_energy_db(noisy: np.ndarray) -> np.ndarray:
    """Frame energy of the noisy audio in dB relative to its loudest frame (the energy VAD's feature)."""
    energy = framing.energy_db(framing.frame_energy(noisy))
    return energy - energy.max()


def best_threshold(feature: np.ndarray, target: np.ndarray) -> float:
    """The threshold on `feature` that classifies `target` best (grid of 0.5 dB)."""
    grid = np.arange(-60.0, 0.5, 0.5)
    accuracy = [np.mean((feature >= t) == target) for t in grid]
    return float(grid[int(np.argmax(accuracy))])


def world_f0(noisy: np.ndarray, method: str, floor_hz: float, ceil_hz: float) -> np.ndarray:
    """F0 per STFT frame from WORLD on the noisy audio (0 = unvoiced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import pyworld

    signal = np.asarray(noisy, dtype=np.float64)
    period = framing.FRAME_PERIOD_MS
    if method == "harvest":
        f0, _ = pyworld.harvest(signal, SAMPLE_RATE, f0_floor=floor_hz, f0_ceil=ceil_hz, frame_period=period)
    elif method == "dio":
        coarse, times = pyworld.dio(signal, SAMPLE_RATE, f0_floor=floor_hz, f0_ceil=ceil_hz, frame_period=period)
        f0 = pyworld.stonemask(signal, coarse, times, SAMPLE_RATE)
    else:
        raise ValueError(f"unknown F0 method {method!r}")
    frames = framing.frame_count(len(noisy))
    out = np.zeros(frames)
    out[: min(frames, f0.size)] = f0[:frames]
    return out


def mel_filterbank(bands: int = MEL_BANDS, bins: int = framing.N_BINS) -> np.ndarray:
    """(bands, bins) triangular filters, equally spaced on the HTK mel scale up to Nyquist."""

    def to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    edges = to_hz(np.linspace(0.0, to_mel(np.array(SAMPLE_RATE / 2)), bands + 2))
    frequencies = np.linspace(0.0, SAMPLE_RATE / 2, bins)
    rising = (frequencies[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - frequencies[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel(noisy: np.ndarray, filterbank: np.ndarray) -> np.ndarray:
    """(frames, bands) log-mel energies of the noisy audio, framed like everything else."""
    power = framing.stft(torch.from_numpy(np.asarray(noisy, dtype=np.float32))).abs().pow(2).numpy()
    return np.log(filterbank @ power + 1e-10).T


def noise_classifier() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
