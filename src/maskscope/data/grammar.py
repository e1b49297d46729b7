"""A seeded English sentence grammar for the synthetic-speech corpus (texts for the TTS voices).

A small phrase-structure grammar: statements in four tenses, yes/no and wh-questions, reported
speech, subordinate and coordinate clauses, relative clauses, numbers and times of day, over a
vocabulary of about 600 words. Sentences hold 6-16 spoken words ("forty-two" counts as two; about
2-5 s of synthetic speech),
are plain ASCII and end with "." or "?". Every draw comes from the Generator passed in, so a
sentence is a pure function of its RNG; `make_sentences` seeds one RNG per sentence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskscope.core.seeding import item_rng

MIN_WORDS = 6
MAX_WORDS = 16
_MAX_TRIES = 200


@dataclass(frozen=True)
class _Verb:
    base: str
    third: str
    past: str
    participle: str


# The lexicon is package data (lexicon.json): word lists by role, verbs as [base, third person,
# past, participle].
_LEXICON = json.loads(Path(__file__).with_name("lexicon.json").read_text(encoding="utf-8"))

_NOUNS: dict[str, str] = _LEXICON["nouns"]
_PERSON_NOUNS = tuple(_LEXICON["person_nouns"])
_ANIMAL_NOUNS = tuple(_LEXICON["animal_nouns"])
_THING_NOUNS = tuple(n for n in _NOUNS if n not in _PERSON_NOUNS and n not in _ANIMAL_NOUNS)
_PLACE_NOUNS = tuple(_LEXICON["place_nouns"])
_OBJECT_NOUNS = tuple(n for n in _THING_NOUNS if n not in _PLACE_NOUNS)
_PERSON_ADJECTIVES = tuple(_LEXICON["person_adjectives"])
_ANIMAL_ADJECTIVES = tuple(_LEXICON["animal_adjectives"])
_OBJECT_ADJECTIVES = tuple(_LEXICON["object_adjectives"])
_PLACE_ADJECTIVES = tuple(_LEXICON["place_adjectives"])
_ADJECTIVES = {
    "person": _PERSON_ADJECTIVES,
    "animal": _ANIMAL_ADJECTIVES,
    "object": _OBJECT_ADJECTIVES,
    "place": _PLACE_ADJECTIVES,
}
_NAMES = tuple(_LEXICON["names"])
_SINGULAR_DETERMINERS = tuple(_LEXICON["singular_determiners"])
_PLURAL_DETERMINERS = tuple(_LEXICON["plural_determiners"])
_TRANSITIVE = tuple(_Verb(*forms) for forms in _LEXICON["transitive"])
_PERSON_VERBS = tuple(_Verb(*forms) for forms in _LEXICON["person_verbs"])
_INTRANSITIVE = tuple(_Verb(*forms) for forms in _LEXICON["intransitive"])
_SPEECH_VERBS = tuple(_LEXICON["speech_verbs"])
_MANNER_ADVERBS = tuple(_LEXICON["manner_adverbs"])
_TIME_ADVERBIALS_PAST = tuple(_LEXICON["time_adverbials_past"])
_TIME_ADVERBIALS_FUTURE = tuple(_LEXICON["time_adverbials_future"])
_TIME_ADVERBIALS_HABIT = tuple(_LEXICON["time_adverbials_habit"])
_TIME_ADVERBIALS_PERFECT = tuple(_LEXICON["time_adverbials_perfect"])
_PREPOSITIONS = tuple(_LEXICON["prepositions"])
_CONJUNCTIONS = tuple(_LEXICON["conjunctions"])
_SUBORDINATORS = tuple(_LEXICON["subordinators"])
_WH_WORDS = tuple(_LEXICON["wh_words"])
_ONES = tuple(_LEXICON["ones"])
_TENS = tuple(_LEXICON["tens"])
_PRONOUNS = tuple(_LEXICON["pronouns"])
_FUNCTION_WORDS = tuple(_LEXICON["function_words"])

_TENSES = ("past", "present", "future", "perfect")


def number_words(n: int) -> str:
    """Spell 0-999 in English words ("three hundred and forty-two")."""
    if not 0 <= n <= 999:
        raise ValueError(f"number_words covers 0-999, not {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    head = f"{_ONES[hundreds]} hundred"
    return head if rest == 0 else f"{head} and {number_words(rest)}"


@dataclass(frozen=True)
class _Phrase:
    text: str
    plural: bool  # for subject-verb agreement
    first_person: bool = False


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _pick_verb(rng: np.random.Generator, options: Sequence[_Verb]) -> _Verb:
    return options[int(rng.integers(len(options)))]


def _article(determiner: str, next_word: str) -> str:
    if determiner == "a" and next_word[0] in "aeiou":
        return "an"
    return determiner


def _noun_phrase(rng: np.random.Generator, kind: str, allow_number: bool = True) -> _Phrase:
    """A determiner + optional adjective(s) + noun of one kind ("person", "animal", "object", "place")."""
    nouns = {"person": _PERSON_NOUNS, "animal": _ANIMAL_NOUNS, "object": _OBJECT_NOUNS, "place": _PLACE_NOUNS}[kind]
    noun = _pick(rng, nouns)
    adjectives = _ADJECTIVES[kind]
    roll = rng.random()
    modifiers: list[str] = []
    if roll < 0.55:
        modifiers.append(_pick(rng, adjectives))
    elif roll < 0.65:
        first = _pick(rng, adjectives)
        modifiers += [first, _pick(rng, [a for a in adjectives if a != first])]
    plural = kind != "place" and rng.random() < 0.35
    if plural:
        if allow_number and rng.random() < 0.35:
            determiner = number_words(int(rng.integers(2, 100)))
        else:
            determiner = _pick(rng, _PLURAL_DETERMINERS)
        words = [determiner, *modifiers, _NOUNS[noun]]
    else:
        determiner = "the" if kind == "place" and rng.random() < 0.7 else _pick(rng, _SINGULAR_DETERMINERS)
        words = [*modifiers, noun]
        words.insert(0, _article(determiner, words[0]))
    return _Phrase(" ".join(words), plural)


def _subject(rng: np.random.Generator, people_only: bool = False) -> _Phrase:
    roll = rng.random()
    if roll < 0.25:
        return _Phrase(_pick(rng, _NAMES), plural=False)
    if roll < 0.40:
        pronoun = _pick(rng, _PRONOUNS)
        return _Phrase(pronoun, plural=pronoun in ("you", "we", "they"), first_person=pronoun == "I")
    if roll < 0.50 and not people_only:
        return _noun_phrase(rng, "animal")
    if roll < 0.58:
        # Relative clause on the subject: "the nurse who visited the market".
        head = _noun_phrase(rng, "person", allow_number=False)
        verb = _pick_verb(rng, _TRANSITIVE)
        return _Phrase(f"{head.text} who {verb.past} {_noun_phrase(rng, 'object').text}", head.plural)
    return _noun_phrase(rng, "person")


def _object(rng: np.random.Generator, verb: _Verb) -> str:
    if verb in _PERSON_VERBS:
        if rng.random() < 0.35:
            return _pick(rng, _NAMES)
        return _noun_phrase(rng, "person").text
    return _noun_phrase(rng, "animal" if rng.random() < 0.15 else "object").text


def _finite(verb: _Verb, subject: _Phrase, tense: str) -> str:
    """The finite verb group for a subject in one tense ("carries", "will carry", "has carried")."""
    singular_third = not subject.plural and not subject.first_person and subject.text != "you"
    if tense == "past":
        return verb.past
    if tense == "future":
        return f"will {verb.base}"
    if tense == "perfect":
        return f"{'has' if singular_third else 'have'} {verb.participle}"
    return verb.third if singular_third else verb.base


def _time_adverbial(rng: np.random.Generator, tense: str) -> str:
    if tense == "future":
        if rng.random() < 0.2:
            return f"at {number_words(int(rng.integers(1, 13)))} o'clock"
        return _pick(rng, _TIME_ADVERBIALS_FUTURE)
    if tense == "present":
        return _pick(rng, _TIME_ADVERBIALS_HABIT)
    if tense == "perfect":
        return _pick(rng, _TIME_ADVERBIALS_PERFECT)
    return _pick(rng, _TIME_ADVERBIALS_PAST)


def _place(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _PREPOSITIONS)} {_noun_phrase(rng, 'place').text}"


def _clause(rng: np.random.Generator, tense: str | None = None) -> str:
    """An independent declarative clause without final punctuation."""
    tense = tense or _pick(rng, _TENSES)
    subject = _subject(rng)
    parts = [subject.text]
    if rng.random() < 0.7:
        verb = _pick_verb(rng, _PERSON_VERBS if rng.random() < 0.25 else _TRANSITIVE)
        parts += [_finite(verb, subject, tense), _object(rng, verb)]
    else:
        verb = _pick_verb(rng, _INTRANSITIVE)
        parts.append(_finite(verb, subject, tense))
        if rng.random() < 0.6:
            parts.append(_pick(rng, _MANNER_ADVERBS))
    if rng.random() < 0.45:
        parts.append(_place(rng))
    if rng.random() < 0.5:
        parts.append(_time_adverbial(rng, tense))
    return " ".join(parts)


def _question(rng: np.random.Generator) -> str:
    """A yes/no or wh-question with do-support or an auxiliary."""
    tense = _pick(rng, ("past", "present", "future"))
    subject = _subject(rng)
    singular_third = not subject.plural and not subject.first_person and subject.text != "you"
    auxiliary = {"past": "did", "present": "does" if singular_third else "do", "future": "will"}[tense]
    verb = _pick_verb(rng, _TRANSITIVE + _PERSON_VERBS)
    roll = rng.random()
    if roll < 0.2:
        noun = _NOUNS[_pick(rng, _OBJECT_NOUNS)]
        words = ["how many", noun, auxiliary, subject.text, verb.base]
        if rng.random() < 0.6:
            words.append(_place(rng))
    elif roll < 0.55:
        wh_word = _pick(rng, _WH_WORDS)
        words = [wh_word, auxiliary, subject.text, verb.base, _object(rng, verb)]
        if wh_word != "when" and rng.random() < 0.4:
            words.append(_time_adverbial(rng, tense))
    else:
        words = [auxiliary, subject.text, verb.base, _object(rng, verb)]
        if rng.random() < 0.5:
            words.append(_place(rng))
        if rng.random() < 0.5:
            words.append(_time_adverbial(rng, tense))
    return " ".join(words) + "?"


def _statement(rng: np.random.Generator) -> str:
    roll = rng.random()
    if roll < 0.45:
        text = _clause(rng)
    elif roll < 0.60:
        tense = _pick(rng, _TENSES)
        text = f"{_clause(rng, tense)}, {_pick(rng, _CONJUNCTIONS)} {_clause(rng, tense)}"
    elif roll < 0.78:
        subordinate = f"{_pick(rng, _SUBORDINATORS)} {_clause(rng, 'past')}"
        main = _clause(rng, "past")
        text = f"{subordinate}, {main}" if rng.random() < 0.5 else f"{main} {subordinate}"
    elif roll < 0.90:
        speaker = _subject(rng, people_only=True)
        text = f"{speaker.text} {_pick(rng, _SPEECH_VERBS)} that {_clause(rng, 'past')}"
    else:
        # Counting sentence: "there were forty-two red apples in the basket".
        count = int(rng.integers(2, 1000)) if rng.random() < 0.3 else int(rng.integers(2, 100))
        kind = "animal" if rng.random() < 0.3 else "object"
        noun = _NOUNS[_pick(rng, _ANIMAL_NOUNS if kind == "animal" else _OBJECT_NOUNS)]
        adjective = f"{_pick(rng, _ADJECTIVES[kind])} " if rng.random() < 0.5 else ""
        text = f"there {_pick(rng, ('were', 'are', 'will be'))} {number_words(count)} {adjective}{noun} {_place(rng)}"
    return text + "."


def spoken_word_count(text: str) -> int:
    """Words as spoken: "forty-two" counts as two."""
    return len(text.replace("-", " ").split())


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:]


def make_sentence(rng: np.random.Generator) -> str:
    """One grammatical English sentence of 6-16 words drawn from `rng`; ends with "." or "?"."""
    for _ in range(_MAX_TRIES):
        text = _question(rng) if rng.random() < 0.2 else _statement(rng)
        if MIN_WORDS <= spoken_word_count(text) <= MAX_WORDS:
            return _capitalise(text)
    raise RuntimeError(f"no sentence of {MIN_WORDS}-{MAX_WORDS} words in {_MAX_TRIES} draws")  # unreachable


def make_sentences(base_seed: int, speaker: str, count: int) -> list[str]:
    """`count` sentences for one speaker; sentence i depends only on (base_seed, speaker, i)."""
    return [make_sentence(item_rng(base_seed, "sentence", speaker, i)) for i in range(count)]


def vocabulary() -> frozenset[str]:
    """Every word the grammar can emit, lower case, with "forty-two" split into "forty", "two"."""
    words: set[str] = set()
    for noun, plural in _NOUNS.items():
        words.add(noun)
        if noun not in _PLACE_NOUNS:  # places are always singular
            words.add(plural)
    for verb in _TRANSITIVE + _PERSON_VERBS + _INTRANSITIVE:
        words.update((verb.base, verb.third, verb.past, verb.participle))
    for group in (
        *_ADJECTIVES.values(),
        _NAMES,
        _PRONOUNS,
        _FUNCTION_WORDS,
        _SINGULAR_DETERMINERS,
        _PLURAL_DETERMINERS,
        _SPEECH_VERBS,
        _MANNER_ADVERBS,
        _TIME_ADVERBIALS_PAST,
        _TIME_ADVERBIALS_FUTURE,
        _TIME_ADVERBIALS_HABIT,
        _TIME_ADVERBIALS_PERFECT,
        _PREPOSITIONS,
        _CONJUNCTIONS,
        _SUBORDINATORS,
        _WH_WORDS,
        _ONES[1:],
        _TENS[2:],
    ):
        for phrase in group:
            words.update(phrase.lower().split())
    return frozenset(words)
