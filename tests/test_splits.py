from __future__ import annotations

from maskscope.data.splits import assign_splits

SYNTHETIC = {f"voice-{i}": f"voice-{i}" for i in range(24)}
REAL = ["asterisk-fr", "asterisk-it", "asterisk-ru"]


def test_every_split_has_synthetic_and_real_speakers():
    assignment = assign_splits(SYNTHETIC, REAL, 1234, 0.12, 0.17)
    for split in ("train", "valid", "test"):
        members = [speaker for speaker, chosen in assignment.items() if chosen == split]
        assert any(m.startswith("voice-") for m in members)
        assert any(m.startswith("asterisk-") for m in members)


def test_assignment_is_seeded_and_stable():
    assert assign_splits(SYNTHETIC, REAL, 1, 0.12, 0.17) == assign_splits(
        dict(reversed(SYNTHETIC.items())), REAL, 1, 0.12, 0.17
    )
    assert assign_splits(SYNTHETIC, REAL, 1, 0.12, 0.17) != assign_splits(SYNTHETIC, REAL, 2, 0.12, 0.17)


def test_fractions_are_respected():
    assignment = assign_splits(SYNTHETIC, [], 7, 0.12, 0.17)
    values = list(assignment.values())
    assert values.count("test") == 4 and values.count("valid") == 3 and values.count("train") == 17


def test_adding_a_speaker_moves_few_others():
    before = assign_splits(SYNTHETIC, REAL, 5, 0.12, 0.17)
    after = assign_splits({**SYNTHETIC, "voice-new": "voice-new"}, REAL, 5, 0.12, 0.17)
    moved = [s for s in before if before[s] != after[s]]
    assert len(moved) <= 2


def test_voices_of_one_human_speaker_share_a_split():
    synthetic = {
        **SYNTHETIC,
        "flite-slt": "arctic-slt",
        "festival-slt-hts": "arctic-slt",
        "flite-slt-f0-225": "arctic-slt",
    }
    for seed in range(20):
        assignment = assign_splits(synthetic, REAL, seed, 0.12, 0.17)
        assert len({assignment[v] for v in ("flite-slt", "festival-slt-hts", "flite-slt-f0-225")}) == 1
