"""Speech + noise mixtures at a target SNR relative to the active speech level."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from maskscope.core.constants import ACTIVE_LEVEL_DB, PEAK_LIMIT
from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.framing import active_speech_power
from maskscope.core.seeding import item_rng



@dataclass(frozen=True)
class MixtureDraw:
    noise_class: str
    snr_db: float
    noise_offset: int
    lead_samples: int  # silence before the speech
    trail_samples: int  # silence after it


def mixture_id(utt_id: str, index: int) -> str:
    return f"{utt_id}_m{index}"


def draw_mixture(
    seed: int,
    mix_id: str,
    classes: Sequence[str],
    snrs_db: Sequence[float],
    speech_samples: int,
    noise_lengths: dict[str, int],
    pad_seconds: tuple[float, float],
) -> MixtureDraw:
    """The random choices of one mixture, from an RNG private to (seed, mixture id)."""
    rng = item_rng(seed, "mix", mix_id)
    noise_class = str(classes[int(rng.integers(len(classes)))])
    snr_db = float(snrs_db[int(rng.integers(len(snrs_db)))])
    lead, trail = (round(rng.uniform(*pad_seconds) * SAMPLE_RATE) for _ in range(2))
    span = noise_lengths[noise_class] - (lead + speech_samples + trail)
    offset = int(rng.integers(span + 1)) if span > 0 else 0
    return MixtureDraw(noise_class, snr_db, offset, lead, trail)


def pad_speech(speech: np.ndarray, draw: MixtureDraw) -> np.ndarray:
    """Surround the utterance with the drawn silences, as recordings have pauses around speech."""
    return np.pad(np.asarray(speech, dtype=np.float32), (draw.lead_samples, draw.trail_samples))


def noise_segment(noise: np.ndarray, offset: int, num_samples: int) -> np.ndarray:
    """`num_samples` of noise from `offset`, wrapping around a recording shorter than needed."""
    indices = (offset + np.arange(num_samples)) % noise.size
    return noise[indices]


def mix_at_snr(
    clean: np.ndarray, noise: np.ndarray, snr_db: float, active_threshold_db: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scale the noise so that active-speech power / noise power = snr_db; return (clean, noisy).

    If the mixture would clip, both signals are scaled down together, keeping the SNR."""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    speech_power = active_speech_power(clean, active_threshold_db)
    noise_power = float(np.mean(noise**2)) + 1e-20
    gain = np.sqrt(speech_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    noisy = clean + gain * noise
    peak = float(np.max(np.abs(noisy)))
    scale = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
    return (clean * scale).astype(np.float32), (noisy * scale).astype(np.float32)
