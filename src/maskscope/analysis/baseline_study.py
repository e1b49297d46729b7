"""The `baselines` stage's work: dedicated VAD, F0 and noise-class methods on the probes' frames and
noisy audio. What needs fitting (energy thresholds, the noise classifier) is fitted on the probes' fit
split, and every method is scored once on the scored split, like the corresponding probe (accuracy,
or R² on voiced frames, plus pitch error where both call a frame voiced), and timed in CPU seconds
per second of audio (per utterance, the least of TIMING_REPEATS runs, as the probes are), so the
probes' cost can be set beside theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from maskscope.analysis.baselines import (
    SILERO_THRESHOLD,
    TIMING_REPEATS,
    SileroVad,
    best_threshold,
    energy_above_floor_db,
    log_mel,
    mel_filterbank,
    noise_classifier,
    noisy_energy_db,
    pyin_f0,
    timed,
    webrtc_vad,
    world_f0,
)
from maskscope.analysis.probes import (
    TASKS,
    Task,
    context_curve,
    decide,
    pitch_scores,
    raw_outputs,
    scores,
    scores_by_snr,
    task_rows,
    task_target,
    utterance_spans,
)
from maskscope.core.audio import SAMPLE_RATE, decode_audio
from maskscope.core.framing import FRAMES_PER_SECOND

# Thresholds tried for the energy VADs, in dB: below the loudest frame, and above the noise floor.
PEAK_GRID_DB = np.arange(-60.0, 0.5, 0.5)
FLOOR_GRID_DB = np.arange(0.0, 40.5, 0.5)
TASK = {task.name: task for task in TASKS}


@dataclass(frozen=True)
class AudioFrames:
    """Label frames of a seeded choice of mixtures, with their noisy audio and mixture SNRs."""

    labels: pd.DataFrame
    mixtures: pd.DataFrame  # noisy FLAC bytes by utt_id
    origin: Path  # where the mixtures were read from, for error messages
    snrs: np.ndarray  # mixture SNR per label row


def per_frame(frames: AudioFrames, methods: dict[str, Callable], timing: bool) -> tuple[dict, dict, float]:
    """Each method's per-frame output over all utterances of `frames`, its CPU seconds (the least of
    TIMING_REPEATS runs per utterance when `timing`) and the seconds of audio."""
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    cpu = dict.fromkeys(methods, 0.0)
    audio_seconds = 0.0
    labels = frames.labels
    for utt_id in tqdm(list(dict.fromkeys(labels["utt_id"])), desc="baselines", unit="utt", disable=None):
        noisy = decode_audio(frames.mixtures.loc[utt_id, "noisy"], f"{frames.origin}: {utt_id} (noisy)")
        audio_seconds += noisy.size / SAMPLE_RATE
        count = int((labels["utt_id"] == utt_id).sum())
        for name, method in methods.items():
            result = timed(lambda method=method, noisy=noisy: method(noisy), TIMING_REPEATS if timing else 1)
            outputs[name].append(np.asarray(result.value)[:count])
            cpu[name] += result.cpu_seconds
    return {name: np.concatenate(values) for name, values in outputs.items()}, cpu, audio_seconds


def study_baselines(
    fit: AudioFrames, scored: AudioFrames, settings: Any, f0_range: tuple[float, float]
) -> dict[str, Any]:
    """Every baseline fitted on `fit` where it needs fitting, run, timed and scored on `scored`."""
    bank = mel_filterbank()
    floor, ceil = f0_range
    fitted = {
        "energy": noisy_energy_db,
        "energy_causal": energy_above_floor_db,
        "logmel": lambda x: log_mel(x, bank),
    }
    methods = {
        "silero": SileroVad(),
        "webrtcvad": lambda x: webrtc_vad(x),
        **fitted,
        "harvest": lambda x: world_f0(x, "harvest", floor, ceil),
        "dio": lambda x: world_f0(x, "dio", floor, ceil),
        "pyin": lambda x: pyin_f0(x, floor, ceil),
    }
    training, _, _ = per_frame(fit, fitted, timing=False)
    features, cpu, audio_seconds = per_frame(scored, methods, timing=True)
    labels, snrs = scored.labels, scored.snrs
    fit_vad, _ = task_target(fit.labels, TASK["vad"])
    vad, _ = task_target(labels, TASK["vad"])
    results: dict[str, Any] = {
        "silero": scored_as(TASK["vad"], vad, (features["silero"] > SILERO_THRESHOLD).astype(np.int64), snrs),
        "webrtcvad": scored_as(TASK["vad"], vad, features["webrtcvad"].astype(np.int64), snrs),
    }
    for name, grid in (("energy", PEAK_GRID_DB), ("energy_causal", FLOOR_GRID_DB)):
        threshold = best_threshold(training[name], fit_vad == 1, grid)
        predicted = (features[name] >= threshold).astype(np.int64)
        results[name] = {**scored_as(TASK["vad"], vad, predicted, snrs), "threshold_db": threshold}

    voiced = task_rows(labels, TASK["f0"])
    f0, _ = task_target(labels[voiced], TASK["f0"])
    for name in ("harvest", "dio", "pyin"):
        estimate = features[name][voiced]
        results[name] = {**scored_as(TASK["f0"], f0, estimate, snrs[voiced]), **pitch_scores(f0, estimate)}

    fit_noise, classes = task_target(fit.labels, TASK["noise"])
    noise, _ = task_target(labels, TASK["noise"], classes)
    model = noise_classifier().fit(training["logmel"], fit_noise)
    noise_logits = np.zeros((len(noise), len(classes)))
    classify_seconds = 0.0
    # one utterance at a time, as the features were computed and the probes are timed
    for start, end in utterance_spans(labels["utt_id"].to_numpy()):
        logits = timed(
            lambda start=start, end=end: raw_outputs(model, features["logmel"][start:end], "multiclass", len(classes)),
            TIMING_REPEATS,
        )
        noise_logits[start:end] = logits.value
        classify_seconds += logits.cpu_seconds
    # the probes' in-context protocol (see maskscope.analysis.probes), so the two stay comparable
    utterances = labels["utt_id"].to_numpy()
    by_context = context_curve(noise_logits, noise, "multiclass", utterances, settings.context_frames)
    results["logmel_logreg"] = {
        **scored_as(TASK["noise"], noise, decide("multiclass", noise_logits), snrs),
        "accuracy_by_context": {str(frames): round(score["accuracy"], 4) for frames, score in by_context.items()},
    }

    # Inference cost only (fitting is a one-off): feature extraction plus the decision.
    cost_seconds = {name: cpu[name] for name in results if name in cpu}
    cost_seconds["logmel_logreg"] = cpu["logmel"] + classify_seconds
    for name, seconds in cost_seconds.items():
        results[name]["cpu_seconds_per_audio_second"] = round(seconds / audio_seconds, 6)
        results[name]["cpu_us_per_frame"] = round(1e6 * seconds / (audio_seconds * FRAMES_PER_SECOND), 3)
        for key, value in results[name].items():
            if isinstance(value, float):
                results[name][key] = round(value, 4) if np.isfinite(value) else None
    summary = {
        "fit_utterances": int(fit.labels["utt_id"].nunique()),
        "utterances": int(labels["utt_id"].nunique()),
        "frames": len(labels),
        "audio_seconds": round(audio_seconds, 2),
    }
    return {**summary, "methods": results}


def scored_as(task: Task, target: np.ndarray, predicted: np.ndarray, snrs: np.ndarray) -> dict[str, Any]:
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
