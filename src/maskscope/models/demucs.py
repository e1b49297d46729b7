"""Slimmable DEMUCS with an optional per-segment router (adaptive slimming, arXiv 2507.04879).

A waveform U-Net: `depth` encoder layers (strided Conv1d -> ReLU -> 1x1 conv to 2C -> GLU), a GRU bottleneck,
and a mirrored decoder (1x1 conv to 2C -> GLU -> ConvTranspose1d -> ReLU, no ReLU on the audio output) that
adds the encoder output of the same depth before each layer. Every layer can run at a utilization factor
UF by slicing its weights: it uses only the first `slim_channels(C, UF)` channels of each hidden layer, so
one set of weights holds every width (the audio input and output channel are never slimmed).

`forward(noisy, uf=0.25)` runs the whole network at one UF (static use, and slimmable training where the
caller samples UF per batch). A `dynamic` model called with `uf=None` lets a small router pick one width
per input segment with Gumbel-softmax (straight-through hard one-hot in training, argmax in eval). The
routed forward computes at the widest width and multiplies every hidden activation by a 0/1 channel mask
that follows each segment's choice at each layer's time resolution. That is the same function as a
streaming slimmed network in which a channel that is off holds zeros (in conv buffers and in the GRU
state): a run where every segment picks the same UF equals the static model at that UF exactly.

Where the paper is silent (all parameters of `SlimDemucsConfig`, written down in its docstring):
- The bottleneck is a unidirectional GRU (`gru_layers`, default 2) when causal; non-causal uses a
  bidirectional GRU and a Linear 2C -> C, as DEMUCS does with its BLSTM.
- A grouped GRU splits the C hidden channels into G interleaved groups (channel j belongs to group j mod G),
  each with its own GRU on its share of the input. Interleaving keeps a slimmed grouped GRU grouped: the
  first c channels spread over all groups, so its cost falls like c**2 / G instead of c**2.
- Resampling (x2, x4) is linear interpolation up and an r-sample mean down: cheap and adds under one
  sample of look-ahead; a sinc filter would be sharper but adds a long symmetric look-ahead.
- Causality: convolutions without padding look ahead inside their kernel, so the model has a fixed,
  exactly computed look-ahead (`lookahead_samples`, 595 samples = 37 ms for the defaults) and no
  dependence on later input. Input normalisation divides by the std of the whole input: a single scalar,
  the one utterance-level step; a streaming system would use a running estimate (`normalize=False` to
  exclude it).
- The router sees learned log-energies: a strided Conv1d filterbank (kernel = stride = `router_frame`),
  squared and mean-pooled over each segment, log, beside each one's rise above its minimum over the
  earlier segments (a causal noise-floor estimate: speech onsets are rises above the noise), then an MLP.
  By default it decides segment k from segments before k (the first sees silence), so routing adds no
  latency; `router_lookahead=True` lets it see segment k itself (one segment of extra latency, as in
  routing whole utterances).
- The router's budget is in MACs, not in UF: the utilization loss pulls the expected share of full-width
  MACs (`width_costs`) to the share of a static model at the target UF. MACs grow about as UF**2, so
  with an average-UF target a router meets the average with the narrowest and the full width: at
  target 1/4 (rest weight 1) it went bimodal at 507 MACs per sample, against 194 with the MAC budget
  and 224 for static UF 1/4 (issue 6's closing notes). A target below the narrowest width is out of
  reach: the router settles on the narrowest everywhere.
- `rest_usage_loss` adds the expected cost on segments whose clean crop is silent (`speech_segments`:
  no 256-sample block within the threshold of the crop's loudest). Without it the router meets the
  budget with one width everywhere and saves nothing; with it, it also spends a little below budget
  (206.6 MACs per sample at target 1/4, rest weight 0.5), as the two losses balance there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

_LOG_ENERGY_FLOOR = 1e-6  # keeps log finite for silent router segments


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
    router_frame: int = 256
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
