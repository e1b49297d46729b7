"""Speaker-disjoint train/valid/test splits, each holding synthetic and real speakers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from maskscope.core.errors import ParamsError
from maskscope.core.seeding import item_seed

SPLITS = ("train", "valid", "test")


def _allocate(groups: list[str], seed: int, valid_fraction: float, test_fraction: float) -> dict[str, str]:
    # Rank by a per-group hash: adding a group moves at most the groups at a boundary.
    ranked = sorted(groups, key=lambda group: item_seed(seed, "split", group))
    count = len(ranked)
    if count < 3:
        return {group: "train" for group in ranked}
    n_test = max(1, round(count * test_fraction))
    n_valid = max(1, round(count * valid_fraction))
    n_valid = min(n_valid, count - n_test - 1)
    assignment = {}
    for position, group in enumerate(ranked):
        if position < n_test:
            assignment[group] = "test"
        elif position < n_test + n_valid:
            assignment[group] = "valid"
        else:
            assignment[group] = "train"
    return assignment


def assign_splits(
    synthetic: Mapping[str, str], real: Iterable[str], seed: int, valid_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Map each speaker to a split.

    `synthetic` maps each TTS voice to its family, the human speaker it was built from: voices of
    one family share a split, so no human voice is on both sides. Synthetic and real speakers are
    allocated separately so that every split gets both kinds (given at least three of each)."""
    families = _allocate(sorted(set(synthetic.values())), seed, valid_fraction, test_fraction)
    assignment = {speaker: families[family] for speaker, family in synthetic.items()}
    assignment.update(_allocate(sorted(set(real)), seed, valid_fraction, test_fraction))
    return assignment


def listed_splits(speakers: Iterable[str], valid: Iterable[str], test: Iterable[str]) -> dict[str, str]:
    """An official split (e.g. VoiceBank+DEMAND's): the listed speakers validate or test, the rest train."""
    speakers = set(speakers)
    valid, test = set(valid), set(test)
    for key, listed in (("splits.valid_speakers", valid), ("splits.test_speakers", test)):
        if not listed <= speakers:
            raise ParamsError(f"key '{key}': speakers {sorted(listed - speakers)} are not in the corpus")
    if valid & test:
        raise ParamsError(f"keys 'splits.valid_speakers' and 'splits.test_speakers' share {sorted(valid & test)}")
    return {speaker: "valid" if speaker in valid else "test" if speaker in test else "train" for speaker in speakers}


def speaker_families(corpus_dir: Path) -> dict[str, str]:
    """Each speaker's family in a corpus built by the `corpus` stage (a real speaker is its own)."""
    manifest = pq.read_table(corpus_dir / "manifest.parquet", columns=["speaker", "family"]).to_pylist()
    return {row["speaker"]: row["family"] for row in manifest}


def speaker_splits(corpus_dir: Path, seed: int, settings: Any) -> dict[str, str]:
    """The split of every speaker in a corpus built by the `corpus` stage, per the `splits` params."""
    manifest = pq.read_table(corpus_dir / "manifest.parquet", columns=["speaker", "family", "kind"]).to_pylist()
    if settings.valid_speakers:
        return listed_splits({row["speaker"] for row in manifest}, settings.valid_speakers, settings.test_speakers)
    valid_fraction, test_fraction = settings.valid_fraction, settings.test_fraction
    synthetic = {row["speaker"]: row["family"] for row in manifest if row["kind"] == "synthetic"}
    real = {row["speaker"] for row in manifest if row["kind"] == "real"}
    return assign_splits(synthetic, real, seed, valid_fraction, test_fraction)
