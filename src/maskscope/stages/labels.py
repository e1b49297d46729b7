"""Stage `labels`: frame labels keyed by (utt_id, frame), aligned with the model's STFT frames."""

from __future__ import annotations

from multiprocessing import get_context
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from maskscope.core.audio import decode_audio
from maskscope.core.io import atomic_output_dir, read_shards, write_parquet
from maskscope.data.labels import frame_labels
from maskscope.data.splits import SPLITS
from maskscope.pipeline.runner import StageContext

LABEL_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("frame", pa.int32()),
        ("split", pa.string()),
        ("speaker", pa.string()),
        ("noise_class", pa.string()),
        ("f0_hz", pa.float32()),
        ("voiced", pa.bool_()),
        ("vad", pa.bool_()),
        ("snr_db", pa.float32()),
    ]
)


def _label_one(job: tuple[dict, str, float, float, float]) -> dict[str, np.ndarray]:
    row, origin, vad_threshold_db, f0_floor, f0_ceil = job
    clean = decode_audio(row["clean"], f"{origin}: {row['utt_id']} (clean)")
    noisy = decode_audio(row["noisy"], f"{origin}: {row['utt_id']} (noisy)")
    labels = frame_labels(clean, noisy, vad_threshold_db, f0_floor, f0_ceil)
    frames = labels.f0_hz.size
    return {
        "utt_id": np.full(frames, row["utt_id"], dtype=object),
        "frame": np.arange(frames, dtype=np.int32),
        "split": np.full(frames, row["split"], dtype=object),
        "speaker": np.full(frames, row["speaker"], dtype=object),
        "noise_class": np.full(frames, row["noise_class"], dtype=object),
        "f0_hz": labels.f0_hz,
        "voiced": labels.voiced,
        "vad": labels.vad,
        "snr_db": labels.snr_db,
    }


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps, outs, workers = ctx.params, ctx.deps, ctx.outs, ctx.workers
    lp = params.labels
    metrics: dict[str, Any] = {}
    with atomic_output_dir(outs["labels"]) as tmp, get_context("spawn").Pool(workers) as pool:
        for split in SPLITS:
            mixtures = read_shards(
                deps["mix"], split, columns=["utt_id", "split", "speaker", "noise_class", "clean", "noisy"]
            )
            jobs = [
                (row, str(deps["mix"]), lp.vad_threshold_db, lp.f0_floor_hz, lp.f0_ceil_hz)
                for row in mixtures.to_pylist()
            ]
            parts = list(
                tqdm(pool.imap(_label_one, jobs, chunksize=2), total=len(jobs), desc=f"labels: {split}", disable=None)
            )
            columns = {name: np.concatenate([part[name] for part in parts]) for name in LABEL_SCHEMA.names}
            table = pa.Table.from_pydict(columns, schema=LABEL_SCHEMA)
            write_parquet(table, tmp / f"{split}.parquet")
            metrics[split] = {
                "frames": table.num_rows,
                "vad_fraction": round(float(np.mean(columns["vad"])), 4),
                "voiced_fraction": round(float(np.mean(columns["voiced"])), 4),
                "median_f0_hz": round(float(np.median(columns["f0_hz"][columns["voiced"]])), 2)
                if columns["voiced"].any()
                else 0.0,
            }
    return metrics
