"""Probes: interpretable predictors of signal properties read from gate-mask bits.

Every probe is linear in the 0/1 bits, so one prediction is the bias plus the weights of the
selected gates that are open in that frame: a handful of additions. Bits are selected along the
L1 (lasso) path: LARS on the fitting frames, the order in which bits enter the path, K first.
Probes are fitted on one split and scored on others (no speaker on both sides); cross-validation
folds group frames by voice family (the human behind TTS voices, a real speaker alone), and
selection and fitting see only the fitting folds.

Scores "in context" average a probe's raw outputs (logits or values) over the last N frames of the
utterance before deciding: a causal running mean, two more additions per output and frame, no
added latency. Properties that hold for seconds (the noise type) gain from it; ones that change from
frame to frame (voice activity, SNR) lose.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge, lars_path_gram
from sklearn.model_selection import GroupKFold

from maskscope.core.errors import MissingInputError
from maskscope.core.io import read_shards
from maskscope.core.seeding import item_seed
from maskscope.data.splits import speaker_families

Kind = Literal["binary", "multiclass", "regression"]
# The code of a scored frame's noise class that the probes never saw fitting.
UNFITTED_CLASS = -1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    name: str
    kind: Kind
    frames: str  # which frames it is scored on: "all", "voiced" or "speech"


TASKS = (
    Task("vad", "binary", "all"),
    Task("noise", "multiclass", "all"),
    Task("f0", "regression", "voiced"),  # F0 in Hz, on frames WORLD calls voiced
    Task("snr", "regression", "speech"),  # per-frame SNR in dB, on frames with speech (VAD)
)


def task_rows(labels: pd.DataFrame, task: Task) -> np.ndarray:
    """Boolean selection of the label rows a task uses."""
    if task.frames == "voiced":
        return labels["voiced"].to_numpy(bool)
    if task.frames == "speech":
        return labels["vad"].to_numpy(bool)
    return np.ones(len(labels), dtype=bool)


def task_target(
    labels: pd.DataFrame, task: Task, classes: list[str] | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """Targets of the selected rows: 0/1, class codes (with the class names) or values.

    Class codes follow `classes` when given (those a probe was fitted on), else the labels' own; a
    class outside `classes` gets code UNFITTED_CLASS, which no prediction equals: scored as wrong."""
    if task.name == "vad":
        return labels["vad"].to_numpy(np.int64), None
    if task.name == "noise":
        classes = classes or sorted(labels["noise_class"].unique())
        unfitted = sorted(set(labels["noise_class"]) - set(classes))
        if unfitted:
            log.warning("noise classes %s were never seen fitting the probes; their frames count as wrong", unfitted)
        codes = labels["noise_class"].map({c: i for i, c in enumerate(classes)}).fillna(UNFITTED_CLASS)
        return codes.to_numpy(np.int64), classes
    column = "f0_hz" if task.name == "f0" else "snr_db"
    return labels[column].to_numpy(np.float64), None


def l1_ranking(bits: np.ndarray, target: np.ndarray, k: int, kind: Kind) -> np.ndarray:
    """Up to k bit indices in the order they enter the lasso path of `target` on `bits`.

    A class target is ranked one-vs-rest per class and the rankings are interleaved."""
    x = bits.astype(np.float64)
    x -= x.mean(axis=0)
    varying = np.flatnonzero(x.var(axis=0) > 0)  # constant bits carry nothing
    x = x[:, varying]
    gram = x.T @ x
    columns = np.eye(target.max() + 1)[target] if kind == "multiclass" else target.reshape(-1, 1).astype(np.float64)
    rankings = []
    for column in columns.T:
        xy = x.T @ (column - column.mean())
        with warnings.catch_warnings():
            # Late in the path, nearly collinear bits make LARS drop one or stop early; the order of
            # entry up to there is what is used.
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, active, _ = lars_path_gram(xy, gram, n_samples=len(x), max_iter=k, method="lasso")
        rankings.append([int(varying[i]) for i in active])
    order: list[int] = []
    for position in range(max(map(len, rankings), default=0)):
        for ranking in rankings:
            if position < len(ranking) and ranking[position] not in order:
                order.append(ranking[position])
    # Nothing varies (e.g. a router that always picks one width): keep one bit, so the probe is its
    # bias alone (a constant bit gets no weight) instead of a model with no input.
    return np.array(order[:k] or [0], dtype=np.int64)


def fit_probe(
    bits: np.ndarray, target: np.ndarray, kind: Kind, inverse_penalty: float = 1.0
) -> LogisticRegression | Ridge:
    """A linear probe on raw 0/1 bits (no scaling), so its weights read directly as gate weights.

    `inverse_penalty` is the logistic probes' C; the ridge probes' alpha is its inverse."""
    x = bits.astype(np.float32)
    if kind == "regression":
        return Ridge(alpha=1.0 / inverse_penalty).fit(x, target)
    # tol 1e-3: within a point of full convergence, at a third of the time (measured on default masks)
    return LogisticRegression(C=inverse_penalty, tol=1e-3, max_iter=300).fit(x, target)


def decide(kind: Kind, raw: np.ndarray) -> np.ndarray:
    """Predictions from (frames, outputs) raw outputs: class 1 if the logit is positive, the
    largest logit's class, or the value."""
    if kind == "binary":
        return (raw[:, 0] > 0).astype(np.int64)
    if kind == "multiclass":
        return raw.argmax(axis=1)
    return raw[:, 0]


# The logit of a class the probe never saw fitting (a fold without it): finite, so running sums stay exact.
ABSENT_CLASS_LOGIT = -1e6


def raw_outputs(probe: object, x: np.ndarray, kind: Kind, classes: int = 0) -> np.ndarray:
    """(frames, outputs): a logistic probe's logits (one column if binary; one per class of `classes`
    if multiclass, placed by the probe's `classes_`) or a regression probe's values."""
    if kind == "regression":
        return probe.predict(x).reshape(len(x), 1)
    logits = probe.decision_function(x)
    if kind == "binary":
        return logits.reshape(len(x), 1)
    if logits.ndim == 1:  # fitted on two classes: one logit, of the second
        logits = np.stack([np.zeros_like(logits), logits], axis=1)
    full = np.full((len(x), classes), ABSENT_CLASS_LOGIT)
    full[:, probe.classes_] = logits
    return full


def utterance_spans(utterances: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) rows of each utterance, from the name of each row's; an utterance's rows must be
    contiguous."""
    starts = np.flatnonzero(np.r_[True, utterances[1:] != utterances[:-1]])
    if len(starts) != len(set(utterances[starts])):
        raise ValueError("rows of one utterance are not contiguous: sort the frames by (utterance, frame) first")
    return list(zip(starts.tolist(), np.r_[starts[1:], len(utterances)].tolist(), strict=True))


def causal_mean(raw: np.ndarray, utterances: np.ndarray, frames: int) -> np.ndarray:
    """Each row averaged with the rows before it, up to `frames` rows, within its utterance.

    Rows are frames in time order, an utterance's rows contiguous (`utterances` names each row's)."""
    if frames < 1:
        raise ValueError(f"a context of {frames} frames: it must be at least 1")
    raw = raw.reshape(len(raw), -1)
    averaged = np.empty(raw.shape, dtype=np.float64)
    for start, end in utterance_spans(utterances):
        running = np.cumsum(raw[start:end], axis=0, dtype=np.float64)
        window_sum = running.copy()
        window_sum[frames:] -= running[:-frames]
        counts = np.minimum(np.arange(1, end - start + 1), frames)[:, None]
        averaged[start:end] = window_sum / counts
    return averaged


def context_windows(longest: int) -> list[int]:
    """Context lengths of the score-versus-context curve: 1, 2, 4, ... up to and including `longest`."""
    return sorted({2**i for i in range(int(np.log2(max(longest, 1))) + 1)} | {longest})


def context_curve(
    raw: np.ndarray, target: np.ndarray, kind: Kind, utterances: np.ndarray, longest: int
) -> dict[int, dict[str, float]]:
    """Scores of the decisions from `raw` outputs averaged over each context of `context_windows(longest)`."""
    return {
        frames: scores(kind, target, decide(kind, causal_mean(raw, utterances, frames)))
        for frames in context_windows(longest)
    }


def scores(kind: Kind, target: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    if kind == "regression":
        residual = target - predicted
        total = float(np.sum((target - target.mean()) ** 2))
        r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan")
        return {"r2": r2, "mae": float(np.mean(np.abs(residual)))}
    return {"accuracy": float(np.mean(target == predicted))}


# A pitch estimate more than 20 % off the reference is a gross error (the usual GPE criterion).
GROSS_PITCH_ERROR = 0.2


def pitch_scores(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Pitch error apart from voicing, on frames the labels call voiced: the share the estimate calls
    voiced too (estimate > 0), and there R² and the gross pitch error rate (> 20 % off)."""
    both = estimate > 0
    if not both.any():
        return {"voiced_recall": 0.0, "r2_both_voiced": float("nan"), "gross_error_rate": float("nan")}
    on_both = scores("regression", reference[both], estimate[both])
    relative = np.abs(estimate[both] - reference[both]) / reference[both]
    return {
        "voiced_recall": float(both.mean()),
        "r2_both_voiced": on_both["r2"],
        "gross_error_rate": float(np.mean(relative > GROSS_PITCH_ERROR)),
    }


def main_score(kind: Kind) -> str:
    return "r2" if kind == "regression" else "accuracy"


def metric_name(task: Task) -> str:
    """The metrics key of a task's main score: `vad_accuracy`, `f0_r2`, ..."""
    return f"{task.name}_{main_score(task.kind)}"


# VoiceBank+DEMAND, the papers' data, mixes at 0 to 15 dB (train) and 2.5 to 17.5 dB (test) SNR.
PAPER_MIN_SNR_DB = 0.0


def scores_by_snr(
    kind: Kind, target: np.ndarray, predicted: np.ndarray, snrs: np.ndarray
) -> tuple[dict[str, float | None], float | None]:
    """The main score on the frames of each mixture SNR (keyed like "-5"), rounded to 4 digits, and
    on the frames of all mixtures at PAPER_MIN_SNR_DB and above (None if there are none). A score
    that is not a number (R² of a constant target) is None too: JSON has no NaN."""
    key = main_score(kind)

    def score(rows: np.ndarray) -> float | None:
        value = scores(kind, target[rows], predicted[rows])[key]
        return round(value, 4) if np.isfinite(value) else None

    paper_range = snrs >= PAPER_MIN_SNR_DB
    in_paper_range = score(paper_range) if paper_range.any() else None
    return {f"{snr:g}": score(snrs == snr) for snr in np.unique(snrs)}, in_paper_range


def frame_families(labels: pd.DataFrame, corpus_dir: Path) -> np.ndarray:
    """The voice family of each label row's speaker: TTS voices built from one human share a
    timbre, so cross-validation keeps them on one side like the splits do."""
    families = speaker_families(corpus_dir)
    unknown = sorted(set(labels["speaker"]) - set(families))
    if unknown:
        raise MissingInputError(
            f"{corpus_dir}/manifest.parquet: speakers {unknown[:5]} of the labels are not in the corpus; the labels "
            "were made from another corpus: rerun the pipeline (dvc repro) so both come from the same one"
        )
    return labels["speaker"].map(families).to_numpy()


def speaker_folds(groups: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, score) row indices with no group (voice family) on both sides."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"speaker-disjoint cross-validation needs at least 2 voice families, got {n_groups}")
    return list(GroupKFold(n_splits=min(folds, n_groups)).split(np.zeros(len(groups)), groups=groups))


@dataclass(frozen=True)
class Fold:
    fit: np.ndarray  # row indices the probe is selected and fitted on
    held_out: np.ndarray  # row indices it predicts: voice families the fit rows do not have
    ranking: np.ndarray  # the fit rows' L1 path


def ranked_folds(
    bits: np.ndarray, target: np.ndarray, groups: np.ndarray, kind: Kind, longest: int, folds: int
) -> list[Fold]:
    """Voice-family folds with each one's L1 path up to `longest` bits, computed once for every K
    and penalty that is cross-validated on them (the path is the costly part)."""
    return [
        Fold(fit, held_out, l1_ranking(bits[fit], target[fit], longest, kind))
        for fit, held_out in speaker_folds(groups, folds)
    ]


def held_out_outputs(
    bits: np.ndarray,
    target: np.ndarray,
    groups: np.ndarray,
    kind: Kind,
    ks: list[int],
    folds: int | list[Fold],
    inverse_penalty: float = 1.0,
) -> dict[int, np.ndarray]:
    """For each K, every row's raw output from the probe on the first K bits of the L1 path that was
    selected and fitted on the folds without the row's voice family (`folds`: how many, or the
    ranked folds to reuse)."""
    if isinstance(folds, int):
        folds = ranked_folds(bits, target, groups, kind, max(ks), folds)
    raw: dict[int, np.ndarray] = {}
    for fold in folds:
        fit, held_out, ranking = fold.fit, fold.held_out, fold.ranking
        for k in ks:
            selected = ranking[:k]
            probe = fit_probe(bits[fit][:, selected], target[fit], kind, inverse_penalty)
            x = bits[held_out][:, selected].astype(np.float32)
            outputs = raw_outputs(probe, x, kind, int(target.max()) + 1 if kind == "multiclass" else 0)
            raw.setdefault(k, np.zeros((len(target), outputs.shape[1])))[held_out] = outputs
    return raw


def score_curve(
    bits: np.ndarray, target: np.ndarray, groups: np.ndarray, kind: Kind, ks: list[int], folds: int
) -> dict[int, dict[str, float]]:
    """Cross-validated scores of the probe on the first K bits of the L1 path, for each K.

    Held-out predictions of all folds are pooled before scoring."""
    return curve_scores(kind, target, held_out_outputs(bits, target, groups, kind, ks, folds))


def curve_scores(kind: Kind, target: np.ndarray, raw: dict[int, np.ndarray]) -> dict[int, dict[str, float]]:
    """Scores of the decisions from each K's raw outputs."""
    return {k: scores(kind, target, decide(kind, outputs)) for k, outputs in raw.items()}


def block_scores(
    bits: np.ndarray, target: np.ndarray, groups: np.ndarray, kind: Kind, blocks: int, folds: int, frames: int
) -> list[float]:
    """Cross-validated main score of a probe on all bits of one block, for each block, on at most
    `frames` evenly spaced frames (nine probes per task: the map must stay affordable)."""
    keep = np.linspace(0, len(target) - 1, min(frames, len(target))).astype(np.int64)
    bits, target, groups = bits[keep], target[keep], groups[keep]
    hidden = bits.shape[1] // blocks
    result = []
    for block in range(blocks):
        columns = slice(block * hidden, (block + 1) * hidden)
        predicted = np.zeros(len(target))
        for fit, held_out in speaker_folds(groups, folds):
            probe = fit_probe(bits[fit][:, columns], target[fit], kind)
            predicted[held_out] = probe.predict(bits[held_out][:, columns].astype(np.float32))
        result.append(scores(kind, target, predicted)[main_score(kind)])
    return result


@dataclass(frozen=True)
class ExportedProbe:
    """A probe as a weight table: prediction = bias + sum of the weights of the open selected gates."""

    task: str
    kind: Kind
    bits: np.ndarray  # (K,) selected bit indices
    weights: np.ndarray  # (outputs, K)
    bias: np.ndarray  # (outputs,)
    classes: list[str] | None

    @cached_property
    def _in_memory_order(self) -> tuple[np.ndarray, np.ndarray]:
        # Evaluated as a device would: float32 weights, selected columns read in memory order (gathering
        # bits as bytes and in ascending order measured 5x faster than a float64 gather in path order).
        order = np.argsort(self.bits, kind="stable")
        return self.bits[order], np.ascontiguousarray(self.weights[:, order].T, dtype=np.float32)

    def raw(self, frame_bits: np.ndarray) -> np.ndarray:
        """(frames, outputs) sums, from (frames, all bits) 0/1 masks (bool or integer)."""
        columns, weights = self._in_memory_order
        gathered = np.take(frame_bits, columns, axis=1)
        if gathered.dtype == np.bool_:
            gathered = gathered.view(np.uint8)
        return (gathered.astype(np.float32) @ weights).astype(np.float64) + self.bias

    def predict(self, frame_bits: np.ndarray) -> np.ndarray:
        return decide(self.kind, self.raw(frame_bits))

    def ops_per_frame(self, open_fraction: float = 1.0) -> float:
        """Additions and comparisons per frame when `open_fraction` of the selected gates are open
        (1.0: the worst case). Gates are 0/1, so there are no multiplications."""
        outputs = self.weights.shape[0]
        adds = outputs * len(self.bits) * open_fraction
        decision = {"binary": 1, "multiclass": outputs - 1, "regression": 0}[self.kind]
        return adds + decision

    def running_mean_ops(self) -> int:
        """Operations per frame the causal context adds: a running sum over the window adds the newest
        output and subtracts the one leaving."""
        return 2 * self.weights.shape[0]

    def to_dict(self) -> dict:
        """The probe as JSON-ready lists, as a device reads it (see `from_dict`)."""
        return {
            "kind": self.kind,
            "bits": self.bits.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "classes": self.classes,
        }

    @classmethod
    def from_dict(cls, task: str, entry: dict) -> ExportedProbe:
        weights = np.asarray(entry["weights"], dtype=np.float64).reshape(len(entry["bias"]), len(entry["bits"]))
        return cls(
            task,
            entry["kind"],
            np.asarray(entry["bits"], dtype=np.int64),
            weights,
            np.asarray(entry["bias"], dtype=np.float64),
            entry["classes"],
        )

    def table(self, hidden: int) -> pd.DataFrame:
        rows = []
        names = self.classes if self.kind == "multiclass" else [self.task]
        for output, name in enumerate(names):
            rows.append({"output": name, "bit": -1, "block": -1, "channel": -1, "weight": float(self.bias[output])})
            for bit, weight in zip(self.bits, self.weights[output], strict=True):
                rows.append(
                    {
                        "output": name,
                        "bit": int(bit),
                        "block": int(bit) // hidden,
                        "channel": int(bit) % hidden,
                        "weight": float(weight),
                    }
                )
        return pd.DataFrame(rows)


def export_probes(
    bits: np.ndarray,
    target: np.ndarray,
    task: Task,
    ks: list[int],
    classes: list[str] | None,
    inverse_penalty: float = 1.0,
) -> dict[int, ExportedProbe]:
    """For each K, the probe on the first K bits of one L1 path over all the given frames, as a
    weight table. The path runs to the largest K, as in `held_out_outputs`."""
    ranking = l1_ranking(bits, target, max(ks), task.kind)
    return {k: _exported(bits, target, task, ranking[:k], classes, inverse_penalty) for k in ks}


def _exported(
    bits: np.ndarray,
    target: np.ndarray,
    task: Task,
    selected: np.ndarray,
    classes: list[str] | None,
    inverse_penalty: float,
) -> ExportedProbe:
    probe = fit_probe(bits[:, selected], target, task.kind, inverse_penalty)
    weights = np.atleast_2d(probe.coef_).astype(np.float64)
    bias = np.atleast_1d(probe.intercept_).astype(np.float64)
    if task.kind == "multiclass" and len(weights) == 1:
        # Two classes: one logit for the second class; a zero row for the first keeps argmax exact.
        weights = np.vstack([np.zeros_like(weights), weights])
        bias = np.concatenate([[0.0], bias])
    return ExportedProbe(task.name, task.kind, selected, weights, bias, classes)


def probe_utterances(utt_ids: list[str], seed: int, count: int) -> list[str]:
    """The mixtures probes and baselines are scored on: a seeded choice, stable as others are added."""
    ranked = sorted(set(utt_ids), key=lambda utt_id: item_seed(seed, "probe", utt_id))
    return sorted(ranked[:count] if count else ranked)


def mixture_snrs(labels: pd.DataFrame, mix_dir: Path, splits: list[str]) -> np.ndarray:
    """Each label row's mixture SNR in dB (what the `mix` stage drew for the whole mixture)."""
    drawn = pd.concat([read_shards(mix_dir, split, ["utt_id", "snr_db"]).to_pandas() for split in splits])
    snrs = labels["utt_id"].map(drawn.set_index("utt_id")["snr_db"])
    if snrs.isna().any():
        missing = sorted(set(labels.loc[snrs.isna(), "utt_id"]))[:3]
        raise MissingInputError(
            f"{mix_dir}: no mixture for label utterances such as {missing}; the labels were made from other"
            " mixtures: rerun the pipeline (dvc repro) so both come from the same `mix` run"
        )
    return snrs.to_numpy(np.float64)


def probe_labels(labels_dir: Path, splits: list[str], seed: int, utterances: int) -> pd.DataFrame:
    """Frame labels of the chosen mixtures, in (split, utt_id, frame) order."""
    frames = pd.concat([pq.read_table(labels_dir / f"{split}.parquet").to_pandas() for split in splits])
    chosen = set(probe_utterances(frames["utt_id"].tolist(), seed, utterances))
    return frames[frames["utt_id"].isin(chosen)].reset_index(drop=True)
