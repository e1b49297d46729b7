"""Stage `train_nsnet2` (a sweep over the nsNet2 variants): one nsNet2 from scratch, with early exits
(joint or layer-wise training) or static, truncated at one exit."""

from __future__ import annotations

from typing import Any

import torch

from maskscope.pipeline.code_deps import code_digest
from maskscope.pipeline.runner import StageContext
from maskscope.training.variants import train_variant


def run(ctx: StageContext) -> dict[str, Any]:
    torch.set_num_threads(ctx.workers)
    return train_variant(ctx.params, ctx.items["variant"], ctx.deps, ctx.outs, code_digest(ctx.stage), ctx.log_step)
