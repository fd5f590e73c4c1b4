"""The one record type every prepared question uses, seeded option shuffling, and safe JSONL I/O.

A question is one JSONL row::

    {"id": "cub/test/000123", "dataset": "cub", "image": "/data/CUB_200_2011/images/....jpg",
     "label": "Laysan_Albatross", "options": ["Sooty_Albatross", "Laysan_Albatross", ...],
     "answer": 1, "noun": "birds", "attributes": {...}}

``options`` are in the order shown to the model and ``answer`` indexes the true class in them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REQUIRED_FIELDS = ("id", "dataset", "image", "label", "options", "answer", "noun")

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


def validate_record(record: dict, where: str = "record") -> dict:
    """Check a record has every field with a sane value; raise ``ValueError`` naming ``where`` if not."""
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)} (required: {', '.join(REQUIRED_FIELDS)})")
    options, answer = record["options"], record["answer"]
    if not isinstance(options, list) or len(options) < 2:
        raise ValueError(f"{where}: field 'options' must be a list of at least 2 class names, got {options!r}")
    if not isinstance(answer, int) or not 0 <= answer < len(options):
        raise ValueError(f"{where}: field 'answer' must index 'options' (0..{len(options) - 1}), got {answer!r}")
    if options[answer] != record["label"]:
        raise ValueError(f"{where}: options[answer] is {options[answer]!r} but label is {record['label']!r}")
    return record


def read_jsonl(path: str | os.PathLike, validate: bool = False) -> list[dict]:
    """Read a JSONL file; with ``validate``, check each row is a question record.

    Errors name the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            rows.append(validate_record(row, f"{path}:{number}") if validate else row)
    return rows


def iter_jsonl_tolerant(path: str | os.PathLike) -> Iterator[dict]:
    """Rows of an append-only JSONL file, skipping a torn last line left by a killed writer."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write rows to ``path`` through a temporary file in the same folder and an atomic rename,
    so a failed run never leaves a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary sibling folder; on success it replaces ``path`` in one rename, on failure it
    is removed, so ``path`` is always complete or absent (models, caches, exports).

    >>> import tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "model")
    >>> with atomic_directory(out) as work:
    ...     _ = (work / "config.json").write_text("{}")
    >>> os.listdir(out)
    ['config.json']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(work, path)


class JsonlAppender:
    """Append rows keyed by ``id_key`` to a JSONL file, skipping keys already there (resume).

    Each row is flushed and fsynced as it is written, so a kill loses at most the row in flight;
    a torn last line is ignored on reopen and rewritten.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "p.jsonl")
    >>> with JsonlAppender(path, key=lambda r: r["id"]) as out:
    ...     out.write({"id": "a"}); out.write({"id": "a"})
    True
    False
    >>> JsonlAppender(path, key=lambda r: r["id"]).done
    {'a'}
    """

    def __init__(self, path: str | os.PathLike, key):
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = list(iter_jsonl_tolerant(self.path))
        self.done = {key(row) for row in rows}
        # Rewrite without a torn tail so that appends start on a fresh line.
        if self.path.exists() and self.path.read_bytes()[-1:] not in (b"", b"\n"):
            write_jsonl_atomic(self.path, rows)
        self._handle = None

    def write(self, row: dict) -> bool:
        """Append ``row`` unless its key is already done; return whether it was written."""
        key = self.key(row)
        if key in self.done:
            return False
        if self._handle is None:
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done.add(key)
        return True

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
