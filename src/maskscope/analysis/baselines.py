"""Dedicated baselines the mask probes are compared with, on the same frames and noisy audio: the
auxiliary models a device would otherwise run beside the enhancer.

VAD: Silero VAD (the TorchScript model inside its wheel), webrtcvad, an energy threshold relative to
the utterance's loudest frame (it looks at the whole utterance: not causal), and a causal energy
threshold above a running noise floor. F0: WORLD harvest and dio (+ stonemask) and librosa's pyin.
Noise class: logistic regression on log-mel features. What needs fitting (the energy thresholds, the
noise classifier) is fitted on the probes' fit split, as the probes are.
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
from threadpoolctl import threadpool_limits

from maskscope.core import framing
from maskscope.core.audio import SAMPLE_RATE

WEBRTC_CHUNK = 160  # 10 ms at 16 kHz, one of the three lengths webrtcvad accepts
SILERO_CHUNK = 512  # samples per Silero VAD decision at 16 kHz (32 ms)
SILERO_THRESHOLD = 0.5  # the speech probability above which Silero's own tools call a chunk speech
# The causal energy VAD's noise floor falls to any quieter frame at once and rises 3 dB per second,
# so it follows slowly rising noise but not a word.
FLOOR_RISE_DB_PER_FRAME = 3.0 / framing.FRAMES_PER_SECOND
PYIN_FRAME = 1024  # 64 ms: two periods of a 31 Hz tone, below any floor the labels allow
MEL_BANDS = 40


@dataclass
class Timed:
    value: object
    cpu_seconds: float


# Costs are the least CPU time of a few runs: the run least disturbed by other work on the machine.
TIMING_REPEATS = 3


def timed(function: Callable[[], object], repeats: int = 1) -> Timed:
    """The function's value and the least CPU time of `repeats` calls, on one thread (BLAS, OpenMP
    and torch pools limited to one meanwhile), as a device runs it and as `evaluate` times the models:
    otherwise idle BLAS threads spinning on a tiny product bill the process several times its work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            best = float("inf")
            for _ in range(repeats):
                started = time.process_time()
                value = function()
                best = min(best, time.process_time() - started)
    finally:
        torch.set_num_threads(threads)
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


class SileroVad:
    """Speech probability per STFT frame from Silero VAD, run chunk by chunk with its state carried
    (as it streams); a frame takes the decision of the chunk its centre falls in."""

    def __init__(self) -> None:
        threads = torch.get_num_threads()
        from silero_vad import load_silero_vad

        self.model = load_silero_vad()  # TorchScript, from the wheel's data: nothing is downloaded
        torch.set_num_threads(threads)  # importing silero_vad sets torch to one thread for the process

    def __call__(self, noisy: np.ndarray) -> np.ndarray:
        self.model.reset_states()
        audio = torch.from_numpy(np.asarray(noisy, dtype=np.float32))[None]
        with torch.no_grad():
            probability = self.model.audio_forward(audio, SAMPLE_RATE)[0].numpy()
        centres = np.arange(framing.frame_count(len(noisy))) * framing.HOP
        return probability[np.minimum(centres // SILERO_CHUNK, len(probability) - 1)]


def noisy_energy_db(noisy: np.ndarray) -> np.ndarray:
    """Frame energy of the noisy audio in dB relative to its loudest frame (the energy VAD's feature;
    the loudest frame may lie in the future, so this is not causal)."""
    energy = framing.energy_db(framing.frame_energy(noisy))
    return energy - energy.max()


def energy_above_floor_db(noisy: np.ndarray) -> np.ndarray:
    """Frame energy in dB above a running noise floor that sees only the past (the causal energy
    VAD's feature): the floor drops to any quieter frame and rises FLOOR_RISE_DB_PER_FRAME a frame."""
    energy = framing.energy_db(framing.frame_energy(noisy))
    floor = np.empty_like(energy)
    level = energy[0]
    for frame, value in enumerate(energy):
        level = min(value, level + FLOOR_RISE_DB_PER_FRAME)
        floor[frame] = level
    return energy - floor


def best_threshold(feature: np.ndarray, target: np.ndarray, grid: np.ndarray) -> float:
    """The threshold of `grid` on `feature` that classifies `target` best."""
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


def pyin_f0(noisy: np.ndarray, floor_hz: float, ceil_hz: float) -> np.ndarray:
    """F0 per STFT frame from librosa's probabilistic YIN on the noisy audio (0 = unvoiced)."""
    import librosa

    f0, voiced, _ = librosa.pyin(
        np.asarray(noisy, dtype=np.float32),
        fmin=floor_hz,
        fmax=ceil_hz,
        sr=SAMPLE_RATE,
        frame_length=PYIN_FRAME,
        hop_length=framing.HOP,
        center=True,
    )
    return np.where(voiced, np.nan_to_num(f0), 0.0)[: framing.frame_count(len(noisy))]


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
