"""The rows that flow between the stages, defined once: the question record, the prediction row
and the judge's score row; and how a row's ``image`` path is read.

A question is one JSONL row (``refine-rft prepare``)::

    {"id": "cub/test/000123", "dataset": "cub", "image": "/data/CUB_200_2011/images/....jpg",
     "label": "Laysan_Albatross", "options": ["Sooty_Albatross", "Laysan_Albatross", ...],
     "answer": 1, "noun": "birds", "attributes": {...}}

``options`` are in the order shown to the model and ``answer`` indexes the true class in them.
A prediction row (``refine-rft eval``) is the question's columns plus ``style`` and ``response``
(and how it was generated), so that a predictions file stands alone. A score row
(``refine-rft judge``) is ``id``, ``style``, ``dataset`` and the :data:`RSC_KEYS` with feedback.

Relative ``image`` paths are relative to the folder of the JSONL file that lists them
(:func:`resolve_image`); every stage reads them that way.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from pathlib import Path

from refine_rft.files import read_jsonl

# Every question has these; ``validate_record`` checks them.
QUESTION_FIELDS = ("id", "dataset", "image", "label", "options", "answer", "noun")
# Ground-truth attributes, where the data has them (the synthetic set; CUB with attributes/).
ATTRIBUTE_FIELDS = ("attributes", "option_attributes")
# Every column of a question that a later stage reads.
QUESTION_COLUMNS = QUESTION_FIELDS + ATTRIBUTE_FIELDS
# The columns that travel beside the image: TRL hands them to the rewards, the rewards to the judge.
TEXT_COLUMNS = tuple(name for name in QUESTION_COLUMNS if name != "image")
# What a prediction adds to its question's columns.
ANSWER_FIELDS = ("style", "response")
# What scoring and judging need of a prediction row (the label is carried but not needed: the
# options and the answer index say which option is true).
PREDICTION_FIELDS = tuple(name for name in QUESTION_FIELDS if name != "label") + ANSWER_FIELDS
# The judge's Reasoning-Answer scores (0-100): answer accuracy, reasoning usefulness, instruction obedience.
RSC_KEYS = ("RSC_A", "RSC_U", "RSC_O")
# The noun of each dataset's question, as FOCI and Finedefics word it ("Which of these aircrafts is
# shown in the image?": their plural, kept so that our questions match theirs token for token).
NOUNS = {
    "cub": "birds",
    "aircraft": "aircrafts",
    "cars": "cars",
    "dogs": "dogs",
    "flowers": "flowers",
    "pets": "pets",
    "synthetic": "birds",
}


def seeded_rng(seed: int, key: str) -> random.Random:
    """A ``random.Random`` that depends only on ``(seed, key)``, identical on every machine.

    Python's ``hash()`` of a string is salted per process, so the key is hashed with SHA-256.

    >>> seeded_rng(0, "cub/test/1").random() == seeded_rng(0, "cub/test/1").random()
    True
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def shuffle_options(question_id: str, options: Sequence[str], label: str, seed: int = 0) -> tuple[list[str], int]:
    """Shuffle ``options`` with an RNG keyed by ``(seed, question_id)``; return them and the index of ``label``.

    >>> shuffle_options("q1", ["gt", "d1", "d2", "d3"], "gt", seed=0) == shuffle_options("q1", ["gt", "d1", "d2", "d3"], "gt", seed=0)
    True
    """
    if label not in options:
        raise ValueError(f"question {question_id}: the true class {label!r} is not among its options {list(options)}")
    if len(set(options)) != len(options):
        raise ValueError(f"question {question_id}: duplicate options {list(options)}")
    shuffled = list(options)
    seeded_rng(seed, question_id).shuffle(shuffled)
    return shuffled, shuffled.index(label)


def make_record(
    question_id: str,
    dataset: str,
    image: str,
    label: str,
    options: Sequence[str],
    noun: str,
    seed: int = 0,
    attributes: dict | None = None,
) -> dict:
    """A question record with its options shuffled deterministically (see :func:`shuffle_options`)."""
    shuffled, answer = shuffle_options(question_id, options, label, seed)
    record = {
        "id": question_id,
        "dataset": dataset,
        "image": str(image),
        "label": label,
        "options": shuffled,
        "answer": answer,
        "noun": noun,
    }
    if attributes is not None:
        record["attributes"] = attributes
    return record


def resolve_image(image: str | os.PathLike, listed_in: str | os.PathLike) -> str:
    """The absolute path of a row's ``image``: as given when absolute, else relative to the folder
    of the JSONL file ``listed_in`` (so a data folder can move as a whole).

    >>> resolve_image("/data/a.png", "/runs/eval/predictions.jsonl")
    '/data/a.png'
    >>> resolve_image("images/a.png", "/data/synthetic/test.jsonl")
    '/data/synthetic/images/a.png'
    """
    image = Path(image)
    if image.is_absolute():
        return str(image)
    return os.path.abspath(Path(listed_in).parent / image)


def read_questions(path: str | os.PathLike) -> list[dict]:
    """The question records of a JSONL file, each validated (errors name the file and line), with
    ``image`` resolved by :func:`resolve_image`."""
    return [{**record, "image": resolve_image(record["image"], path)}
            for record in read_jsonl(path, check=validate_record)]


def validate_record(record: dict, where: str = "record") -> dict:
    """Check a record has every field with a sane value; raise ``ValueError`` naming ``where`` if not."""
    missing = [f for f in QUESTION_FIELDS if f not in record]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)} (required: {', '.join(QUESTION_FIELDS)})")
    options, answer = record["options"], record["answer"]
    if not isinstance(options, list) or len(options) < 2:
        raise ValueError(f"{where}: field 'options' must be a list of at least 2 class names, got {options!r}")
    if not isinstance(answer, int) or not 0 <= answer < len(options):
        raise ValueError(f"{where}: field 'answer' must index 'options' (0..{len(options) - 1}), got {answer!r}")
    if options[answer] != record["label"]:
        raise ValueError(f"{where}: options[answer] is {options[answer]!r} but label is {record['label']!r}")
    return record


def validate_prediction(row: dict, where: str = "prediction") -> dict:
    """Check a prediction row has every field of :data:`PREDICTION_FIELDS`; raise ``ValueError``
    naming ``where`` and the missing fields if not."""
    missing = [name for name in PREDICTION_FIELDS if name not in row]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    return row


def prediction_key(row: dict) -> tuple[str, str]:
    """The key of a prediction or score row: ``(question id, style)``.

    >>> prediction_key({"id": "cub/test/1", "style": "cot", "response": "..."})
    ('cub/test/1', 'cot')
    """
    return (row["id"], row["style"])
