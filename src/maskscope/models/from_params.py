"""The architecture of a variant, from its params: Conv-FSENet (dense, DynCP, static), slimmable
DEMUCS, or nsNet2 (with early exits, or static and truncated at one exit)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from maskscope.models.conv_fsenet import ConvFSENetConfig, macs_per_frame, static_hidden_for_budget
from maskscope.models.demucs import SlimDemucsConfig
from maskscope.models.nsnet2 import NsNet2Config


def model_config(model: Any, train_params: Any, variant: Any) -> ConvFSENetConfig:
    """The architecture of one variant: dense, DynCP-gated, or dense with H cut to a MAC budget."""
    base = ConvFSENetConfig(
        bottleneck=model.bottleneck,
        hidden=model.hidden,
        stacks=model.stacks,
        blocks_per_stack=model.blocks_per_stack,
        kernel=model.kernel,
        causal=model.causal,
        gate_rank=model.gate_rank,
        gate_estimator=train_params.gate_estimator,
        ste_slope=train_params.ste_slope,
        gumbel_temperature=train_params.gumbel_temperature,
    )
    if variant.kind == "dense":
        return base
    gated = ConvFSENetConfig(**{**asdict(base), "gated": True})
    if variant.kind == "dyncp":
        return gated
    # Static pruning: the fixed H whose dense cost matches DynCP at Φ_trgt, gate cost included.
    budget = macs_per_frame(gated, variant.target_usage).total
    return ConvFSENetConfig(**{**asdict(base), "hidden": static_hidden_for_budget(base, budget)})


def slim_config(slimming: Any, variant: Any) -> SlimDemucsConfig:
    """The slimmable DEMUCS of a slim-static or (with a router) slim-dyn variant. Only a routed
    variant reads the router's keys: `train_slim` does not declare them, so changing one retrains
    the routers alone."""
    routed = variant.kind == "slim-dyn"
    router = {"segment": slimming.segment_samples, "gumbel_temperature": slimming.gumbel_temperature} if routed else {}
    return SlimDemucsConfig(
        hidden=slimming.hidden,
        depth=slimming.depth,
        kernel=slimming.kernel,
        stride=slimming.stride,
        resample=slimming.resample,
        gru=slimming.gru,
        gru_groups=slimming.gru_groups,
        gru_layers=slimming.gru_layers,
        widths=tuple(slimming.widths),
        dynamic=routed,
        **router,
    )


def nsnet2_config(nsnet2: Any, variant: Any) -> NsNet2Config:
    """An nsnet2 variant: every exit of `nsnet2.exits` in its topology; an nsnet2-static one: the
    plain network truncated at its `exit` (the static reference of that depth)."""
    exits = tuple(nsnet2.exits)
    if variant.kind == "nsnet2-static":
        exits, topology = (variant.exit,), "plain"
    else:
        topology = variant.topology
    return NsNet2Config(
        input_width=nsnet2.input_width,
        gru_width=nsnet2.gru_width,
        gru_layers=nsnet2.gru_layers,
        decoder_widths=tuple(nsnet2.decoder_widths),
        exits=exits,
        topology=topology,
        mask_floor_db=nsnet2.mask_floor_db,
        norm_seconds=nsnet2.norm_seconds,
    )
