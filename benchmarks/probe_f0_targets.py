"""Which F0 target can a linear read-out of the gate bits honestly reach? Fitted on the fit split's
masks, scored once on the scored split, as the probes stage does.

Targets, each fitted by ridge on all gate bits and on the probes stage's K bits (its L1 path):
- `hz_voiced`: F0 in Hz on frames WORLD calls voiced (the probes stage's headline);
- `log_voiced`: log2 F0 on voiced frames, scored in log2 and back in Hz;
- `track_all_frames`: WORLD's whole track, 0 Hz where unvoiced, on every frame (voicing alone then
  explains much of the variance: not comparable with the papers' R² on voiced frames);
- `within_speaker`: F0 minus each speaker's mean F0 on voiced frames (how much of the pitch
  movement, rather than the speaker's register, the bits carry).
One JSON line per target and bit set. Writes nothing. Needs a finished `make repro`.

    python benchmarks/probe_f0_targets.py [--variant dyncp-25]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from maskscope.analysis.masks import aligned_bits, read_masks
from maskscope.analysis.probes import l1_ranking, probe_labels, scores
from maskscope.core.constants import FOCUS_VARIANT
from maskscope.pipeline.config import load_params


def frames(split: str, utterances: int, seed: int, variant: str) -> tuple[pd.DataFrame, np.ndarray]:
    labels = probe_labels(Path("data/labels"), [split], seed, utterances)
    return labels, aligned_bits([read_masks(Path("data/masks") / variant / split)], labels, f"{variant} {split}")


def targets(labels: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(rows, target) per target form."""
    voiced = labels["voiced"].to_numpy(bool)
    f0 = labels["f0_hz"].to_numpy(np.float64)
    speaker_mean = pd.Series(f0[voiced]).groupby(labels["speaker"].to_numpy()[voiced]).transform("mean").to_numpy()
    return {
        "hz_voiced": (voiced, f0[voiced]),
        "log_voiced": (voiced, np.log2(f0[voiced])),
        "track_all_frames": (np.ones(len(labels), bool), np.where(voiced, f0, 0.0)),
        "within_speaker": (voiced, f0[voiced] - speaker_mean),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--variant", default=FOCUS_VARIANT)
    args = parser.parse_args()
    params = load_params(args.params)
    settings = params.probes
    fit_labels, fit_bits = frames(settings.fit_split, settings.fit_utterances, params.seed, args.variant)
    scored_split = settings.splits[0]
    test_labels, test_bits = frames(scored_split, settings.utterances, params.seed, args.variant)
    fitted, scored = targets(fit_labels), targets(test_labels)
    for name, (fit_rows, fit_target) in fitted.items():
        rows, target = scored[name]
        selected = l1_ranking(fit_bits[fit_rows], fit_target, settings.k_bits, "regression")
        for bits_used, columns in (("all", slice(None)), (f"K={len(selected)}", selected)):
            for penalty in settings.inverse_penalties:  # reported for each: the choice is not made on test
                probe = Ridge(alpha=1.0 / penalty).fit(fit_bits[fit_rows][:, columns].astype(np.float32), fit_target)
                predicted = probe.predict(test_bits[rows][:, columns].astype(np.float32))
                result = {
                    "variant": args.variant,
                    "target": name,
                    "bits": bits_used,
                    "inverse_penalty": penalty,
                    "fit_frames": int(fit_rows.sum()),
                    "scored_frames": int(rows.sum()),
                    "r2": round(scores("regression", target, predicted)["r2"], 4),
                }
                if name == "log_voiced":
                    hz = scores("regression", 2.0**target, 2.0**predicted)
                    result["r2_in_hz"] = round(hz["r2"], 4)
                print(json.dumps(result))


if __name__ == "__main__":
    main()
