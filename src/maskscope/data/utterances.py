"""Rows of a corpus manifest: one clean utterance as stored (16-bit FLAC) and described."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from maskscope.core.audio import SAMPLE_RATE, encode_flac, quantize_pcm16

CORPUS_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("speaker", pa.string()),
        ("family", pa.string()),  # the human voice behind a TTS voice; splits keep a family together
        ("kind", pa.string()),  # "synthetic" | "real"
        ("language", pa.string()),
        ("source", pa.string()),  # engine or Debian package, with its version
        ("licence", pa.string()),  # of a recording, as its package states it; null for generated speech
        ("text", pa.string()),
        ("duration_s", pa.float64()),
        ("num_samples", pa.int64()),
        ("sha256", pa.string()),  # of the 16-bit PCM samples, independent of the FLAC encoder
        ("audio", pa.binary()),  # 16 kHz mono 16-bit FLAC
    ]
)


def pcm_sha256(audio: np.ndarray) -> str:
    pcm = np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2")
    return hashlib.sha256(pcm.tobytes()).hexdigest()


def utterance_row(
    utt_id: str,
    speaker: str,
    family: str,
    kind: str,
    language: str,
    source: str,
    text: str,
    audio: np.ndarray,
    licence: str | None = None,
) -> dict:
    """A manifest row with the audio as stored (16-bit FLAC of `audio`, which is used as given)."""
    audio = quantize_pcm16(audio)
    return {
        "utt_id": utt_id,
        "speaker": speaker,
        "family": family,
        "kind": kind,
        "language": language,
        "source": source,
        "licence": licence,
        "text": text,
        "duration_s": audio.size / SAMPLE_RATE,
        "num_samples": int(audio.size),
        "sha256": pcm_sha256(audio),
        "audio": encode_flac(audio),
    }
