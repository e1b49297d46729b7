"""The systems the `evaluate` stage scores: each model at each operating point, what it spent, and
the metrics of each system set beside the noisy input and its family's full-cost model.

Costs are MACs per input sample for every system (Conv-FSENet's per-frame count / HOP), so both
families share the Pareto plot. A slimmable DEMUCS is scored at each of its widths
(`slim-static@1/4`); a routed one reports its average UF and its MACs including the router. An
nsNet2 with exits is scored at each exit (`nsnet2-joint@gru1`), a static one once.
Savings and PESQ drops are relative to the full-cost model of the same family. The peers (RNNoise,
DeepFilterNet3, spectral gating) have no MAC count here; every system, ours and the peers, has its CPU
time per second of audio, measured alike: one utterance at a time, one thread, as a user streams it
(Conv-FSENet through its streaming sparse path, the peers frame by frame, DEMUCS and nsNet2 over the
whole file).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from maskscope.core import framing
from maskscope.core.audio import SAMPLE_RATE
from maskscope.core.framing import HOP
from maskscope.evaluation.peers import Peer
from maskscope.evaluation.scoring import Enhanced, enhance, mean_scores, scored_frames, scored_rows, scored_span
from maskscope.models.checkpoint import SEModel
from maskscope.models.conv_fsenet import ConvFSENet, macs_per_frame
from maskscope.models.demucs import SlimDemucs, macs_per_sample, routed_macs_per_sample, router_macs_per_sample
from maskscope.models.nsnet2 import NsNet2, exit_macs
from maskscope.models.streaming import StreamingFSENet
from maskscope.training.loop import Utterance


def uf_label(uf: float) -> str:
    """A width as the paper writes it: 1/8, 1/4, 1/2, 1."""
    return str(Fraction(uf).limit_denominator(64))


@dataclass
class System:
    """One scored system: a model at one operating point, and what it spent on the scored span (the
    headline, where quality is scored) and on every frame (`extra["all_frames"]`)."""

    family: str | None  # the full-cost system of its family, the reference of mac_saving and pesq_drop_relative
    outputs: list[Enhanced]
    macs_per_sample: float | None  # None: not counted (a peer)
    extra: dict[str, Any]
    all_frames_macs_per_sample: float | None = None  # None: the cost does not depend on the input
    cpu_seconds_per_audio_second: float | None = None


def cpu_seconds(run: Callable[[], Any]) -> tuple[Any, float]:
    """What one call returns and its CPU time, on one thread (torch's intra-op pool set to 1 meanwhile)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        result = run()
        return result, time.process_time() - start
    finally:
        torch.set_num_threads(threads)


def cpu_per_audio_second(enhance_one: Callable[[np.ndarray], Any], test: list[Utterance], timed: int) -> float:
    """CPU seconds per second of audio over the first `timed` test utterances, after one untimed warm-up
    call (numba compiles, libraries load)."""
    sample = test[: max(timed, 1)]
    enhance_one(sample[0].noisy)
    return per_audio_second([cpu_seconds(lambda u=u: enhance_one(u.noisy))[1] for u in sample], sample)


def per_audio_second(spent: list[float], utterances: list[Utterance]) -> float:
    """CPU seconds `spent` on `utterances` (one figure each), per second of their audio."""
    return sum(spent) / (sum(u.noisy.size for u in utterances) / SAMPLE_RATE)


def block_usage(gates: list[np.ndarray]) -> list[float]:
    """Open fraction per block over these (blocks, channels, frames) gates."""
    open_per_block = sum(g.sum(axis=(1, 2)) for g in gates)
    return (open_per_block / (sum(g.shape[2] for g in gates) * gates[0].shape[1])).tolist()


def gate_dynamics(gates: list[np.ndarray]) -> dict[str, list[float]]:
    """How dynamic the gates are, per block, over the scored frames of every utterance: the share of
    channels always open, always closed, and switching, and the switching rate (the fraction of
    consecutive frame pairs, within an utterance, in which a channel changes state)."""
    stacked = np.concatenate(gates, axis=2)  # (blocks, channels, frames)
    always_open = stacked.all(axis=2).mean(axis=1)
    always_closed = (~stacked.astype(bool)).all(axis=2).mean(axis=1)
    changes = sum(np.abs(np.diff(g.astype(np.int8), axis=2)).sum(axis=(1, 2)) for g in gates)
    pairs = sum(max(g.shape[2] - 1, 0) for g in gates) * stacked.shape[1]
    return {
        "always_open": [round(float(v), 4) for v in always_open],
        "always_closed": [round(float(v), 4) for v in always_closed],
        "switching": [round(float(1 - a - c), 4) for a, c in zip(always_open, always_closed, strict=True)],
        "switch_rate": [round(float(v), 5) for v in changes / max(pairs, 1)],
    }


def fsenet_system(model: ConvFSENet, outputs: list[Enhanced], test: list[Utterance]) -> System:
    if not model.config.gated:
        spent = macs_per_frame(model.config).total
        return System("dense", outputs, spent / HOP, {"macs_per_frame": round(spent, 1), "gate_usage": None})
    scored = [output.gates[:, :, scored_frames(u.clean)] for output, u in zip(outputs, test, strict=True)]
    usage, usage_all = block_usage(scored), block_usage([output.gates for output in outputs])
    spent, spent_all = macs_per_frame(model.config, usage).total, macs_per_frame(model.config, usage_all).total
    extra = {
        "macs_per_frame": round(spent, 1),
        "gate_usage": round(float(np.mean(usage)), 4),
        "gate_usage_per_block": [round(u, 4) for u in usage],
        "gate_dynamics": gate_dynamics(scored),
        "all_frames": {"macs_per_frame": round(spent_all, 1), "gate_usage": round(float(np.mean(usage_all)), 4)},
    }
    return System("dense", outputs, spent / HOP, extra, spent_all / HOP)


def width_share(config: Any, outputs: list[Enhanced], spans: list[slice]) -> np.ndarray:
    """Share of the samples in `spans` (one per output) that each width covers."""
    share = np.zeros(len(config.widths))
    for output, span in zip(outputs, spans, strict=True):
        starts = np.arange(output.choices.size) * config.segment
        ends = np.minimum(starts + config.segment, output.audio.size)
        samples = np.clip(np.minimum(ends, span.stop) - np.maximum(starts, span.start), 0, None).astype(float)
        share += np.bincount(output.choices, weights=samples, minlength=len(config.widths))
    return share / share.sum()


def routed_system(model: SlimDemucs, outputs: list[Enhanced], test: list[Utterance]) -> System:
    """A routed DEMUCS's cost and width statistics, each segment weighted by the samples it holds in
    the scored span (headline) or in the whole utterance (an utterance's last segment is usually short)."""
    config = model.config
    share = width_share(config, outputs, [scored_span(u.clean) for u in test])
    share_all = width_share(config, outputs, [slice(0, output.audio.size) for output in outputs])
    routed_all = routed_macs_per_sample(config, share_all.tolist())
    extra = {
        "average_uf": round(float(share @ np.asarray(config.widths)), 4),
        "uf_share": {uf_label(uf): round(float(part), 4) for uf, part in zip(config.widths, share, strict=True)},
        "router_macs_per_sample": round(router_macs_per_sample(config), 2),
        "all_frames": {"average_uf": round(float(share_all @ np.asarray(config.widths)), 4)},
    }
    return System(SLIM_REFERENCE, outputs, routed_macs_per_sample(config, share.tolist()), extra, routed_all)


SLIM_REFERENCE = "slim-static@1"


def nsnet2_exit_audio(model: NsNet2, noisy: np.ndarray, exits: int | None = None) -> list[np.ndarray]:
    """The enhanced audio of each of the first `exits` exits (all by default), from one pass."""
    with torch.no_grad():
        output, _ = model.eval()(framing.stft(torch.from_numpy(noisy)[None]), exits=exits)
        return [framing.istft(spectrum, length=noisy.size)[0].numpy().astype(np.float32) for spectrum in output.spectra]


def early_exit_audio(model: NsNet2, noisy: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The exit policy's enhanced audio and the exit index of every frame."""
    with torch.no_grad():
        output = model.eval().early_exit(framing.stft(torch.from_numpy(noisy)[None]), threshold)
        audio = framing.istft(output.spectrum, length=noisy.size)[0].numpy().astype(np.float32)
    return audio, output.exits.numpy()


def policy_system(variant: str, model: NsNet2, test: list[Utterance], timed: int, threshold: float) -> System:
    """`VARIANT@policy`: each frame leaves at the exit the causal policy picks; its cost is the mean
    incremental MACs of the exits taken on the scored span (every frame's beside, as for DynCP)."""
    runs = [
        early_exit_audio(model, u.noisy, threshold)
        for u in tqdm(test, desc=f"evaluate: {variant}@policy", disable=None)
    ]
    costs = np.array([cost["incremental"] for cost in exit_macs(model.config)], dtype=np.float64)
    scored = np.concatenate([exits[scored_frames(u.clean)] for (_, exits), u in zip(runs, test, strict=True)])
    every = np.concatenate([exits for _, exits in runs])
    share = np.bincount(scored, minlength=len(costs)) / max(scored.size, 1)
    extra = {
        "exit_threshold": threshold,
        "exit_share": {name: round(float(part), 4) for name, part in zip(model.config.exits, share, strict=True)},
        "macs_per_frame": round(float(costs[scored].mean()), 1),
        "all_frames": {"macs_per_frame": round(float(costs[every].mean()), 1)},
    }
    system = System(
        f"{variant}@{model.config.exits[-1]}",
        [Enhanced(audio, None) for audio, _ in runs],
        float(costs[scored].mean()) / HOP,
        extra,
        float(costs[every].mean()) / HOP,
    )
    system.cpu_seconds_per_audio_second = cpu_per_audio_second(
        lambda audio: early_exit_audio(model, audio, threshold), test, timed
    )
    return system


def nsnet2_systems(
    variant: str, model: NsNet2, test: list[Utterance], timed: int, exit_threshold: float | None = None
) -> dict[str, System]:
    """One operating point per exit, `VARIANT@EXIT` (a static nsNet2 has one exit: `VARIANT`), each
    costing its incremental MACs (a frame leaving there has computed every earlier exit's head), its
    standalone MACs beside, and with `exit_threshold` the causal exit policy, `VARIANT@policy`;
    savings are against the variant's last exit."""
    exits = model.config.exits
    per_exit = list(
        zip(
            *[nsnet2_exit_audio(model, u.noisy) for u in tqdm(test, desc=f"evaluate: {variant}", disable=None)],
            strict=True,
        )
    )
    names = [variant] if len(exits) == 1 else [f"{variant}@{name}" for name in exits]
    systems = {}
    for index, (name, cost) in enumerate(zip(names, exit_macs(model.config), strict=True)):
        extra = {
            "exit": exits[index],
            "macs_per_frame": cost["incremental"],
            "standalone_macs_per_frame": cost["standalone"],
        }
        system = System(
            names[-1] if len(exits) > 1 else None,
            [Enhanced(a, None) for a in per_exit[index]],
            cost["incremental"] / HOP,
            extra,
        )
        system.cpu_seconds_per_audio_second = cpu_per_audio_second(
            lambda audio, index=index: nsnet2_exit_audio(model, audio, index + 1), test, timed
        )
        systems[name] = system
    if exit_threshold is not None and len(exits) > 1:
        systems[f"{variant}@policy"] = policy_system(variant, model, test, timed, exit_threshold)
    return systems


def systems_of(
    variant: str, model: SEModel, test: list[Utterance], timed: int, exit_threshold: float | None = None
) -> dict[str, System]:
    """The operating points of one variant: a slimmable DEMUCS at each width, an nsNet2 at each exit,
    any other model once;
    CPU time over the first `timed` test utterances."""

    def run_all(uf: float | None = None, label: str = variant) -> list[Enhanced]:
        return [enhance(model, u.noisy, uf) for u in tqdm(test, desc=f"evaluate: {label}", disable=None)]

    if isinstance(model, NsNet2):
        return nsnet2_systems(variant, model, test, timed, exit_threshold)
    if isinstance(model, ConvFSENet):
        system = fsenet_system(model, run_all(), test)
        streaming = StreamingFSENet.from_model(model)

        def stream(audio: np.ndarray) -> np.ndarray:
            streaming.reset()
            return streaming.enhance(audio)

        system.cpu_seconds_per_audio_second = cpu_per_audio_second(stream, test, timed)
        return {variant: system}
    if model.config.dynamic:
        system = routed_system(model, run_all(), test)
        system.cpu_seconds_per_audio_second = cpu_per_audio_second(lambda audio: enhance(model, audio), test, timed)
        return {variant: system}
    systems = {}
    for uf in model.config.widths:
        name = f"{variant}@{uf_label(uf)}"
        systems[name] = System(SLIM_REFERENCE, run_all(uf, name), macs_per_sample(model.config, uf), {"uf": uf})
        systems[name].cpu_seconds_per_audio_second = cpu_per_audio_second(
            lambda audio, uf=uf: enhance(model, audio, uf), test, timed
        )
    return systems


def peer_system(peer: Peer, test: list[Utterance], timed: int) -> System:
    """A peer's outputs on every test utterance, its CPU time measured in the same pass like ours (one
    warm-up call, then the first `timed` utterances, one thread)."""
    peer.enhance(test[0].noisy)
    outputs, spent = [], []
    for utterance in tqdm(test, desc=f"evaluate: {peer.name}", disable=None):
        audio, seconds = cpu_seconds(lambda u=utterance: peer.enhance(u.noisy))
        outputs.append(Enhanced(audio, None))
        spent.append(seconds)
    sample = test[: max(timed, 1)]
    return System(None, outputs, None, {}, cpu_seconds_per_audio_second=per_audio_second(spent[: len(sample)], sample))


def by_speaker_kind(rows: list[dict[str, float]], kinds: list[str]) -> dict[str, dict[str, float]]:
    """Mean scores per speaker kind (real human recordings, synthetic voices), with their counts."""
    result = {}
    for kind in sorted(set(kinds)):
        kept_rows = [row for row, kept in zip(rows, kinds, strict=True) if kept == kind]
        result[kind] = {**mean_scores(kept_rows), **counts(kept_rows)}
    return result


def system_metrics(
    systems: dict[str, System], per_system: dict[str, list[dict[str, float]]], kinds: list[str]
) -> dict[str, Any]:
    """Mean scores of the noisy input and of every system, pooled and per speaker kind (`kinds`, one per
    test utterance), with costs, savings and gains.

    A system's means are over the utterances it scored (`utterances_scored`, the rest counted in
    `utterances_failed`); gains and drops compare systems on the utterances every system scored."""
    utterances = len(kinds)
    common = np.logical_and.reduce([scored_rows(rows) for rows in per_system.values()])
    noisy_common = mean_scores(per_system["noisy"], common)["pesq"]
    noisy = {**mean_scores(per_system["noisy"]), **counts(per_system["noisy"]), "utterances": utterances}
    noisy["by_speaker_kind"] = by_speaker_kind(per_system["noisy"], kinds)
    metrics: dict[str, Any] = {"noisy": {**noisy, "utterances_scored_by_all": int(common.sum())}}
    for name, system in systems.items():
        entry = {**mean_scores(per_system[name]), **counts(per_system[name]), **system.extra}
        entry["by_speaker_kind"] = by_speaker_kind(per_system[name], kinds)
        if system.macs_per_sample is not None:
            entry["macs_per_sample"] = round(system.macs_per_sample, 2)
            entry["mmac_per_second"] = round(system.macs_per_sample * SAMPLE_RATE / 1e6, 3)
        if system.cpu_seconds_per_audio_second is not None:
            entry["cpu_seconds_per_audio_second"] = round(system.cpu_seconds_per_audio_second, 5)
        pesq_common = mean_scores(per_system[name], common)["pesq"]
        reference = systems.get(system.family) if system.family else None
        if reference is not None:
            entry["mac_saving"] = round(1.0 - system.macs_per_sample / reference.macs_per_sample, 4)
            if system.all_frames_macs_per_sample is not None:
                reference_all = reference.all_frames_macs_per_sample or reference.macs_per_sample
                saving_all = 1.0 - system.all_frames_macs_per_sample / reference_all
                entry["all_frames"]["mac_saving"] = round(saving_all, 4)
            reference_pesq = mean_scores(per_system[system.family], common)["pesq"]
            entry["pesq_drop_relative"] = round((reference_pesq - pesq_common) / reference_pesq, 4)
        entry["pesq_gain_over_noisy"] = round(pesq_common - noisy_common, 4)
        metrics[name] = entry
    return metrics


def counts(rows: list[dict[str, float]]) -> dict[str, int]:
    scored = scored_rows(rows)
    return {"utterances_scored": int(scored.sum()), "utterances_failed": int((~scored).sum())}
