"""The one owner of STFT framing: labels, models and mask dumps all frame audio through here.

n_fft = window = 512, hop 256 at 16 kHz, periodic Hann, centred frames with zero padding of
n_fft/2 on both sides. Frame t is centred on sample t*hop, so a signal of L samples has
1 + L // hop frames, and WORLD's F0 at a 16 ms frame period lands on the same instants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from maskscope.core.audio import SAMPLE_RATE

if TYPE_CHECKING:
    import torch

N_FFT = 512
HOP = 256
N_BINS = N_FFT // 2 + 1
FRAME_PERIOD_MS = 1000.0 * HOP / SAMPLE_RATE
FRAMES_PER_SECOND = SAMPLE_RATE / HOP


def frame_count(num_samples: int) -> int:
    """Frames the STFT yields for a signal of `num_samples` samples."""
    return 1 + num_samples // HOP


def hann_window() -> np.ndarray:
    """Periodic Hann window, as torch.hann_window(N_FFT) gives."""
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(np.float32)


def frame_signal(audio: np.ndarray) -> np.ndarray:
    """(frames, N_FFT) unwindowed frames, exactly the segments the STFT transforms."""
    audio = np.asarray(audio, dtype=np.float32)
    padded = np.pad(audio, (N_FFT // 2, N_FFT // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return frames[: frame_count(audio.size)]


def frame_energy(audio: np.ndarray) -> np.ndarray:
    """Windowed energy per frame (float64); by Parseval it matches the STFT power per frame."""
    frames = frame_signal(audio).astype(np.float64) * hann_window()
    return np.einsum("ij,ij->i", frames, frames)


def energy_db(energy: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.asarray(energy, dtype=np.float64) + 1e-12)


def _active_mask(energy: np.ndarray, threshold_db: float) -> np.ndarray:
    levels = energy_db(energy)
    return levels > levels.max() + threshold_db


def active_frames(audio: np.ndarray, threshold_db: float) -> np.ndarray:
    """Frames whose energy lies within `threshold_db` (< 0) of the loudest frame."""
    return _active_mask(frame_energy(audio), threshold_db)


def active_speech_power(audio: np.ndarray, threshold_db: float) -> float:
    """Mean power per sample over active frames: the level SNRs are measured against."""
    energy = frame_energy(audio)
    active = _active_mask(energy, threshold_db)
    window_power = float(np.sum(hann_window().astype(np.float64) ** 2))
    return float(energy[active].mean() / window_power)


def stft(audio: torch.Tensor) -> torch.Tensor:
    """Complex STFT (..., N_BINS, frames) of a (..., samples) tensor."""
    import torch

    window = torch.hann_window(N_FFT, device=audio.device, dtype=audio.dtype)
    return torch.stft(audio, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)


def istft(spectrum: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of `stft`, trimmed to `length` samples."""
    import torch

    window = torch.hann_window(N_FFT, device=spectrum.device, dtype=spectrum.real.dtype)
    return torch.istft(spectrum, N_FFT, HOP, window=window, center=True, length=length)
