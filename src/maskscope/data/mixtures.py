"""The `mix` stage's mixtures as rows of its Parquet shards: the schema, synthetic mixtures (seeded
noise, offset, SNR and silences per mixture) or VoiceBank+DEMAND's official ones, and their summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from maskscope.core.audio import SAMPLE_RATE, decode_audio, encode_flac
from maskscope.core.errors import InputFormatError, MissingInputError
from maskscope.data.noise_recordings import load_noises
from maskscope.data.mixing import draw_mixture, mix_at_snr, mixture_id, noise_segment, pad_speech
from maskscope.data.voicebank_demand import read_resampled, vbd_noise_labels, vbd_noisy_files

MIX_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),  # the mixture's id: clean utterance id + "_m<k>"
        ("clean_utt_id", pa.string()),
        ("split", pa.string()),
        ("speaker", pa.string()),
        ("kind", pa.string()),
        ("noise_class", pa.string()),
        ("snr_db", pa.float64()),
        ("noise_offset", pa.int64()),
        ("lead_samples", pa.int64()),  # silence before the speech
        ("trail_samples", pa.int64()),
        ("num_samples", pa.int64()),
        ("clean", pa.binary()),  # 16 kHz mono 16-bit FLAC
        ("noisy", pa.binary()),
    ]
)


def synthetic_mixtures(
    params: Any, corpus: list[dict], splits: dict[str, str], corpus_dir: Path, noises_dir: Path
) -> Iterator[dict]:
    """Each clean utterance padded with silence and mixed with a seeded noise at a seeded SNR
    (`params`: the seed, `noises.classes` and `mix`)."""
    noises = load_noises(noises_dir)
    classes = list(params.noises.classes)
    missing = [c for c in classes if ("train", c) not in noises]
    if missing:
        raise MissingInputError(
            f"{noises_dir}: has no recording for noise classes {missing}; rerun the noises stage"
        )
    for utterance in tqdm(corpus, desc="mix", unit="utt", disable=None):
        split = splits[utterance["speaker"]]
        clean = decode_audio(utterance["audio"], f"{corpus_dir}: utterance {utterance['utt_id']}")
        lengths = {c: noises[(split, c)].size for c in classes}
        for index in range(params.mix.mixtures_per_utterance):
            mix_id = mixture_id(utterance["utt_id"], index)
            draw = draw_mixture(
                params.seed, mix_id, classes, params.mix.snrs_db, clean.size, lengths, tuple(params.mix.pad_seconds)
            )
            speech = pad_speech(clean, draw)
            noise = noise_segment(noises[(split, draw.noise_class)], draw.noise_offset, speech.size)
            clean_out, noisy = mix_at_snr(speech, noise, draw.snr_db, params.mix.active_threshold_db)
            yield mixture_row(utterance, mix_id, draw.noise_class, draw.snr_db, clean_out, noisy) | {
                "noise_offset": draw.noise_offset,
                "lead_samples": draw.lead_samples,
                "trail_samples": draw.trail_samples,
            }


def official_mixtures(corpus: list[dict], corpus_dir: Path, archives_dir: Path, near: Path) -> Iterator[dict]:
    """VoiceBank+DEMAND as published: each clean utterance with its official noisy file and labels
    (archives unpacked into a scratch directory beside `near`)."""
    labels = vbd_noise_labels(archives_dir, near)
    with vbd_noisy_files(archives_dir, near) as noisy_files:
        for utterance in tqdm(corpus, desc="mix: VoiceBank", unit="utt", disable=None):
            utt_id = utterance["utt_id"]
            if utt_id not in noisy_files or utt_id not in labels:
                raise MissingInputError(
                    f"{archives_dir}/vbd: utterance {utt_id} has no noisy file or no logfiles.zip entry"
                )
            clean = decode_audio(utterance["audio"], f"{corpus_dir}: utterance {utt_id}")
            noisy = read_resampled(noisy_files[utt_id])
            if noisy.size != clean.size:
                raise InputFormatError(
                    f"{noisy_files[utt_id]}: {noisy.size} samples at 16 kHz, its clean file has {clean.size}"
                )
            noise_class, snr_db = labels[utt_id]
            yield mixture_row(utterance, mixture_id(utt_id, 0), noise_class, snr_db, clean, noisy)


def mixture_row(
    utterance: dict, mix_id: str, noise_class: str, snr_db: float, clean: np.ndarray, noisy: np.ndarray
) -> dict:
    return {
        "utt_id": mix_id,
        "clean_utt_id": utterance["utt_id"],
        "speaker": utterance["speaker"],
        "kind": utterance["kind"],
        "noise_class": noise_class,
        "snr_db": snr_db,
        "noise_offset": 0,
        "lead_samples": 0,
        "trail_samples": 0,
        "num_samples": int(clean.size),
        "clean": encode_flac(clean),
        "noisy": encode_flac(noisy),
    }


def mix_metrics(rows: dict[str, list[dict]]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for split, split_rows in rows.items():
        speakers = {(row["speaker"], row["kind"]) for row in split_rows}
        metrics[split] = {
            "mixtures": len(split_rows),
            "minutes": round(sum(row["num_samples"] for row in split_rows) / SAMPLE_RATE / 60, 3),
            "synthetic_speakers": sum(1 for _, kind in speakers if kind == "synthetic"),
            "real_speakers": sum(1 for _, kind in speakers if kind == "real"),
            "noise_classes": dict(sorted(Counter(row["noise_class"] for row in split_rows).items())),
        }
    return metrics
