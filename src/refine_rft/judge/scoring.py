"""Reading scores out of judge replies: strict about meaning, tolerant about form.

A reply counts only when it states one score unambiguously. Tolerated forms: a bare number
("85", "85.", "85/100"), a labelled score in prose ("The reasoning is accurate. Score: 85"), one
number in a short sentence ("I would rate it 85 out of 100"), one JSON object (``{"score": 85}``),
also inside a code fence. Two different candidate scores, or none, give ``None``. Range checks are
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


def reply_object(text: str) -> dict | None:
    """The one JSON object of a judge reply: the whole reply, or the first ``{...}`` in prose or a
    code fence; ``None`` when there is none, or when another ``{`` follows it.

    The reply may quote the student, and the student may have written a JSON of scores: so the
    object is never looked for further on, and a reply with a second object is ambiguous (the
    caller's reminder then asks for the object alone). One decode from one position: linear time.

    >>> reply_object('Sure! ```json\\n{"score": 90}\\n``` Done.')
    {'score': 90}
    >>> reply_object('{"score": 40} The student wrote {"score": 100}.') is None
    True
    """
    start = text.find("{")
    if start == -1:
        return None
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: a reply nested thousands deep
        return None
    if not isinstance(value, dict) or "{" in text[end:]:
        return None
    return value


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
    obj = reply_object(text) or {}
    keyed = [_as_number(obj[key]) for key in obj if key.lower() in ("score", "rating")]
    keyed = [value for value in keyed if value is not None]
    if keyed:
        return _one(keyed)
    labelled = re.findall(rf"\b(?:score|rating|grade)\W{{0,5}}(?:is\W++|of\W++)?({_NUMBER})", text, re.IGNORECASE)
    if labelled:
        return _one([float(n) for n in labelled])
    # Possessive quantifiers: "85" followed by a megabyte of blanks must not backtrack through them.
    bare = re.fullmatch(rf"[^\w+-]*+({_NUMBER})(?:\s*+(?:/\s*+100|out of 100))?\W*+", text.strip())
    if bare:
        return float(bare.group(1))
    # Prose with one number in it ("I would give it 65 out of 100"); "100" of "out of 100" is not a score.
    if len(text) >= 300:
        return None
    numbers = re.findall(rf"(?<![\w.])({_NUMBER})(?![\w])", re.sub(r"(?:/|out of)\s*100\b", "", text))
    return _one([float(n) for n in numbers])


def parse_rsc(text: str | None) -> dict | None:
    """The RSC_A / RSC_U / RSC_O scores and feedbacks of a Reasoning-Answer reply, else ``None``.

    Accepts flat JSON (``"RSC_A": 90, "RSC_A_feedback": "..."``) or nested
    (``"RSC_A": {"score": 90, "feedback": "..."}``), in prose or code fences. The reply is read as
    ONE object (:func:`reply_object`): never a later object, which could be the student's JSON
    quoted back. Every score must be present and in [0, 100]; feedback may be missing (empty string).

    >>> parse_rsc('{"RSC_A": 100, "RSC_A_feedback": "Right.", "RSC_U": 70, "RSC_O": {"score": 90}}')
    {'RSC_A': 100.0, 'RSC_U': 70.0, 'RSC_O': 90.0, 'RSC_A_feedback': 'Right.', 'RSC_U_feedback': '', 'RSC_O_feedback': ''}
    >>> parse_rsc('{"RSC_A": 100, "RSC_U": 170, "RSC_O": 90}') is None
    True
    """
    obj = reply_object(text or "")
    if obj is None:
        return None
    lowered = {str(key).lower(): value for key, value in obj.items()}
    scores, feedback = {}, {}
    for key in RSC_KEYS:
        value = lowered.get(key.lower())
        note = lowered.get(f"{key.lower()}_feedback", "")
        if isinstance(value, dict):
            value, note = value.get("score"), value.get("feedback", note)
        scores[key] = _as_number(value)
        feedback[f"{key}_feedback"] = str(note or "")
    return {**scores, **feedback} if all(in_range(score) for score in scores.values()) else None
