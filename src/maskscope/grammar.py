"""A seeded English sentence grammar for the synthetic-speech corpus (texts for the TTS voices).

A small phrase-structure grammar: statements in four tenses, yes/no and wh-questions, reported
speech, subordinate and coordinate clauses, relative clauses, numbers and times of day, over a
vocabulary of about 600 words. Sentences hold 6-16 spoken words ("forty-two" counts as two; about
2-5 s of synthetic speech),
are plain ASCII and end with "." or "?". Every draw comes from the Generator passed in, so a
sentence is a pure function of its RNG; `make_sentences` seeds one RNG per sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from maskscope.seeding import item_rng

MIN_WORDS = 6
MAX_WORDS = 16
_MAX_TRIES = 200

# Nouns: singular -> plural (regular plurals are spelled out too, so nothing is guessed).
_NOUNS: dict[str, str] = {
    "farmer": "farmers",
    "teacher": "teachers",
    "doctor": "doctors",
    "baker": "bakers",
    "driver": "drivers",
    "pilot": "pilots",
    "student": "students",
    "painter": "painters",
    "sailor": "sailors",
    "nurse": "nurses",
    "child": "children",
    "girl": "girls",
    "boy": "boys",
    "neighbour": "neighbours",
    "engineer": "engineers",
    "singer": "singers",
    "waiter": "waiters",
    "captain": "captains",
    "gardener": "gardeners",
    "visitor": "visitors",
    "dog": "dogs",
    "cat": "cats",
    "horse": "horses",
    "bird": "birds",
    "rabbit": "rabbits",
    "fox": "foxes",
    "box": "boxes",
    "letter": "letters",
    "book": "books",
    "basket": "baskets",
    "bottle": "bottles",
    "candle": "candles",
    "chair": "chairs",
    "table": "tables",
    "window": "windows",
    "door": "doors",
    "fence": "fences",
    "bridge": "bridges",
    "boat": "boats",
    "train": "trains",
    "bicycle": "bicycles",
    "lamp": "lamps",
    "map": "maps",
    "key": "keys",
    "coat": "coats",
    "hat": "hats",
    "shoe": "shoes",
    "cup": "cups",
    "plate": "plates",
    "knife": "knives",
    "apple": "apples",
    "orange": "oranges",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "cake": "cakes",
    "sandwich": "sandwiches",
    "parcel": "parcels",
    "ticket": "tickets",
    "picture": "pictures",
    "song": "songs",
    "story": "stories",
    "garden": "gardens",
    "house": "houses",
    "kitchen": "kitchens",
    "village": "villages",
    "river": "rivers",
    "mountain": "mountains",
    "forest": "forests",
    "road": "roads",
    "shop": "shops",
    "market": "markets",
    "station": "stations",
    "library": "libraries",
    "office": "offices",
    "factory": "factories",
    "island": "islands",
    "blanket": "blankets",
    "mirror": "mirrors",
    "pencil": "pencils",
    "radio": "radios",
    "clock": "clocks",
    "wheel": "wheels",
    "stone": "stones",
    "flower": "flowers",
    "tree": "trees",
    "leaf": "leaves",
    "shelf": "shelves",
    "wolf": "wolves",
}
_PERSON_NOUNS = (
    "farmer",
    "teacher",
    "doctor",
    "baker",
    "driver",
    "pilot",
    "student",
    "painter",
    "sailor",
    "nurse",
    "child",
    "girl",
    "boy",
    "neighbour",
    "engineer",
    "singer",
    "waiter",
    "captain",
    "gardener",
    "visitor",
)
_ANIMAL_NOUNS = ("dog", "cat", "horse", "bird", "rabbit", "fox", "wolf")
_THING_NOUNS = tuple(n for n in _NOUNS if n not in _PERSON_NOUNS and n not in _ANIMAL_NOUNS)
_PLACE_NOUNS = (
    "garden",
    "house",
    "kitchen",
    "village",
    "river",
    "mountain",
    "forest",
    "road",
    "shop",
    "market",
    "station",
    "library",
    "office",
    "factory",
    "island",
    "bridge",
)
_OBJECT_NOUNS = tuple(n for n in _THING_NOUNS if n not in _PLACE_NOUNS)

# Adjectives by the kind of noun they fit, so no "young knife" or "careful factory".
_PERSON_ADJECTIVES = (
    "old",
    "young",
    "tall",
    "clever",
    "careful",
    "lazy",
    "happy",
    "tired",
    "hungry",
    "friendly",
    "famous",
    "gentle",
    "patient",
    "curious",
    "busy",
    "lucky",
    "quiet",
    "noisy",
    "polite",
    "brave",
)
_ANIMAL_ADJECTIVES = (
    "old",
    "young",
    "small",
    "big",
    "quiet",
    "noisy",
    "brown",
    "white",
    "black",
    "grey",
    "clever",
    "lazy",
    "happy",
    "tired",
    "hungry",
    "friendly",
    "strange",
    "gentle",
    "curious",
    "tiny",
    "huge",
    "wet",
)
_OBJECT_ADJECTIVES = (
    "old",
    "new",
    "small",
    "big",
    "heavy",
    "light",
    "bright",
    "dark",
    "red",
    "blue",
    "green",
    "yellow",
    "brown",
    "white",
    "black",
    "golden",
    "wooden",
    "broken",
    "shiny",
    "strange",
    "ancient",
    "modern",
    "warm",
    "cold",
    "wet",
    "dry",
    "tiny",
    "huge",
    "soft",
    "rough",
    "clean",
    "dusty",
    "fresh",
)
_PLACE_ADJECTIVES = (
    "old",
    "new",
    "small",
    "big",
    "quiet",
    "noisy",
    "dark",
    "bright",
    "famous",
    "ancient",
    "modern",
    "cold",
    "warm",
    "empty",
    "busy",
    "narrow",
    "wide",
    "clean",
    "dusty",
    "strange",
    "green",
    "distant",
)
_ADJECTIVES = {
    "person": _PERSON_ADJECTIVES,
    "animal": _ANIMAL_ADJECTIVES,
    "object": _OBJECT_ADJECTIVES,
    "place": _PLACE_ADJECTIVES,
}
_NAMES = (
    "Anna",
    "Peter",
    "Maria",
    "John",
    "Lucy",
    "Thomas",
    "Emma",
    "David",
    "Sarah",
    "Robert",
    "Helen",
    "Michael",
    "Laura",
    "James",
    "Alice",
    "George",
    "Rachel",
    "Daniel",
    "Julia",
    "Oliver",
    "Kate",
    "Samuel",
    "Grace",
    "Victor",
    "Nora",
)
_SINGULAR_DETERMINERS = ("the", "a", "this", "that", "every", "my", "our", "their", "his", "her", "one")
_PLURAL_DETERMINERS = ("the", "some", "these", "those", "my", "our", "their", "many", "few", "all the")


@dataclass(frozen=True)
class _Verb:
    base: str
    third: str
    past: str
    participle: str


def _verbs(table: str) -> tuple[_Verb, ...]:
    """Parse "base third past [participle]" lines; the participle defaults to the past form."""
    verbs = []
    for line in table.strip().splitlines():
        base, third, past, *participle = line.split()
        verbs.append(_Verb(base, third, past, participle[0] if participle else past))
    return tuple(verbs)


# Transitive verbs take a thing or a creature as object.
_TRANSITIVE = _verbs("""
carry carries carried
paint paints painted
find finds found
lose loses lost
buy buys bought
sell sells sold
open opens opened
close closes closed
clean cleans cleaned
fix fixes fixed
break breaks broke broken
bring brings brought
take takes took taken
move moves moved
hide hides hid hidden
wash washes washed
pack packs packed
drop drops dropped
throw throws threw thrown
choose chooses chose chosen
borrow borrows borrowed
return returns returned
repair repairs repaired
describe describes described
count counts counted
check checks checked
deliver delivers delivered
wrap wraps wrapped
lift lifts lifted
push pushes pushed
pull pulls pulled
draw draws drew drawn
forget forgets forgot forgotten
notice notices noticed
watch watches watched
follow follows followed
feed feeds fed
see sees saw seen
keep keeps kept
need needs needed
want wants wanted
like likes liked
sort sorts sorted
measure measures measured
""")
# Verbs whose object is a person.
_PERSON_VERBS = _verbs("""
meet meets met
call calls called
help helps helped
visit visits visited
thank thanks thanked
invite invites invited
greet greets greeted
remember remembers remembered
teach teaches taught
warn warns warned
ask asks asked
wake wakes woke woken
""")
_INTRANSITIVE = _verbs("""
sleep sleeps slept
laugh laughs laughed
wait waits waited
sing sings sang sung
work works worked
arrive arrives arrived
leave leaves left
rest rests rested
travel travels travelled
run runs ran run
walk walks walked
swim swims swam swum
dance dances danced
listen listens listened
stay stays stayed
cook cooks cooked
read reads read
write writes wrote written
study studies studied
shout shouts shouted
""")
_SPEECH_VERBS = ("said", "thought", "told us", "explained", "believed", "promised", "heard")
_MANNER_ADVERBS = (
    "slowly",
    "quickly",
    "carefully",
    "quietly",
    "loudly",
    "happily",
    "gently",
    "suddenly",
    "easily",
    "calmly",
    "proudly",
    "nervously",
    "patiently",
    "badly",
    "well",
    "again",
    "together",
    "alone",
)
_TIME_ADVERBIALS_PAST = (
    "yesterday",
    "last week",
    "last night",
    "this morning",
    "on Monday",
    "on Friday",
    "in the spring",
    "after lunch",
    "before dinner",
    "two days ago",
    "in the evening",
    "at noon",
    "last summer",
)
_TIME_ADVERBIALS_FUTURE = (
    "tomorrow",
    "next week",
    "tonight",
    "on Sunday",
    "on Tuesday",
    "after lunch",
    "before dinner",
    "in the morning",
    "next month",
    "later today",
    "in the autumn",
    "soon",
)
_TIME_ADVERBIALS_HABIT = (
    "every morning",
    "every evening",
    "on Saturdays",
    "in winter",
    "every day",
    "twice a week",
    "after school",
    "usually",
    "always",
    "sometimes",
    "often",
    "at weekends",
)
_TIME_ADVERBIALS_PERFECT = ("already", "twice", "this week", "today", "recently", "three times")
_PREPOSITIONS = (
    "near",
    "behind",
    "beside",
    "inside",
    "across",
    "under",
    "above",
    "along",
    "past",
    "in",
    "at",
    "outside",
)
_CONJUNCTIONS = ("and", "but", "so", "while")
_SUBORDINATORS = ("when", "because", "after", "before", "although", "if", "until", "since")
_WH_WORDS = ("where", "why", "when", "how")
_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_PRONOUNS = ("I", "you", "we", "they", "he", "she")
# Words that only the rules themselves emit (auxiliaries, "there were", relative "who", ...).
_FUNCTION_WORDS = (
    "there",
    "were",
    "are",
    "will",
    "be",
    "who",
    "that",
    "how",
    "many",
    "has",
    "have",
    "did",
    "do",
    "does",
    "o'clock",
    "an",
    "hundred",
    "and",
)

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
