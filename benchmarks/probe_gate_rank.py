"""Does the gate predictor's rank limit what DynCP masks know about F0? (an open hypothesis of the probes)

For each rank given, fine-tunes DynCP at Φ=0.25 from the trained dense model exactly as the `train`
stage does (only `model.gate_rank` changed), takes its gates on the probes' frames and scores the
probes as the `probes` stage does (L1 path, K = probes.k_bits, folds by voice family). Prints one JSON
line per rank: gate usage, VAD accuracy, F0 R² and the R² of F0 within each speaker (F0 minus the
speaker's mean), with the training time. An experiment, not a
pipeline stage: nothing is written outside a temporary directory. Needs a finished `make repro`.

    python benchmarks/probe_gate_rank.py --ranks 16 64 256
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from maskscope.analysis.masks import MaskLayout, MaskSet, aligned_bits
from maskscope.analysis.probes import TASKS, frame_families, probe_labels, score_curve, task_rows, task_target
from maskscope.core.constants import FOCUS_VARIANT, MODEL_FILE
from maskscope.evaluation.scoring import enhance
from maskscope.models.checkpoint import load_model
from maskscope.models.conv_fsenet import ConvFSENet, initialise_from_dense
from maskscope.models.from_params import model_config
from maskscope.pipeline.config import load_params
from maskscope.training.loop import TrainSettings, load_split, train

VARIANT = FOCUS_VARIANT


def gates_on(model: ConvFSENet, mix: Path, splits: list[str], utt_ids: set[str]) -> MaskSet:
    """The model's gates on every frame of the chosen mixtures, as the dump_masks stage keys them."""
    keys, rows = [], []
    for split in splits:
        for utterance in load_split(mix, split):
            if utterance.utt_id not in utt_ids:
                continue
            gates = enhance(model, utterance.noisy).gates  # (blocks, H, frames)
            frames = gates.shape[2]
            rows.append(gates.transpose(2, 0, 1).reshape(frames, -1).astype(bool))
            keys.append(pd.DataFrame({"utt_id": utterance.utt_id, "frame": np.arange(frames, dtype=np.int32)}))
    layout = MaskLayout(blocks=model.config.n_blocks, hidden=model.config.hidden)
    return MaskSet(keys=pd.concat(keys, ignore_index=True), bits=np.concatenate(rows), layout=layout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(2)
    mix, settings = Path("data/mix"), params.probes
    labels = probe_labels(Path("data/labels"), list(settings.splits), params.seed, settings.utterances)
    groups = frame_families(labels, Path("data/corpus"))
    dense, _ = load_model(Path("models/dense") / MODEL_FILE)
    train_set = load_split(mix, "train")
    valid_set = load_split(mix, "valid", limit=params.train.valid_utterances)
    variant = params.variants[VARIANT]
    for rank in args.ranks:
        config = model_config(params.model.model_copy(update={"gate_rank": rank}), params.train, variant)
        torch.manual_seed(params.seed)
        model = ConvFSENet(config)
        initialise_from_dense(model, dense)
        run = TrainSettings(
            epochs=params.prune.epochs,
            batch_size=params.train.batch_size,
            segment_seconds=params.train.segment_seconds,
            learning_rate=params.train.learning_rate,
            usage_weight=params.train.dcp_weight,
            target_usage=variant.target_usage,
            seed=params.seed,
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            train(model, train_set, valid_set, run, Path(scratch) / "checkpoint.pt")
        seconds = time.perf_counter() - started
        masks = gates_on(model.eval(), mix, list(settings.splits), set(labels["utt_id"]))
        bits = aligned_bits([masks], labels, f"gates at rank {rank}")
        result = {"variant": VARIANT, "gate_rank": rank, "train_seconds": round(seconds, 1)}
        result["gate_usage"] = round(float(bits.mean()), 4)
        for task in TASKS:
            if task.name not in ("vad", "f0"):
                continue
            rows = task_rows(labels, task)
            target, _ = task_target(labels[rows], task)
            score = score_curve(bits[rows], target, groups[rows], task.kind, [settings.k_bits], settings.folds)
            key = "r2" if task.kind == "regression" else "accuracy"
            result[f"{task.name}_{key}"] = round(score[settings.k_bits][key], 4)
            if task.name == "f0":
                # Pitch movement within each speaker: F0 minus the speaker's mean (a diagnostic; the mean
                # is taken over all the speaker's voiced frames), so register differences do not count.
                speakers = labels.loc[rows, "speaker"].to_numpy()
                within = target - pd.Series(target).groupby(speakers).transform("mean").to_numpy()
                score = score_curve(bits[rows], within, groups[rows], task.kind, [settings.k_bits], settings.folds)
                result["f0_within_speaker_r2"] = round(score[settings.k_bits]["r2"], 4)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
