"""Audio I/O for the pipeline: 16 kHz mono float32, stored as 16-bit FLAC bytes.

Every reader checks what it got and names the file (or the Parquet row) when the audio is
corrupt, empty, at the wrong rate or not mono.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from maskscope.core.constants import SAMPLE_RATE
from maskscope.core.errors import AudioError


def _check(audio: np.ndarray, rate: int, origin: str, expected_rate: int | None) -> np.ndarray:
    if audio.ndim == 2 and audio.shape[1] != 1:
        raise AudioError(f"{origin}: has {audio.shape[1]} channels; mono audio is required")
    audio = audio.reshape(-1)
    if audio.size == 0:
        raise AudioError(f"{origin}: holds no samples (empty audio)")
    if expected_rate is not None and rate != expected_rate:
        raise AudioError(f"{origin}: sample rate is {rate} Hz; {expected_rate} Hz is required (resample it first)")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{origin}: contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def read_audio_file(path: Path | str, expected_rate: int | None = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Read a mono audio file as float32; fail naming the file if it is unusable."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"{path}: cannot be read as audio ({error})") from error
    return _check(audio, rate, str(path), expected_rate), rate


def decode_audio(data: bytes, origin: str, expected_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode audio bytes (FLAC or WAV) stored in a Parquet row; `origin` names the row."""
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{origin}: cannot be decoded as audio ({error})") from error
    return _check(audio, rate, origin, expected_rate)


def encode_flac(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit FLAC bytes of a float signal in [-1, 1] (clipped); deterministic for one libsndfile."""
    buffer = io.BytesIO()
    clipped = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 32767 / 32768)
    sf.write(buffer, clipped, sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def quantize_pcm16(audio: np.ndarray) -> np.ndarray:
    """The float32 values that a 16-bit encode/decode round trip gives back."""
    clipped = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 32767 / 32768)
    return (np.round(clipped * 32768.0) / 32768.0).astype(np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample with one fixed resampler (soxr, very high quality) so results are reproducible."""
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(np.asarray(audio, dtype=np.float32), from_rate, to_rate, quality="VHQ")
