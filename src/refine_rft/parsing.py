"""Strict parsing of model responses: tagged blocks, and which single option an answer names.

Rewards and accuracy both rest on :func:`extract_choice`, so it is deliberately strict: it returns
the index of the **one** option that the text identifies, and ``None`` whenever the text is empty,
names nothing, names several options ("A or B"), or contradicts itself ("B. <name of option A>").
Other projects reward hedges such as "A or B or C" or an empty ``<answer></answer>``; here those
score 0. Picking a random option when parsing fails is never done.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

TAGS = ("think", "attribute", "answer")
# The option letters, in the order options are shown (the FOCI protocol asks four-option questions).
LETTERS = "ABCD"


@dataclass(frozen=True)
class ParsedResponse:
    """The contents of the tagged blocks of a response (``None`` when a block is absent)."""

    think: str | None
    attribute: str | None
    answer: str | None


def _block(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)
    return match.group(1).strip() if match else None


def parse_response(text: str) -> ParsedResponse:
    """Split a response into its ``<think>``, ``<attribute>`` and ``<answer>`` contents.

    Takes the first complete block of each tag; whether the response is well-formed as a whole is
    the format rewards' business, not this function's.

    >>> parse_response("<think>red wings</think><answer>B. Crimson-winged Finch</answer>")
    ParsedResponse(think='red wings', attribute=None, answer='B. Crimson-winged Finch')
    """
    return ParsedResponse(*(_block(text, tag) for tag in TAGS))


def normalize_name(name: str) -> str:
    """Lower-case, with every run of non-alphanumerics (``_``, ``-``, spaces, ...) as one space.

    >>> normalize_name("Black_footed_Albatross") == normalize_name("black-footed  albatross")
    True
    """
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.lower()).split())


def _name_spans(text: str, options: Sequence[str]) -> list[tuple[int, int, int]]:
    """Every occurrence ``(start, end, option)`` of a full option name, on the normalized text.

    Occurrences inside a longer occurrence of another option are dropped, so an exact full name
    wins over a shorter option that it contains ("Ford Focus Sedan 2007" vs "Focus Sedan 2007").
    """
    padded = f" {normalize_name(text)} "
    spans = []
    for index, option in enumerate(options):
        needle = f" {normalize_name(option)} "
        if needle.strip() == "":
            continue
        start = padded.find(needle)
        while start != -1:
            spans.append((start, start + len(needle), index))
            start = padded.find(needle, start + 1)
    return [
        (s, e, i)
        for s, e, i in spans
        if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)
    ]


def _mask_names(text: str, options: Sequence[str]) -> str:
    """The raw text with every literal option name blanked out, so that letters inside names
    ("C-Class", "F-16A/B") are not read as option letters."""
    for option in sorted(options, key=len, reverse=True):
        words = [re.escape(w) for w in normalize_name(option).split()]
        if words:
            pattern = r"(?<![0-9A-Za-z])" + r"[^0-9A-Za-z]+".join(words) + r"(?![0-9A-Za-z])"
            text = re.sub(pattern, " ", text, flags=re.IGNORECASE)
    return text


def _letters_in(text: str, letters: str) -> set[int]:
    """Indices of option letters the (name-masked) text states, in any of the tolerated forms."""
    cls = f"[{letters}]"
    found: set[str] = set()
    # The whole text is a letter: "B", "(b)", "B.", "b)".
    whole = re.fullmatch(rf"\s*[\(\[]?\s*({cls})\s*[\)\]]?\s*[\.:)]?\s*", text, flags=re.IGNORECASE)
    if whole:
        found.add(whole.group(1).upper())
    # A bracketed letter anywhere: "(B)", "[B]".
    found.update(m.upper() for m in re.findall(rf"[\(\[]\s*({cls})\s*[\)\]]", text, flags=re.IGNORECASE))
    # "Option B", "choice: C", "the answer is D" - but not "the answer is a bird".
    keyword = rf"\b(?:option|choice|answer(?:\s+is)?|answer\s*:)\s*[:\-]?\s*\(?({cls})\b(?![\w'])(?!\s+[a-z])"
    found.update(m.upper() for m in re.findall(keyword, text, flags=re.IGNORECASE))
    # A letter then "." or ")" at the start of the text or a line: "b. Laysan Albatross".
    found.update(
        m.upper() for m in re.findall(rf"(?:^|\n)\s*({cls})[\.\)](?=\s|$)", text, flags=re.IGNORECASE)
    )
    # Capital letters standing alone: "B", "A or B", "B, C" - but not the article of "A bird".
    for match in re.finditer(rf"(?<![\w'\-/])({cls})(?![\w'\-/])", text):
        rest = text[match.end() :]
        if match.group(1) == "A" and re.match(r"\s+(?!(?:or|and|nor)\b)[a-z]", rest):
            continue
        found.add(match.group(1))
    return {letters.index(letter) for letter in found}


def _fragment_of(text: str, options: Sequence[str]) -> set[int]:
    """Options whose name contains the whole text as a run of words ("Laysan" -> Laysan_Albatross)."""
    fragment = f" {normalize_name(text)} "
    if not fragment.strip():
        return set()
    return {i for i, option in enumerate(options) if fragment in f" {normalize_name(option)} "}


def stated_options(text: str, options: Sequence[str], letters: str = "ABCD") -> tuple[set[int], set[int]]:
    """The options a text states by letter and, separately, by full name: ``(by_letter, by_name)``.

    The building block of :func:`extract_choice` and of stricter rules (the Both protocol needs a
    letter *and* a name that agree).

    >>> stated_options("B. Sooty Albatross", ["Laysan_Albatross", "Sooty_Albatross"])
    ({1}, {1})
    >>> stated_options("A or B", ["Laysan_Albatross", "Sooty_Albatross"])
    ({0, 1}, set())
    """
    letters = letters[: len(options)]
    named = {index for _, _, index in _name_spans(text, options)}
    return _letters_in(_mask_names(text, options), letters), named


def extract_choice(text: str | None, options: Sequence[str], letters: str = "ABCD") -> int | None:
    """The index of the single option that ``text`` identifies, else ``None``.

    Args:
        text: an answer such as ``"B"``, ``"(B)"``, ``"Option B"``, ``"The answer is B"``,
            ``"B. Laysan_Albatross"`` or a bare name. Case-insensitive; names match after
            normalizing case, underscores, hyphens and spaces.
        options: the option names in the order shown to the model.
        letters: the option letters, one per option.

    Returns:
        The option index, or ``None`` for empty text, nothing identified, two or more different
        options, a letter that contradicts the name given with it, or a fragment shared by
        several options.

    Example:
        >>> options = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]
        >>> [extract_choice(t, options) for t in ["B", "(c)", "Option D", "black-footed", "laysan albatross"]]
        [1, 2, 3, None, 0]
        >>> [extract_choice(t, options) for t in ["A or B", "B. Laysan_Albatross", "Albatross", ""]]
        [None, None, None, None]
    """
    if text is None or not text.strip():
        return None
    stated, named = stated_options(text, options, letters)
    if len(named) > 1 or len(stated) > 1:
        return None
    if named and stated:
        return named.pop() if named == stated else None
    if named or stated:
        return (named or stated).pop()
    fragment = _fragment_of(text, options)
    return fragment.pop() if len(fragment) == 1 else None


def extract_letter_answer(text: str | None, options: Sequence[str], letters: str = "ABCD") -> int | None:
    """The Choice-protocol answer: a leading standalone letter, else :func:`extract_choice`.

    The leading letter must stand alone: the "A" of "An eagle" or "A bird" is not an answer.

    >>> options = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]
    >>> [extract_letter_answer(t, options) for t in ["C", "B. because", "A bird", "An auklet", "(d)"]]
    [2, 1, None, None, 3]
    """
    if text is None:
        return None
    letters = letters[: len(options)]
    match = re.match(rf"\s*[\(\[]?([{letters}])(?![\w'\-/])", text, flags=re.IGNORECASE)
    if match:
        rest = text[match.end() :]
        is_article = match.group(1) in "Aa" and re.match(r"\s+[a-z]", rest) is not None
        if not is_article:
            return letters.index(match.group(1).upper())
    return extract_choice(text, options, letters)


# --- Answer rules of the prompt styles (see refine_rft.prompts.PROMPT_STYLES) -------------------
# choice: extract_letter_answer; both: both_choice; cot: cot_choice.


def both_choice(text: str | None, options: Sequence[str], letters: str = LETTERS) -> int | None:
    """The option that a Both-style response identifies by letter *and* full name, else ``None``.

    >>> options = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]
    >>> [both_choice(t, options) for t in ["B. Sooty Albatross", "(C) least auklet", "B", "Sooty_Albatross"]]
    [1, 2, None, None]
    >>> [both_choice(t, options) for t in ["A. Sooty_Albatross", "B. Sooty_Albatross or C. Least_Auklet"]]
    [None, None]
    """
    if not text:
        return None
    stated, named = stated_options(text, options, letters)
    return named.pop() if len(named) == 1 and named == stated else None


def cot_choice(text: str | None, options: Sequence[str]) -> int | None:
    """The CoT rule: the first ``<answer>…</answer>`` block is required (no block: ``None``,
    whatever the rest of the text says) and must identify one option under :func:`extract_choice`.

    >>> options = ["Laysan_Albatross", "Sooty_Albatross"]
    >>> cot_choice("<think>dark</think><answer>B. Sooty_Albatross</answer>", options), cot_choice("B", options)
    (1, None)
    """
    answer = parse_response(text or "").answer
    return None if answer is None else extract_choice(answer, options)

# --- Tag grammar: the <think>/<attribute>/<answer> format of a whole response -------------------
# Shared by the format rewards (R_f, R_fa), R_cls and the attribute judge's RSC.

THINK_ANSWER = ("think", "answer")
THINK_ATTRIBUTE_ANSWER = ("think", "attribute", "answer")


def follows_format(text: str, tags: Sequence[str]) -> bool:
    """True iff ``text`` is exactly the blocks ``tags`` in order, each once and non-blank, with
    only whitespace between and around them, and no other of the known tags anywhere.

    >>> follows_format("<think>red</think> <answer>A</answer>", THINK_ANSWER)
    True
    >>> follows_format("<think>red</think><attribute>x</attribute><answer>A</answer>", THINK_ANSWER)
    False
    """
    for tag in TAGS:
        expected = 1 if tag in tags else 0
        if text.count(f"<{tag}>") != expected or text.count(f"</{tag}>") != expected:
            return False
    pattern = r"\s*" + r"\s*".join(rf"<{tag}>(.*?)</{tag}>" for tag in tags) + r"\s*"
    match = re.fullmatch(pattern, text, flags=re.DOTALL)
    return match is not None and all(group.strip() for group in match.groups())


def only_answer_block(text: str) -> str | None:
    """The contents of the ``<answer>`` block when the response has exactly one, else ``None``.

    >>> only_answer_block("<think>x</think><answer>B</answer>"), only_answer_block("<answer>A</answer><answer>B</answer>")
    ('B', None)
    """
    if text.count("<answer>") != 1 or text.count("</answer>") != 1:
        return None
    match = re.search(r"<answer>(.*?)</answer>", text, flags=re.DOTALL)
    return match.group(1) if match else None


def answered_option(text: str, options: Sequence[str]) -> int | None:
    """The option that the response's single ``<answer>`` block identifies (R_cls's reading), else ``None``.

    >>> answered_option("<answer>B. Sooty_Albatross</answer>", ["Laysan_Albatross", "Sooty_Albatross"])
    1
    """
    block = only_answer_block(text)
    return None if block is None else extract_choice(block, options)
