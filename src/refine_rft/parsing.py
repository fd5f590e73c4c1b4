"""Strict parsing of model responses: tagged blocks, and which single option an answer names.

Rewards (R_cls) and accuracy (every prompt style) rest on one answer grammar, read by
:func:`read_answer` and decided by :func:`extract_choice`. An answer names **exactly one** option:

- by letter (``"B"``, ``"(b)"``, ``"Option B"``, ``"The answer is B"``), by full name
  (``"Sooty_Albatross"``, ``"sooty albatross"``), or by both in agreement (``"B. Sooty_Albatross"``);
  a text that names nothing else may also be one run of words of a single option's name
  (``"Laysan"``);
- any second option makes it unparseable, whatever the case or separator: a second letter
  (``"B or c"``, ``"option b, c"``, ``"B/C"``), a second name, a letter that contradicts the name
  given with it, or a list item made only of another option's words (``"Sooty_Albatross, Least"``);
- any negation (``not``, ``no``, ``never``, ``isn't``, ...) or hedge (``or``, ``maybe``,
  ``perhaps``, ``if``, ``wait``, ...) makes it unparseable, even next to a single option:
  ``"not B"`` and ``"maybe B"`` earn nothing. Words inside an option's own name do not count
  ("Forget-me-not" is a name, not a negation);
- an answer of more than :data:`MAX_ANSWER_WORDS` words is unparseable: no prompt asks for an
  essay, and a policy that degenerates into repetition must earn nothing, quickly.

Tags have one spelling: lower case, as the prompts show them and as the paper defines the format
(:func:`tag`). ``<ANSWER>`` or ``<Think>`` is text, not a tag, for every reader of tags alike: the
format rewards (R_f, R_fa), R_cls and the accuracy of the tagged styles.

Text is read after NFKC normalisation with invisible format characters removed (so a full-width
``Ｂ`` is ``B`` and a zero-width space hides nothing). Every parser here is linear in the length of
its input: one split into words and one pass over them, no regex that can backtrack over
untrusted text. Picking a random option when parsing fails is never done.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from itertools import islice
from collections.abc import Sequence
from dataclasses import dataclass

TAGS = ("think", "attribute", "answer")
# The option letters, in the order options are shown (the FOCI protocol asks four-option questions).
LETTERS = "ABCD"
MAX_ANSWER_WORDS = 1000

# Words that negate or hedge: an answer holding one of them is unparseable.
NEGATIONS = frozenset({
    "not", "no", "never", "neither", "nor", "none", "nope", "cannot", "except", "excluding", "unlike",
    "instead", "isnt", "arent", "wasnt", "werent", "dont", "doesnt", "didnt", "cant", "wont", "aint",
})
HEDGES = frozenset({
    "or", "either", "maybe", "perhaps", "possibly", "probably", "likely", "might", "unsure", "uncertain",
    "unclear", "guess", "if", "whether", "wait",
})
# Words and characters that separate list items ("B, C", "B / Auklet", "Sooty vs Least").
_ITEM_WORDS = frozenset({"or", "and", "nor", "then", "vs", "versus", "plus"})
_ITEM_GAP = re.compile(r"[,;/|&()\[\]{}:.!?\n+]")
_ARTICLES = frozenset({"a", "an", "the"})
_WORD = re.compile(r"[0-9A-Za-z]+")
_SPLIT = re.compile(r"([^0-9A-Za-z]+)")
_APOSTROPHES = ("'", "\u2019")


def tag(name: str, closing: bool = False) -> str:
    """The one spelling of a tag, matched exactly: lower case, no spaces, as the prompts show it.

    >>> tag("answer"), tag("answer", closing=True)
    ('<answer>', '</answer>')
    >>> answer_block("<ANSWER>B</ANSWER>") is None  # not a tag: the response has no answer block
    True
    """
    return f"</{name}>" if closing else f"<{name}>"


# Case-sensitive on purpose: the exact spellings of :func:`tag`, nothing else.
_TAG = re.compile("|".join(re.escape(tag(name, closing)) for name in TAGS for closing in (False, True)))
_ANSWER_TAG = re.compile(f"{re.escape(tag('answer'))}|{re.escape(tag('answer', closing=True))}")


@dataclass(frozen=True)
class ParsedResponse:
    """The contents of the tagged blocks of a response (``None`` when a block is absent)."""

    think: str | None
    attribute: str | None
    answer: str | None


# Characters that render as nothing and can split a word without showing: the format characters
# (category Cf: zero-width spaces and joiners, bidi controls, soft hyphen, BOM, tags; Unicode 14),
# the combining grapheme joiner, Hangul fillers and variation selectors. One regex, not a
# per-character Python loop: a megabyte of them is removed in milliseconds.
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0\ufe00-\ufe0f\U000e0100-\U000e01ef]+")


def visible_text(text: str) -> str:
    """``text`` in NFKC form without invisible format characters (zero-width spaces, joiners, ...).

    >>> visible_text("Ign\\u200bore  Score\\uff1a100 \\uff22")
    'Ignore  Score:100 B'
    """
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def _block(text: str, name: str) -> str | None:
    # Two str.find calls, not a lazy regex: a regex would rescan the rest of the text from every
    # unclosed "<tag>", which is quadratic on a response that repeats it.
    opening, closing = tag(name), tag(name, closing=True)
    start = text.find(opening)
    if start == -1:
        return None
    end = text.find(closing, start + len(opening))
    return None if end == -1 else text[start + len(opening):end].strip()


def parse_response(text: str) -> ParsedResponse:
    """Split a response into its ``<think>``, ``<attribute>`` and ``<answer>`` contents.

    Takes the first complete block of each tag; whether the response is well-formed as a whole is
    the format rewards' business, and which answer counts is :func:`answer_block`'s.

    >>> parse_response("<think>red wings</think><answer>B. Crimson-winged Finch</answer>")
    ParsedResponse(think='red wings', attribute=None, answer='B. Crimson-winged Finch')
    """
    return ParsedResponse(*(_block(text, name) for name in TAGS))


def answer_block(text: str | None) -> str | None:
    """The contents of the one ``<answer>`` block of a tagged response, else ``None``.

    The rule R_cls and CoT accuracy share: exactly one ``<answer>`` and one ``</answer>`` (spelt as
    :func:`tag` spells them), in that order, no ``<think>``/``<attribute>``/``<answer>`` tag inside, and nothing but
    whitespace after it. A second block, a nested one or a correction after the block
    ("</answer> Actually it is A") leaves the response without an answer.

    >>> answer_block("<think>dark</think>\\n<answer> B </answer>\\n")
    'B'
    >>> [answer_block(t) for t in ["<answer>B</answer> Actually A", "<answer>B</answer><answer>C</answer>",
    ...                            "<answer><answer>B</answer></answer>", "<answer>B", "B"]]
    [None, None, None, None, None]
    """
    if not text:
        return None
    tags = list(islice(_ANSWER_TAG.finditer(text), 3))  # a third tag already decides
    if len(tags) != 2 or tags[0].group() != tag("answer") or tags[1].group() != tag("answer", closing=True):
        return None
    inside = text[tags[0].end():tags[1].start()]
    if _TAG.search(inside) or text[tags[1].end():].strip():
        return None
    return inside.strip()


def normalize_name(name: str) -> str:
    """Lower-case, with every run of non-alphanumerics (``_``, ``-``, spaces, ...) as one space.

    >>> normalize_name("Black_footed_Albatross") == normalize_name("black-footed  albatross")
    True
    """
    return re.sub(r"[^0-9a-z]+", " ", name.lower()).strip()


def _name_words(option: str) -> tuple[str, ...]:
    return tuple(w for w in _SPLIT.split(visible_text(option).lower())[::2] if w)


@dataclass(frozen=True)
class AnswerReading:
    """What an answer text states, before any rule decides (see :func:`read_answer`).

    Attributes:
        by_letter: options stated by letter.
        by_name: options stated by full name.
        by_fragment: when neither letters nor names are stated, the options whose name contains the
            whole text as a run of words (``"Laysan"``); otherwise empty.
        items: for each list item made only of option words outside full names (articles aside),
            the options containing all those words (empty: words of several options mixed).
        refusal: the first negation or hedge word, else ``None``.
    """

    by_letter: frozenset[int]
    by_name: frozenset[int]
    by_fragment: frozenset[int]
    items: tuple[frozenset[int], ...]
    refusal: str | None

    def single_option(self) -> int | None:
        """The one option this reading names, if it names exactly one, consistently, without refusal."""
        if self.refusal is not None:
            return None
        named = self.by_letter | self.by_name | (self.by_fragment if len(self.by_fragment) == 1 else frozenset())
        if len(named) != 1:
            return None
        (choice,) = named
        return choice if all(choice in item for item in self.items) else None


@dataclass(frozen=True)
class NameIndex:
    """The names an answer may state, split into words once: what the answer grammar looks up.

    Built by :func:`name_index` (cached per tuple of names), shared by the closed-world rule (the
    options of one question) and the open-world one (every class name and alias of a dataset).

    >>> index = name_index(("Laysan_Albatross", "Sooty_Albatross"))
    >>> index.names[1], sorted(index.vocabulary["albatross"])
    (('sooty', 'albatross'), [0, 1])
    """

    names: tuple[tuple[str, ...], ...]
    vocabulary: dict[str, frozenset[int]]  # word -> the names holding it
    by_first: dict[str, tuple[tuple[int, tuple[str, ...]], ...]]  # first word -> names, longest first


@functools.lru_cache(maxsize=256)
def name_index(names: tuple[str, ...]) -> NameIndex:
    """The :class:`NameIndex` of ``names`` (cached: a dataset's class list is indexed once)."""
    words = tuple(_name_words(name) for name in names)
    vocabulary: dict[str, set[int]] = {}
    by_first: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for index, name in enumerate(words):
        for word in name:
            vocabulary.setdefault(word, set()).add(index)
        if name:
            by_first.setdefault(name[0], []).append((index, name))
    return NameIndex(words, {w: frozenset(i) for w, i in vocabulary.items()},
                     {w: tuple(sorted(c, key=lambda c: -len(c[1]))) for w, c in by_first.items()})


class _Reader:
    """One pass over the words of an answer (see :func:`read_answer`)."""

    def __init__(self, text: str, index: NameIndex, letters: str):
        text = visible_text(text)
        # Counted lazily, so that a megabyte of repetition costs one scan up to word 1001 only.
        self.too_long = sum(1 for _ in islice(_WORD.finditer(text), MAX_ANSWER_WORDS + 1)) > MAX_ANSWER_WORDS
        parts = [] if self.too_long else _SPLIT.split(text)
        self.words, self.gaps = parts[0::2], parts[1::2]  # gaps[i] lies between words[i] and words[i + 1]
        self.low = [w.lower() for w in self.words]
        self.index = index
        self.options = index.names
        count = len(index.names)
        self.letter_index = {c: i for i, letter in enumerate(letters[:count]) for c in (letter, letter.lower())}
        self.vocabulary = index.vocabulary
        self.consumed = bytearray(len(self.words))

    def names(self) -> set[int]:
        """Leftmost-longest full-name matches, marked consumed: an exact full name wins over a
        shorter option that it contains ("Ford Focus Sedan 2007" vs "Focus Sedan 2007")."""
        by_first = self.index.by_first
        low, found, i = self.low, set(), 0
        while i < len(low):
            for index, words in by_first.get(low[i], ()):
                if tuple(low[i:i + len(words)]) == words:
                    found.add(index)
                    self.consumed[i:i + len(words)] = b"\x01" * len(words)
                    i += len(words)
                    break
            else:
                i += 1
        return found

    def _gap(self, i: int) -> str:
        return self.gaps[i] if 0 <= i < len(self.gaps) else ""

    def _stands_alone(self, i: int) -> bool:
        """A letter-like word not joined to a word by a hyphen or apostrophe ("D-shaped", "I'd")."""
        return self.words[i] in self.letter_index and not (
            self._gap(i - 1).endswith(("-", *_APOSTROPHES)) or self._gap(i).startswith(("-", *_APOSTROPHES)))

    def _is_letter(self, i: int) -> bool:
        if not self._stands_alone(i):
            return False
        word = self.words[i]
        if word in "Aa" and i + 1 < len(self.words) and self._gap(i).isspace():
            following = self.words[i + 1]
            # The article of "A bird", "is a Least Auklet" - but "A or B", "a b" name two letters.
            if following and self.low[i + 1] not in _ITEM_WORDS and not self._stands_alone(i + 1):
                return not (word == "a" or following[0].islower())
        return True

    def _refusal(self, i: int) -> str | None:
        word = self.low[i]
        if word in NEGATIONS or word in HEDGES:
            return word
        if word == "t" and self._gap(i - 1) in _APOSTROPHES and self.low[i - 1].endswith("n"):
            return f"{self.words[i - 1]}{self._gap(i - 1)}t"  # "isn't", "can't", "won't"
        return None

    def read(self) -> AnswerReading:
        if self.too_long:
            empty: frozenset[int] = frozenset()
            return AnswerReading(empty, empty, empty, (), f"more than {MAX_ANSWER_WORDS} words")
        by_name = self.names()
        by_letter, items, refusal = set(), [], None
        item: frozenset[int] | None = None  # options that every option word of the current item is in
        prose = False  # the current item holds a word that is no option word
        for i, word in enumerate(self.low):
            if i and (_ITEM_GAP.search(self.gaps[i - 1]) or word in _ITEM_WORDS):
                if item is not None and not prose:
                    items.append(item)
                item, prose = None, False
            if not word or self.consumed[i]:
                continue
            if self._is_letter(i):
                by_letter.add(self.letter_index[self.words[i]])
                continue
            refusal = refusal or self._refusal(i)
            if word in _ARTICLES or word in _ITEM_WORDS:
                continue
            options = self.vocabulary.get(word)
            if options is None:
                prose = True
            else:
                item = options if item is None else item & options
        if item is not None and not prose:
            items.append(item)
        by_fragment: set[int] = set()
        if not by_letter and not by_name:
            run = tuple(w for w in self.low if w)
            by_fragment = {i for i, words in enumerate(self.options) if run and _contains_run(words, run)}
        return AnswerReading(frozenset(by_letter), frozenset(by_name), frozenset(by_fragment), tuple(items), refusal)


def _contains_run(words: tuple[str, ...], run: tuple[str, ...]) -> bool:
    return any(words[i:i + len(run)] == run for i in range(len(words) - len(run) + 1))


def read_answer(text: str, options: Sequence[str], letters: str = LETTERS) -> AnswerReading:
    """What ``text`` states about ``options``: letters, full names, fragments, list items, refusal.

    >>> options = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]
    >>> read_answer("B. Sooty Albatross, Least", options)
    AnswerReading(by_letter=frozenset({1}), by_name=frozenset({1}), by_fragment=frozenset(), items=(frozenset({2}),), refusal=None)
    >>> read_answer("not B", options).refusal
    'not'
    """
    return read_names(text, name_index(tuple(options)), letters)


def read_names(text: str, index: NameIndex, letters: str = "") -> AnswerReading:
    """What ``text`` states about the names of ``index`` (:func:`read_answer`'s grammar; no letters
    unless ``letters`` are given: the open-world reading of a free-form answer).

    >>> read_names("It is a Sooty Albatross.", name_index(("Laysan_Albatross", "Sooty_Albatross"))).by_name
    frozenset({1})
    """
    return _Reader(text, index, letters).read()


def stated_options(text: str, options: Sequence[str], letters: str = LETTERS) -> tuple[set[int], set[int]]:
    """The options a text states by letter and, separately, by full name: ``(by_letter, by_name)``.

    A building block of stricter rules; :func:`read_answer` has the rest (fragments, refusals).

    >>> stated_options("B. Sooty Albatross", ["Laysan_Albatross", "Sooty_Albatross"])
    ({1}, {1})
    >>> stated_options("A or B", ["Laysan_Albatross", "Sooty_Albatross"])
    ({0, 1}, set())
    """
    reading = read_answer(text, options, letters)
    return set(reading.by_letter), set(reading.by_name)


def extract_choice(text: str | None, options: Sequence[str], letters: str = LETTERS) -> int | None:
    """The index of the single option that ``text`` identifies, else ``None`` (the module's grammar).

    Args:
        text: an answer such as ``"B"``, ``"(B)"``, ``"Option B"``, ``"The answer is B"``,
            ``"B. Laysan_Albatross"`` or a bare name. Case-insensitive; names match after
            normalizing case, underscores, hyphens and spaces.
        options: the option names in the order shown to the model.
        letters: the option letters, one per option.

    Returns:
        The option index, or ``None`` for empty text, nothing identified, two or more different
        options, a letter that contradicts the name given with it, a fragment shared by several
        options, or any negation or hedge.

    Example:
        >>> options = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]
        >>> [extract_choice(t, options) for t in ["B", "(c)", "Option D", "black-footed", "laysan albatross"]]
        [1, 2, 3, None, 0]
        >>> [extract_choice(t, options) for t in ["A or B", "B. Laysan_Albatross", "Albatross", "", "not B"]]
        [None, None, None, None, None]
        >>> [extract_choice(t, options) for t in ["B or c", "option b, d", "B or Auklet", "B maybe"]]
        [None, None, None, None]
        >>> [extract_choice(t, options) for t in ["B. because", "A bird", "An auklet"]]  # "A bird": an article
        [1, None, None]
    """
    if text is None or not text.strip():
        return None
    return read_answer(text, options, letters).single_option()


# --- Answer rules of the prompt styles (see refine_rft.prompts.PROMPT_STYLES) -------------------
# choice: extract_choice (a leading letter is read like any other, so "B or C", "B, no wait, C" and
# "not B" are unparseable under Choice as everywhere else); both: both_choice; cot: cot_choice.


def both_choice(text: str | None, options: Sequence[str], letters: str = LETTERS) -> int | None:
    """The option that a Both-style response identifies by letter *and* full name, else ``None``
    (the shared grammar's refusals apply too).

    >>> options = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]
    >>> [both_choice(t, options) for t in ["B. Sooty Albatross", "(C) least auklet", "B", "Sooty_Albatross"]]
    [1, 2, None, None]
    >>> [both_choice(t, options) for t in ["A. Sooty_Albatross", "B. Sooty_Albatross or C. Least_Auklet"]]
    [None, None]
    >>> [both_choice(t, options) for t in ["B. Sooty_Albatross, not Least", "B. Sooty_Albatross maybe"]]
    [None, None]
    """
    if not text:
        return None
    reading = read_answer(text, options, letters)
    choice = reading.single_option()
    return choice if choice is not None and reading.by_letter == reading.by_name == {choice} else None


def cot_choice(text: str | None, options: Sequence[str]) -> int | None:
    """The CoT rule, R_cls's reading: exactly one ``<answer>…</answer>`` block with nothing nested in
    it and nothing after it (:func:`answer_block`; no block: ``None``, whatever the rest of the text
    says), identifying one option under :func:`extract_choice`.

    >>> options = ["Laysan_Albatross", "Sooty_Albatross"]
    >>> cot_choice("<think>dark</think><answer>B. Sooty_Albatross</answer>", options), cot_choice("B", options)
    (1, None)
    >>> cot_choice("<answer>B</answer> Actually it is A", options) is None
    True
    """
    return extract_choice(answer_block(text), options)


# --- Tag grammar: the <think>/<attribute>/<answer> format of a whole response -------------------
# Shared by the format rewards (R_f: think_then_answer; R_fa: follows_format), R_cls and the
# attribute judge's RSC.

THINK_ANSWER = ("think", "answer")
THINK_ATTRIBUTE_ANSWER = ("think", "attribute", "answer")


def think_then_answer(text: str) -> bool:
    """R_f's rule, the paper's "traditional" format: one complete ``<think>…</think>`` followed by
    one complete ``<answer>…</answer>``, and nothing after the answer.

    Each of the four tags appears exactly once, in that order, each block non-blank, with only
    whitespace before ``<think>`` and after ``</answer>``. Anything else - text, and other tags,
    ``<attribute>`` blocks included - may sit inside the blocks or between them: R_f asks for the
    two blocks, not for the absence of others (R_fa, :func:`follows_format` with
    :data:`THINK_ATTRIBUTE_ANSWER`, is the strict three-tag sequence). Four counts and four finds:
    linear in the length of ``text``.

    >>> think_then_answer("<think>red</think><attribute>red wing</attribute><answer>A</answer>")
    True
    >>> think_then_answer("<think>red <attribute>x</attribute></think> so: <answer>A</answer>")
    True
    >>> [think_then_answer(t) for t in ["<think>red</think><answer>A</answer> Actually B",
    ...                                 "<answer>A</answer><think>red</think>", "So <think>red</think><answer>A</answer>"]]
    [False, False, False]
    """
    names = (tag("think"), tag("think", closing=True), tag("answer"), tag("answer", closing=True))
    if any(text.count(name) != 1 for name in names):
        return False
    starts = [text.find(name) for name in names]
    if starts != sorted(starts):
        return False
    think = text[starts[0] + len(names[0]):starts[1]]
    answer = text[starts[2] + len(names[2]):starts[3]]
    outside = text[:starts[0]] + text[starts[3] + len(names[3]):]
    return not outside.strip() and bool(think.strip()) and bool(answer.strip())


def follows_format(text: str, tags: Sequence[str]) -> bool:
    """True iff ``text`` is exactly the blocks ``tags`` in order, each once and non-blank, with
    only whitespace between and around them, and no other of the known tags anywhere.

    >>> follows_format("<think>red</think> <answer>A</answer>", THINK_ANSWER)
    True
    >>> follows_format("<think>red</think><attribute>x</attribute><answer>A</answer>", THINK_ANSWER)
    False
    """
    for name in TAGS:
        expected = 1 if name in tags else 0
        if text.count(tag(name)) != expected or text.count(tag(name, closing=True)) != expected:
            return False
    pattern = r"\s*" + r"\s*".join(rf"{re.escape(tag(name))}(.*?){re.escape(tag(name, closing=True))}"
                                   for name in tags) + r"\s*"
    match = re.fullmatch(pattern, text, flags=re.DOTALL)
    return match is not None and all(group.strip() for group in match.groups())
