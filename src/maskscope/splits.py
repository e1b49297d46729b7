"""Speaker-disjoint train/valid/test splits, each holding synthetic and real speakers."""

from __future__ import annotations

from collections.abc import Iterable

from maskscope.seeding import item_seed

SPLITS = ("train", "valid", "test")


def _allocate(speakers: list[str], seed: int, valid_fraction: float, test_fraction: float) -> dict[str, str]:
    # Rank by a per-speaker hash: adding a speaker moves at most the speakers at a boundary.
    ranked = sorted(speakers, key=lambda speaker: item_seed(seed, "split", speaker))
    count = len(ranked)
    if count < 3:
        return {speaker: "train" for speaker in ranked}
    n_test = max(1, round(count * test_fraction))
    n_valid = max(1, round(count * valid_fraction))
    n_valid = min(n_valid, count - n_test - 1)
    assignment = {}
    for position, speaker in enumerate(ranked):
        if position < n_test:
            assignment[speaker] = "test"
        elif position < n_test + n_valid:
            assignment[speaker] = "valid"
        else:
            assignment[speaker] = "train"
    return assignment


def assign_splits(
    synthetic: Iterable[str], real: Iterable[str], seed: int, valid_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Map each speaker to a split; synthetic and real speakers are allocated separately so that
    every split gets both kinds (given at least three of each)."""
    assignment = _allocate(sorted(set(synthetic)), seed, valid_fraction, test_fraction)
    assignment.update(_allocate(sorted(set(real)), seed, valid_fraction, test_fraction))
    return assignment
