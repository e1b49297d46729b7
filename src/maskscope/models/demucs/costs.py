"""MACs of the slimmable DEMUCS: backbone per width, router, routed runs, per-width channel masks."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from maskscope.models.demucs.config import SlimDemucsConfig, slim_channels


def _gru_macs(config: SlimDemucsConfig, c: int) -> int:
    """Matrix MACs of the bottleneck per frame at c active channels (gate element-wise products excluded)."""
    g = config.groups
    dirs = 1 if config.causal else 2
    total = 0
    for layer in range(config.gru_layers):
        blocks = 1 if layer == 0 else dirs
        for group in range(g):
            n = len(range(group, c, g))
            total += dirs * (3 * n * blocks * n + 3 * n * n)
    if not config.causal:
        total += 2 * c * c  # Linear 2c -> c
    return total


def macs_per_sample(config: SlimDemucsConfig, uf: float = 1.0) -> float:
    """MACs per input sample of the backbone at a static `uf`.

    Counted: encoder convs and GLU 1x1s, decoder GLU 1x1s and transposed convs, GRU input and recurrent
    matrices, the non-causal Linear. Not counted: biases, nonlinearities, GLU and GRU element-wise products,
    resampling, normalisation and the router (`router_macs_per_sample`).
    """
    chans = [1] + [slim_channels(full, uf) for full in config.channels]
    total = 0.0
    for i in range(1, config.depth + 1):
        per_frame = chans[i - 1] * chans[i] * config.kernel + 2 * chans[i] * chans[i]
        # encoder and decoder layer i cost the same per level-i frame; resample * stride**-i frames per sample
        total += 2 * per_frame * config.resample / config.stride**i
    total += _gru_macs(config, chans[-1]) * config.resample / config.stride**config.depth
    return total


def cost_share(config: SlimDemucsConfig, uf: float) -> float:
    """Backbone MACs per sample at `uf` as a share of full width's."""
    return macs_per_sample(config, uf) / macs_per_sample(config, 1.0)


def width_costs(config: SlimDemucsConfig) -> tuple[float, ...]:
    """`cost_share` of each of the config's widths: the router's unit of cost."""
    return tuple(cost_share(config, uf) for uf in config.widths)


def router_macs_per_sample(config: SlimDemucsConfig) -> float:
    """MACs per input sample of the router: the filterbank (features per sample) plus its MLP once per segment."""
    mlp = 2 * config.router_features * config.router_hidden + config.router_hidden * len(config.widths)
    return config.router_features + mlp / config.segment


def routed_macs_per_sample(config: SlimDemucsConfig, share: Sequence[float]) -> float:
    """MACs per sample of a routed run whose widths cover `share` of the input samples (summing to 1),
    router included."""
    if len(share) != len(config.widths):
        raise ValueError(f"expected one share per width ({len(config.widths)}), got {len(share)}")
    backbone = sum(part * macs_per_sample(config, uf) for part, uf in zip(share, config.widths, strict=True))
    return backbone + router_macs_per_sample(config)


def width_channel_masks(config: SlimDemucsConfig) -> torch.Tensor:
    """(widths, depth, widest layer's channels) 0/1: at width k, layer b keeps its first
    slim_channels(C_b, UF_k) channels (the channels a narrower layer lacks are 0)."""
    masks = torch.zeros(len(config.widths), config.depth, max(config.channels))
    for k, uf in enumerate(config.widths):
        for block, full in enumerate(config.channels):
            masks[k, block, : slim_channels(full, uf)] = 1
    return masks
