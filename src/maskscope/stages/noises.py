"""Stage `noises`: one recording per noise class and split (synthetic, or cut from DEMAND)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from maskscope.core.io import atomic_output_dir, write_parquet
from maskscope.data.noise_recordings import NOISE_SCHEMA, noise_recordings
from maskscope.pipeline.runner import StageContext


def run(ctx: StageContext) -> dict[str, Any]:
    rows = noise_recordings(ctx.params, ctx.deps["corpus"], ctx.deps["archives"], ctx.outs["noises"])
    with atomic_output_dir(ctx.outs["noises"]) as tmp:
        write_parquet(pa.Table.from_pylist(rows, schema=NOISE_SCHEMA), tmp / "noises.parquet")
    return {}
