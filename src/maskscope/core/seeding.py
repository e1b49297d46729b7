"""One RNG per item, seeded from (base seed, item keys), so adding an item reshuffles nothing else."""

from __future__ import annotations

import hashlib

import numpy as np


def item_seed(base_seed: int, *keys: object) -> int:
    """A 64-bit seed derived from the base seed and the item's keys, stable across runs and Pythons."""
    text = "\x1f".join([str(base_seed), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def item_rng(base_seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator private to one item."""
    return np.random.Generator(np.random.PCG64(item_seed(base_seed, *keys)))
