"""Stage `evaluate`: noisy input and every variant on the test split — quality, usage, MACs."""

from __future__ import annotations

from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from tqdm import tqdm

from maskscope.core.constants import MODEL_FILE
from maskscope.core.errors import ParamsError
from maskscope.core.io import atomic_output_dir, write_parquet
from maskscope.evaluation.peers import load_peers
from maskscope.evaluation.scoring import score
from maskscope.evaluation.systems import System, peer_system, system_metrics, systems_of
from maskscope.models.checkpoint import load_model
from maskscope.pipeline.runner import StageContext
from maskscope.training.loop import load_split


def model_deps(deps: dict[str, Path]) -> dict[str, Path]:
    """variant name -> model directory, from the `model-<variant>` inputs."""
    return {name.removeprefix("model-"): path for name, path in deps.items() if name.startswith("model-")}


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps, outs = ctx.params, ctx.deps, ctx.outs
    torch.set_num_threads(ctx.workers)
    if set(params.variants.to_dict()) != set(model_deps(deps)):
        raise ParamsError(
            f"params 'variants' ({', '.join(params.variants.to_dict())}) and the models this stage was given "
            f"({', '.join(model_deps(deps))}) differ: run `python -m pipelines.compile` after changing the variants"
        )
    limit = params.evaluate.test_utterances or None
    test = load_split(deps["mix"], "test", limit=limit)
    timed = params.evaluate.timing_utterances
    systems: dict[str, System] = {}
    for variant, directory in model_deps(deps).items():
        model, _ = load_model(directory / MODEL_FILE)
        systems.update(systems_of(variant, model, test, timed, params.nsnet2.exit_threshold))
    peers, _ = load_peers(list(params.evaluate.peers))  # a peer that cannot load is logged and left out
    for peer in peers:
        systems[peer.name] = peer_system(peer, test, timed)
    estimates = {
        "noisy": [u.noisy for u in test],
        **{name: [o.audio for o in s.outputs] for name, s in systems.items()},
    }
    jobs = [
        (u.clean, estimate[i], params.evaluate.composite) for estimate in estimates.values() for i, u in enumerate(test)
    ]
    with get_context("spawn").Pool(ctx.workers) as pool:
        rows = list(tqdm(pool.imap(score, jobs, chunksize=4), total=len(jobs), desc="evaluate: scores", disable=None))
    per_system = {system: rows[k * len(test) : (k + 1) * len(test)] for k, system in enumerate(estimates)}
    table_rows = [
        {"system": system, "utt_id": test[i].utt_id, **{k: float(v) for k, v in row.items()}}
        for system, system_rows in per_system.items()
        for i, row in enumerate(system_rows)
    ]
    with atomic_output_dir(outs["scores"]) as tmp:
        write_parquet(pa.Table.from_pylist(table_rows), tmp / "scores.parquet")
    return system_metrics(systems, per_system, [u.kind for u in test])
