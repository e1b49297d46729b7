"""The seeded sentence grammar: deterministic per item, varied, well-formed."""

from __future__ import annotations

import re

import pytest

from maskscope.core.seeding import item_rng
from maskscope.data.grammar import (
    MAX_WORDS,
    MIN_WORDS,
    make_sentence,
    make_sentences,
    number_words,
    spoken_word_count,
    vocabulary,
)

WORD = re.compile(r"[A-Za-z']+")


@pytest.fixture(scope="module")
def many() -> list[str]:
    return make_sentences(2024, "grammar-test", 3000)


def test_same_seed_speaker_and_index_give_the_same_sentence() -> None:
    first = make_sentences(7, "spk-a", 20)
    assert make_sentences(7, "spk-a", 20) == first
    assert make_sentence(item_rng(7, "sentence", "spk-a", 3)) == first[3]


def test_adding_sentences_keeps_the_earlier_ones() -> None:
    assert make_sentences(7, "spk-a", 30)[:10] == make_sentences(7, "spk-a", 10)


def test_seed_and_speaker_change_the_texts() -> None:
    base = make_sentences(7, "spk-a", 20)
    assert len(set(base) & set(make_sentences(8, "spk-a", 20))) <= 1
    assert len(set(base) & set(make_sentences(7, "spk-b", 20))) <= 1


def test_sentences_are_varied(many: list[str]) -> None:
    assert len(set(many)) >= 0.99 * len(many)
    assert len({s.split()[0] for s in many}) >= 60  # many different openings
    questions = sum(s.endswith("?") for s in many) / len(many)
    assert 0.12 < questions < 0.40
    assert any(" that " in s for s in many)  # reported speech
    assert any(", " in s for s in many)  # coordinate / subordinate clauses
    assert any(" who " in s for s in many)  # relative clauses
    assert any(re.search(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)\b", s) for s in many)


def test_vocabulary_is_a_few_hundred_words_and_used(many: list[str]) -> None:
    vocab = vocabulary()
    assert 300 <= len(vocab) <= 1500
    used = {w.lower() for s in many for w in WORD.findall(s)}
    assert used <= vocab, f"words outside the vocabulary: {sorted(used - vocab)[:20]}"
    assert len(used) >= 0.9 * len(vocab)


def test_sentences_are_well_formed(many: list[str]) -> None:
    for sentence in many:
        assert sentence.isascii(), sentence
        assert sentence[-1] in ".?" and sentence[-2] not in " .?,", sentence
        assert sentence[0].isupper(), sentence
        assert MIN_WORDS <= spoken_word_count(sentence) <= MAX_WORDS, sentence
        assert "  " not in sentence and " ," not in sentence, sentence
        assert not re.search(r"\ba [aeiou]", sentence), sentence  # "an apple", never "a apple"
        assert not re.search(r"\b(\w+) \1\b", sentence.lower().replace("that that", "")), sentence


def test_word_counts_span_the_range(many: list[str]) -> None:
    counts = {spoken_word_count(s) for s in many}
    assert counts == set(range(MIN_WORDS, MAX_WORDS + 1))


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (15, "fifteen"),
        (40, "forty"),
        (42, "forty-two"),
        (100, "one hundred"),
        (342, "three hundred and forty-two"),
        (999, "nine hundred and ninety-nine"),
    ],
)
def test_number_words(number: int, words: str) -> None:
    assert number_words(number) == words


def test_number_words_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="1000"):
        number_words(1000)
