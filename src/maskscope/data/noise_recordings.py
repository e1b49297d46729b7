"""The `noises` stage's recordings: one per noise class and split.

Synthetic classes are each made from their own seed; babble from training-split speakers only (the
real ones where there are enough of them), so no test speaker is ever heard as noise in training,
nor as babble in test. Recorded classes give each split whole files of their own; DEMAND
environments are cut in time: no stretch of a recording is in two splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from maskscope.core.audio import SAMPLE_RATE, decode_audio, encode_flac
from maskscope.core.constants import PEAK_LIMIT, RECORDED_NOISE_CLASSES
from maskscope.core.io import read_shards
from maskscope.core.seeding import item_rng
from maskscope.data.noises import synthesize_noise
from maskscope.data.recorded_noise import LICENCE as RECORDED_LICENCE
from maskscope.data.recorded_noise import package_source as recorded_package_source
from maskscope.data.recorded_noise import recorded_noise
from maskscope.data.splits import SPLITS, speaker_splits
from maskscope.data.voicebank_demand import demand_recording, demand_split

UTTERANCES_PER_TALKER = 12
# Babble takes only real talkers when the train split has at least this many (it mixes 4-8 voices).
MIN_REAL_TALKERS = 4

NOISE_SCHEMA = pa.schema(
    [
        ("split", pa.string()),
        ("noise_class", pa.string()),
        ("num_samples", pa.int64()),
        ("source", pa.string()),  # "synthesised", or the package or corpus recorded from
        ("licence", pa.string()),  # of a recording; null for synthesised noise
        ("audio", pa.binary()),
    ]
)


def babble_sources(corpus_dir: Path, splits: dict[str, str]) -> list[np.ndarray]:
    """One source per training speaker, that speaker's utterances end to end: the real speakers
    when there are MIN_REAL_TALKERS of them, else every training speaker."""
    table = read_shards(corpus_dir, "audio", columns=["utt_id", "speaker", "kind", "audio"]).to_pylist()
    table = [row for row in table if splits[row["speaker"]] == "train"]
    if len({row["speaker"] for row in table if row["kind"] == "real"}) >= MIN_REAL_TALKERS:
        table = [row for row in table if row["kind"] == "real"]
    talkers: dict[str, list[np.ndarray]] = {}
    for row in table:
        if len(talkers.get(row["speaker"], [])) < UTTERANCES_PER_TALKER:
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
            source, licence = "synthesised", None
            if demand:
                noise = demand_split(recordings[noise_class], split)
                source, licence = "DEMAND", "CC-BY-SA-3.0"
            elif noise_class in RECORDED_NOISE_CLASSES:
                noise = recorded_noise(params.seed, noise_class, split)
                source, licence = recorded_package_source(), RECORDED_LICENCE
            else:
                rng = item_rng(params.seed, "noise", split, noise_class)
                noise = synthesize_noise(noise_class, params.noises.seconds_per_class, rng, SAMPLE_RATE, sources)
            peak = float(np.max(np.abs(noise)))
            if peak > PEAK_LIMIT:
                noise = noise * (PEAK_LIMIT / peak)
            rows.append(
                {
                    "split": split,
                    "noise_class": noise_class,
                    "num_samples": noise.size,
                    "source": source,
                    "licence": licence,
                    "audio": encode_flac(noise),
                }
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
