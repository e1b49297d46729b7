"""How much could any router gain? Routing slim-static by where the speech is, known or detected.

The trained routers score what a blind mixture of widths at their shares would (router_lookahead.py).
This bounds what routing can give on this model and data: slim-static's own weights (no fine-tuning,
so every row is at equal training), routed per segment by a speech detector, speech at the wide width
and the rest at the narrow one. Detectors: the *clean* speech (a segment holding any frame the labels'
energy VAD calls active: the oracle, which sees the segment it decides), the same one segment late
(what a causal router could know at best), the pipeline's router module trained on the train split to
copy the oracle, and a logistic classifier on the segment's 40 noisy log-mel bands (mean, spread, and
the rise of the mean above its running minimum over the earlier segments, a causal noise-floor
estimate; its front end's cost is not in the MACs). Each detector is scored as it is and with a
hangover (`--hangover` samples: a segment stays wide while any of the segments that span back saw
speech), the classic VAD remedy for missed speech tails. Controls: random widths at the oracle's
shares (what knowing the content is worth at equal cost) and the inverse (speech narrow, the rest
wide). Scored on the test split as `evaluate` does (PESQ, STOI; MACs per sample with the router's
features) and by the training loss on whole utterances (`se_loss`, as the valid loss), which is what
a router learns from. One JSON line per routing.
An experiment, not a pipeline stage: it writes nothing. Run it where a slimming run finished:

    python benchmarks/router_oracle.py --segment 1024             # causal detectors
    python benchmarks/router_oracle.py --segment 1024 --lookahead # the detectors also see the segment they decide
    python benchmarks/router_oracle.py --model models/slim-dyn-25 # a routed model's fine-tuned backbone instead
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from maskscope.analysis.baselines import log_mel, mel_filterbank
from maskscope.core import framing
from maskscope.core.constants import MODEL_FILE
from maskscope.evaluation.scoring import enhance, mean_scores, score, segment_of_frames
from maskscope.evaluation.systems import routed_system
from maskscope.models.checkpoint import load_model
from maskscope.models.demucs import SegmentRouter, SlimDemucs, SlimDemucsConfig, input_scale
from maskscope.models.from_params import slim_config
from maskscope.pipeline.config import VariantParams, load_params
from maskscope.training.loop import Utterance, load_split, se_loss

IMITATION_EPOCHS = 5
# width pairs (speech, the rest) tried, as indices into slimming.widths (1/8, 1/4, 1/2, 1)
POLICIES = ((1, 0), (2, 0), (2, 1))


class FixedRouter(nn.Module):
    """Stands in for the router: returns the logits of choices set before each utterance."""

    def __init__(self, widths: int) -> None:
        super().__init__()
        self.widths = widths
        self.choices = torch.zeros(1, dtype=torch.int64)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return 10.0 * nn.functional.one_hot(self.choices, self.widths)[None].to(audio.dtype)


def oracle_speech_segments(clean: np.ndarray, segment: int, vad_db: float) -> np.ndarray:
    """Per segment: does it hold an STFT frame (by its centre sample) the labels' energy VAD calls active?"""
    active = framing.active_frames(clean, vad_db)
    is_speech = np.zeros(-(-clean.size // segment), dtype=bool)
    is_speech[segment_of_frames(active.size, segment, is_speech.size)[active]] = True
    return is_speech


def one_segment_late(is_speech: np.ndarray) -> np.ndarray:
    """What a causal router could know: each segment gets the previous one's truth, the first none."""
    return np.concatenate([[False], is_speech[:-1]])


def with_hangover(is_speech: np.ndarray, segments: int) -> np.ndarray:
    """Speech while any of the last `segments` segments, or this one, was: holds the wide width over tails."""
    held = is_speech.copy()
    for back in range(1, segments + 1):
        held[back:] |= is_speech[:-back]
    return held


def normalized(noisy: np.ndarray, config: SlimDemucsConfig) -> torch.Tensor:
    """(1, samples) input as the model's router sees it: divided by the utterance's standard deviation."""
    audio = torch.from_numpy(noisy)[None]
    return audio / input_scale(audio, config)


def imitating_router(config: SlimDemucsConfig, train_set: list[Utterance], vad_db: float, seed: int) -> SegmentRouter:
    """The pipeline's router (same features, same causality), trained on the train split to tell the
    oracle's speech segments (its output 1) from the rest (its output 0) by cross-entropy."""
    torch.manual_seed(seed)
    router = SegmentRouter(config)
    optimizer = torch.optim.Adam(router.parameters(), lr=3e-3)
    for _epoch in range(IMITATION_EPOCHS):
        for batch_start in range(0, len(train_set), 16):
            optimizer.zero_grad()
            for utterance in train_set[batch_start : batch_start + 16]:
                is_speech = oracle_speech_segments(utterance.clean, config.segment, vad_db)
                target = torch.from_numpy(is_speech.astype(np.int64))
                logits = router(normalized(utterance.noisy, config))[0]
                (nn.functional.cross_entropy(logits, target) / 16).backward()
            optimizer.step()
    return router.eval()


def router_detects(router: SegmentRouter, noisy: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = router(normalized(noisy, router.config))[0]
    return (logits[:, 1] > logits[:, 0]).numpy()


def segment_log_mel(noisy: np.ndarray, segment: int, bank: np.ndarray, lookahead: bool) -> np.ndarray:
    """(segments, 3 x bands): over each segment's frames of the noisy log-mel energies, the mean, the
    standard deviation, and the mean's rise above its minimum over the segments before (zero where
    there is none yet); causal (segment k gets segment k-1's, the first zeros) unless `lookahead`."""
    frames = log_mel(noisy, bank)
    segments = -(-noisy.size // segment)
    owner = segment_of_frames(len(frames), segment, segments)
    mean = np.zeros((segments, frames.shape[1]))
    spread = np.zeros_like(mean)
    for k in range(segments):
        own = frames[owner == k]
        if len(own):
            mean[k], spread[k] = own.mean(axis=0), own.std(axis=0)
    floor = np.vstack([mean[:1], np.minimum.accumulate(mean, axis=0)[:-1]])
    features = np.hstack([mean, spread, mean - floor])
    return features if lookahead else np.vstack([np.zeros_like(features[:1]), features[:-1]])


def log_mel_detector(
    train_set: list[Utterance], segment: int, bank: np.ndarray, lookahead: bool, vad_db: float
) -> Callable[[np.ndarray], np.ndarray]:
    """A logistic speech/rest classifier on `segment_log_mel`, fitted on the train split to the oracle."""
    features = np.concatenate([segment_log_mel(u.noisy, segment, bank, lookahead) for u in train_set])
    targets = np.concatenate([oracle_speech_segments(u.clean, segment, vad_db) for u in train_set])
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features, targets)
    return lambda noisy: classifier.predict(segment_log_mel(noisy, segment, bank, lookahead)).astype(bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segment", type=int, default=1024, help="input samples per routing decision")
    parser.add_argument("--vad-db", type=float, default=-35.0)
    parser.add_argument(
        "--hangover", type=int, default=4096, help="input samples a detected speech segment holds the wide width"
    )
    parser.add_argument(
        "--lookahead", action="store_true", help="the trained detectors also see the segment they decide"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("models/slim-static"),
        help="weights routed (a slim-dyn's router is set aside)",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(2)
    test_set = load_split(Path("data/mix"), "test", limit=params.evaluate.test_utterances or None)
    base, _ = load_model(args.model / MODEL_FILE)
    config = replace(
        slim_config(params.slimming, VariantParams(kind="slim-dyn", target_usage=0.25)),
        segment=args.segment,
        router_lookahead=args.lookahead,
    )
    model = SlimDemucs(config)
    backbone = {key: value for key, value in base.state_dict().items() if not key.startswith("router.")}
    model.load_state_dict(backbone, strict=False)
    fixed = model.router = FixedRouter(len(config.widths))
    train_set = load_split(Path("data/mix"), "train")
    hangover = args.hangover // config.segment
    speech = [oracle_speech_segments(u.clean, config.segment, args.vad_db) for u in test_set]
    rng = np.random.default_rng(params.seed)

    def run(name: str, routes: list[np.ndarray], speech_uf: float, other_uf: float, **extra: object) -> None:
        """Score one routing: the width index of every segment of every test utterance."""
        started = time.perf_counter()
        outputs = []
        for utterance, choices in zip(test_set, routes, strict=True):
            fixed.choices = torch.from_numpy(choices)
            outputs.append(enhance(model, utterance.noisy))
        jobs = [(u.clean, output.audio, False) for u, output in zip(test_set, outputs, strict=True)]
        with get_context("spawn").Pool(2) as pool:
            quality = mean_scores(pool.map(score, jobs, chunksize=4))
        losses = [
            float(
                se_loss(
                    framing.stft(torch.from_numpy(o.audio)[None]),
                    framing.stft(torch.from_numpy(u.clean)[None]),
                    torch.tensor([u.level]),
                )
            )
            for u, o in zip(test_set, outputs, strict=True)
        ]
        system = routed_system(model, outputs, test_set)
        result = {
            "routing": name,
            "segment_samples": config.segment,
            "speech_uf": speech_uf,
            "other_uf": other_uf,
            **extra,
            "pesq": quality["pesq"],
            "stoi": quality["stoi"],
            "training_loss": round(float(np.mean(losses)), 4),
            "average_uf": system.extra["average_uf"],
            "uf_share": system.extra["uf_share"],
            "macs_per_sample": round(system.macs_per_sample, 1),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(result), flush=True)

    for width in sorted({w for policy in POLICIES for w in policy}):
        uf = config.widths[width]
        run("static", [np.full(len(is_speech), width) for is_speech in speech], uf, uf)
    # Speech or not is the same question for every policy: each detector decides once.
    module = imitating_router(config, train_set, args.vad_db, params.seed)
    by_log_mel = log_mel_detector(train_set, config.segment, mel_filterbank(), args.lookahead, args.vad_db)
    detected = {
        "oracle": speech,
        "oracle one segment late": [one_segment_late(is_speech) for is_speech in speech],
        "router-module imitation": [router_detects(module, u.noisy) for u in test_set],
        "log-mel imitation": [by_log_mel(u.noisy) for u in test_set],
    }
    truth = np.concatenate(speech)
    for wide, narrow in POLICIES:
        uf = {"speech_uf": config.widths[wide], "other_uf": config.widths[narrow]}
        for name, decisions in detected.items():
            agreement = round(float(np.mean(np.concatenate(decisions) == truth)), 4)
            trained = {"sees_its_segment": args.lookahead} if "imitation" in name else {}
            run(name, [np.where(d, wide, narrow) for d in decisions], **uf, **trained, agreement_with_oracle=agreement)
            if hangover:
                held = [with_hangover(d, hangover) for d in decisions]
                run(
                    f"{name} + hangover",
                    [np.where(d, wide, narrow) for d in held],
                    **uf,
                    **trained,
                    hangover_segments=hangover,
                )
        share_wide = float(np.mean(truth))
        drawn = [np.where(rng.random(len(is_speech)) < share_wide, wide, narrow) for is_speech in speech]
        run("random", drawn, **uf)
        run(
            "inverse",
            [np.where(is_speech, narrow, wide) for is_speech in speech],
            config.widths[narrow],
            config.widths[wide],
        )


if __name__ == "__main__":
    main()
