"""The slimmable DEMUCS's architecture (`SlimDemucsConfig`), its widths, lengths and exact look-ahead."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from maskscope.core.constants import ROUTER_FRAME


@dataclass(frozen=True)
class SlimDemucsConfig:
    """Architecture of a slimmable DEMUCS; defaults are CPU-sized (hidden 32, depth 4, no resampling).

    Channels: layer i (1-based) has min(hidden * growth**(i-1), max_hidden) channels. `segment`,
    `router_frame` and every length are in samples of the model's input rate (16 kHz in this project).
    `gru_groups` is used only when `gru == "grouped"`.
    """

    hidden: int = 32
    depth: int = 4
    kernel: int = 8
    stride: int = 4
    resample: int = 1
    growth: float = 2.0
    max_hidden: int = 10_000
    causal: bool = True
    gru: Literal["plain", "grouped"] = "plain"
    gru_groups: int = 2
    gru_layers: int = 2
    normalize: bool = True
    normalize_floor: float = 1e-3
    widths: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    dynamic: bool = False
    segment: int = 1024
    router_frame: int = ROUTER_FRAME
    router_features: int = 16
    router_hidden: int = 32
    gumbel_temperature: float = 1.0
    router_lookahead: bool = False

    def __post_init__(self) -> None:
        for name in (
            "hidden",
            "depth",
            "kernel",
            "stride",
            "max_hidden",
            "gru_groups",
            "gru_layers",
            "segment",
            "router_frame",
            "router_features",
            "router_hidden",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kernel < self.stride:
            raise ValueError(f"kernel must be >= stride ({self.stride}), got {self.kernel}")
        if self.resample not in (1, 2, 4):
            raise ValueError(f"resample must be 1, 2 or 4, got {self.resample}")
        if self.growth < 1:
            raise ValueError(f"growth must be >= 1, got {self.growth}")
        if self.gru not in ("plain", "grouped"):
            raise ValueError(f"gru must be 'plain' or 'grouped', got {self.gru!r}")
        if self.gru == "grouped" and self.channels[-1] % self.gru_groups:
            raise ValueError(f"gru_groups ({self.gru_groups}) must divide the bottleneck width ({self.channels[-1]})")
        if self.normalize_floor <= 0:
            raise ValueError(f"normalize_floor must be > 0, got {self.normalize_floor}")
        widths = tuple(self.widths)
        if not widths or any(not 0 < w <= 1 for w in widths) or list(widths) != sorted(set(widths)):
            raise ValueError(f"widths must be strictly increasing values in (0, 1], got {self.widths}")
        if self.segment % self.router_frame:
            raise ValueError(f"segment ({self.segment}) must be a multiple of router_frame ({self.router_frame})")
        if self.gumbel_temperature <= 0:
            raise ValueError(f"gumbel_temperature must be > 0, got {self.gumbel_temperature}")

    @property
    def channels(self) -> tuple[int, ...]:
        """Full channel count of each depth, encoder layer 1 first (the bottleneck width last)."""
        out, c = [], self.hidden
        for _ in range(self.depth):
            out.append(c)
            c = min(int(c * self.growth), self.max_hidden)
        return tuple(out)

    @property
    def groups(self) -> int:
        """Number of GRU groups (1 for a plain GRU)."""
        return self.gru_groups if self.gru == "grouped" else 1


@dataclass
class SlimOutput:
    """Enhanced audio and, for a routed run, each segment's width index and the router's probabilities."""

    audio: torch.Tensor  # (batch, samples)
    choices: torch.Tensor | None  # (batch, segments) int64 indices into config.widths
    probs: torch.Tensor | None  # (batch, segments, len(widths)), softmax of the router logits


def slim_channels(full: int, uf: float) -> int:
    """Channels used at utilization `uf`: ceil(uf * full), at least 1 and at most `full`."""
    if not 0 < uf <= 1:
        raise ValueError(f"uf must be in (0, 1], got {uf}")
    # rounding first stops float noise (0.1 * 30 = 3.0000000000000004) from adding a channel
    return min(full, max(1, math.ceil(round(uf * full, 6))))


def network_length(config: SlimDemucsConfig, length: int) -> int:
    """Smallest resampled length >= `length` * resample that every strided conv consumes exactly.

    The forward pass upsamples, zero-pads to this length, and crops the decoder output back, so any input
    length works; padding at the resampled rate avoids lengths that no input-rate length can reach.
    """
    n = max(length, 1) * config.resample
    for _ in range(config.depth):
        n = max(math.ceil((n - config.kernel) / config.stride), 0) + 1
    for _ in range(config.depth):
        n = (n - 1) * config.stride + config.kernel
    return n


def lookahead_samples(config: SlimDemucsConfig) -> int:
    """Exact look-ahead of a causal model, in input samples: output n depends on no input after n + this.

    At the resampled rate, decoder level i-1 sample m depends on level-i frames up to floor(m / stride), whose
    encoder inputs reach kernel - 1 samples past their start; unrolled over the depth (the GRU being causal),
    sample m depends on resampled input up to P * floor(m / P) + (kernel - 1) * (1 + stride + ... +
    stride**(depth-1)), P = stride**depth. Output n is the mean of resampled samples r*n .. r*n + r - 1, and
    resampled sample h interpolates inputs floor(h / r) and ceil(h / r). The pattern repeats every P outputs.
    The router (by default) and the std normalisation are excluded: the first only looks back, the second is
    one utterance-level scalar.
    """
    if not config.causal:
        raise ValueError("a non-causal model (bidirectional GRU) has no bounded look-ahead")
    period = config.stride**config.depth
    reach = (config.kernel - 1) * sum(config.stride**i for i in range(config.depth))
    r = config.resample
    return max(math.ceil((period * ((r * n + r - 1) // period) + reach) / r) - n for n in range(period))
