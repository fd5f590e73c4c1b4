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

import codecs
import hashlib
import json
import os
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.data.images import image_problem
from refine_rft.errors import DataError, MissingFile
from refine_rft.files import read_jsonl
from refine_rft.parsing import LETTERS

# The files that pass between the stages, named once. A run folder holds:
PREDICTIONS_FILE = "predictions.jsonl"  # refine-rft eval: one prediction row per (question, style)
REJECTS_FILE = "rejects.jsonl"  # refine-rft eval: the questions it could not use, with why
SCORES_FILE = "scores.json"  # refine-rft eval: Answer-only accuracy, recomputed from the predictions
SETTINGS_FILE = "run_settings.json"  # refine-rft eval and train: the settings the folder's outputs were made with
JUDGE_FILE = "judge_scores.jsonl"  # refine-rft judge: one score row per judged prediction
RUN_FILE = "run.json"  # the run's name and ablation, as the report shows them

# Every question has these; ``validate_record`` checks them.
QUESTION_FIELDS = ("id", "dataset", "image", "label", "options", "answer", "noun")
# Ground-truth attributes, where the data has them (CUB with attributes/; the workshop's synthetic set).
ATTRIBUTE_FIELDS = ("attributes", "option_attributes")
# Open-world columns, where prepared: the label's aliases, and "seen"/"unseen" under a base-to-new split.
OPEN_FIELDS = ("aliases", "class_split")
# Questions from Fine-R1's released files (refine-rft prepare fine-r1): "released" or "shuffled (seed N)".
ORDER_FIELDS = ("option_order",)
# Every column of a question that a later stage reads.
QUESTION_COLUMNS = QUESTION_FIELDS + ATTRIBUTE_FIELDS + OPEN_FIELDS + ORDER_FIELDS
# The columns that travel beside the image: TRL hands them to the rewards, the rewards to the judge.
TEXT_COLUMNS = tuple(name for name in QUESTION_COLUMNS if name != "image")
# What a prediction adds to its question's columns.
ANSWER_FIELDS = ("style", "response")
# What scoring and judging need of a prediction row (the label is carried but not needed: the
# options and the answer index say which option is true).
PREDICTION_FIELDS = tuple(name for name in QUESTION_FIELDS if name != "label") + ANSWER_FIELDS
# The judge's Reasoning-Answer scores (0-100): answer accuracy, reasoning usefulness, instruction obedience.
RSC_KEYS = ("RSC_A", "RSC_U", "RSC_O")


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
        raise DataError(f"question {question_id}: the true class {label!r} is not among its options {list(options)}")
    if len(set(options)) != len(options):
        raise DataError(f"question {question_id}: duplicate options {list(options)}")
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
    """The question records of a JSONL file under :func:`read_rows`' rules, failing on the first
    unusable rows (a :class:`~refine_rft.errors.DataError` naming their ids, file and lines)."""
    return require_all(read_rows([path], validate_record))


def _check_common(row: dict, where: str, fields: Sequence[str]) -> None:
    missing = [name for name in fields if name not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)} (required: {', '.join(fields)})")
    # Checked here, when rows are read: a null dataset or a NaN noun found only after generation
    # would cost every row's generation and crash every rerun the same way.
    for name in ("id", "dataset", "noun", "label"):
        if name in row and (not isinstance(row[name], str) or not row[name].strip()):
            raise DataError(f"{where}: field {name!r} must be a non-empty string, got {row[name]!r}")
    options, answer = row["options"], row["answer"]
    if (not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS)
            or not all(isinstance(o, str) and o.strip() for o in options)):
        raise DataError(f"{where}: field 'options' must be a list of 2 to {len(LETTERS)} non-empty class "
                        f"names, got {_short(options)}")
    if len(set(options)) != len(options):
        repeated = sorted({o for o in options if options.count(o) > 1})
        raise DataError(f"{where}: field 'options' names {_short(repeated)} more than once")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(options):
        raise DataError(f"{where}: field 'answer' must index 'options' (0..{len(options) - 1}), got {answer!r}")
    if not isinstance(row["image"], str) or not row["image"]:
        raise DataError(f"{where}: field 'image' must be a file path, got {row['image']!r}")


def _short(value, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (a reason names a value, it does not copy 100 KB of it).

    >>> _short("x" * 300, 12)
    "'xxxxxxxxxx... (302 characters)"
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 1]}... ({len(text)} characters)"


def validate_record(record: dict, where: str = "record") -> dict:
    """Check a question record has every field with a sane value; raise
    :class:`~refine_rft.errors.DataError` naming ``where`` if not.

    >>> validate_record({"id": "q", "dataset": "d", "image": "a.png", "label": "x", "options": ["x", "y"],
    ...                  "answer": 2, "noun": "birds"}, "q.jsonl:1")
    Traceback (most recent call last):
    ...
    refine_rft.errors.DataError: q.jsonl:1: field 'answer' must index 'options' (0..1), got 2
    """
    _check_common(record, where, QUESTION_FIELDS)
    if record["options"][record["answer"]] != record["label"]:
        raise DataError(f"{where}: options[answer] is {record['options'][record['answer']]!r} "
                        f"but label is {record['label']!r}")
    return record


def validate_prediction(row: dict, where: str = "prediction") -> dict:
    """Check a prediction row has every field of :data:`PREDICTION_FIELDS` with a sane value; raise
    :class:`~refine_rft.errors.DataError` naming ``where`` if not."""
    _check_common(row, where, PREDICTION_FIELDS)
    if not isinstance(row["style"], str) or not (row["response"] is None or isinstance(row["response"], str)):
        raise DataError(f"{where}: fields 'style' and 'response' must be strings")
    return row


def prediction_key(row: dict) -> tuple[str, str]:
    """The key of a prediction or score row: ``(question id, style)``.

    >>> prediction_key({"id": "cub/test/1", "style": "cot", "response": "..."})
    ('cub/test/1', 'cot')
    """
    return (row["id"], row["style"])


def validate_score_row(row: dict, where: str = "score row") -> dict:
    """Check a judge score row (``refine-rft judge``) has an ``id``, a string or an integer; raise
    :class:`~refine_rft.errors.DataError` naming ``where`` if not. Its scores are the reader's to
    judge: a failed judgement may leave them empty.

    >>> validate_score_row({"style": "cot", "RSC_A": 100}, "s.jsonl:4")
    Traceback (most recent call last):
    ...
    refine_rft.errors.DataError: s.jsonl:4: no id (a string or an integer)
    """
    row_id = row.get("id")
    if not isinstance(row_id, (str, int)) or isinstance(row_id, bool):
        raise DataError(f"{where}: no id (a string or an integer)")
    return row


def score_key(row: dict) -> tuple[str, str]:
    """The key of a judge score row: ``(id, style)``, the style ``cot`` when not recorded.

    >>> score_key({"id": "q1", "RSC_A": 90})
    ('q1', 'cot')
    """
    return (row["id"], row.get("style", "cot"))


def question_key(row: dict) -> str:
    """The key of a question row: its ``id``."""
    return row["id"]


# --- Reading rows: one rule for ids, empty inputs, image paths and unusable rows -------------------

# How many offenders a message names before it only counts the rest.
SHOW_IDS = 10


@dataclass
class RowSet:
    """The usable rows of one or more JSONL files, where each came from, and the rows rejected.

    ``sources`` maps a row's key to ``(file, line)``; each reject is a dict ``{"id", "file",
    "line", "reason"}`` (``id`` is ``None`` when the line has none), the row of a rejects file.
    """

    rows: list[dict]
    sources: dict
    rejects: list[dict] = field(default_factory=list)

    def reject(self, row: dict, key, reason: str) -> None:
        """Move ``row`` (whose key is ``key``) from the usable rows to the rejects."""
        file, line = self.sources.pop(key)
        self.rows = [r for r in self.rows if r is not row]
        self.rejects.append(rejection(row.get("id"), file, line, reason))


def rejection(row_id, file, line: int | None, reason: str) -> dict:
    """One row of a rejects file.

    >>> rejection("q7", "data/test.jsonl", 7, "image not found: /data/q7.jpg")
    {'id': 'q7', 'file': 'data/test.jsonl', 'line': 7, 'reason': 'image not found: /data/q7.jpg'}
    """
    return {"id": row_id, "file": str(file), "line": line, "reason": reason}


def refuse_utf16(path: str | os.PathLike, start: bytes) -> None:
    """Refuse a UTF-16 or UTF-32 file (told by its byte-order mark or the zero bytes of ASCII text):
    JSON Lines are UTF-8, and read as such every row would be rejected for the same reason.

    >>> refuse_utf16("q.jsonl", '{"id": 1}'.encode("utf-16"))
    Traceback (most recent call last):
    ...
    refine_rft.errors.DataError: q.jsonl: UTF-16 text; JSON Lines files are UTF-8: save it as UTF-8
    """
    utf16 = start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or start[:2] in (b"{\0", b"\0{")
    if start.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DataError(f"{path}: UTF-32 text; JSON Lines files are UTF-8: save it as UTF-8")
    if utf16:
        raise DataError(f"{path}: UTF-16 text; JSON Lines files are UTF-8: save it as UTF-8")


def read_rows(paths: Sequence[str | os.PathLike], check: Callable[[dict, str], dict],
              key: Callable[[dict], object] = question_key) -> RowSet:
    """Read JSONL files under the one rule every stage (train, eval, judge, report) follows:

    - a file that does not exist, or has no rows, is an error naming it
      (:class:`~refine_rft.errors.MissingFile`, :class:`~refine_rft.errors.DataError`);
    - a line that is not a JSON object, or a row that ``check(row, "FILE:LINE")`` refuses, is
      *rejected*: kept out of the rows and listed with its id, file, line and reason;
    - a key (``key(row)``: the id, or ``(id, style)`` for predictions) seen twice, in one file or
      across files, is an error naming the keys and where they are: which row is meant is not
      for the reader to guess;
    - a relative ``image`` path is relative to the folder of the file that lists it
      (:func:`resolve_image`), whatever the working directory (rows without one, such as judge
      score rows, are taken as they are).

    Questions (:func:`validate_record`), predictions (:func:`validate_prediction`) and judge score
    rows (:func:`validate_score_row`) are all read here.

    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "q.jsonl")
    >>> good = {"id": "q1", "dataset": "d", "image": "a.png", "label": "x", "options": ["x", "y"], "answer": 0,
    ...         "noun": "birds"}
    >>> with open(path, "w") as out:
    ...     _ = out.write(json.dumps(good) + "\\n" + json.dumps({**good, "id": "q2", "answer": 5}) + "\\n{oops\\n")
    >>> rows = read_rows([path], validate_record)
    >>> [r["id"] for r in rows.rows], [(r["id"], r["line"]) for r in rows.rejects]
    (['q1'], [('q2', 2), (None, 3)])
    >>> rows.rows[0]["image"] == os.path.join(os.path.dirname(path), "a.png")
    True
    """
    rows, sources, rejects, duplicates = [], {}, [], []
    for path in map(Path, paths):
        if not path.is_file():
            raise MissingFile(f"no such data file: {path}")
        count = 0
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                if number == 1:
                    refuse_utf16(path, raw)
                    raw = raw.removeprefix(codecs.BOM_UTF8)  # what some editors write first: accepted
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    count += 1
                    rejects.append(rejection(None, path, number, f"not UTF-8 text (byte {raw[error.start]:#04x} at "
                                                                 f"column {error.start + 1}); save the file as UTF-8"))
                    continue
                if not line.strip():
                    continue
                count += 1
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    rejects.append(rejection(None, path, number, f"not valid JSON ({error.msg})"))
                    continue
                where = f"{path}:{number}"
                try:
                    if not isinstance(row, dict):
                        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
                    check(row, where)
                except DataError as error:
                    row_id = row.get("id") if isinstance(row, dict) and isinstance(row.get("id"), str) else None
                    rejects.append(rejection(row_id, path, number, str(error).removeprefix(f"{where}: ")))
                    continue
                row_key = key(row)
                if row_key in sources:
                    duplicates.append(f"{row_key!r} ({_where(*sources[row_key])} and {where})")
                    continue
                sources[row_key] = (str(path), number)
                rows.append({**row, "image": resolve_image(row["image"], path)} if "image" in row else row)
        if count == 0:
            raise DataError(f"{path}: empty data file (no rows)")
    if duplicates:
        raise DataError(f"{len(duplicates)} duplicate id(s); each row must have its own: "
                        f"{_first(duplicates)}")
    return RowSet(rows, sources, rejects)


def reject_bad_images(rowset: RowSet, key: Callable[[dict], object] = question_key, decode: bool = True,
                      rows: Sequence[dict] | None = None, max_pixels: int | None = None) -> RowSet:
    """Reject the rows of ``rowset`` (or only ``rows`` of it) whose image is missing or (with
    ``decode``) unreadable or too large to decode for a model shown at most ``max_pixels``
    (:func:`~refine_rft.data.images.image_problem`); return ``rowset``. Images shared by several
    rows are checked once."""
    problems: dict[str, str | None] = {}
    for row in list(rowset.rows if rows is None else rows):
        if row["image"] not in problems:
            problems[row["image"]] = image_problem(row["image"], decode, max_pixels)
        if problems[row["image"]] is not None:
            rowset.reject(row, key(row), problems[row["image"]])
    return rowset


def describe_rejects(rejects: Sequence[dict], limit: int = SHOW_IDS) -> str:
    """The first ``limit`` rejects as ``id (file:line): reason``, then how many more.

    >>> describe_rejects([rejection("q7", "t.jsonl", 7, "image not found: a.jpg")])
    'q7 (t.jsonl:7): image not found: a.jpg'
    """
    return _first([f"{r['id'] or '(no id)'} ({_where(r['file'], r['line'])}): {r['reason']}" for r in rejects],
                  limit)


def require_all(rowset: RowSet) -> list[dict]:
    """The rows of ``rowset`` if none was rejected; else a :class:`~refine_rft.errors.DataError`
    naming the rejected ids (training uses every row it is given, so it takes all or none)."""
    if rowset.rejects:
        total = len(rowset.rows) + len(rowset.rejects)
        raise DataError(f"{len(rowset.rejects)} of {total} rows cannot be used: {describe_rejects(rowset.rejects)}")
    return rowset.rows


def report_rejects(command: str, path: str | os.PathLike, what: str) -> int:
    """Say how many rows ``path`` lists as rejected and name the first; return the exit status (1 if any)."""
    path = Path(path)
    if not path.is_file():
        return 0
    rejects = read_jsonl(path)
    print(f"refine-rft {command}: {len(rejects)} {what} rejected, listed in {path}: {describe_rejects(rejects, 5)}",
          file=sys.stderr)
    return 1


def _where(file, line) -> str:
    return f"{file}:{line}" if line is not None else str(file)


def _first(items: Sequence[str], limit: int = SHOW_IDS) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")
