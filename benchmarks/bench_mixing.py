"""Training throughput with fixed versus dynamic mixing, measured (never asserted). Prints JSON lines.

Run after `make repro` (it reads the repository's data/mix and data/noises):
    python benchmarks/bench_mixing.py [--params params.yaml] [--data data] [--steps 20]
Figures, for each mixing mode: batch preparation alone and whole optimiser steps of the dense
Conv-FSENet (forward, loss, backward, Adam), in seconds of training audio per wall second, on the
threads training uses. Equal steps cost the same model time; only the data side differs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from maskscope.core.constants import SAMPLE_RATE
from maskscope.core.seeding import item_rng
from maskscope.pipeline.config import load_params
from maskscope.training.loop import crop_batches, load_split, step_loss
from maskscope.training.variants import build_variant, dynamic_mixing

ROOT = Path(__file__).resolve().parent.parent


def batch_source(mode: str, params, train_set, segment: int, noises_dir: Path):
    train = params.train
    if mode == "fixed":
        return crop_batches(train_set, segment, train.batch_size, item_rng(params.seed, "bench", 0))
    dynamic = params.model_copy(update={"train": train.model_copy(update={"mixing": "dynamic"})})
    mixing = dynamic_mixing(dynamic, noises_dir)
    return mixing.batches(train_set, segment, train.batch_size, epoch=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--data", default=str(ROOT / "data"), help="the stages' outputs: mix/ and noises/")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(2)
    data = Path(args.data)
    train_set = load_split(data / "mix", "train")
    segment = round(params.train.segment_seconds * SAMPLE_RATE)
    audio_per_batch = params.train.batch_size * params.train.segment_seconds
    for mode in ("fixed", "dynamic"):
        source = batch_source(mode, params, train_set, segment, data / "noises")
        started = time.perf_counter()
        batches = [next(source) for _ in range(args.steps)]
        prepare = time.perf_counter() - started
        model, settings, _ = build_variant(params, params.variants["dense"], None)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        started = time.perf_counter()
        for clean, noisy, level in batches:
            loss, _ = step_loss(model, clean, noisy, level, settings)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        stepping = time.perf_counter() - started
        audio = args.steps * audio_per_batch
        print(
            json.dumps(
                {
                    "mixing": mode,
                    "steps": args.steps,
                    "preparation_audio_seconds_per_second": round(audio / prepare, 1),
                    "training_audio_seconds_per_second": round(audio / (prepare + stepping), 2),
                    "machine": platform.processor() or platform.machine(),
                }
            )
        )


if __name__ == "__main__":
    main()
