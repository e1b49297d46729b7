"""Stage `train_dense`: the dense Conv-FSENet, which the pruned variants of `train` start from."""

from __future__ import annotations

from typing import Any

from maskscope.stages import StageContext
from maskscope.stages.train import train_variant


def run(ctx: StageContext) -> dict[str, Any]:
    return train_variant(ctx, "dense")
