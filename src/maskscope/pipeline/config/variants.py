"""The `variants` section: which models are trained and compared, and the rules their names follow."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from maskscope.core.constants import FOCUS_VARIANT
from maskscope.core.errors import ParamsError
from maskscope.pipeline.config.section import Section

VARIANT_KINDS = ("dense", "dyncp", "static", "slim-static", "slim-dyn", "nsnet2", "nsnet2-static")
# A variant of these kinds starts from the trained model of the base variant with this fixed name.
BASE_OF_KIND = {"dyncp": "dense", "static": "dense", "slim-dyn": "slim-static"}


class VariantParams(Section):
    kind: Literal["dense", "dyncp", "static", "slim-static", "slim-dyn", "nsnet2", "nsnet2-static"] = Field(
        description="Conv-FSENet: no gates, DynCP gates, or a fixed smaller H; DEMUCS: slimmable, or routed; "
        "nsNet2: with early exits, or static, truncated at one exit"
    )
    target_usage: float | None = Field(
        None,
        gt=0,
        le=1,
        description="DynCP: Φ_trgt; static: the Φ whose DynCP MAC budget sets H; slim-dyn: the UF of its MAC budget",
    )
    regime: Literal["joint", "layerwise"] | None = Field(
        None, description="nsnet2: joint (weighted exit losses) or layer-wise (one stage per exit) training"
    )
    topology: Literal["plain", "split_decoder", "split_gru"] | None = Field(
        None, description="nsnet2: what an intermediate exit computes (see docs/papers.md)"
    )
    exit: str | None = Field(None, description="nsnet2-static: the exit (a layer of nsnet2.exits) it is truncated at")

    def rendered(self) -> dict:
        return rendered_variant(self.model_dump(mode="json"))


def rendered_variant(fields: dict) -> dict:
    """A variant as params.yaml writes it: `kind` and `target_usage` always, other fields only when set."""
    return {key: value for key, value in fields.items() if key in ("kind", "target_usage") or value is not None}


# Names carry no dots: DVC reads `variants.<name>` as a dotted path of keys.
DEFAULT_VARIANTS = {
    "dense": VariantParams(kind="dense"),
    "dyncp-25": VariantParams(kind="dyncp", target_usage=0.25),
    "dyncp-50": VariantParams(kind="dyncp", target_usage=0.5),
    "dyncp-75": VariantParams(kind="dyncp", target_usage=0.75),
    # static models at each DynCP target's cost: dynamic against static at equal cost and training
    "static-25": VariantParams(kind="static", target_usage=0.25),
    "static-50": VariantParams(kind="static", target_usage=0.5),
    "static-75": VariantParams(kind="static", target_usage=0.75),
}
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def variants_of_kind(variants: dict[str, VariantParams], *kinds: str) -> tuple[str, ...]:
    """Names of the variants of the given kinds, in params order."""
    return tuple(name for name, variant in variants.items() if variant.kind in kinds)


def gated_variants(variants: dict[str, VariantParams]) -> tuple[str, ...]:
    """Variants whose per-frame decisions are dumped as masks and probed: DynCP gates, router choices."""
    return variants_of_kind(variants, "dyncp", "slim-dyn")


NUMBERED_VARIANT = re.compile(r"^(dyncp|static|slim-dyn)-(\d+)$")


NSNET2_FIELDS = {"nsnet2": ("regime", "topology"), "nsnet2-static": ("exit",)}


def _check_nsnet2(name: str, variant: VariantParams, source: str) -> None:
    """An nsNet2 variant sets its own fields, no target; other kinds set none of them."""
    key = f"variants.{name}"
    required = NSNET2_FIELDS.get(variant.kind, ())
    for field in ("regime", "topology", "exit"):
        if field in required and getattr(variant, field) is None:
            raise ParamsError(f"{source}: key '{key}.{field}' is required for kind '{variant.kind}'")
        if field not in required and getattr(variant, field) is not None:
            owners = " or ".join(kind for kind, fields in NSNET2_FIELDS.items() if field in fields)
            raise ParamsError(f"{source}: key '{key}.{field}' is only for kind {owners}; remove it")
    if required and variant.target_usage is not None:
        raise ParamsError(f"{source}: key '{key}.target_usage' is not used by kind '{variant.kind}'; remove it")


def check_variants(variants: dict[str, VariantParams], source: str) -> None:
    """Names usable as paths and DVC keys; every derived variant has its base to start from; a
    name that states a target states the right one (the report matches the papers' rows by name)."""
    if FOCUS_VARIANT not in variants or variants[FOCUS_VARIANT].kind != "dyncp":
        raise ParamsError(
            f"{source}: key 'variants.{FOCUS_VARIANT}' must be a dyncp variant: the report's headline and "
            "`maskscope enhance`'s default model are about it"
        )
    for name, variant in variants.items():
        key = f"variants.{name}"
        if not VARIANT_NAME.match(name) or name == "noisy":
            raise ParamsError(
                f"{source}: key '{key}': a variant name takes lowercase letters, digits and '-' only, and "
                "'noisy' is taken by the unprocessed input"
            )
        numbered = NUMBERED_VARIANT.match(name)
        if numbered and (variant.target_usage is None or round(100 * variant.target_usage) != int(numbered[2])):
            raise ParamsError(
                f"{source}: key '{key}.target_usage': the name says {int(numbered[2]) / 100:g}, the value is "
                f"{variant.target_usage}; rename the variant or fix the target"
            )
        if name in BASE_OF_KIND.values() and variant.kind != name:
            raise ParamsError(f"{source}: key '{key}.kind' must be '{name}' (the base other variants start from)")
        _check_nsnet2(name, variant, source)
        if variant.kind in NSNET2_FIELDS:
            continue
        if variant.kind in ("dense", "slim-static"):
            if variant.kind != name:
                raise ParamsError(f"{source}: key '{key}': a '{variant.kind}' variant must be named '{variant.kind}'")
            continue
        if variant.target_usage is None:
            raise ParamsError(f"{source}: key '{key}.target_usage' is required for kind '{variant.kind}'")
        base = BASE_OF_KIND[variant.kind]
        if base not in variants:
            raise ParamsError(f"{source}: key '{key}': kind '{variant.kind}' starts from variant '{base}': define it")
