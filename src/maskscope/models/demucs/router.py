"""The per-segment router, and the losses that hold it to a MAC budget and spend less on silence."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.models.demucs.config import SlimDemucsConfig
from maskscope.models.demucs.costs import cost_share, width_costs

_LOG_ENERGY_FLOOR = 1e-6  # keeps log finite for silent router segments


class SegmentRouter(nn.Module):
    """Width logits per segment from learned log-energies (see module docstring); `output` is the last Linear."""

    def __init__(self, config: SlimDemucsConfig) -> None:
        super().__init__()
        self.config = config
        self.filterbank = nn.Conv1d(1, config.router_features, config.router_frame, config.router_frame, bias=False)
        self.hidden = nn.Linear(2 * config.router_features, config.router_hidden)
        self.output = nn.Linear(config.router_hidden, len(config.widths))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> logits (batch, ceil(samples / segment), len(widths))."""
        return self.output(F.relu(self.hidden(self.features(audio))))

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, segments, 2 x router_features): per segment the log-energies and
        their rise above the minimum over the earlier segments (0 for the first); row k describes
        segment k with `router_lookahead`, else segment k - 1 (row 0: silence, no rise)."""
        c = self.config
        batch, length = audio.shape
        n_seg = math.ceil(length / c.segment)
        frames_per_seg = c.segment // c.router_frame
        x = F.pad(audio, (0, n_seg * c.segment - length))
        power = self.filterbank(x[:, None]).pow(2)  # (batch, features, frames)
        # mean over the frames that hold real input, so a short last segment is not diluted by padding
        valid = (torch.arange(power.shape[-1], device=audio.device) * c.router_frame < length).to(power.dtype)
        power = (power * valid).reshape(batch, -1, n_seg, frames_per_seg).sum(-1)
        count = valid.reshape(n_seg, frames_per_seg).sum(-1)
        energy = torch.log(power / count + _LOG_ENERGY_FLOOR).transpose(1, 2)  # (batch, segments, features)
        floor = torch.cat([energy[:, :1], torch.cummin(energy, dim=1).values[:, :-1]], dim=1)
        features = torch.cat([energy, energy - floor], dim=-1)
        if not c.router_lookahead:
            silence = torch.cat(
                [torch.full_like(energy[:, :1], math.log(_LOG_ENERGY_FLOOR)), torch.zeros_like(energy[:, :1])], dim=-1
            )
            features = torch.cat([silence, features[:, :-1]], dim=1)
        return features


def speech_segments(clean: torch.Tensor, config: SlimDemucsConfig, threshold_db: float) -> torch.Tensor:
    """(batch, samples) clean speech -> (batch, segments) bool: does the segment hold a `router_frame`
    block within `threshold_db` (< 0) of the input's loudest block? (An all-silent input has none.)"""
    batch, length = clean.shape
    n_seg = math.ceil(length / config.segment)
    blocks = F.pad(clean, (0, n_seg * config.segment - length)).reshape(batch, n_seg, -1, config.router_frame)
    power = blocks.pow(2).mean(-1)  # (batch, segments, blocks per segment)
    loudest = power.flatten(1).amax(-1)[:, None, None]
    active = (power > 0) & (power >= loudest * 10 ** (threshold_db / 10))
    return active.any(-1)


def rest_usage_loss(probs: torch.Tensor, costs: Sequence[float], is_speech: torch.Tensor) -> torch.Tensor:
    """Mean expected cost (`width_costs`) over the segments without speech (0 if there are none): with
    the utilization loss holding the budget, it moves width from noise onto speech."""
    cost = torch.as_tensor(costs, dtype=probs.dtype, device=probs.device)
    rest = (~is_speech).to(probs.dtype)
    return ((probs * cost).sum(-1) * rest).sum() / rest.sum().clamp(min=1.0)


def expected_uf(probs: torch.Tensor, widths: Sequence[float]) -> torch.Tensor:
    """Expected average UF: sum over widths of probs * width, averaged over segments and batch."""
    w = torch.as_tensor(widths, dtype=probs.dtype, device=probs.device)
    return (probs * w).sum(-1).mean()


def utilization_loss(probs: torch.Tensor, config: SlimDemucsConfig, target: float) -> torch.Tensor:
    """Pulls the router's expected MAC share to that of a static model at UF `target`.

    `probs` is (batch, segments, len(widths)), the router softmax. The error of the expected cost share,
    averaged before squaring so that segments stay free to spend more or less, is rescaled by
    target / cost_share(target), i.e. the relative error of the cost times the target UF: a router that
    spends twice its budget is charged as the paper's (E[UF] - target)**2 charges one at twice its target.
    """
    target_cost = cost_share(config, target)
    expected = (probs * probs.new_tensor(width_costs(config))).sum(-1).mean()
    return ((expected - target_cost) * target / target_cost).pow(2)
