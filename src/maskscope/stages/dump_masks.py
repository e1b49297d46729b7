"""Stage `dump_masks` (a sweep over gated variants and splits): every frame's gates, bit-packed.

Rows are keyed by (utt_id, frame) exactly as the labels are, since both frame audio through
`framing`; shards hold MASK_SHARD_UTTERANCES mixtures each.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import torch
from tqdm import tqdm

from maskscope.errors import ParamsError
from maskscope.evaluation import enhance
from maskscope.io import atomic_output_dir, write_parquet
from maskscope.masks import MaskLayout, mask_table, write_layout
from maskscope.stages import StageContext
from maskscope.stages.train import MODEL_FILE, load_model
from maskscope.training import load_split

MASK_SHARD_UTTERANCES = 64


def run(ctx: StageContext) -> dict[str, Any]:
    variant, split = ctx.items["variant"], ctx.items["split"]
    torch.set_num_threads(ctx.workers)
    model, _ = load_model(ctx.deps["model"] / MODEL_FILE)
    if not model.config.gated:
        raise ParamsError(f"variant '{variant}' has no gates to dump (kind must be 'dyncp')")
    layout = MaskLayout(blocks=model.config.n_blocks, hidden=model.config.hidden)
    utterances = load_split(ctx.deps["mix"], split)
    frames = open_bits = 0
    started = time.perf_counter()
    with atomic_output_dir(ctx.outs["masks"]) as tmp:
        tables: list[pa.Table] = []
        shard = 0
        for utterance in tqdm(utterances, desc=f"dump_masks: {variant}/{split}", unit="utt", disable=None):
            gates = enhance(model, utterance.noisy).gates
            tables.append(mask_table(utterance.utt_id, gates, layout))
            frames += gates.shape[2]
            open_bits += int(gates.sum())
            if len(tables) == MASK_SHARD_UTTERANCES:
                write_parquet(pa.concat_tables(tables), tmp / f"masks-{shard:05d}.parquet")
                tables, shard = [], shard + 1
        if tables:
            write_parquet(pa.concat_tables(tables), tmp / f"masks-{shard:05d}.parquet")
        write_layout(tmp, layout)
    seconds = time.perf_counter() - started
    ctx.log_step({"frames_per_second": frames / max(seconds, 1e-9)}, 0)
    return {
        "variant": variant,
        "split": split,
        "utterances": len(utterances),
        "frames": frames,
        "bytes_per_frame": layout.bytes_per_frame,
        "gate_usage": round(open_bits / max(frames * layout.bits, 1), 4),
    }
