"""Where does F0 live? Linear probes on what the DynCP model sees and computes, not only its gates.

The probes stage finds F0 R² ≈ 0 on the DynCP Φ=0.25 gates (the paper reports 0.86). This asks
whether any linear read-out of the same frames does better, with the probes stage's frames, folds
(by voice family) and targets:

- `gates`: the dumped gates (9 blocks x 256 bits), what the probes stage scores;
- `activations`: each block's hidden activations before gating (9 x 256 real values);
- `residual`: the bottleneck stream entering the mask head (128 real values);
- `noisy_spectrum` / `clean_spectrum`: compressed STFT magnitudes (257 bins), the model's input and
  the clean speech, i.e. the best a per-frame linear read-out of a spectrum can do.

Each is scored by ridge regression on all its features (real features standardised on the fitting
folds), pooled held-out predictions: F0 R² on voiced frames, F0 R² within speaker (F0 minus the
speaker's mean), F0 R² with folds that ignore speakers (frames dealt at random, so every speaker's
register is seen in fitting: what a frame-level split would report), F0 R² of WORLD's track over all
frames (0 Hz where unvoiced), with voice-family and with random folds, and VAD accuracy (logistic).
One JSON line per representation. An experiment, not a
pipeline stage: it writes nothing. Needs a finished `make repro`.

    python benchmarks/probe_representations.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from maskscope.analysis.masks import aligned_bits, read_masks
from maskscope.analysis.probes import TASKS, frame_families, probe_labels, scores, speaker_folds, task_rows, task_target
from maskscope.core import framing
from maskscope.core.constants import FOCUS_VARIANT, MODEL_FILE
from maskscope.data.splits import SPLITS
from maskscope.models.checkpoint import load_model
from maskscope.models.conv_fsenet import ConvFSENet
from maskscope.pipeline.config import load_params
from maskscope.training.loop import load_split

VARIANT = FOCUS_VARIANT


def frame_features(model: ConvFSENet, noisy: np.ndarray, clean: np.ndarray) -> dict[str, np.ndarray]:
    """(frames, features) of each real-valued representation of one utterance."""
    activations = []
    hooks = [block.act1.register_forward_hook(lambda _m, _i, out: activations.append(out)) for block in model.blocks]
    residual = []
    hooks.append(model.backend.register_forward_hook(lambda _m, inputs, _o: residual.append(inputs[0])))
    try:
        with torch.no_grad():
            spectrum = framing.stft(torch.from_numpy(noisy)[None])
            model.eval()(spectrum)
            clean_spectrum = framing.stft(torch.from_numpy(clean)[None])
    finally:
        for hook in hooks:
            hook.remove()
    return {
        "activations": torch.cat(activations, dim=1)[0].T.numpy(),
        "residual": residual[0][0].T.numpy(),
        "noisy_spectrum": model.features(spectrum)[0].T.numpy(),
        "clean_spectrum": model.features(clean_spectrum)[0].T.numpy(),
    }


def cross_validated(x: np.ndarray, target: np.ndarray, groups: np.ndarray, kind: str, folds: int, scale: bool):
    predicted = np.zeros(len(target))
    for fit, held_out in speaker_folds(groups, folds):
        train_x, held_x = x[fit].astype(np.float64), x[held_out].astype(np.float64)
        if scale:
            mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-8
            train_x, held_x = (train_x - mean) / std, (held_x - mean) / std
        if kind == "regression":
            probe = Ridge(alpha=1.0).fit(train_x, target[fit])
        else:
            probe = LogisticRegression(C=1.0, tol=1e-3, max_iter=300).fit(train_x, target[fit])
        predicted[held_out] = probe.predict(held_x)
    return scores(kind, target, predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(2)
    settings = params.probes
    labels = probe_labels(Path("data/labels"), list(settings.splits), params.seed, settings.utterances)
    groups = frame_families(labels, Path("data/corpus"))
    model, _ = load_model(Path("models") / VARIANT / MODEL_FILE)
    wanted = set(labels["utt_id"])
    keys, per_utterance = [], []
    for split in SPLITS:
        for utterance in load_split(Path("data/mix"), split):
            if utterance.utt_id in wanted:
                features = frame_features(model, utterance.noisy, utterance.clean)
                frames = len(features["noisy_spectrum"])
                keys.append(pd.DataFrame({"utt_id": utterance.utt_id, "frame": np.arange(frames, dtype=np.int32)}))
                per_utterance.append(features)
    index = pd.Series(np.arange(sum(len(k) for k in keys)), index=pd.MultiIndex.from_frame(pd.concat(keys)))
    rows = index.reindex(pd.MultiIndex.from_frame(labels[["utt_id", "frame"]].astype({"frame": np.int32})))
    if rows.isna().any():
        raise SystemExit("the labels hold frames the mixtures do not: rerun `make repro`")
    order = rows.to_numpy(np.int64)
    representations = {
        name: np.concatenate([features[name] for features in per_utterance])[order] for name in per_utterance[0]
    }
    masks = [read_masks(Path("data/masks") / VARIANT / split) for split in settings.splits]
    representations = {"gates": aligned_bits(masks, labels, VARIANT), **representations}
    speakers = labels["speaker"].to_numpy()
    for name, x in representations.items():
        started = time.perf_counter()
        result = {"representation": name, "features": x.shape[1]}
        scale = name != "gates"  # bits stay raw, as the probes stage fits them
        for task in TASKS:
            if task.name not in ("vad", "f0"):
                continue
            task_mask = task_rows(labels, task)
            target, _ = task_target(labels[task_mask], task)
            score = cross_validated(x[task_mask], target, groups[task_mask], task.kind, settings.folds, scale)
            result[f"{task.name}_{'r2' if task.kind == 'regression' else 'accuracy'}"] = round(
                score["r2" if task.kind == "regression" else "accuracy"], 4
            )
            if task.name == "f0":
                within = target - pd.Series(target).groupby(speakers[task_mask]).transform("mean").to_numpy()
                score = cross_validated(x[task_mask], within, groups[task_mask], task.kind, settings.folds, scale)
                result["f0_within_speaker_r2"] = round(score["r2"], 4)
                dealt = np.random.default_rng(params.seed).permutation(len(target)) % settings.folds
                score = cross_validated(x[task_mask], target, dealt, task.kind, settings.folds, scale)
                result["f0_r2_random_folds"] = round(score["r2"], 4)
                # WORLD's track as it comes, 0 Hz on unvoiced frames: voicing alone then explains much of the variance
                track = labels["f0_hz"].to_numpy(np.float64)
                score = cross_validated(x, track, groups, task.kind, settings.folds, scale)
                result["f0_track_r2_all_frames"] = round(score["r2"], 4)
                dealt_all = np.random.default_rng(params.seed).permutation(len(track)) % settings.folds
                score = cross_validated(x, track, dealt_all, task.kind, settings.folds, scale)
                result["f0_track_r2_all_frames_random_folds"] = round(score["r2"], 4)
        result["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
