"""The `baselines` stage's work: dedicated VAD, F0 and noise-class methods on the probes' frames and
noisy audio, each scored like the corresponding probe (accuracy, or R² on voiced frames) and timed in
CPU seconds per second of audio (per utterance, the least of TIMING_REPEATS runs, as the probes are),
so the probes' cost can be set beside theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from maskscope.analysis.baselines import (
    TIMING_REPEATS,
    best_threshold,
    log_mel,
    mel_filterbank,
    noise_classifier,
    noisy_energy_db,
    timed,
    webrtc_vad,
    world_f0,
)
from maskscope.analysis.probes import (
    TASKS,
    Task,
    context_curve,
    decide,
    raw_outputs,
    scores,
    scores_by_snr,
    speaker_folds,
    task_rows,
    task_target,
    utterance_spans,
)
from maskscope.core.audio import SAMPLE_RATE, decode_audio
from maskscope.core.framing import FRAMES_PER_SECOND


def study_baselines(
    labels: pd.DataFrame,
    mixtures: pd.DataFrame,
    origin: Path,
    groups: np.ndarray,
    snrs: np.ndarray,
    settings: Any,
    f0_range: tuple[float, float],
) -> dict[str, Any]:
    """Every baseline run, timed and scored on the label frames; `mixtures` holds the noisy FLAC bytes
    by utt_id (read from `origin`), `groups` and `snrs` each frame's voice family and mixture SNR."""
    chosen = list(dict.fromkeys(labels["utt_id"]))
    bank = mel_filterbank()
    floor, ceil = f0_range
    methods = {
        "webrtcvad": lambda x: webrtc_vad(x),
        "energy": noisy_energy_db,
        "harvest": lambda x: world_f0(x, "harvest", floor, ceil),
        "dio": lambda x: world_f0(x, "dio", floor, ceil),
        "logmel": lambda x: log_mel(x, bank),
    }
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    cpu = dict.fromkeys(methods, 0.0)
    audio_seconds = 0.0
    for utt_id in tqdm(chosen, desc="baselines", unit="utt", disable=None):
        noisy = decode_audio(mixtures.loc[utt_id, "noisy"], f"{origin}: {utt_id} (noisy)")
        audio_seconds += noisy.size / SAMPLE_RATE
        frames = int((labels["utt_id"] == utt_id).sum())
        for name, method in methods.items():
            result = timed(lambda method=method, noisy=noisy: method(noisy), TIMING_REPEATS)
            outputs[name].append(np.asarray(result.value)[:frames])
            cpu[name] += result.cpu_seconds
    features = {name: np.concatenate(values) for name, values in outputs.items()}
    tasks = {task.name: task for task in TASKS}
    vad, _ = task_target(labels, tasks["vad"])
    results: dict[str, Any] = {}
    results["webrtcvad"] = scored(tasks["vad"], vad, features["webrtcvad"].astype(np.int64), snrs)

    energy_predicted = np.zeros(len(vad), dtype=np.int64)
    fit_seconds = 0.0
    for fit, held_out in speaker_folds(groups, settings.folds):
        threshold = timed(lambda fit=fit: best_threshold(features["energy"][fit], vad[fit] == 1))
        fit_seconds += threshold.cpu_seconds
        energy_predicted[held_out] = features["energy"][held_out] >= threshold.value
    results["energy"] = scored(tasks["vad"], vad, energy_predicted, snrs)

    voiced = task_rows(labels, tasks["f0"])
    f0, _ = task_target(labels[voiced], tasks["f0"])
    for name in ("harvest", "dio"):
        results[name] = scored(tasks["f0"], f0, features[name][voiced], snrs[voiced])

    noise, _ = task_target(labels, tasks["noise"])
    noise_logits = np.zeros((len(noise), int(noise.max()) + 1))
    classify_seconds = 0.0
    utterances = labels["utt_id"].to_numpy()
    for fit, held_out in speaker_folds(groups, settings.folds):
        model = noise_classifier().fit(features["logmel"][fit], noise[fit])
        # one utterance at a time, as the features were computed and the probes are timed
        for start, end in utterance_spans(utterances[held_out]):
            rows = held_out[start:end]
            logits = timed(
                lambda model=model, rows=rows: raw_outputs(
                    model, features["logmel"][rows], "multiclass", noise_logits.shape[1]
                ),
                TIMING_REPEATS,
            )
            noise_logits[rows] = logits.value
            classify_seconds += logits.cpu_seconds
    # the probes' in-context protocol (see maskscope.analysis.probes), so the two stay comparable
    by_context = context_curve(noise_logits, noise, "multiclass", utterances, settings.context_frames)
    results["logmel_logreg"] = {
        **scored(tasks["noise"], noise, decide("multiclass", noise_logits), snrs),
        "accuracy_by_context": {str(frames): round(score["accuracy"], 4) for frames, score in by_context.items()},
    }

    # Inference cost only (fitting is a one-off): feature extraction plus the decision.
    cost_seconds = {
        "webrtcvad": cpu["webrtcvad"],
        "energy": cpu["energy"],
        "harvest": cpu["harvest"],
        "dio": cpu["dio"],
        "logmel_logreg": cpu["logmel"] + classify_seconds,
    }
    for name, seconds in cost_seconds.items():
        results[name]["cpu_seconds_per_audio_second"] = round(seconds / audio_seconds, 6)
        results[name]["cpu_us_per_frame"] = round(1e6 * seconds / (audio_seconds * FRAMES_PER_SECOND), 3)
        for key in ("accuracy", "r2", "mae"):
            if key in results[name]:
                results[name][key] = round(results[name][key], 4)
    summary = {"utterances": len(chosen), "frames": len(labels), "audio_seconds": round(audio_seconds, 2)}
    return {**summary, "methods": results}


def scored(task: Task, target: np.ndarray, predicted: np.ndarray, snrs: np.ndarray) -> dict[str, Any]:
    """A baseline's scores as the probes report theirs: over all frames, by mixture SNR, and on the
    mixtures in the papers' SNR range (`from_0db`)."""
    kind = task.kind
    by_snr, in_paper_range = scores_by_snr(kind, target, predicted, snrs)
    return {
        "task": task.name,
        **scores(kind, target, predicted),
        "by_snr_db": by_snr,
        "from_0db": in_paper_range,
    }
