"""Stage `train` (a sweep over the pruned variants): train one Conv-FSENet variant, resumably.

By default a pruned variant starts from the trained dense model (stage `train_dense`) and is
fine-tuned for `prune.epochs`; with `prune.start: scratch` it trains from random weights for
`train.epochs`, like the dense model.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from maskscope.io import atomic_output_dir, atomic_output_file
from maskscope.models.conv_fsenet import (
    ConvFSENet,
    ConvFSENetConfig,
    count_parameters,
    initialise_from_dense,
    macs_per_frame,
    static_hidden_for_budget,
)
from maskscope.stages import StageContext
from maskscope.tracking import dvc_md5
from maskscope.training import EpochRecord, TrainSettings, load_split, train

CHECKPOINT_ROOT = Path("checkpoints")
MODEL_FILE = "model.pt"


def model_config(model: Any, train_params: Any, variant: Any) -> ConvFSENetConfig:
    """The architecture of one variant: dense, DynCP-gated, or dense with H cut to a MAC budget."""
    base = ConvFSENetConfig(
        bottleneck=model.bottleneck,
        hidden=model.hidden,
        stacks=model.stacks,
        blocks_per_stack=model.blocks_per_stack,
        kernel=model.kernel,
        causal=model.causal,
        gate_rank=model.gate_rank,
        gate_estimator=train_params.gate_estimator,
        ste_slope=train_params.ste_slope,
        gumbel_temperature=train_params.gumbel_temperature,
    )
    if variant.kind == "dense":
        return base
    gated = ConvFSENetConfig(**{**asdict(base), "gated": True})
    if variant.kind == "dyncp":
        return gated
    # Static pruning: the fixed H whose dense cost matches DynCP at Φ_trgt, gate cost included.
    budget = macs_per_frame(gated, variant.target_usage).total
    return ConvFSENetConfig(**{**asdict(base), "hidden": static_hidden_for_budget(base, budget)})


def save_model(path: Path, model: ConvFSENet, variant_name: str, variant: dict[str, Any]) -> None:
    payload = {"config": asdict(model.config), "variant": variant_name, "spec": variant, "state": model.state_dict()}
    with atomic_output_file(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: Path) -> tuple[ConvFSENet, dict[str, Any]]:
    """A trained model (eval mode) and its metadata, from a `models/<variant>/model.pt`."""
    payload = torch.load(path, weights_only=False)
    model = ConvFSENet(ConvFSENetConfig(**payload["config"]))
    model.load_state_dict(payload["state"])
    model.eval()
    return model, payload


def code_digest() -> str:
    """Digest of the code that shapes training, so a code change never resumes an old run."""
    from maskscope import training
    from maskscope.models import conv_fsenet

    digest = hashlib.sha256(torch.__version__.encode())
    for module in (training, conv_fsenet):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def checkpoint_path(variant_name: str, params_slice: dict[str, Any], mix_digest: str) -> Path:
    """Checkpoints live outside DVC's outputs (which DVC deletes before a run), keyed by the params,
    data and code that made them, so a resumed run never continues a different run."""
    key = json.dumps({"params": params_slice, "mix": mix_digest, "code": code_digest()}, sort_keys=True)
    return CHECKPOINT_ROOT / variant_name / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def write_history(path: Path, history: list[EpochRecord]) -> None:
    with atomic_output_file(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train_loss", "valid_loss", "gate_usage"])
        for record in history:
            usage = "" if record.gate_usage is None else f"{record.gate_usage:.6f}"
            writer.writerow([record.epoch, f"{record.train_loss:.6f}", f"{record.valid_loss:.6f}", usage])


def run(ctx: StageContext) -> dict[str, Any]:
    return train_variant(ctx, ctx.items["variant"])


def train_variant(ctx: StageContext, variant_name: str) -> dict[str, Any]:
    params, deps, outs = ctx.params, ctx.deps, ctx.outs
    variant = params.variants[variant_name]
    torch.set_num_threads(ctx.workers)
    config = model_config(params.model, params.train, variant)
    torch.manual_seed(params.seed)
    model = ConvFSENet(config)
    train_params = params.train
    from_dense = variant.kind != "dense" and params.prune.start == "dense"
    if from_dense:
        dense, _ = load_model(deps["dense"] / MODEL_FILE)
        initialise_from_dense(model, dense)
    settings = TrainSettings(
        epochs=params.prune.epochs if from_dense else train_params.epochs,
        batch_size=train_params.batch_size,
        segment_seconds=train_params.segment_seconds,
        learning_rate=train_params.learning_rate,
        dcp_weight=train_params.dcp_weight,
        target_usage=variant.target_usage if variant.kind == "dyncp" else None,
        seed=params.seed,
    )
    train_set = load_split(deps["mix"], "train")
    valid_set = load_split(deps["mix"], "valid", limit=train_params.valid_utterances)
    variant_dict = {"kind": variant.kind, "target_usage": variant.target_usage}
    slice_key = {
        "seed": params.seed,
        "model": params.model.to_dict(),
        "train": params.train.to_dict(),
        "variant": variant_dict,
        "start": dvc_md5(deps["dense"]) if from_dense else "scratch",
        "epochs": settings.epochs,
    }
    checkpoint = checkpoint_path(variant_name, slice_key, dvc_md5(deps["mix"]))

    def on_epoch(record: EpochRecord) -> None:
        step = {"train_loss": record.train_loss, "valid_loss": record.valid_loss, "epoch_seconds": record.seconds}
        if record.gate_usage is not None:
            step["gate_usage"] = record.gate_usage
        ctx.log_step(step, record.epoch)

    # A CUDA build of torch on a GPU machine trains there (not bit-identical to CPU runs).
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    state = train(model, train_set, valid_set, settings, checkpoint, on_epoch)
    model.cpu()
    # Wall-clock time goes to MLflow, not to the DVC metrics, which must be reproducible bytes.
    ctx.log_step({"train_seconds": sum(record.seconds for record in state.history)}, state.epoch)
    with atomic_output_dir(outs["model"]) as tmp:
        save_model(tmp / MODEL_FILE, model, variant_name, variant_dict)
    # Only a killed run resumes: a forced rerun (dvc repro -f, snakemake -F) trains afresh.
    checkpoint.unlink(missing_ok=True)
    write_history(outs["plots"], state.history)
    last = state.history[-1]
    usage = last.gate_usage_per_block
    return {
        "variant": variant_name,
        "kind": variant.kind,
        "hidden": config.hidden,
        "parameters": count_parameters(model),
        "epochs": state.epoch,
        "started_from": "dense" if from_dense else "scratch",
        "train_loss": round(last.train_loss, 6),
        "valid_loss": round(last.valid_loss, 6),
        "train_gate_usage": None if usage is None else round(last.gate_usage, 4),
        "nominal_macs_per_frame": macs_per_frame(config, usage).total,
    }
