"""Stage `noises`: one recording per noise class and split.

Synthetic classes are each made from their own seed; babble from training-split speakers only, so
no test speaker is ever heard as noise in training, nor as babble in test. DEMAND environments are
cut in time, so no stretch of a recording is in two splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from maskscope.audio import SAMPLE_RATE, decode_audio, encode_flac
from maskscope.io import atomic_output_dir, read_shards, write_parquet
from maskscope.noises import synthesize_noise
from maskscope.real_corpora import demand_recording, demand_split
from maskscope.seeding import item_rng
from maskscope.splits import SPLITS, speaker_splits
from maskscope.stages import StageContext

PEAK_LIMIT = 0.99
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


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps, outs = ctx.params, ctx.deps, ctx.outs
    splits = speaker_splits(deps["corpus"], params.seed, params.splits)
    classes = list(params.noises.classes)
    demand = params.noises.source == "demand"
    sources = babble_sources(deps["corpus"], splits) if "babble" in classes and not demand else None
    recordings = {name: demand_recording(deps["archives"], name, outs["noises"]) for name in classes} if demand else {}
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
    with atomic_output_dir(outs["noises"]) as tmp:
        write_parquet(pa.Table.from_pylist(rows, schema=NOISE_SCHEMA), tmp / "noises.parquet")
    return {}
