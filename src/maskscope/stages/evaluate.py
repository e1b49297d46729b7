"""Stage `evaluate`: noisy input and every variant on the test split — quality, gate usage, MACs."""

from __future__ import annotations

from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from maskscope.evaluation import enhance, mean_scores, score
from maskscope.io import atomic_output_dir, write_parquet
from maskscope.models.conv_fsenet import macs_per_frame
from maskscope.stages import StageContext
from maskscope.stages.train import MODEL_FILE, load_model
from maskscope.training import load_split


def model_deps(deps: dict[str, Path]) -> dict[str, Path]:
    """variant name -> model directory, from the `model-<variant>` inputs."""
    return {name.removeprefix("model-"): path for name, path in deps.items() if name.startswith("model-")}


def run(ctx: StageContext) -> dict[str, Any]:
    params, deps, outs = ctx.params, ctx.deps, ctx.outs
    torch.set_num_threads(ctx.workers)
    limit = params.evaluate.test_utterances or None
    test = load_split(deps["mix"], "test", limit=limit)
    estimates: dict[str, list[np.ndarray]] = {"noisy": [u.noisy for u in test]}
    usage: dict[str, list[float] | None] = {}
    configs = {}
    for variant, directory in model_deps(deps).items():
        model, _ = load_model(directory / MODEL_FILE)
        configs[variant] = model.config
        outputs = [enhance(model, u.noisy) for u in tqdm(test, desc=f"evaluate: {variant}", disable=None)]
        estimates[variant] = [output.audio for output in outputs]
        if model.config.gated:
            open_per_block = sum(output.gates.sum(axis=(1, 2)) for output in outputs)
            frames = sum(output.gates.shape[2] for output in outputs) * model.config.hidden
            usage[variant] = (open_per_block / frames).tolist()
        else:
            usage[variant] = None
    jobs = [
        (u.clean, estimate[i], params.evaluate.composite) for estimate in estimates.values() for i, u in enumerate(test)
    ]
    with get_context("spawn").Pool(ctx.workers) as pool:
        rows = list(tqdm(pool.imap(score, jobs, chunksize=4), total=len(jobs), desc="evaluate: scores", disable=None))
    per_system = {system: rows[k * len(test) : (k + 1) * len(test)] for k, system in enumerate(estimates)}
    metrics: dict[str, Any] = {"noisy": {**mean_scores(per_system["noisy"]), "utterances": len(test)}}
    dense_macs = macs_per_frame(configs["dense"]).total if "dense" in configs else None
    dense_pesq = mean_scores(per_system["dense"])["pesq"] if "dense" in per_system else None
    for variant, config in configs.items():
        spent = macs_per_frame(config, usage[variant]).total
        entry = {**mean_scores(per_system[variant]), "macs_per_frame": round(spent, 1)}
        entry["mmac_per_second"] = round(spent * 62.5 / 1e6, 3)
        entry["gate_usage"] = None if usage[variant] is None else round(float(np.mean(usage[variant])), 4)
        entry["gate_usage_per_block"] = None if usage[variant] is None else [round(u, 4) for u in usage[variant]]
        if dense_macs:
            entry["mac_saving"] = round(1.0 - spent / dense_macs, 4)
        if dense_pesq:
            entry["pesq_drop_relative"] = round((dense_pesq - entry["pesq"]) / dense_pesq, 4)
        entry["pesq_gain_over_noisy"] = round(entry["pesq"] - metrics["noisy"]["pesq"], 4)
        metrics[variant] = entry
    table_rows = [
        {"system": system, "utt_id": test[i].utt_id, **{k: float(v) for k, v in row.items()}}
        for system, system_rows in per_system.items()
        for i, row in enumerate(system_rows)
    ]
    with atomic_output_dir(outs["scores"]) as tmp:
        write_parquet(pa.Table.from_pylist(table_rows), tmp / "scores.parquet")
    return metrics
