"""The `noises` stage's recordings: one per noise class and split.

Synthetic classes are each made from their own seed; babble from training-split speakers only, so
no test speaker is ever heard as noise in training, nor as babble in test. DEMAND environments are
cut in time, so no stretch of a recording is in two splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from maskscope.core.audio import SAMPLE_RATE, decode_audio, encode_flac
from maskscope.core.constants import PEAK_LIMIT
from maskscope.core.io import read_shards
from maskscope.core.seeding import item_rng
from maskscope.data.noises import synthesize_noise
from maskscope.data.splits import SPLITS, speaker_splits
from maskscope.data.voicebank_demand import demand_recording, demand_split

UTTERANCES_PER_TALKER = 12

NOISE_SCHEMA = pa.schema(
    [
        ("split", pa.string()),
        ("noise_class", pa.string()),
        ("num_samples", pa.int64()),
        ("audio", pa.binary()),
    ]
)


def babble_sources(corpus_dir: Path, splits: dict[str, str]) -> list[np.ndarray]:
    """One source per training speaker: that speaker's utterances end to end."""
    table = read_shards(corpus_dir, "audio", columns=["utt_id", "speaker", "audio"]).to_pylist()
    talkers: dict[str, list[np.ndarray]] = {}
    for row in table:
        if splits[row["speaker"]] == "train" and len(talkers.get(row["speaker"], [])) < UTTERANCES_PER_TALKER:
            origin = f"{corpus_dir}: utterance {row['utt_id']}"
            talkers.setdefault(row["speaker"], []).append(decode_audio(row["audio"], origin))
    return [np.concatenate(talkers[speaker]) for speaker in sorted(talkers)]


def noise_recordings(params: Any, corpus_dir: Path, archives_dir: Path, near: Path) -> list[dict]:
    """Rows of the noises table (`params`: the seed, `splits` and `noises`); DEMAND's archives are
    unpacked into a scratch directory beside `near`."""
    splits = speaker_splits(corpus_dir, params.seed, params.splits)
    classes = list(params.noises.classes)
    demand = params.noises.source == "demand"
    sources = babble_sources(corpus_dir, splits) if "babble" in classes and not demand else None
    recordings = {name: demand_recording(archives_dir, name, near) for name in classes} if demand else {}
    rows = []
    for split in SPLITS:
        for noise_class in tqdm(classes, desc=f"noises: {split}", disable=None):
            if demand:
                noise = demand_split(recordings[noise_class], split)
            else:
                rng = item_rng(params.seed, "noise", split, noise_class)
                noise = synthesize_noise(noise_class, params.noises.seconds_per_class, rng, SAMPLE_RATE, sources)
            peak = float(np.max(np.abs(noise)))
            if peak > PEAK_LIMIT:
                noise = noise * (PEAK_LIMIT / peak)
            rows.append(
                {"split": split, "noise_class": noise_class, "num_samples": noise.size, "audio": encode_flac(noise)}
            )
    return rows


def load_noises(noises_dir: Path) -> dict[tuple[str, str], Any]:
    rows = pq.read_table(noises_dir / "noises.parquet").to_pylist()
    return {
        (row["split"], row["noise_class"]): decode_audio(
            row["audio"], f"{noises_dir}/noises.parquet: {row['split']}/{row['noise_class']}"
        )
        for row in rows
    }
