"""Stage `train_slim`: the slimmable DEMUCS at every width, which the routed variants start from."""

from __future__ import annotations

from typing import Any

from maskscope.stages import StageContext
from maskscope.stages.train import train_variant


def run(ctx: StageContext) -> dict[str, Any]:
    return train_variant(ctx, "slim-static")
