"""The systems the `evaluate` stage scores: each model at each operating point, what it spent, and
the metrics of each system set beside the noisy input and its family's full-cost model.

Costs are MACs per input sample for every system (Conv-FSENet's per-frame count / HOP), so both
families share the Pareto plot. A slimmable DEMUCS is scored at each of its widths
(`slim-static@1/4`); a routed one reports its average UF and its MACs including the router.
Savings and PESQ drops are relative to the full-cost model of the same family.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from tqdm import tqdm

from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.framing import HOP
from maskscope.evaluation.scoring import Enhanced, enhance, mean_scores
from maskscope.models.conv_fsenet import ConvFSENet, macs_per_frame
from maskscope.models.demucs import SlimDemucs, macs_per_sample, routed_macs_per_sample, router_macs_per_sample
from maskscope.training.loop import Utterance


def uf_label(uf: float) -> str:
    """A width as the paper writes it: 1/8, 1/4, 1/2, 1."""
    return str(Fraction(uf).limit_denominator(64))


@dataclass
class System:
    """One scored system: a model at one operating point, and what it spent."""

    family: str  # the full-cost system of its family, the reference of mac_saving and pesq_drop_relative
    outputs: list[Enhanced]
    macs_per_sample: float
    extra: dict[str, Any]


def fsenet_system(model: ConvFSENet, outputs: list[Enhanced]) -> System:
    usage = None
    if model.config.gated:
        open_per_block = sum(output.gates.sum(axis=(1, 2)) for output in outputs)
        frames = sum(output.gates.shape[2] for output in outputs) * model.config.hidden
        usage = (open_per_block / frames).tolist()
    spent = macs_per_frame(model.config, usage).total
    extra = {
        "macs_per_frame": round(spent, 1),
        "gate_usage": None if usage is None else round(float(np.mean(usage)), 4),
        "gate_usage_per_block": None if usage is None else [round(u, 4) for u in usage],
    }
    return System("dense", outputs, spent / HOP, extra)


def routed_system(model: SlimDemucs, outputs: list[Enhanced]) -> System:
    """A routed DEMUCS's cost and width statistics, each segment weighted by the samples it holds
    (an utterance's last segment is usually short)."""
    config = model.config
    share = np.zeros(len(config.widths))
    for output in outputs:
        samples = np.full(output.choices.size, float(config.segment))
        samples[-1] = output.audio.size - config.segment * (output.choices.size - 1)
        share += np.bincount(output.choices, weights=samples, minlength=len(config.widths))
    share /= share.sum()
    extra = {
        "average_uf": round(float(share @ np.asarray(config.widths)), 4),
        "uf_share": {uf_label(uf): round(float(part), 4) for uf, part in zip(config.widths, share, strict=True)},
        "router_macs_per_sample": round(router_macs_per_sample(config), 2),
    }
    return System(SLIM_REFERENCE, outputs, routed_macs_per_sample(config, share.tolist()), extra)


SLIM_REFERENCE = "slim-static@1"


def systems_of(variant: str, model: ConvFSENet | SlimDemucs, test: list[Utterance]) -> dict[str, System]:
    """The operating points of one variant: a slimmable DEMUCS at each width, any other model once."""

    def run_all(uf: float | None = None, label: str = variant) -> list[Enhanced]:
        return [enhance(model, u.noisy, uf) for u in tqdm(test, desc=f"evaluate: {label}", disable=None)]

    if isinstance(model, ConvFSENet):
        return {variant: fsenet_system(model, run_all())}
    if model.config.dynamic:
        return {variant: routed_system(model, run_all())}
    systems = {}
    for uf in model.config.widths:
        name = f"{variant}@{uf_label(uf)}"
        systems[name] = System(SLIM_REFERENCE, run_all(uf, name), macs_per_sample(model.config, uf), {"uf": uf})
    return systems


def system_metrics(
    systems: dict[str, System], per_system: dict[str, list[dict[str, float]]], utterances: int
) -> dict[str, Any]:
    """Mean scores of the noisy input and of every system, with costs, savings and gains."""
    metrics: dict[str, Any] = {"noisy": {**mean_scores(per_system["noisy"]), "utterances": utterances}}
    for name, system in systems.items():
        entry = {**mean_scores(per_system[name]), **system.extra}
        entry["macs_per_sample"] = round(system.macs_per_sample, 2)
        entry["mmac_per_second"] = round(system.macs_per_sample * SAMPLE_RATE / 1e6, 3)
        reference = systems.get(system.family)
        if reference is not None:
            entry["mac_saving"] = round(1.0 - system.macs_per_sample / reference.macs_per_sample, 4)
            reference_pesq = mean_scores(per_system[system.family])["pesq"]
            entry["pesq_drop_relative"] = round((reference_pesq - entry["pesq"]) / reference_pesq, 4)
        entry["pesq_gain_over_noisy"] = round(entry["pesq"] - metrics["noisy"]["pesq"], 4)
        metrics[name] = entry
    return metrics
