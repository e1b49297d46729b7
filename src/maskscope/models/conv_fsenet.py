"""Conv-FSENet, optionally with Dynamic Channel Pruning (DynCP) gates.

A fully convolutional mask estimator on |X|**0.3 of the noisy STFT: front-end 1x1 conv bins -> B, a
stack of residual blocks (1x1 B -> H, PReLU, depthwise dilated conv, PReLU, 1x1 H -> B), back-end 1x1
conv B -> bins with a sigmoid giving a real mask on the noisy complex spectrum.

With `gated=True` every block carries binary per-frame gates on its H intermediate channels, predicted
from the block input by a low-rank 1x1 predictor (B -> rank -> H, no temporal context, so causal).
Gates multiply the activations after both PReLUs, so a closed channel is exactly zero at the input and
output of the depthwise conv: a sparse streaming implementation that skips closed channels (and keeps
zeros in their conv state) computes the same function. Gates are trained with straight-through
surrogate gradients plus `gate_usage_loss` (L_DCP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.core import framing

GATE_BIAS_INIT = 2.0  # positive logit bias: training starts with gates mostly open
_MAGNITUDE_FLOOR = 1e-8  # keeps d/dx x**0.3 finite at silent bins


@dataclass(frozen=True)
class ConvFSENetConfig:
    """Architecture of a Conv-FSENet; defaults are the published B=128, H=256, 3x3 blocks."""

    bins: int = framing.N_BINS
    bottleneck: int = 128
    hidden: int = 256
    stacks: int = 3
    blocks_per_stack: int = 3
    kernel: int = 3
    causal: bool = True
    compression: float = 0.3
    gated: bool = False
    gate_rank: int = 16
    gate_estimator: Literal["ste", "gumbel"] = "ste"
    ste_slope: float = 1.0
    gumbel_temperature: float = 1.0

    def __post_init__(self) -> None:
        for name in ("bins", "bottleneck", "hidden", "stacks", "blocks_per_stack", "kernel", "gate_rank"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.compression <= 0:
            raise ValueError(f"compression must be > 0, got {self.compression}")
        if self.gate_estimator not in ("ste", "gumbel"):
            raise ValueError(f"gate_estimator must be 'ste' or 'gumbel', got {self.gate_estimator!r}")
        if self.ste_slope <= 0 or self.gumbel_temperature <= 0:
            raise ValueError("ste_slope and gumbel_temperature must be > 0")

    @property
    def n_blocks(self) -> int:
        return self.stacks * self.blocks_per_stack

    @property
    def dilations(self) -> tuple[int, ...]:
        """Dilation of every block in order: 1, 2, 4, ... restarting at each stack."""
        return tuple(2**i for _ in range(self.stacks) for i in range(self.blocks_per_stack))


@dataclass
class ModelOutput:
    """Enhanced complex spectrum, the real mask that made it, and the gates (None when ungated)."""

    spectrum: torch.Tensor  # complex (batch, bins, frames)
    mask: torch.Tensor  # real (batch, bins, frames), in [0, 1]
    gates: torch.Tensor | None  # (batch, n_blocks, H, frames), exactly 0/1 in the forward pass


def binary_gate(
    logits: torch.Tensor,
    *,
    training: bool,
    estimator: Literal["ste", "gumbel"] = "ste",
    slope: float = 1.0,
    temperature: float = 1.0,
) -> torch.Tensor:
    """0/1 gates `logits > 0`; in training the backward pass uses a sigmoid surrogate.

    "ste": gradient of sigmoid(slope * logits). "gumbel": logistic noise is added and the result divided
    by `temperature`; the gate is then the sign of that, with the gradient of its sigmoid.
    """
    if not training:
        return (logits > 0).to(logits.dtype)
    if estimator == "gumbel":
        u = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
        scaled = (logits + torch.log(u) - torch.log1p(-u)) / temperature
    else:
        scaled = slope * logits
    soft = torch.sigmoid(scaled)
    hard = (scaled > 0).to(logits.dtype)
    # x - x.detach() is exactly 0 in the forward pass, so the value stays exactly 0/1
    return hard + (soft - soft.detach())


class GatePredictor(nn.Module):
    """Per-frame gate logits from the block input: 1x1 B -> rank, ReLU, 1x1 rank -> H."""

    def __init__(self, bottleneck: int, rank: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv1d(bottleneck, rank, 1)
        self.expand = nn.Conv1d(rank, hidden, 1)
        nn.init.constant_(self.expand.bias, GATE_BIAS_INIT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(F.relu(self.reduce(x)))


class ConvBlock(nn.Module):
    """Residual block: 1x1 B -> H, PReLU, x gate, depthwise dilated conv, PReLU, x gate, 1x1 H -> B."""

    def __init__(self, config: ConvFSENetConfig, dilation: int) -> None:
        super().__init__()
        b, h = config.bottleneck, config.hidden
        self.dilation = dilation
        self.causal = config.causal
        self.config = config
        self.expand = nn.Conv1d(b, h, 1)
        self.act1 = nn.PReLU(h)
        self.depthwise = nn.Conv1d(h, h, config.kernel, dilation=dilation, groups=h)
        self.act2 = nn.PReLU(h)
        self.project = nn.Conv1d(h, b, 1)
        self.gate_predictor: nn.Module | None = GatePredictor(b, config.gate_rank, h) if config.gated else None

    @property
    def padding(self) -> tuple[int, int]:
        """(left, right) time padding of the depthwise conv."""
        total = (self.config.kernel - 1) * self.dilation
        if self.causal:
            return total, 0
        return total // 2, total - total // 2

    def gates(self, x: torch.Tensor) -> torch.Tensor | None:
        """(batch, H, frames) 0/1 gates for block input `x`, or None when ungated."""
        if self.gate_predictor is None:
            return None
        c = self.config
        return binary_gate(
            self.gate_predictor(x),
            training=self.training,
            estimator=c.gate_estimator,
            slope=c.ste_slope,
            temperature=c.gumbel_temperature,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        gate = self.gates(x)
        y = self.act1(self.expand(x))
        if gate is not None:
            y = y * gate
        y = self.act2(self.depthwise(F.pad(y, self.padding)))
        if gate is not None:
            y = y * gate
        return x + self.project(y), gate


class ConvFSENet(nn.Module):
    """Mask-based SE network on the noisy complex STFT (see module docstring)."""

    def __init__(self, config: ConvFSENetConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = nn.Conv1d(config.bins, config.bottleneck, 1)
        self.blocks = nn.ModuleList(ConvBlock(config, d) for d in config.dilations)
        self.backend = nn.Conv1d(config.bottleneck, config.bins, 1)

    def features(self, noisy: torch.Tensor) -> torch.Tensor:
        """Compressed magnitudes |X|**compression, (batch, bins, frames)."""
        return noisy.abs().clamp_min(_MAGNITUDE_FLOOR).pow(self.config.compression)

    def forward(self, noisy: torch.Tensor) -> ModelOutput:
        if noisy.dim() != 3 or noisy.shape[1] != self.config.bins or not noisy.is_complex():
            raise ValueError(f"expected complex (batch, {self.config.bins}, frames), got {tuple(noisy.shape)}")
        x = self.frontend(self.features(noisy))
        gates = []
        for block in self.blocks:
            x, gate = block(x)
            if gate is not None:
                gates.append(gate)
        mask = torch.sigmoid(self.backend(x))
        return ModelOutput(spectrum=mask * noisy, mask=mask, gates=torch.stack(gates, dim=1) if gates else None)

    def enhance_waveform(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> enhanced (batch, samples) through framing.stft / istft."""
        output = self(framing.stft(audio))
        return framing.istft(output.spectrum, length=audio.shape[-1])


def gate_usage(gates: torch.Tensor) -> torch.Tensor:
    """(n_blocks,) fraction of open gates per block, over batch, channels and frames."""
    return gates.mean(dim=(0, 2, 3))


def gate_usage_loss(gates: torch.Tensor, target: float) -> torch.Tensor:
    """L_DCP: mean over blocks of (block usage - target)**2."""
    return (gate_usage(gates) - target).pow(2).mean()


@dataclass(frozen=True)
class MacCount:
    """Multiply-accumulates per STFT frame; `gates` is the gate predictors' cost."""

    frontend: int | float
    backend: int | float
    blocks: int | float
    gates: int | float
    total: int | float

    @property
    def mmac_per_second(self) -> float:
        return self.total * framing.FRAMES_PER_SECOND / 1e6


def _block_macs(config: ConvFSENetConfig) -> int:
    b, h = config.bottleneck, config.hidden
    return b * h + config.kernel * h + h * b


def macs_per_frame(config: ConvFSENetConfig, usage: float | Sequence[float] | None = None) -> MacCount:
    """MACs per frame; block cost scales with each block's open-channel fraction `usage`.

    Biases, activations and the mask multiply are not counted; gate predictors are (full cost, every frame).
    """
    n = config.n_blocks
    if usage is None:
        usages: Sequence[float] = [1] * n
    elif isinstance(usage, int | float):
        usages = [usage] * n
    else:
        usages = list(usage)
        if len(usages) != n:
            raise ValueError(f"usage has {len(usages)} entries, the model has {n} blocks")
    frontend = config.bins * config.bottleneck
    backend = config.bottleneck * config.bins
    blocks = sum(_block_macs(config) * u for u in usages)
    gates = n * (config.bottleneck * config.gate_rank + config.gate_rank * config.hidden) if config.gated else 0
    return MacCount(frontend, backend, blocks, gates, frontend + backend + blocks + gates)


def static_hidden_for_budget(config: ConvFSENetConfig, macs: float) -> int:
    """Largest H of an ungated model (otherwise like `config`) whose MACs per frame fit `macs`."""
    dense = replace(config, gated=False)
    fixed = macs_per_frame(replace(dense, hidden=1)).total - config.n_blocks * _block_macs(replace(dense, hidden=1))
    per_channel = config.n_blocks * (2 * config.bottleneck + config.kernel)
    hidden = max(math.floor((macs - fixed) / per_channel), 0)
    # guard against float rounding at the boundary
    while hidden >= 1 and macs_per_frame(replace(dense, hidden=hidden)).total > macs:
        hidden -= 1
    while macs_per_frame(replace(dense, hidden=hidden + 1)).total <= macs:
        hidden += 1
    if hidden < 1:
        raise ValueError(f"no ungated model fits {macs} MACs per frame (minimum {fixed + per_channel})")
    return hidden


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters."""
    return sum(p.numel() for p in model.parameters())


def initialise_from_dense(model: ConvFSENet, dense: ConvFSENet) -> None:
    """Start a pruned variant from a trained dense model's weights, in place.

    A gated model takes every weight (its gate predictors keep their fresh initialisation, gates
    mostly open). A model with a smaller H takes, per block, the H channels that carry the most
    weight (L1 norm of their rows of the first 1x1 plus their columns of the second): classic
    magnitude pruning, then fine-tuning."""
    mine, theirs = model.config, dense.config
    shape = ("bins", "bottleneck", "stacks", "blocks_per_stack", "kernel", "causal", "compression")
    if dense.config.gated or any(getattr(mine, key) != getattr(theirs, key) for key in shape):
        raise ValueError("initialise_from_dense needs an ungated model of the same architecture apart from H")
    if mine.hidden > theirs.hidden:
        raise ValueError(f"cannot prune H={theirs.hidden} up to H={mine.hidden}")
    with torch.no_grad():
        model.frontend.load_state_dict(dense.frontend.state_dict())
        model.backend.load_state_dict(dense.backend.state_dict())
        for block, source in zip(model.blocks, dense.blocks, strict=True):
            weight = source.expand.weight.abs().sum(dim=(1, 2)) + source.project.weight.abs().sum(dim=(0, 2))
            keep = torch.sort(torch.topk(weight, mine.hidden).indices).values
            block.expand.weight.copy_(source.expand.weight[keep])
            block.expand.bias.copy_(source.expand.bias[keep])
            block.act1.weight.copy_(source.act1.weight[keep])
            block.depthwise.weight.copy_(source.depthwise.weight[keep])
            block.depthwise.bias.copy_(source.depthwise.bias[keep])
            block.act2.weight.copy_(source.act2.weight[keep])
            block.project.weight.copy_(source.project.weight[:, keep])
            block.project.bias.copy_(source.project.bias)
