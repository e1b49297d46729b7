"""Trained models on disk: `models/<variant>/model.pt`, a plain dict of the family, its config, the
variant and the weights, so loading never unpickles arbitrary objects (`weights_only=True`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from maskscope.core.io import atomic_output_file
from maskscope.models.conv_fsenet import ConvFSENet, ConvFSENetConfig
from maskscope.models.demucs import SlimDemucs, SlimDemucsConfig
from maskscope.models.nsnet2 import NsNet2, NsNet2Config

SEModel = ConvFSENet | SlimDemucs | NsNet2
FAMILIES = {
    "conv_fsenet": (ConvFSENet, ConvFSENetConfig),
    "slim_demucs": (SlimDemucs, SlimDemucsConfig),
    "nsnet2": (NsNet2, NsNet2Config),
}
# Config fields that are tuples: saved as lists, so loading turns them back.
TUPLE_FIELDS = ("widths", "decoder_widths", "exits")


def save_model(path: Path, model: SEModel, variant_name: str, variant: dict[str, Any]) -> None:
    family = next(name for name, (cls, _) in FAMILIES.items() if isinstance(model, cls))
    payload = {
        "family": family,
        "config": asdict(model.config),
        "variant": variant_name,
        "spec": variant,
        "state": model.state_dict(),
    }
    with atomic_output_file(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: Path) -> tuple[SEModel, dict[str, Any]]:
    """A trained model (eval mode) and its metadata, from a `models/<variant>/model.pt`."""
    payload = torch.load(path, weights_only=True)
    cls, config_cls = FAMILIES[payload.get("family", "conv_fsenet")]
    config = {key: tuple(value) if key in TUPLE_FIELDS else value for key, value in payload["config"].items()}
    model = cls(config_cls(**config))
    model.load_state_dict(payload["state"])
    model.eval()
    return model, payload
