"""Layers that run at a utilization factor UF by slicing their weights to the first channels."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from maskscope.models.demucs.config import slim_channels


def _block_prefix(per_block: int, active: int, blocks: int) -> slice | torch.Tensor:
    """Index of the first `active` channels of each of `blocks` consecutive blocks of `per_block`."""
    if blocks == 1:
        return slice(0, active)
    return torch.cat([torch.arange(b * per_block, b * per_block + active) for b in range(blocks)])


def _check_channels(x: torch.Tensor, expected: int, dim: int) -> None:
    if x.shape[dim] != expected:
        raise ValueError(f"expected {expected} input channels at this UF, got {x.shape[dim]}")


class SlimConv1d(nn.Conv1d):
    """Conv1d that at UF uses only its first input and output channels (per output block, for a GLU).

    `out_blocks=2` treats the outputs as two halves (GLU value and gate) and keeps the first c of each.
    `slim_in=False` / `slim_out=False` pin a side at full width (the audio channel).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        out_blocks: int = 1,
        slim_in: bool = True,
        slim_out: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride)
        self.out_blocks = out_blocks
        self.slim_in = slim_in
        self.slim_out = slim_out

    def forward(self, x: torch.Tensor, uf: float = 1.0) -> torch.Tensor:
        cin = slim_channels(self.in_channels, uf) if self.slim_in else self.in_channels
        per = self.out_channels // self.out_blocks
        rows = _block_prefix(per, slim_channels(per, uf) if self.slim_out else per, self.out_blocks)
        _check_channels(x, cin, 1)
        return F.conv1d(x, self.weight[rows, :cin], self.bias[rows], self.stride)


class SlimConvTranspose1d(nn.ConvTranspose1d):
    """ConvTranspose1d that at UF uses only its first input and output channels."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, *, slim_out: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride)
        self.slim_out = slim_out

    def forward(self, x: torch.Tensor, uf: float = 1.0) -> torch.Tensor:  # type: ignore[override]
        cin = slim_channels(self.in_channels, uf)
        cout = slim_channels(self.out_channels, uf) if self.slim_out else self.out_channels
        _check_channels(x, cin, 1)
        return F.conv_transpose1d(x, self.weight[:cin, :cout], self.bias[:cout], self.stride)


class SlimLinear(nn.Linear):
    """Linear (on the last dim) using its first outputs and the first inputs of each of `in_blocks` halves."""

    def __init__(self, in_per_block: int, out_features: int, *, in_blocks: int = 1) -> None:
        super().__init__(in_per_block * in_blocks, out_features)
        self.in_per_block = in_per_block
        self.in_blocks = in_blocks

    def forward(self, x: torch.Tensor, uf: float = 1.0) -> torch.Tensor:
        cin = slim_channels(self.in_per_block, uf)
        cout = slim_channels(self.out_features, uf)
        _check_channels(x, cin * self.in_blocks, -1)
        cols = _block_prefix(self.in_per_block, cin, self.in_blocks)
        return F.linear(x, self.weight[:cout][:, cols], self.bias[:cout])


class SlimGRU(nn.Module):
    """One GRU layer, one direction, sliceable to its first c hidden channels; optionally grouped.

    Hidden channel j belongs to group j % groups (interleaved, see module docstring); each group has its own
    input and recurrent weights over its share of the input channels. `in_blocks=2` takes an input made of
    two C-wide halves (forward and backward outputs of a bidirectional layer below). With `mask`
    (batch, time, c) the state is multiplied by the mask after every step, so a channel that is off stays
    at zero and restarts from zero when switched on.
    """

    def __init__(self, hidden: int, *, groups: int = 1, in_blocks: int = 1) -> None:
        super().__init__()
        if hidden % groups:
            raise ValueError(f"groups ({groups}) must divide hidden ({hidden})")
        self.hidden = hidden
        self.groups = groups
        self.in_blocks = in_blocks
        hg = hidden // groups
        # gate rows in the order reset, update, candidate; each block hg rows
        self.weight_ih = nn.Parameter(torch.empty(groups, 3 * hg, in_blocks * hg))
        self.weight_hh = nn.Parameter(torch.empty(groups, 3 * hg, hg))
        self.bias_ih = nn.Parameter(torch.empty(groups, 3 * hg))
        self.bias_hh = nn.Parameter(torch.empty(groups, 3 * hg))
        bound = 1.0 / math.sqrt(hg)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, x: torch.Tensor, uf: float = 1.0, mask: torch.Tensor | None = None, reverse: bool = False
    ) -> torch.Tensor:
        """(batch, time, in_blocks * c) -> (batch, time, c), c = slim_channels(hidden, uf)."""
        c = slim_channels(self.hidden, uf)
        _check_channels(x, self.in_blocks * c, -1)
        g_count, hg = self.groups, self.hidden // self.groups
        widest = math.ceil(c / g_count)
        outs = []
        for g in range(g_count):
            n = len(range(g, c, g_count))  # this group's active channels
            if n == 0:
                outs.append(x.new_zeros(*x.shape[:2], widest))
                continue
            xg = torch.cat([x[..., b * c + g : (b + 1) * c : g_count] for b in range(self.in_blocks)], dim=-1)
            rows = _block_prefix(hg, n, 3)
            w_ih = self.weight_ih[g][rows][:, _block_prefix(hg, n, self.in_blocks)]
            gi = F.linear(xg, w_ih, self.bias_ih[g][rows])  # input side for every step at once
            mg = None if mask is None else mask[..., g:c:g_count]
            h = self._recur(gi, self.weight_hh[g][rows][:, :n], self.bias_hh[g][rows], mg, reverse)
            outs.append(F.pad(h, (0, widest - n)))
        # stacking on a last axis and flattening puts group g's p-th channel at p * groups + g
        return torch.stack(outs, dim=-1).flatten(-2)[..., :c]

    @staticmethod
    def _recur(
        gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, mask: torch.Tensor | None, reverse: bool
    ) -> torch.Tensor:
        batch, steps, n = gi.shape[0], gi.shape[1], w_hh.shape[1]
        h = gi.new_zeros(batch, n)
        out = []
        for t in range(steps - 1, -1, -1) if reverse else range(steps):
            i_r, i_z, i_n = gi[:, t].chunk(3, dim=-1)
            h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            h = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
            if mask is not None:
                h = h * mask[:, t]
            out.append(h)
        if reverse:
            out.reverse()
        return torch.stack(out, dim=1)


class SlimGRUStack(nn.Module):
    """The bottleneck: `layers` GRU layers; bidirectional plus a Linear 2C -> C when not causal."""

    def __init__(self, hidden: int, layers: int, groups: int, bidirectional: bool) -> None:
        super().__init__()
        blocks = 2 if bidirectional else 1
        self.forward_layers = nn.ModuleList(
            SlimGRU(hidden, groups=groups, in_blocks=1 if i == 0 else blocks) for i in range(layers)
        )
        self.backward_layers = (
            nn.ModuleList(SlimGRU(hidden, groups=groups, in_blocks=1 if i == 0 else 2) for i in range(layers))
            if bidirectional
            else None
        )
        self.project = SlimLinear(hidden, hidden, in_blocks=2) if bidirectional else None

    def forward(self, x: torch.Tensor, uf: float = 1.0, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time, c) -> (batch, time, c)."""
        for i, layer in enumerate(self.forward_layers):
            y = layer(x, uf, mask)
            if self.backward_layers is not None:
                y = torch.cat([y, self.backward_layers[i](x, uf, mask, reverse=True)], dim=-1)
            x = y
        if self.project is not None:
            x = self.project(x, uf)
            if mask is not None:
                x = x * mask
        return x


class EncoderLayer(nn.Module):
    """Conv1d(kernel, stride) -> ReLU -> 1x1 conv to 2C -> GLU, each output masked when routed."""

    def __init__(self, chin: int, chout: int, kernel: int, stride: int, *, first: bool) -> None:
        super().__init__()
        self.conv = SlimConv1d(chin, chout, kernel, stride, slim_in=not first)
        self.glu_conv = SlimConv1d(chout, 2 * chout, 1, out_blocks=2)

    def forward(self, x: torch.Tensor, uf: float, mask: torch.Tensor | None) -> torch.Tensor:
        x = F.relu(self.conv(x, uf))
        if mask is not None:
            x = x * mask
        x = F.glu(self.glu_conv(x, uf), dim=1)
        return x if mask is None else x * mask


class DecoderLayer(nn.Module):
    """1x1 conv to 2C -> GLU -> ConvTranspose1d(kernel, stride) -> ReLU (not on the audio output)."""

    def __init__(self, chin: int, chout: int, kernel: int, stride: int, *, last: bool) -> None:
        super().__init__()
        self.last = last
        self.glu_conv = SlimConv1d(chin, 2 * chin, 1, out_blocks=2)
        self.conv = SlimConvTranspose1d(chin, chout, kernel, stride, slim_out=not last)

    def forward(
        self, x: torch.Tensor, uf: float, mask_in: torch.Tensor | None, mask_out: torch.Tensor | None
    ) -> torch.Tensor:
        x = F.glu(self.glu_conv(x, uf), dim=1)
        if mask_in is not None:
            x = x * mask_in
        x = self.conv(x, uf)
        if self.last:
            return x
        x = F.relu(x)
        return x if mask_out is None else x * mask_out
