"""Does the router need to see the segment it decides? (routed 0.25 against static UF 1/4)

The pipeline's router decides segment k from the segments before it (no added latency). This
fine-tunes routed DEMUCS models from the trained slimmable base exactly as `train_router` does, once
with that causal router and once with `router_lookahead` (the router also sees segment k: one
segment of latency, as a router that reads whole utterances has), and scores each on the test split
as `evaluate` does: PESQ, STOI, SI-SDR, average UF, MACs per sample with the router. The causal run
should reproduce the pipeline's own row (a check of this harness). `pesq_at_uf` is the fine-tuned
backbone run at each fixed width the router used, so a fine-tuning that hurt the backbone shows apart
from the router's choices (compare `evaluate`'s slim-static rows). With `--freeze-backbone` only the
router trains, so the routed model and slim-static share their weights and differ only in routing.
One JSON line per run. An
experiment, not a pipeline stage: it writes nothing. Run it where a slimming run finished
(`maskscope preset slimming && make repro`), from that checkout:

    python benchmarks/router_lookahead.py --target 0.25
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import torch

from maskscope.core.constants import MODEL_FILE
from maskscope.evaluation.scoring import enhance, mean_scores, score
from maskscope.evaluation.systems import routed_system, uf_label
from maskscope.models.checkpoint import load_model
from maskscope.models.demucs import SlimDemucs
from maskscope.models.from_params import slim_config
from maskscope.pipeline.config import VariantParams, load_params
from maskscope.training.loop import load_split, train
from maskscope.training.variants import slim_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.25)
    parser.add_argument("--freeze-backbone", action="store_true", help="train the router alone")
    parser.add_argument("--segment", type=int, help="input samples per router decision (default: the params')")
    parser.add_argument("--routers", choices=["causal", "lookahead", "both"], default="both")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    slimming = params.slimming
    torch.set_num_threads(2)
    mix = Path("data/mix")
    train_set = load_split(mix, "train")
    valid_set = load_split(mix, "valid", limit=params.train.valid_utterances)
    test_set = load_split(mix, "test", limit=params.evaluate.test_utterances or None)
    base, _ = load_model(Path("models/slim-static") / MODEL_FILE)
    variant = VariantParams(kind="slim-dyn", target_usage=args.target)
    segment = args.segment or slimming.segment_samples
    for lookahead in {"causal": (False,), "lookahead": (True,), "both": (False, True)}[args.routers]:
        torch.manual_seed(params.seed)  # as build_variant does, so the causal run is the pipeline's
        model = SlimDemucs(replace(slim_config(slimming, variant), router_lookahead=lookahead, segment=segment))
        model.load_state_dict(base.state_dict(), strict=False)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith("router.") or not args.freeze_backbone)
        settings = slim_settings(params, variant)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            state = train(model, train_set, valid_set, settings, Path(scratch) / "checkpoint.pt")
        model.eval()
        outputs = [enhance(model, utterance.noisy) for utterance in test_set]
        jobs = [(u.clean, output.audio, False) for u, output in zip(test_set, outputs, strict=True)]
        system = routed_system(model, outputs, test_set)
        used = [uf for uf, part in zip(slimming.widths, system.extra["uf_share"].values(), strict=True) if part > 0]
        for uf in used:
            jobs += [(u.clean, enhance(model, u.noisy, uf).audio, False) for u in test_set]
        with get_context("spawn").Pool(2) as pool:
            rows = pool.map(score, jobs, chunksize=4)
        quality = mean_scores(rows[: len(test_set)])
        at_uf = {
            uf_label(uf): mean_scores(rows[(k + 1) * len(test_set) : (k + 2) * len(test_set)])["pesq"]
            for k, uf in enumerate(used)
        }
        result = {
            "target": args.target,
            "router_lookahead": lookahead,
            "segment_samples": segment,
            "backbone_frozen": args.freeze_backbone,
            "valid_loss": round(state.history[-1].valid_loss, 4),
            **quality,
            "average_uf": system.extra["average_uf"],
            "uf_share": system.extra["uf_share"],
            "macs_per_sample": round(system.macs_per_sample, 1),
            "pesq_at_uf": at_uf,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
