"""nsNet2 with early exits (Dynamic nsNet2), reconstructed from its published description.

The backbone is nsNet2's: FC(F -> input width) -> GRU -> ... -> GRU -> FC+ReLU -> ... -> FC(-> F) +
sigmoid, a real mask on the noisy STFT, floored at `mask_floor_db` as the DNS baseline's inference
limits its suppression gain. Its input is the log power spectrum, normalised per bin by a causal
running mean and variance (exponential, time constant `norm_seconds`), so a frame never sees the future.

Exits are named after the layer whose output they read: `gru1`..`gruN`, `dec1`..`decM`, and `final`
(the backbone's own output layer). The last exit of `exits` ends the network: a config whose exits end
before `final` is the static nsNet2 truncated at that depth. Three topologies decide what an
intermediate exit computes (the papers' split-layer topologies are reconstructions; see docs/papers.md):
- `plain`: one FC(-> F)+sigmoid head reads the backbone's state at the exit;
- `split_decoder`: the exit has its own copy of the backbone's decoder (the FC+ReLU layers, then the
  output FC), fed by the backbone's state there;
- `split_gru`: the layer before the exit is duplicated, one copy continuing the backbone and one feeding
  the exit's head, so the exit has features of its own.

Every layer is causal (GRUs run forward in time), so whole-file and frame-by-frame processing agree
when the state (`NsNet2State`) is carried from call to call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from maskscope.core import framing

Topology = Literal["plain", "split_decoder", "split_gru"]
TOPOLOGIES: tuple[str, ...] = ("plain", "split_decoder", "split_gru")
_POWER_FLOOR = 1e-10  # log of a silent bin stays finite
_VARIANCE_FLOOR = 1e-4


@dataclass(frozen=True)
class NsNet2Config:
    """Architecture; the defaults are the published full-size nsNet2 (400-wide GRUs, 600-wide decoder)."""

    bins: int = framing.N_BINS
    input_width: int = 400
    gru_width: int = 400
    gru_layers: int = 2
    decoder_widths: tuple[int, ...] = (600, 600)
    exits: tuple[str, ...] = ("gru1", "gru2", "final")
    topology: Topology = "plain"
    mask_floor_db: float = -80.0
    norm_seconds: float = 1.0  # time constant of the running feature normalisation

    def __post_init__(self) -> None:
        for name in ("bins", "input_width", "gru_width", "gru_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(width < 1 for width in self.decoder_widths):
            raise ValueError(f"decoder_widths must all be >= 1, got {self.decoder_widths}")
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"topology must be one of {', '.join(TOPOLOGIES)}, got {self.topology!r}")
        if not self.exits:
            raise ValueError("exits must name at least one layer")
        unknown = [name for name in self.exits if name not in self.layers]
        if unknown:
            raise ValueError(f"exits {unknown} are not layers of this network ({', '.join(self.layers)})")
        positions = [self.layers.index(name) for name in self.exits]
        if positions != sorted(set(positions)):
            raise ValueError(f"exits must be distinct and in network order, got {self.exits}")
        if self.norm_seconds <= 0:
            raise ValueError(f"norm_seconds must be > 0, got {self.norm_seconds}")

    @property
    def layers(self) -> tuple[str, ...]:
        """The backbone's layers an exit may follow, in order; `final` is its output layer."""
        grus = tuple(f"gru{i + 1}" for i in range(self.gru_layers))
        decoders = tuple(f"dec{i + 1}" for i in range(len(self.decoder_widths)))
        return (*grus, *decoders, "final")

    @property
    def depth(self) -> int:
        """Backbone layers built: up to the last exit (the input FC not counted)."""
        return self.layers.index(self.exits[-1]) + 1

    def width(self, layer: str) -> int:
        """Output width of a backbone layer."""
        if layer.startswith("gru"):
            return self.gru_width
        if layer.startswith("dec"):
            return self.decoder_widths[int(layer[3:]) - 1]
        return self.bins

    def input_of(self, layer: str) -> int:
        index = self.layers.index(layer)
        return self.input_width if index == 0 else self.width(self.layers[index - 1])

    @property
    def norm_decay(self) -> float:
        return math.exp(-1.0 / (self.norm_seconds * framing.FRAMES_PER_SECOND))


@dataclass
class NsNet2State:
    """What carries over between calls: the running normalisation and every GRU's hidden state."""

    mean: torch.Tensor | None = None  # (batch, bins)
    variance: torch.Tensor | None = None
    hidden: dict[str, torch.Tensor] = field(default_factory=dict)  # GRU name -> (1, batch, width)


@dataclass
class EarlyExitOutput:
    """The exit policy's result: the enhanced spectrum, its mask, and the exit each frame left at."""

    spectrum: torch.Tensor  # complex (1, bins, frames)
    mask: torch.Tensor  # real (1, bins, frames)
    exits: torch.Tensor  # (frames,) index into config.exits


@dataclass
class NsNet2Output:
    """Per exit, in `config.exits` order: the enhanced complex spectrum and the floored mask."""

    spectra: list[torch.Tensor]  # complex (batch, bins, frames)
    masks: list[torch.Tensor]  # real (batch, bins, frames)


def _layer(config: NsNet2Config, name: str, inputs: int | None = None) -> nn.Module:
    inputs = config.input_of(name) if inputs is None else inputs
    if name.startswith("gru"):
        return nn.GRU(inputs, config.gru_width, batch_first=True)
    if name.startswith("dec"):
        return nn.Sequential(nn.Linear(inputs, config.width(name)), nn.ReLU())
    return nn.Linear(inputs, config.bins)


class NsNet2(nn.Module):
    def __init__(self, config: NsNet2Config) -> None:
        super().__init__()
        self.config = config
        self.input = nn.Linear(config.bins, config.input_width)
        built = config.layers[: config.depth]
        self.backbone = nn.ModuleDict({name: _layer(config, name) for name in built})
        self.heads = nn.ModuleDict()  # per intermediate exit: the layers only it uses
        for name in config.exits[:-1] if config.exits[-1] == "final" else config.exits:
            self.heads[name] = self._head(name)

    def _head(self, exit_name: str) -> nn.Module:
        config = self.config
        if config.topology == "split_decoder":
            later = [name for name in config.layers[config.layers.index(exit_name) + 1 :] if not name.startswith("gru")]
            layers, inputs = {}, config.width(exit_name)
            for name in later:
                layers[name] = _layer(config, name, inputs)
                inputs = config.width(name)
            return nn.ModuleDict(layers)
        layers = {}
        if config.topology == "split_gru":
            layers["split"] = _layer(config, exit_name)  # a copy of the exit's layer, fed what it is fed
        layers["final"] = nn.Linear(config.width(exit_name), config.bins)
        return nn.ModuleDict(layers)

    def stage_parameters(self, stage: int) -> list[nn.Parameter]:
        """The parameters layer-wise training trains in `stage` (0-based): the backbone layers after
        the previous exit up to exit `stage`'s, and that exit's head (the input FC belongs to stage 0)."""
        config = self.config
        first = 0 if stage == 0 else config.layers.index(config.exits[stage - 1]) + 1
        last = config.layers.index(config.exits[stage])
        if config.topology == "split_gru":
            # a split exit reads its own copy of its layer: the backbone's copy first serves the next stage
            first -= 0 if stage == 0 else int(self._split(config.exits[stage - 1]))
            last -= int(self._split(config.exits[stage]))
        modules: list[nn.Module] = [self.input] if stage == 0 else []
        modules += [self.backbone[name] for name in config.layers[first : last + 1]]
        if config.exits[stage] in self.heads:
            modules.append(self.heads[config.exits[stage]])
        return [parameter for module in modules for parameter in module.parameters()]

    def _split(self, exit_name: str) -> bool:
        """Whether the exit reads its own copy of its layer (topology split_gru) rather than the backbone's."""
        return exit_name in self.heads and "split" in self.heads[exit_name]

    def features(self, noisy: torch.Tensor, state: NsNet2State) -> torch.Tensor:
        """(batch, frames, bins) log power, normalised by each bin's running mean and variance so far."""
        log_power = noisy.abs().pow(2).clamp_min(_POWER_FLOOR).log10().transpose(1, 2)
        decay = self.config.norm_decay
        mean = log_power[:, 0] if state.mean is None else state.mean
        variance = torch.ones_like(mean) if state.variance is None else state.variance
        normalised = []
        for frame in log_power.unbind(dim=1):
            mean = decay * mean + (1.0 - decay) * frame
            variance = decay * variance + (1.0 - decay) * (frame - mean).pow(2)
            normalised.append((frame - mean) / variance.clamp_min(_VARIANCE_FLOOR).sqrt())
        state.mean, state.variance = mean, variance
        return torch.stack(normalised, dim=1)

    def _run(self, name: str, module: nn.Module, x: torch.Tensor, state: NsNet2State) -> torch.Tensor:
        if isinstance(module, nn.GRU):
            out, state.hidden[name] = module(x, state.hidden.get(name))
            return out
        return module(x)

    def forward(
        self, noisy: torch.Tensor, state: NsNet2State | None = None, exits: int | None = None
    ) -> tuple[NsNet2Output, NsNet2State]:
        """Complex (batch, bins, frames) -> the first `exits` exits' outputs (all by default) and the
        state to pass to the next call on the same signals (a fresh state when None)."""
        config = self.config
        if noisy.dim() != 3 or noisy.shape[1] != config.bins or not noisy.is_complex():
            raise ValueError(f"expected complex (batch, {config.bins}, frames), got {tuple(noisy.shape)}")
        if exits is not None and not 1 <= exits <= len(config.exits):
            raise ValueError(f"exits must be between 1 and {len(config.exits)}, got {exits}")
        wanted = config.exits[: len(config.exits) if exits is None else exits]
        state = NsNet2State() if state is None else state
        x = self.input(self.features(noisy, state))
        masks = []
        for name in config.layers[: config.layers.index(wanted[-1]) + 1]:
            previous = x
            # the deepest exit asked for, if split, needs only its own copy of its layer: the backbone's
            # copy (and its state) waits for a call that goes deeper
            if not (name == wanted[-1] and self._split(name)):
                x = self._run(name, self.backbone[name], x, state)
            if name not in wanted:
                continue
            masks.append(self._exit_mask(name, previous, x, state).transpose(1, 2))
        return NsNet2Output([mask * noisy for mask in masks], masks), state

    def early_exit(self, noisy: torch.Tensor, threshold: float) -> EarlyExitOutput:
        """The causal exit policy on one signal, frame by frame: leave at the first exit after the
        first whose mask differs from the previous exit's by less than `threshold` (mean absolute
        difference over bins), else at the last. Layers past the exit a frame leaves at are not run
        for it, so their state holds until a frame goes deeper: the cost `exit_macs` counts."""
        config = self.config
        if noisy.dim() != 3 or noisy.shape[0] != 1 or noisy.shape[1] != config.bins or not noisy.is_complex():
            raise ValueError(f"expected complex (1, {config.bins}, frames), got {tuple(noisy.shape)}")
        state = NsNet2State()
        inputs = self.input(self.features(noisy, state))
        masks, taken = [], []
        for frame in range(inputs.shape[1]):
            x, earlier = inputs[:, frame : frame + 1], None
            for name in config.layers[: config.layers.index(config.exits[-1]) + 1]:
                previous, split = x, self._split(name)
                if not split:
                    x = self._run(name, self.backbone[name], x, state)
                if name in config.exits:
                    mask = self._exit_mask(name, previous, x, state)
                    index = config.exits.index(name)
                    settled = earlier is not None and float((mask - earlier).abs().mean()) < threshold
                    if settled or index == len(config.exits) - 1:
                        masks.append(mask)
                        taken.append(index)
                        break
                    earlier = mask
                if split:  # going deeper: now the backbone's own copy of the split layer runs
                    x = self._run(name, self.backbone[name], previous, state)
        mask = torch.cat(masks, dim=1).transpose(1, 2)
        return EarlyExitOutput(mask * noisy, mask, torch.tensor(taken))

    def _exit_mask(self, name: str, previous: torch.Tensor, x: torch.Tensor, state: NsNet2State) -> torch.Tensor:
        """(batch, frames, bins) floored mask of exit `name`, whose layer took `previous` and gave `x`."""
        logits = x if name == "final" else self._exit_logits(name, previous, x, state)
        return torch.sigmoid(logits).clamp_min(10.0 ** (self.config.mask_floor_db / 20.0))

    def _exit_logits(self, name: str, previous: torch.Tensor, x: torch.Tensor, state: NsNet2State) -> torch.Tensor:
        head = self.heads[name]
        if "split" in head:
            x = self._run(f"{name}.split", head["split"], previous, state)
        for layer_name, layer in head.items():
            if layer_name != "split":
                x = layer(x)
        return x


def exit_macs(config: NsNet2Config) -> list[dict[str, int]]:
    """MACs per frame of each exit, in `config.exits` order: `standalone`, the path to that exit alone
    (input FC, backbone up to the exit's layer, its head), and `incremental`, what a frame costs that
    leaves at that exit after computing every earlier exit's head too. Weight products only, as for
    Conv-FSENet: biases, activations, the normalisation and the mask multiply are not counted."""

    def layer(name: str, inputs: int | None = None) -> int:
        inputs = config.input_of(name) if inputs is None else inputs
        width = config.width(name)
        return 3 * width * (inputs + width) if name.startswith("gru") else inputs * width

    def head(name: str) -> int:
        if name == "final":
            return 0  # the backbone's output layer, counted in the backbone
        if config.topology == "split_decoder":
            later = [n for n in config.layers[config.layers.index(name) + 1 :] if not n.startswith("gru")]
            total, inputs = 0, config.width(name)
            for n in later:
                total += layer(n, inputs)
                inputs = config.width(n)
            return total
        split = layer(name) if config.topology == "split_gru" else 0
        return split + config.width(name) * config.bins

    result, heads = [], 0
    for name in config.exits:
        backbone = config.bins * config.input_width + sum(
            layer(n) for n in config.layers[: config.layers.index(name) + 1]
        )
        if config.topology == "split_gru" and name != "final":
            backbone -= layer(name)  # a split exit reads its own copy: the backbone's is not needed to leave there
        heads += head(name)
        result.append({"standalone": backbone + head(name), "incremental": backbone + heads})
    return result
