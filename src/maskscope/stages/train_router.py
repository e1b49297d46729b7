"""Stage `train_router` (a sweep over the routed variants): a DEMUCS whose router picks the width per
segment, fine-tuned from the slimmable model of `train_slim`."""

from __future__ import annotations

from maskscope.stages.train import run

__all__ = ["run"]
