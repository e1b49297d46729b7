"""The slimmable DEMUCS network: static at one UF, or routed per segment."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.models.demucs.config import SlimDemucsConfig, SlimOutput, network_length, slim_channels
from maskscope.models.demucs.costs import width_channel_masks
from maskscope.models.demucs.layers import DecoderLayer, EncoderLayer, SlimGRUStack
from maskscope.models.demucs.router import SegmentRouter


def input_scale(noisy: torch.Tensor, config: SlimDemucsConfig) -> torch.Tensor:
    """(batch, samples) -> (batch, 1): what a `normalize` model divides its input by (std plus floor)."""
    return noisy.std(dim=-1, correction=0, keepdim=True) + config.normalize_floor


def _upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Linear interpolation by `factor`; the last sample is held, so no input past the end is needed."""
    if factor == 1:
        return x
    following = torch.cat([x[..., 1:], x[..., -1:]], dim=-1)
    frac = torch.arange(factor, dtype=x.dtype, device=x.device) / factor
    return (x[..., None] * (1 - frac) + following[..., None] * frac).flatten(-2)


def _downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean of each run of `factor` samples."""
    if factor == 1:
        return x
    return x.reshape(*x.shape[:-1], -1, factor).mean(-1)


class SlimDemucs(nn.Module):
    """Slimmable DEMUCS, optionally routed per segment (see module docstring)."""

    def __init__(self, config: SlimDemucsConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        chans = (1, *c.channels)
        self.encoder = nn.ModuleList(
            EncoderLayer(chans[i], chans[i + 1], c.kernel, c.stride, first=i == 0) for i in range(c.depth)
        )
        self.bottleneck = SlimGRUStack(chans[-1], c.gru_layers, c.groups, bidirectional=not c.causal)
        # decoder[0] is the deepest layer, decoder[-1] writes the audio
        self.decoder = nn.ModuleList(
            DecoderLayer(chans[i + 1], chans[i], c.kernel, c.stride, last=i == 0) for i in reversed(range(c.depth))
        )
        self.router = SegmentRouter(config) if c.dynamic else None

    def forward(self, noisy: torch.Tensor, uf: float | None = None) -> SlimOutput:
        """(batch, samples) -> enhanced (batch, samples): at `uf`, routed (dynamic, uf=None) or full width."""
        if noisy.dim() != 2:
            raise ValueError(f"expected (batch, samples), got {tuple(noisy.shape)}")
        c = self.config
        length = noisy.shape[-1]
        x, scale = noisy, None
        if c.normalize:
            scale = input_scale(noisy, c)
            x = x / scale
        choices = probs = masks = None
        if uf is None and self.router is not None:
            logits = self.router(x)
            probs = torch.softmax(logits, dim=-1)
            if self.training:
                one_hot = F.gumbel_softmax(logits, tau=c.gumbel_temperature, hard=True)
            else:
                one_hot = F.one_hot(logits.argmax(-1), len(c.widths)).to(logits.dtype)
            choices = one_hot.argmax(-1)
            uf = max(c.widths)
            masks = self._masks(one_hot, length, uf)
        elif uf is None:
            uf = 1.0
        slim_channels(1, uf)  # validates uf
        h = _upsample(x, c.resample)
        h = F.pad(h, (0, network_length(c, length) - h.shape[-1]))[:, None]
        skips = []
        for i, layer in enumerate(self.encoder):
            h = layer(h, uf, None if masks is None else masks[i + 1])
            skips.append(h)
        mask_bottom = None if masks is None else masks[c.depth].transpose(1, 2)
        h = self.bottleneck(h.transpose(1, 2), uf, mask_bottom).transpose(1, 2)
        for j, layer in enumerate(self.decoder):
            level = c.depth - j
            h = h + skips[level - 1]
            mask_in = None if masks is None else masks[level]
            mask_out = None if masks is None or level == 1 else masks[level - 1]
            h = layer(h, uf, mask_in, mask_out)
        audio = _downsample(h[:, 0, : length * c.resample], c.resample)
        if scale is not None:
            audio = audio * scale
        return SlimOutput(audio=audio, choices=choices, probs=probs)

    def _masks(self, one_hot: torch.Tensor, length: int, uf: float) -> dict[int, torch.Tensor]:
        """Per level 1..depth: (batch, channels, frames) 0/1 masks following each segment's width choice.

        Frame t of level i starts at input sample t * stride**i / resample; it takes the width of the segment
        holding that sample (frames in the padding take the last segment's).
        """
        c = self.config
        n_seg = one_hot.shape[1]
        frames = network_length(c, length)
        masks = {}
        per_width = width_channel_masks(c).to(device=one_hot.device, dtype=one_hot.dtype)
        for level, full in enumerate(c.channels, start=1):
            frames = (frames - c.kernel) // c.stride + 1
            # (batch, segments, channels at uf); the product carries the straight-through gradient
            seg_mask = one_hot @ per_width[:, level - 1, : slim_channels(full, uf)]
            start = torch.arange(frames, device=one_hot.device) * c.stride**level
            seg_of_frame = (start // (c.resample * c.segment)).clamp(max=n_seg - 1)
            masks[level] = seg_mask[:, seg_of_frame].transpose(1, 2)
        return masks
