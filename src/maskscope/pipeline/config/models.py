"""Params sections of the models and their training: Conv-FSENet, its training and pruning, the
slimmable DEMUCS."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, model_validator

from maskscope.core.errors import ParamsError
from maskscope.pipeline.config.section import Section, source_of


class ModelParams(Section):
    bottleneck: int = Field(128, ge=1, description="Conv-FSENet bottleneck channels B")
    hidden: int = Field(256, ge=1, description="channels H inside each block (the gated ones)")
    stacks: int = Field(3, ge=1, description="stacks of blocks")
    blocks_per_stack: int = Field(3, ge=1, description="blocks per stack, dilations 1, 2, 4, ...")
    kernel: int = Field(3, ge=1, description="depthwise kernel size")
    causal: bool = Field(True, description="left padding only: no look-ahead")
    gate_rank: int = Field(16, ge=1, description="rank of the gate predictor B -> rank -> H")


class TrainParams(Section):
    epochs: int = Field(
        40,
        ge=1,
        description="training epochs: steps_per_epoch batches of fresh examples (mixing dynamic), or one random "
        "crop of every training mixture (mixing fixed)",
    )
    mixing: Literal["dynamic", "fixed"] = Field(
        "dynamic",
        description="dynamic: every example mixed afresh (utterance crop, noise class and offset, SNR, level, "
        "silences); fixed: the mix stage's one mixture per utterance",
    )
    steps_per_epoch: int = Field(40, ge=1, description="optimiser steps per epoch under dynamic mixing")
    snr_range_db: tuple[float, float] | None = Field(
        None, description="dynamic mixing: SNRs drawn uniformly from [low, high] dB; null: from mix.snrs_db"
    )
    level_range_db: tuple[float, float] = Field(
        (-6.0, 6.0), description="dynamic mixing: gain of speech and noise together, drawn from [low, high] dB"
    )
    grad_clip_norm: float | None = Field(
        5.0, gt=0, description="clip the gradient's global norm to this before each step; null: no clipping"
    )
    batch_size: int = Field(16, ge=1, description="crops per optimiser step")
    segment_seconds: float = Field(2.0, gt=0, description="length of the random training crops")
    learning_rate: float = Field(
        3e-3,
        gt=0,
        description="Adam learning rate at the start; cosine decay to 1/10 (3e-3 with clipping at 5: best on valid)",
    )
    gate_estimator: Literal["ste", "gumbel"] = Field(
        "ste", description="surrogate gradient of the binary gates: straight-through sigmoid or Gumbel-sigmoid"
    )
    ste_slope: float = Field(1.0, gt=0, description="slope of the sigmoid whose derivative the STE uses")
    gumbel_temperature: float = Field(1.0, gt=0, description="Gumbel-sigmoid temperature")
    dcp_weight: float = Field(1.0, ge=0, description="weight λ of L_DCP, the pull of gate usage to the target")
    valid_utterances: int = Field(64, ge=1, description="validation utterances scored after each epoch")

    @model_validator(mode="after")
    def _ranges_in_order(self, info: ValidationInfo) -> TrainParams:
        for key in ("snr_range_db", "level_range_db"):
            value = getattr(self, key)
            if value is not None and value[0] > value[1]:
                raise ParamsError(f"{source_of(info)}: key 'train.{key}': value {list(value)} must be [low, high]")
        return self


class PruneParams(Section):
    start: Literal["dense", "scratch"] = Field(
        "dense",
        description="pruned variants start from the trained dense model (magnitude-pruned for static) or from scratch",
    )
    epochs: int = Field(14, ge=1, description="fine-tuning epochs of a pruned variant that starts from dense")


class SlimmingParams(Section):
    """The slimmable DEMUCS of the adaptive-slimming variants (kinds slim-static and slim-dyn)."""

    hidden: int = Field(16, ge=1, description="channels of the first encoder layer (doubling with depth)")
    depth: int = Field(4, ge=1, description="encoder (and decoder) layers")
    kernel: int = Field(8, ge=1, description="kernel of the strided convolutions")
    stride: int = Field(4, ge=1, description="stride of the strided convolutions")
    resample: Literal[1, 2, 4] = Field(1, description="input upsampling factor before the encoder")
    gru: Literal["plain", "grouped"] = Field("plain", description="bottleneck GRU: plain, or grouped as in the paper")
    gru_groups: int = Field(2, ge=1, description="groups of a grouped GRU")
    gru_layers: int = Field(2, ge=1, description="GRU layers in the bottleneck")
    widths: list[float] = Field(
        [0.125, 0.25, 0.5, 1.0], min_length=1, description="utilization factors UF every layer can run at"
    )
    segment_samples: int = Field(1024, ge=1, description="input samples per router decision")
    epochs: int = Field(20, ge=1, description="epochs of the slim-static model, trained at every width each step")
    router_epochs: int = Field(8, ge=1, description="epochs of a slim-dyn model, fine-tuned from slim-static")
    learning_rate: float = Field(
        6e-3,
        gt=0,
        description="Adam learning rate at the start; cosine decay to 1/10 (6e-3 measured best of 1e-3..1e-2)",
    )
    utilization_weight: float = Field(
        4.0,
        ge=0,
        description="weight of the router's utilization loss (expected MAC share - static's at the target UF)**2",
    )
    gumbel_temperature: float = Field(1.0, gt=0, description="Gumbel-softmax temperature of the router")
    rest_weight: float = Field(
        0.5, ge=0, description="weight of the router's expected MAC share on segments of silent clean speech"
    )

    @model_validator(mode="after")
    def _buildable(self, info: ValidationInfo) -> SlimmingParams:
        """What SlimDemucsConfig would refuse, named by params key, before any stage runs."""
        widths = list(self.widths)
        if widths != sorted(set(widths)) or widths[0] <= 0 or widths[-1] != 1.0:
            raise ParamsError(
                f"{source_of(info)}: key 'slimming.widths': value {widths} must be strictly increasing, in (0, 1], "
                "and end with 1.0 (the full width, the reference of every saving)"
            )
        if self.kernel < self.stride:
            raise ParamsError(f"{source_of(info)}: key 'slimming.kernel' must be >= slimming.stride ({self.stride})")
        bottleneck = self.hidden * 2 ** (self.depth - 1)
        if self.gru == "grouped" and bottleneck % self.gru_groups:
            raise ParamsError(
                f"{source_of(info)}: key 'slimming.gru_groups': {self.gru_groups} must divide the bottleneck width "
                f"({bottleneck} = hidden * 2**(depth-1))"
            )
        return self


class NsNet2Params(Section):
    """The nsNet2 of the early-exit variants (kinds nsnet2 and nsnet2-static); see docs/papers.md."""

    input_width: int = Field(400, ge=1, description="width of the input FC (F -> input_width)")
    gru_width: int = Field(400, ge=1, description="width of each GRU")
    gru_layers: int = Field(2, ge=1, description="GRU layers")
    decoder_widths: list[int] = Field([600, 600], description="widths of the FC+ReLU layers after the GRUs")
    exits: list[str] = Field(
        ["gru1", "gru2", "final"],
        min_length=1,
        description="exits, by the layer they follow (gru1.., dec1.., final), in network order",
    )
    exit_weights: list[float] | None = Field(
        None, description="joint training: each exit's loss weight, one per exit (null: equal)"
    )
    mask_floor_db: float = Field(-80.0, le=0, description="floor of the mask (the DNS baseline's minimum gain)")
    norm_seconds: float = Field(1.0, gt=0, description="time constant of the causal running feature normalisation")
    exit_threshold: float | None = Field(
        0.02,
        ge=0,
        description="evaluate's causal exit policy: a frame leaves at the first exit whose mask differs from the "
        "previous exit's by less than this (mean absolute difference); null: no policy",
    )
    epochs: int = Field(40, ge=1, description="training epochs (layer-wise: split evenly over the exits)")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate at the start; cosine decay to 1/10")

    @model_validator(mode="after")
    def _buildable(self, info: ValidationInfo) -> NsNet2Params:
        """What NsNet2Config would refuse, named by params key, before any stage runs."""
        # the layer names of maskscope.models.nsnet2, spelled out: pipeline code does not import models
        layers = [f"gru{i + 1}" for i in range(self.gru_layers)]
        layers += [f"dec{i + 1}" for i in range(len(self.decoder_widths))] + ["final"]
        unknown = [name for name in self.exits if name not in layers]
        positions = [layers.index(name) for name in self.exits if name in layers]
        if unknown or positions != sorted(set(positions)):
            raise ParamsError(
                f"{source_of(info)}: key 'nsnet2.exits': value {self.exits} must name layers of this network "
                f"({', '.join(layers)}), each once, in network order"
            )
        if min(self.decoder_widths, default=1) < 1:
            raise ParamsError(f"{source_of(info)}: key 'nsnet2.decoder_widths': widths must be >= 1")
        if self.exit_weights is not None and (
            len(self.exit_weights) != len(self.exits) or min(self.exit_weights) < 0 or sum(self.exit_weights) <= 0
        ):
            raise ParamsError(
                f"{source_of(info)}: key 'nsnet2.exit_weights': one non-negative weight per exit "
                f"({len(self.exits)}), not all zero"
            )
        return self
