"""Stage `train_slim`: the slimmable DEMUCS at every width, which the routed variants start from."""

from __future__ import annotations

from typing import Any

import torch

from maskscope.pipeline.code_deps import code_digest
from maskscope.pipeline.runner import StageContext
from maskscope.training.variants import train_variant


def run(ctx: StageContext) -> dict[str, Any]:
    torch.set_num_threads(ctx.workers)
    return train_variant(ctx.params, "slim-static", ctx.deps, ctx.outs, code_digest(ctx.stage), ctx.log_step)
