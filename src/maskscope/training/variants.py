"""Training one variant, resumably, from the base model it derives from.

- Conv-FSENet: by default a pruned variant starts from the trained dense model and is fine-tuned
  for `prune.epochs`; with `prune.start: scratch` it trains from random weights for `train.epochs`,
  like the dense model.
- Slimmable DEMUCS: the slim-static model trains at every width for `slimming.epochs`; a routed
  model takes all its weights, adds a fresh router and is fine-tuned for `slimming.router_epochs`.
- nsNet2: from scratch for `nsnet2.epochs`, jointly or layer-wise (variant `regime`); a static one,
  truncated at one exit, trains that exit alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from maskscope.core.constants import MODEL_FILE
from maskscope.core.errors import MissingInputError, ParamsError
from maskscope.core.io import atomic_output_dir, atomic_output_file
from maskscope.data.noise_recordings import load_noises
from maskscope.models.checkpoint import SEModel, load_model, save_model
from maskscope.models.conv_fsenet import ConvFSENet, count_parameters, initialise_from_dense, macs_per_frame
from maskscope.models.demucs import SlimDemucs, macs_per_sample
from maskscope.models.from_params import model_config, nsnet2_config, slim_config
from maskscope.models.nsnet2 import NsNet2, exit_macs
from maskscope.pipeline.config import rendered_variant
from maskscope.pipeline.tracking import dvc_md5
from maskscope.training.loop import DynamicMixing, EpochRecord, TrainSettings, load_split, train

CHECKPOINT_ROOT = Path("checkpoints")


def dynamic_mixing(params: Any, noises_dir: Path) -> DynamicMixing | None:
    """The draws of dynamic mixing from the declared params (None when `train.mixing` is fixed)."""
    train = params.train
    if train.mixing != "dynamic":
        return None
    recordings = load_noises(noises_dir)
    classes = list(params.noises.classes)
    missing = [name for name in classes if ("train", name) not in recordings]
    if missing:
        raise MissingInputError(f"{noises_dir}: has no training recording of noise classes {missing}; rerun noises")
    return DynamicMixing(
        seed=params.seed,
        noises={name: recordings[("train", name)] for name in classes},
        snrs_db=tuple(params.mix.snrs_db),
        snr_range_db=None if train.snr_range_db is None else tuple(train.snr_range_db),
        level_range_db=tuple(train.level_range_db),
        pad_seconds=tuple(params.mix.pad_seconds),
        steps_per_epoch=train.steps_per_epoch,
    )


def slim_settings(params: Any, variant: Any, mixing: DynamicMixing | None = None) -> TrainSettings:
    """How a slim-static variant trains from scratch, or a slim-dyn one fine-tunes its router and backbone."""
    slimming = params.slimming
    common = {
        "batch_size": params.train.batch_size,
        "segment_seconds": params.train.segment_seconds,
        "learning_rate": slimming.learning_rate,
        "seed": params.seed,
        "grad_clip_norm": params.train.grad_clip_norm,
        "mixing": mixing,
    }
    if variant.kind != "slim-dyn":
        return TrainSettings(epochs=slimming.epochs, usage_weight=0.0, target_usage=None, **common)
    return TrainSettings(
        epochs=slimming.router_epochs,
        usage_weight=slimming.utilization_weight,
        target_usage=variant.target_usage,
        rest_weight=slimming.rest_weight,
        speech_threshold_db=params.labels.vad_threshold_db,
        **common,
    )


def checkpoint_path(variant_name: str, params_slice: dict[str, Any], mix_digest: str, code_digest: str) -> Path:
    """Checkpoints live outside DVC's outputs (which DVC deletes before a run), keyed by the params,
    data and code that made them, so a resumed run never continues a different run."""
    key = json.dumps({"params": params_slice, "mix": mix_digest, "code": code_digest}, sort_keys=True)
    return CHECKPOINT_ROOT / variant_name / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def write_history(path: Path, history: list[EpochRecord]) -> None:
    with atomic_output_file(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train_loss", "valid_loss", "gate_usage"])
        for record in history:
            usage = "" if record.gate_usage is None else f"{record.gate_usage:.6f}"
            writer.writerow([record.epoch, f"{record.train_loss:.6f}", f"{record.valid_loss:.6f}", usage])


def build_variant(
    params: Any, variant: Any, base_dir: Path | None, mixing: DynamicMixing | None = None
) -> tuple[SEModel, TrainSettings, str]:
    """The model to train (initialised from its base when it has one), its settings, and where it started."""
    train_params = params.train
    if variant.kind in ("nsnet2", "nsnet2-static"):
        nsnet2 = params.nsnet2
        torch.manual_seed(params.seed)
        model = NsNet2(nsnet2_config(nsnet2, variant))
        joint = variant.kind == "nsnet2" and nsnet2.exit_weights is not None
        settings = TrainSettings(
            epochs=nsnet2.epochs,
            batch_size=train_params.batch_size,
            segment_seconds=train_params.segment_seconds,
            learning_rate=nsnet2.learning_rate,
            usage_weight=0.0,
            target_usage=None,
            seed=params.seed,
            grad_clip_norm=train_params.grad_clip_norm,
            mixing=mixing,
            exit_regime=variant.regime or "joint",
            exit_weights=tuple(nsnet2.exit_weights) if joint else None,
        )
        return model, settings, "scratch"
    if variant.kind in ("slim-static", "slim-dyn"):
        slimming = params.slimming
        torch.manual_seed(params.seed)
        model: SEModel = SlimDemucs(slim_config(slimming, variant))
        started_from = "scratch"
        if variant.kind == "slim-dyn":
            base, _ = load_model(base_dir / MODEL_FILE)
            mismatch = ParamsError(f"{base_dir}: not the slimmable DEMUCS of these slimming params; retrain it")
            try:
                # strict=False: the base has no router; every other weight must be there.
                missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
            except RuntimeError as error:  # same keys, other shapes
                raise mismatch from error
            if unexpected or any(not key.startswith("router.") for key in missing):
                raise mismatch
            started_from = "slim-static"
        return model, slim_settings(params, variant, mixing), started_from
    config = model_config(params.model, train_params, variant)
    torch.manual_seed(params.seed)
    model = ConvFSENet(config)
    from_dense = variant.kind != "dense" and params.prune.start == "dense"
    if from_dense:
        dense, _ = load_model(base_dir / MODEL_FILE)
        initialise_from_dense(model, dense)
    settings = TrainSettings(
        epochs=params.prune.epochs if from_dense else train_params.epochs,
        batch_size=train_params.batch_size,
        segment_seconds=train_params.segment_seconds,
        learning_rate=train_params.learning_rate,
        usage_weight=train_params.dcp_weight,
        target_usage=variant.target_usage if variant.kind == "dyncp" else None,
        seed=params.seed,
        grad_clip_norm=train_params.grad_clip_norm,
        mixing=mixing,
    )
    return model, settings, "dense" if from_dense else "scratch"


def nominal_macs(model: SEModel, usage: list[float] | None) -> dict[str, float]:
    """The cost the training reached: MACs per frame (Conv-FSENet) or per sample (DEMUCS, full width)."""
    if isinstance(model, SlimDemucs):
        return {"nominal_macs_per_sample": macs_per_sample(model.config)}
    if isinstance(model, NsNet2):
        return {"nominal_macs_per_frame": exit_macs(model.config)[-1]["incremental"]}
    return {"nominal_macs_per_frame": macs_per_frame(model.config, usage).total}


def train_variant(
    params: Any,
    variant_name: str,
    deps: dict[str, Path],
    outs: dict[str, Path],
    code_digest: str,
    log_step: Callable[[dict[str, float], int], None],
) -> dict[str, Any]:
    """Train `variant_name` from `deps` (`mix`, `noises`, and `base` for a derived variant) into `outs`
    (`model`, `plots`); returns its metrics. `code_digest` keys the checkpoint to the code."""
    variant = params.variants[variant_name]
    mixing = dynamic_mixing(params, deps["noises"])
    model, settings, started_from = build_variant(params, variant, deps.get("base"), mixing)
    train_set = load_split(deps["mix"], "train")
    valid_set = load_split(deps["mix"], "valid", limit=params.train.valid_utterances)
    variant_dict = rendered_variant(variant.to_dict())
    slice_key = {
        "params": params.to_dict(),  # the keys the registry declares for this stage, this variant's among them
        "start": dvc_md5(deps["base"]) if started_from != "scratch" else "scratch",
        "epochs": settings.epochs,
    }
    data_digest = dvc_md5(deps["mix"]) + (dvc_md5(deps["noises"]) if mixing else "")
    checkpoint = checkpoint_path(variant_name, slice_key, data_digest, code_digest)

    def on_epoch(record: EpochRecord) -> None:
        step = {"train_loss": record.train_loss, "valid_loss": record.valid_loss, "epoch_seconds": record.seconds}
        if record.gate_usage is not None:
            step["gate_usage"] = record.gate_usage
        log_step(step, record.epoch)

    # A CUDA build of torch on a GPU machine trains there (not bit-identical to CPU runs).
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    state = train(model, train_set, valid_set, settings, checkpoint, on_epoch)
    model.cpu()
    # Wall-clock time goes to MLflow, not to the DVC metrics, which must be reproducible bytes.
    log_step({"train_seconds": sum(record.seconds for record in state.history)}, state.epoch)
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
        "hidden": getattr(model.config, "hidden", None),
        "parameters": count_parameters(model),
        "epochs": state.epoch,
        "started_from": started_from,
        "train_loss": round(last.train_loss, 6),
        "valid_loss": round(last.valid_loss, 6),
        # DynCP: mean gate usage; routed DEMUCS: the router's expected average UF
        "train_gate_usage": None if usage is None else round(last.gate_usage, 4),
        **nominal_macs(model, usage),
    }
