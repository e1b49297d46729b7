"""Stage `dump_exits` (a sweep over nsNet2 variants with exits, and splits): the exit the causal
exit policy (`nsnet2.exit_threshold`) takes on every frame, stored as mask bits so that the probes
read a policy's decisions exactly as they read DynCP gates and router widths.

Bit b of a frame is set when the frame reached exit b, that is ran the layers up to it (one block
per exit, one bit each): a frame that left at exit e has bits 0..e set, and bit 0 always is. With
the threshold null there is no policy and every frame runs to the last exit. Rows are keyed by
(utt_id, frame) as the labels are.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from maskscope.analysis.masks import MaskLayout, reached_exits, write_masks
from maskscope.core import framing
from maskscope.core.constants import MODEL_FILE
from maskscope.core.errors import ParamsError
from maskscope.core.io import atomic_output_dir
from maskscope.models.checkpoint import load_model
from maskscope.models.nsnet2 import NsNet2
from maskscope.pipeline.runner import StageContext
from maskscope.training.loop import load_split


def policy_exits(model: NsNet2, noisy: np.ndarray, threshold: float | None) -> np.ndarray:
    """The exit index the policy takes on each frame of one signal (the last everywhere without a policy)."""
    spectrum = framing.stft(torch.from_numpy(noisy)[None])
    if threshold is None:
        return np.full(spectrum.shape[-1], len(model.config.exits) - 1, dtype=np.int64)
    with torch.no_grad():
        return model.eval().early_exit(spectrum, threshold).exits.numpy()


def run(ctx: StageContext) -> dict[str, Any]:
    variant, split = ctx.items["variant"], ctx.items["split"]
    threshold = ctx.params.nsnet2.exit_threshold
    torch.set_num_threads(ctx.workers)
    model, _ = load_model(ctx.deps["model"] / MODEL_FILE)
    if not isinstance(model, NsNet2) or len(model.config.exits) < 2:
        raise ParamsError(f"variant '{variant}' has no exits to choose between (kind must be nsnet2)")
    exits = model.config.exits
    layout = MaskLayout(blocks=len(exits), hidden=1)
    utterances = load_split(ctx.deps["mix"], split)
    taken_counts = np.zeros(len(exits), dtype=np.int64)

    def decisions():
        for utterance in tqdm(utterances, desc=f"dump_exits: {variant}/{split}", unit="utt", disable=None):
            taken = policy_exits(model, utterance.noisy, threshold)
            taken_counts[:] += np.bincount(taken, minlength=len(exits))
            yield utterance.utt_id, reached_exits(taken, len(exits))

    started = time.perf_counter()
    with atomic_output_dir(ctx.outs["masks"]) as tmp:
        frames, _ = write_masks(tmp, decisions(), layout)
    seconds = time.perf_counter() - started
    ctx.log_step({"frames_per_second": frames / max(seconds, 1e-9)}, 0)
    return {
        "variant": variant,
        "split": split,
        "utterances": len(utterances),
        "frames": frames,
        "exit_threshold": threshold,
        # share of this split's frames leaving at each exit (evaluate's exit_share is on the test split's scored span)
        "exit_share": {name: round(float(n) / max(frames, 1), 4) for name, n in zip(exits, taken_counts, strict=True)},
    }
