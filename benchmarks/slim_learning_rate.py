"""Which learning rate trains this project's DEMUCS? (how `slimming.learning_rate` was chosen)

Trains the full-width DEMUCS of params.yaml's `slimming` section (one width, no router) for a few
epochs at each learning rate given, with the training stage's loss, crops, batch size, validation
set and cosine schedule, and prints one JSON line per rate: the validation loss after every epoch and
the seconds taken. Full width only: the slimmable training averages the losses of all widths, whose
scale is the same. An experiment, not a pipeline stage: nothing is written outside a temporary
directory. Needs the `mix` stage's output (`make repro`, or `dvc repro mix`).

    python benchmarks/slim_learning_rate.py --rates 1e-3 3e-3 6e-3 1e-2 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from maskscope.models.demucs import SlimDemucs
from maskscope.models.from_params import slim_config
from maskscope.pipeline.config import VariantParams, load_params
from maskscope.training.loop import TrainSettings, load_split, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1e-3, 3e-3, 6e-3, 1e-2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(2)
    train_set = load_split(Path("data/mix"), "train")
    valid_set = load_split(Path("data/mix"), "valid", limit=params.train.valid_utterances)
    full_width = params.slimming.model_copy(update={"widths": [1.0]})
    for rate in args.rates:
        torch.manual_seed(params.seed)
        model = SlimDemucs(slim_config(full_width, VariantParams(kind="slim-static")))
        settings = TrainSettings(
            epochs=args.epochs,
            batch_size=params.train.batch_size,
            segment_seconds=params.train.segment_seconds,
            learning_rate=rate,
            usage_weight=0.0,
            target_usage=None,
            seed=params.seed,
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            state = train(model, train_set, valid_set, settings, Path(scratch) / "checkpoint.pt")
        result = {
            "learning_rate": rate,
            "valid_loss": [round(record.valid_loss, 4) for record in state.history],
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
