"""Streaming (batch-1, frame-by-frame) inference speed of the sparse numba path, measured (never asserted).

    python benchmarks/bench_streaming.py [--seconds 10] [--repeats 5]

Default architecture (B=128, H=256, 3x3 blocks, gate rank 16, causal), untrained weights. Usage 1.0 is the
ungated (dense) model; for the others the gated model shares the dense model's backbone weights and each
gate predictor's final bias is set per channel to the (1 - target) quantile of its bias-free logits on
the benchmark input, so every channel opens on about `target` of the frames. One thread; `process()` on
random-noise STFT, best of `--repeats` after a compile/warm-up call. Prints one JSON line per usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numba
import numpy as np
import torch

from maskscope.core import framing
from maskscope.models.conv_fsenet import ConvFSENet, ConvFSENetConfig, macs_per_frame
from maskscope.models.streaming import StreamingFSENet

TARGETS = (1.0, 0.75, 0.5, 0.25)


def calibrate_gates(model: ConvFSENet, spectrum: torch.Tensor, target: float) -> None:
    """Set each gate predictor's final bias so that every channel opens on about `target` of the frames."""

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> torch.Tensor:
        raw = output - module.expand.bias[None, :, None]
        bias = -torch.quantile(raw[0], 1.0 - target, dim=-1)
        module.expand.bias.copy_(bias)
        # later blocks must see the calibrated gates of this one
        return raw + bias[None, :, None]

    handles = [block.gate_predictor.register_forward_hook(hook) for block in model.blocks]
    try:
        with torch.no_grad():
            model(spectrum)
    finally:
        for handle in handles:
            handle.remove()


def best_time(stream: StreamingFSENet, spectrum: np.ndarray, repeats: int) -> tuple[float, float, np.ndarray]:
    """Best wall and CPU seconds of `process(spectrum)` from a fresh state, and the gates of the last run."""
    stream.reset()
    stream.process(spectrum[:, :4])  # compile (or load the cache) outside the timing
    wall, cpu = float("inf"), float("inf")
    gates = np.empty(0)
    for _ in range(repeats):
        stream.reset()
        w0, c0 = time.perf_counter(), time.process_time()
        _, gates = stream.process(spectrum)
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu, gates


def emit(record: dict) -> None:
    record = {"benchmark": "streaming", "machine": f"{platform.node()} {os.cpu_count()} cpus", **record}
    print(json.dumps(record), flush=True)


def bench_trained(models_dir: Path, seconds: float, repeats: int) -> None:
    """Trained variants on real test mixtures: the gates the models actually choose."""
    from maskscope.core.constants import MODEL_FILE
    from maskscope.models.checkpoint import load_model
    from maskscope.training.loop import load_split

    test = load_split(models_dir.parent / "data" / "mix", "test")
    audio = np.concatenate([u.noisy for u in test])[: int(seconds * 16000)]
    spectrum = framing.stft(torch.from_numpy(audio)).numpy()
    frames = spectrum.shape[-1]
    dense_wall, dense_macs = None, macs_per_frame(ConvFSENetConfig()).total
    for variant in ("dense", "dyncp-75", "dyncp-50", "dyncp-25", "static-25"):
        path = models_dir / variant / MODEL_FILE
        if not path.is_file():
            continue
        model, _ = load_model(path)
        stream = StreamingFSENet.from_model(model)
        wall, cpu, gates = best_time(stream, spectrum, repeats)
        dense_wall = wall if variant == "dense" else dense_wall
        spent = stream.macs_per_frame_spent(gates)
        record = {
            "variant": variant,
            "measured_usage": round(float(gates.mean()), 4),
            "frames": frames,
            "ms_per_audio_second": round(1e3 * wall / seconds, 3),
            "us_per_frame": round(1e6 * wall / frames, 1),
            "cpu_us_per_frame": round(1e6 * cpu / frames, 1),
            "macs_per_frame": round(spent),
        }
        if dense_wall is not None:
            speedup, ideal = dense_wall / wall, dense_macs / spent
            record |= {"speedup_vs_dense": round(speedup, 3), "ideal_speedup": round(ideal, 3)}
            record["speedup_over_ideal"] = round(speedup / ideal, 3)
        emit(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of audio per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the best is reported")
    parser.add_argument(
        "--trained",
        type=Path,
        default=None,
        help="a models/ directory from `make repro`: time its trained variants on test-split speech instead",
    )
    args = parser.parse_args()
    numba.set_num_threads(1)
    torch.set_num_threads(1)

    if args.trained is not None:
        bench_trained(args.trained, args.seconds, args.repeats)
        return
    torch.manual_seed(0)
    noise = 0.1 * torch.randn(int(args.seconds * 16000))
    spectrum = framing.stft(noise)
    frames = spectrum.shape[-1]
    spectrum_np = spectrum.numpy()

    dense_config = ConvFSENetConfig()
    dense_model = ConvFSENet(dense_config).eval()
    dense_macs = macs_per_frame(dense_config).total
    dense_wall = None
    for target in TARGETS:
        if target == 1.0:
            config, model = dense_config, dense_model
        else:
            config = replace(dense_config, gated=True)
            model = ConvFSENet(config).eval()
            model.load_state_dict(dense_model.state_dict(), strict=False)
            calibrate_gates(model, spectrum[None], target)
        stream = StreamingFSENet.from_model(model)
        wall, cpu, gates = best_time(stream, spectrum_np, args.repeats)
        dense_wall = wall if dense_wall is None else dense_wall
        spent = stream.macs_per_frame_spent(gates)
        speedup = dense_wall / wall
        ideal = dense_macs / spent
        emit(
            {
                "target_usage": target,
                "gated": config.gated,
                "measured_usage": round(float(gates.mean()), 4),
                "frames": frames,
                "ms_per_audio_second": round(1e3 * wall / args.seconds, 3),
                "us_per_frame": round(1e6 * wall / frames, 1),
                "cpu_us_per_frame": round(1e6 * cpu / frames, 1),
                "macs_per_frame": round(spent),
                "speedup_vs_dense": round(speedup, 3),
                "ideal_speedup": round(ideal, 3),
                "speedup_over_ideal": round(speedup / ideal, 3),
            }
        )


if __name__ == "__main__":
    main()
