"""Files that never end up half-written: atomic writes, atomic folders, resumable JSONL.

Every stage hands its results to the next through files (question JSONL -> predictions JSONL ->
scores -> report), so every writer here either leaves a complete file or none:

- :func:`write_text_atomic`, :func:`write_jsonl_atomic`: a temporary file in the same folder, then
  one rename;
- :func:`atomic_directory`: a temporary sibling folder, then one rename (models, caches, exports);
- :class:`JsonlAppender`: append-only rows keyed by id, fsynced one by one, for long runs that
  resume (generation, judging);
- :func:`read_jsonl` (strict: errors name the file and line) and :func:`iter_jsonl_tolerant`
  (skips the torn last line a killed appender may leave);
- :func:`guard_settings`: the settings that define a resumable output, recorded beside it, so that
  a rerun with other settings refuses instead of mixing two runs in one file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from refine_rft.errors import DataError, MissingFile, SettingsChanged

logger = logging.getLogger(__name__)


def read_jsonl(path: str | os.PathLike, check: Callable[[dict, str], dict] | None = None) -> list[dict]:
    """Read a JSONL file; ``check(row, where)`` (``where`` is ``"FILE:LINE"``) may validate each row.

    Errors name the file and line.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.jsonl")
    >>> _ = write_jsonl_atomic(path, [{"id": "a"}, {"id": "b"}])
    >>> [row["id"] for row in read_jsonl(path)]
    ['a', 'b']
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"no such file: {path}")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            rows.append(check(row, f"{path}:{number}") if check else row)
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


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (a data file's identity in the recorded settings)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def guard_settings(settings_path: str | os.PathLike, settings: dict, outputs: Iterable[str | os.PathLike],
                   overwrite: bool = False, flag: str = "--overwrite") -> Path:
    """Record the ``settings`` that define ``outputs`` in ``settings_path`` (JSON), or refuse a rerun
    whose settings differ from those recorded, naming each change.

    A setting present in both must be equal; a setting only one side has is added (a rerun may
    add a prompt style and its token budget). With ``overwrite`` the outputs and the recorded
    settings are removed first: the output starts afresh. Outputs found without recorded settings
    (made before settings were recorded) are adopted with a warning.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "run_settings.json")
    >>> _ = guard_settings(path, {"model": "a", "budget/cot": 512}, [])
    >>> _ = guard_settings(path, {"model": "a", "budget/choice": 8}, [])
    >>> guard_settings(path, {"model": "b"}, [])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    refine_rft.errors.SettingsChanged: ... was made with other settings: model 'a' -> 'b'; rerun with --overwrite to start it afresh, or write elsewhere
    """
    settings_path, outputs = Path(settings_path), [Path(p) for p in outputs]
    recorded: dict = {}
    if overwrite:
        for output in [*outputs, settings_path]:
            if output.is_dir():
                shutil.rmtree(output)
            else:
                output.unlink(missing_ok=True)
    elif settings_path.is_file():
        try:
            recorded = json.loads(settings_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{settings_path}: not valid JSON ({error.msg}); remove it or use {flag}") from None
        changed = [f"{name} {recorded[name]!r} -> {value!r}" for name, value in settings.items()
                   if name in recorded and recorded[name] != value]
        if changed:
            raise SettingsChanged(f"{settings_path.parent} was made with other settings: {'; '.join(changed)}; "
                                  f"rerun with {flag} to start it afresh, or write elsewhere")
    elif any(output.exists() for output in outputs):
        logger.warning("%s: outputs without recorded settings; adopting the current ones", settings_path.parent)
    return write_text_atomic(settings_path, json.dumps({**recorded, **settings}, indent=2, sort_keys=True) + "\n")


def write_rejects(path: str | os.PathLike, rejects: list[dict]) -> None:
    """Write a rejects file (one row per rejected input row) atomically, or remove a stale one
    when this run rejected nothing."""
    path = Path(path)
    if rejects:
        write_jsonl_atomic(path, rejects)
    else:
        path.unlink(missing_ok=True)
