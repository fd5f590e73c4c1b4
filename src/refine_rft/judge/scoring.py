"""Reading scores out of judge replies: strict about meaning, tolerant about form.

A reply counts only when it states one score unambiguously. Tolerated forms: a bare number
("85", "85.", "85/100"), a labelled score in prose ("The reasoning is accurate. Score: 85"), one
number in a short sentence ("I would rate it 85 out of 100"), JSON (``{"score": 85}``) anywhere,
also inside code fences. Two different candidate scores, or none, give ``None``. Range checks are
the caller's (an out-of-range score earns one retry with a reminder, then ``None``).
"""

from __future__ import annotations

import json
import re

from refine_rft.data.records import RSC_KEYS

_NUMBER = r"[-+]?\d+(?:\.\d+)?"


def in_range(score: float | None) -> bool:
    """True for a score in [0, 100].

    >>> in_range(85), in_range(101), in_range(None)
    (True, False, False)
    """
    return score is not None and 0 <= score <= 100


def json_objects(text: str) -> list[dict]:
    """Every JSON object embedded in ``text`` (prose, code fences), outermost first.

    >>> json_objects('Sure! ```json\\n{"score": 90}\\n``` Done.')
    [{'score': 90}]
    """
    decoder = json.JSONDecoder()
    found, index = [], 0
    while (index := text.find("{", index)) != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index += 1
            continue
        if isinstance(value, dict):
            found.append(value)
        index = end
    return found


def _as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(rf"\s*{_NUMBER}\s*", value):
        return float(value)
    return None


def _one(candidates: list[float]) -> float | None:
    distinct = set(candidates)
    return distinct.pop() if len(distinct) == 1 else None


def parse_score(text: str | None) -> float | None:
    """The single score a reply states, else ``None`` (may be out of range: check with :func:`in_range`).

    >>> [parse_score(t) for t in ["85", "Score: 72.", "**Score**: 90/100", '```json\\n{"score": 40}\\n```']]
    [85.0, 72.0, 90.0, 40.0]
    >>> [parse_score(t) for t in ["I'd rate the reasoning 65 out of 100.", "150", "good job", "70 or 80"]]
    [65.0, 150.0, None, None]
    """
    if not text or not text.strip():
        return None
    objects = json_objects(text)
    keyed = [_as_number(obj.get(key)) for obj in objects for key in obj if key.lower() in ("score", "rating")]
    keyed = [value for value in keyed if value is not None]
    if keyed:
        return _one(keyed)
    labelled = re.findall(rf"\b(?:score|rating|grade)\W{{0,5}}(?:is\W+|of\W+)?({_NUMBER})", text, re.IGNORECASE)
    if labelled:
        return _one([float(n) for n in labelled])
    bare = re.fullmatch(rf"[^\w+-]*({_NUMBER})\s*(?:/\s*100|out of 100)?\W*", text.strip())
    if bare:
        return float(bare.group(1))
    # Prose with one number in it ("I would give it 65 out of 100"); "100" of "out of 100" is not a score.
    numbers = re.findall(rf"(?<![\w.])({_NUMBER})(?![\w])", re.sub(r"(?:/|out of)\s*100\b", "", text))
    return _one([float(n) for n in numbers]) if len(text) < 300 else None


def parse_rsc(text: str | None) -> dict | None:
    """The RSC_A / RSC_U / RSC_O scores and feedbacks of a Reasoning-Answer reply, else ``None``.

    Accepts flat JSON (``"RSC_A": 90, "RSC_A_feedback": "..."``) or nested
    (``"RSC_A": {"score": 90, "feedback": "..."}``), in prose or code fences. Every score must be
    present and in [0, 100]; feedback may be missing (empty string).

    >>> parse_rsc('{"RSC_A": 100, "RSC_A_feedback": "Right.", "RSC_U": 70, "RSC_O": {"score": 90}}')
    {'RSC_A': 100.0, 'RSC_U': 70.0, 'RSC_O': 90.0, 'RSC_A_feedback': 'Right.', 'RSC_U_feedback': '', 'RSC_O_feedback': ''}
    >>> parse_rsc('{"RSC_A": 100, "RSC_U": 170, "RSC_O": 90}') is None
    True
    """
    for obj in reversed(json_objects(text or "")):
        lowered = {str(key).lower(): value for key, value in obj.items()}
        scores, feedback = {}, {}
        for key in RSC_KEYS:
            value = lowered.get(key.lower())
            note = lowered.get(f"{key.lower()}_feedback", "")
            if isinstance(value, dict):
                value, note = value.get("score"), value.get("feedback", note)
            scores[key] = _as_number(value)
            feedback[f"{key}_feedback"] = str(note or "")
        if all(in_range(score) for score in scores.values()):
            return {**scores, **feedback}
    return None
