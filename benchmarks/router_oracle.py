"""How much could any router gain? Routing slim-static by an oracle that knows where the speech is (issue 6).

The trained routers score what a blind mixture of widths at their shares would (router_lookahead.py).
This bounds what routing can give on this model and data: slim-static's own weights, routed per
segment by the *clean* speech (a segment with any frame within `--vad-db` of the utterance's loudest
frame is speech, as the labels' VAD), speech at the wide width and the rest at the narrow one. Each
oracle runs beside a control that draws every segment's width at random with the oracle's shares, so
the difference is what knowing the content is worth at equal cost, and beside the inverse (speech
narrow, the rest wide). Scored on the test split as `evaluate` does (PESQ, STOI; MACs per sample with
the router's features) and by the training loss on whole utterances (`se_loss`, as the valid loss),
which is what a router learns from. Two imitators of the oracle, trained on the train split, show
what a router's input can tell: the pipeline's router module (cross-entropy to the oracle's choices),
and a logistic speech/rest classifier on the mean and spread of the segment's 40 log-mel bands (its
front end's cost is not in the MACs). One JSON line per routing.
An experiment, not a pipeline stage: it writes nothing. Run it where a slimming run finished:

    python benchmarks/router_oracle.py --segment 1024             # causal imitators
    python benchmarks/router_oracle.py --segment 1024 --lookahead # the imitators also see the segment they decide
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from maskscope import framing
from maskscope.baselines import log_mel, mel_filterbank
from maskscope.config import VariantParams, load_params
from maskscope.evaluation import enhance, mean_scores, score
from maskscope.models.demucs import SegmentRouter, SlimDemucs, SlimDemucsConfig
from maskscope.stages.evaluate import routed_system
from maskscope.stages.train import MODEL_FILE, load_model, slim_config
from maskscope.training import Utterance, load_split, se_loss

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


def speech_segments(clean: np.ndarray, segment: int, frame: int, vad_db: float) -> np.ndarray:
    """Per segment: does any frame of it hold clean speech within `vad_db` of the loudest frame?"""
    segments = -(-clean.size // segment)
    padded = np.zeros(segments * segment)
    padded[: clean.size] = clean
    power = (padded.reshape(-1, frame) ** 2).mean(axis=1)
    active = 10 * np.log10(power + 1e-12) >= 10 * np.log10(power.max() + 1e-12) + vad_db
    return active.reshape(segments, -1).any(axis=1)


def imitating_router(
    config: SlimDemucsConfig, train_set: list[Utterance], wide: int, narrow: int, vad_db: float, seed: int
) -> SegmentRouter:
    """The pipeline's router (same features, same causality), trained on the train split to copy the
    oracle's choices by cross-entropy: can it tell speech segments from the rest at all?"""
    torch.manual_seed(seed)
    router = SegmentRouter(config)
    optimizer = torch.optim.Adam(router.parameters(), lr=3e-3)
    for _epoch in range(IMITATION_EPOCHS):
        for batch_start in range(0, len(train_set), 16):
            optimizer.zero_grad()
            for utterance in train_set[batch_start : batch_start + 16]:
                noisy = torch.from_numpy(utterance.noisy)[None]
                scale = noisy.std(dim=-1, correction=0, keepdim=True) + config.normalize_floor
                is_speech = speech_segments(utterance.clean, config.segment, config.router_frame, vad_db)
                target = torch.from_numpy(np.where(is_speech, wide, narrow))
                logits = router(noisy / scale)[0]
                (nn.functional.cross_entropy(logits, target) / 16).backward()
            optimizer.step()
    return router


def segment_log_mel(noisy: np.ndarray, segment: int, bank: np.ndarray, lookahead: bool) -> np.ndarray:
    """(segments, 2 x bands): mean and standard deviation over each segment's frames of the noisy
    log-mel energies; causal (segment k gets segment k-1's, the first zeros) unless `lookahead`."""
    frames = log_mel(noisy, bank)
    segments = -(-noisy.size // segment)
    owner = np.minimum(np.arange(len(frames)) * framing.HOP // segment, segments - 1)
    features = np.zeros((segments, 2 * frames.shape[1]))
    for k in range(segments):
        own = frames[owner == k]
        features[k] = np.concatenate([own.mean(axis=0), own.std(axis=0)]) if len(own) else 0.0
    return features if lookahead else np.vstack([np.zeros_like(features[:1]), features[:-1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segment", type=int, default=1024, help="input samples per routing decision")
    parser.add_argument("--vad-db", type=float, default=-35.0)
    parser.add_argument("--lookahead", action="store_true", help="the imitators also see the segment they decide")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    torch.set_num_threads(2)
    test_set = load_split(Path("data/mix"), "test", limit=params.evaluate.test_utterances or None)
    base, _ = load_model(Path("models/slim-static") / MODEL_FILE)
    config = replace(
        slim_config(params.slimming, VariantParams(kind="slim-dyn", target_usage=0.25)), segment=args.segment
    )
    model = SlimDemucs(config)
    model.load_state_dict(base.state_dict(), strict=False)
    fixed = model.router = FixedRouter(len(config.widths))
    train_set = load_split(Path("data/mix"), "train")
    speech = [speech_segments(u.clean, config.segment, config.router_frame, args.vad_db) for u in test_set]
    rng = np.random.default_rng(params.seed)

    def run(
        name: str,
        routes: list[np.ndarray] | SegmentRouter,
        speech_uf: float,
        other_uf: float,
        oracle: list[np.ndarray] | None = None,
    ) -> None:
        """Score one routing: given choices per utterance, or a router module deciding them (with
        `oracle`: the share of segments where it chose as the oracle did)."""
        started = time.perf_counter()
        if isinstance(routes, SegmentRouter):
            model.router = routes.eval()
            outputs = [enhance(model, utterance.noisy) for utterance in test_set]
            model.router = fixed
        else:
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
        system = routed_system(model, outputs)
        result = {
            "routing": name,
            "segment_samples": config.segment,
            "speech_uf": speech_uf,
            "other_uf": other_uf,
            "pesq": quality["pesq"],
            "stoi": quality["stoi"],
            "training_loss": round(float(np.mean(losses)), 4),
            "average_uf": system.extra["average_uf"],
            "uf_share": system.extra["uf_share"],
            "macs_per_sample": round(system.macs_per_sample, 1),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if isinstance(routes, SegmentRouter):
            result["sees_its_segment"] = routes.config.router_lookahead
        if oracle is not None:
            chosen = np.concatenate([output.choices for output in outputs])
            result["agreement_with_oracle"] = round(float(np.mean(chosen == np.concatenate(oracle))), 4)
        print(json.dumps(result), flush=True)

    for width in sorted({w for policy in POLICIES for w in policy}):
        uf = config.widths[width]
        run("static", [np.full(len(is_speech), width) for is_speech in speech], uf, uf)
    # A richer router front end, fitted once (speech or not is the same question for every policy).
    bank = mel_filterbank()
    fit_x = np.concatenate([segment_log_mel(u.noisy, config.segment, bank, args.lookahead) for u in train_set])
    fit_y = np.concatenate(
        [speech_segments(u.clean, config.segment, config.router_frame, args.vad_db) for u in train_set]
    )
    log_mel_vad = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(fit_x, fit_y)
    log_mel_speech = [
        log_mel_vad.predict(segment_log_mel(u.noisy, config.segment, bank, args.lookahead)) for u in test_set
    ]
    for wide, narrow in POLICIES:
        oracle = [np.where(is_speech, wide, narrow) for is_speech in speech]
        share_wide = float(np.mean(np.concatenate(oracle) == wide))
        drawn = [np.where(rng.random(len(is_speech)) < share_wide, wide, narrow) for is_speech in speech]
        inverse = [np.where(is_speech, narrow, wide) for is_speech in speech]
        run("oracle", oracle, config.widths[wide], config.widths[narrow])
        imitation = imitating_router(
            replace(config, router_lookahead=args.lookahead), train_set, wide, narrow, args.vad_db, params.seed
        )
        run("imitation", imitation, config.widths[wide], config.widths[narrow], oracle)
        by_log_mel = [np.where(is_speech, wide, narrow) for is_speech in log_mel_speech]
        run("log-mel imitation", by_log_mel, config.widths[wide], config.widths[narrow], oracle)
        run("random", drawn, config.widths[wide], config.widths[narrow])
        run("inverse", inverse, config.widths[narrow], config.widths[wide])


if __name__ == "__main__":
    main()
