"""Stage `mix`: speaker-disjoint splits of speech + noise mixtures, as Parquet shards per split."""

from __future__ import annotations

from typing import Any

from maskscope.core.io import atomic_output_dir, read_shards, write_shards
from maskscope.data.mixtures import MIX_SCHEMA, mix_metrics, official_mixtures, synthetic_mixtures
from maskscope.data.splits import SPLITS, speaker_splits
from maskscope.pipeline.runner import StageContext


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps, outs = ctx.params, ctx.deps, ctx.outs
    splits = speaker_splits(deps["corpus"], params.seed, params.splits)
    corpus = read_shards(deps["corpus"], "audio").to_pylist()
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    if params.mix.source == "vbd":
        mixtures = official_mixtures(corpus, deps["corpus"], deps["archives"], outs["mix"])
    else:
        mixtures = synthetic_mixtures(params, corpus, splits, deps["corpus"], deps["noises"])
    for row in mixtures:
        row["split"] = splits[row["speaker"]]
        rows[row["split"]].append(row)
    with atomic_output_dir(outs["mix"]) as tmp:
        for split in SPLITS:
            write_shards(rows[split], MIX_SCHEMA, tmp, params.mix.shard_size, split)
    return mix_metrics(rows)
