"""Stage `dump_masks` (a sweep over gated variants and splits): every frame's gates, bit-packed.

DynCP variants: the gates of every block. Routed DEMUCS variants: the channels of each encoder
layer that the router's width choice for the frame's segment leaves active (blocks = layers,
channels = the widest layer's, so a narrower layer's extra bits are always 0).

Rows are keyed by (utt_id, frame) exactly as the labels are, since both frame audio through
`framing`; shards hold `masks.MASK_SHARD_UTTERANCES` mixtures each.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from tqdm import tqdm

from maskscope.analysis.masks import MaskLayout, write_masks
from maskscope.core.constants import MODEL_FILE
from maskscope.core.errors import ParamsError
from maskscope.core.io import atomic_output_dir
from maskscope.evaluation.scoring import enhance
from maskscope.models.checkpoint import load_model
from maskscope.models.conv_fsenet import ConvFSENet
from maskscope.models.demucs import SlimDemucs
from maskscope.pipeline.runner import StageContext
from maskscope.training.loop import load_split


def run(ctx: StageContext) -> dict[str, Any]:
    variant, split = ctx.items["variant"], ctx.items["split"]
    torch.set_num_threads(ctx.workers)
    model, _ = load_model(ctx.deps["model"] / MODEL_FILE)
    if isinstance(model, SlimDemucs) and model.config.dynamic:
        layout = MaskLayout(blocks=model.config.depth, hidden=max(model.config.channels))
        channels = sum(model.config.channels)
    elif isinstance(model, ConvFSENet) and model.config.gated:
        layout = MaskLayout(blocks=model.config.n_blocks, hidden=model.config.hidden)
        channels = layout.bits
    else:
        raise ParamsError(f"variant '{variant}' has no per-frame decisions to dump (kind must be dyncp or slim-dyn)")
    utterances = load_split(ctx.deps["mix"], split)
    started = time.perf_counter()
    with atomic_output_dir(ctx.outs["masks"]) as tmp:
        decisions = (
            (utterance.utt_id, enhance(model, utterance.noisy).gates)
            for utterance in tqdm(utterances, desc=f"dump_masks: {variant}/{split}", unit="utt", disable=None)
        )
        frames, open_bits = write_masks(tmp, decisions, layout)
    seconds = time.perf_counter() - started
    ctx.log_step({"frames_per_second": frames / max(seconds, 1e-9)}, 0)
    return {
        "variant": variant,
        "split": split,
        "utterances": len(utterances),
        "frames": frames,
        "bytes_per_frame": layout.bytes_per_frame,
        # share of the model's channels active (DynCP: open gates; DEMUCS: left on by the router)
        "gate_usage": round(open_bits / max(frames * channels, 1), 4),
    }
