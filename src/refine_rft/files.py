"""Files that never end up half-written: atomic writes, atomic folders, resumable JSONL.

Every stage hands its results to the next through files (question JSONL -> predictions JSONL ->
scores -> report), so every writer here either leaves a complete file or none:

- :func:`write_text_atomic`, :func:`write_jsonl_atomic`: a temporary file in the same folder, then
  one rename;
- :func:`atomic_directory`: a temporary sibling folder, then one rename (models, caches, exports);
- :class:`JsonlAppender`: append-only rows keyed by id, fsynced one by one, for long runs that
  resume (generation, judging);
- :func:`read_jsonl` (strict: errors name the file and line) and :func:`iter_jsonl_tolerant`
  (skips the torn last line a killed appender may leave), for files that are no stage's rows
  (rejects lists, append logs): questions, predictions and judge score rows are read by
  :func:`refine_rft.data.records.read_rows`, with its rejects;
- :func:`guard_settings`: the settings that define a resumable output, recorded beside it, so that
  a rerun with other settings refuses instead of mixing two runs in one file;
- :func:`refuse_output_over_input`: the one rule that keeps every command's outputs off its inputs;
- :func:`output_lock`: one writer per output (an advisory lock beside it naming the holder);
- :func:`resumable_output`: the three together, as every resumable stage (eval, judge) keeps its
  books: one writer, settings guarded, keys already done skipped, the rejects file written.

Files and folders written here honour the umask (0644 / 0755 under umask 022), as a plain ``open``
would: a run on a shared machine is readable by whoever may read the folder it is in.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from refine_rft.errors import DataError, MissingFile, OutputIsInput, OutputLocked, SettingsChanged

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
    with path.open(encoding="utf-8-sig") as handle:  # a byte-order mark some editors write is accepted
        for number, line in enumerate(_decoded(handle, path), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            rows.append(check(row, f"{path}:{number}") if check else row)
    return rows


def _decoded(handle, path: Path) -> Iterator[str]:
    """The lines of a text ``handle``; text that is not UTF-8 is an error naming the file."""
    try:
        yield from handle
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8") from None


def iter_jsonl_tolerant(path: str | os.PathLike) -> Iterator[dict]:
    """Rows of an append-only JSONL file, skipping a torn last line left by a killed writer."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def current_umask() -> int:
    """The process' umask, read without changing it where the system allows (``/proc``), since
    setting it to read it would race with other threads creating files.

    >>> old = os.umask(0o027); current_umask() == 0o027; _ = os.umask(old)
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_file(path: Path) -> tuple[int, str]:
    """A temporary sibling of ``path`` for an atomic write, with the mode a plain ``open`` would give
    (``mkstemp`` makes 0600 whatever the umask, and the rename would carry that to ``path``)."""
    # The prefix is cut short: a name near the file system's limit must still leave room for the suffixes.
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    os.fchmod(handle, 0o666 & ~current_umask())
    return handle, tmp


def honour_umask(path: str | os.PathLike) -> None:
    """Give the files and folders under ``path`` that a library wrote private (0600 / 0700: safetensors,
    ``mkdtemp``) the mode a plain ``open`` / ``mkdir`` gives under the umask; other modes are left alone.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp(); path = os.path.join(folder, "w.safetensors")
    >>> os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)); old = os.umask(0o022)
    >>> honour_umask(folder); _ = os.umask(old)
    >>> oct(os.stat(path).st_mode & 0o777), oct(os.stat(folder).st_mode & 0o777)
    ('0o644', '0o755')
    """
    mask, path = current_umask(), Path(path)
    entries = [path, *path.rglob("*")] if path.is_dir() else [path]
    for entry in entries:
        if entry.is_symlink() or not entry.exists():
            continue
        mode = entry.stat().st_mode & 0o777
        if entry.is_dir() and mode == 0o700:
            os.chmod(entry, 0o777 & ~mask)
        elif entry.is_file() and mode == 0o600:
            os.chmod(entry, 0o666 & ~mask)


# A full disk, a quota, a file-size limit (``ulimit -f``): the writer knows which file, the error does not.
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextmanager
def naming_the_file(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise a full-disk, quota or file-size error of the ``with`` block naming ``path`` (a ``write``
    or ``flush`` error names no file, or only a temporary one), so the command line's one-line error says
    which output could not be written.

    >>> with naming_the_file("runs/eval/scores.json"):  # doctest: +ELLIPSIS
    ...     raise OSError(errno.EFBIG, "File too large")
    Traceback (most recent call last):
    ...
    OSError: [Errno 27] File too large: 'runs/eval/scores.json'
    """
    try:
        yield
    except OSError as error:
        if error.errno not in FULL or error.filename == os.fspath(path):
            raise
        raise OSError(error.errno, error.strerror or os.strerror(error.errno), os.fspath(path)) from None


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write rows to ``path`` through a temporary file in the same folder and an atomic rename,
    so a failed run never leaves a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = _temporary_file(path)
    try:
        with naming_the_file(path), os.fdopen(handle, "w", encoding="utf-8") as out:
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
    handle, tmp = _temporary_file(path)
    try:
        with naming_the_file(path), os.fdopen(handle, "w", encoding="utf-8") as out:
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
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name[:64]}."))
    try:
        yield work
        honour_umask(work)  # mkdtemp makes 0700, safetensors 0600, whatever the umask
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(work, path)


class JsonlAppender:
    """Append rows keyed by ``key`` to a JSONL file, skipping keys already there (resume); with
    ``key=None`` every row is appended (a log). The one append-and-fsync writer.

    ``keep(row)``, if given, decides which of the rows already there still hold (say, those made
    from inputs that have not changed since); the others are removed from the file at once and
    counted in ``dropped`` (their keys in ``dropped_keys``), so that the caller redoes them. Each row is flushed and fsynced as it is
    written, so a kill loses at most the row in flight;
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

    def __init__(self, path: str | os.PathLike, key: Callable[[dict], object] | None,
                 keep: Callable[[dict], bool] | None = None):
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = list(iter_jsonl_tolerant(self.path))
        kept = rows if keep is None else [row for row in rows if keep(row)]
        self.dropped = len(rows) - len(kept)  # rows ``keep`` refused: no longer valid, redone by the caller
        self.dropped_keys = set() if key is None else {key(row) for row in rows if keep is not None and not keep(row)}
        self.done = set() if key is None else {key(row) for row in kept}
        # Rewrite without a torn tail (so that appends start on a fresh line) or the dropped rows.
        if self.dropped or (self.path.exists() and self.path.read_bytes()[-1:] not in (b"", b"\n")):
            write_jsonl_atomic(self.path, kept)
        self._handle = None

    def write(self, row: dict) -> bool:
        """Append ``row`` unless its key is already done; return whether it was written."""
        key = None if self.key is None else self.key(row)
        if key is not None and key in self.done:
            return False
        if self._handle is None:
            self._handle = self.path.open("a", encoding="utf-8")
        with naming_the_file(self.path):
            self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._handle.flush()
            os.fsync(self._handle.fileno())
        if self.key is not None:
            self.done.add(key)
        return True

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            with naming_the_file(self.path):
                handle.close()

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


def file_setting(path: str | os.PathLike) -> dict:
    """How a settings file records a data file: its resolved path and its content's SHA-256, so that
    :func:`guard_settings` compares what the setting means, not how it was spelled.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "train.jsonl"); _ = Path(path).write_text("{}\\n")
    >>> sorted(file_setting(path)), file_setting(path)["sha256"][:12]
    (['path', 'sha256'], 'ca3d163bab05')
    """
    return {"path": str(_real(path)), "sha256": file_digest(path)}


def _is_file_setting(value) -> bool:
    return isinstance(value, dict) and set(value) == {"path", "sha256"}


def same_setting(recorded, value) -> bool:
    """Whether a setting means what was recorded: equal values; two spellings of one existing path
    (relative, absolute, through a link); file settings (:func:`file_setting`) with the same content,
    wherever the file now is. Lists are compared item by item.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp(); path = os.path.join(folder, "q.jsonl"); _ = Path(path).write_text("{}\\n")
    >>> same_setting(os.path.relpath(path), path)
    True
    >>> same_setting(file_setting(path), file_setting(os.path.join(folder, ".", "q.jsonl")))
    True
    >>> before = file_setting(path); _ = Path(path).write_text("{}\\n{}\\n")
    >>> same_setting(before, file_setting(path))
    False
    """
    if recorded == value:
        return True
    if _is_file_setting(value):
        if _is_file_setting(recorded):
            return recorded["sha256"] == value["sha256"]
        if isinstance(recorded, str):  # recorded before digests were: the path as it was spelled
            return _real(recorded) == Path(value["path"])
        if isinstance(recorded, list) and len(recorded) == 2:  # [path, sha256], as eval once recorded
            return recorded[1] == value["sha256"]
        return False
    if isinstance(recorded, list) and isinstance(value, list):
        return len(recorded) == len(value) and all(map(same_setting, recorded, value))
    if isinstance(recorded, str) and isinstance(value, str) and os.path.exists(recorded) and os.path.exists(value):
        return _same(_real(recorded), _real(value))
    return False


def _change(name: str, recorded, value) -> str:
    """One change for :func:`guard_settings`' message; a data file whose content changed is named."""
    pairs = list(zip(recorded, value)) if isinstance(recorded, list) and isinstance(value, list) \
        and len(recorded) == len(value) else [(recorded, value)]
    changed = [new["path"] for old, new in pairs if _is_file_setting(new) and not same_setting(old, new)]
    if changed and len(changed) == sum(not same_setting(old, new) for old, new in pairs):
        return "; ".join(f"{name} {path} has other content" for path in changed)
    return f"{name} {recorded!r} -> {value!r}"


def guard_settings(settings_path: str | os.PathLike, settings: dict, outputs: Iterable[str | os.PathLike],
                   overwrite: bool = False, flag: str = "--overwrite", notes: dict | None = None) -> Path:
    """Record the ``settings`` that define ``outputs`` in ``settings_path`` (JSON), or refuse a rerun
    whose settings differ from those recorded, naming each change.

    A setting present in both must mean the same (:func:`same_setting`: a path may be spelled
    otherwise, a data file must have the same content); a setting only one side has is added (a rerun may
    add a prompt style and its token budget). With ``overwrite`` the outputs and the recorded
    settings are removed first: the output starts afresh. Outputs found without recorded settings
    (made before settings were recorded) are adopted with a warning. ``notes`` are recorded beside the
    settings once they are accepted, and never compared (a training request's digest,
    :mod:`refine_rft.train.request`).

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
        changed = [_change(name, recorded[name], value) for name, value in settings.items()
                   if name in recorded and not same_setting(recorded[name], value)]
        if changed:
            raise SettingsChanged(f"{settings_path.parent} was made with other settings: {'; '.join(changed)}; "
                                  f"rerun with {flag} to start it afresh, or write elsewhere")
    elif any(output.exists() for output in outputs):
        logger.warning("%s: outputs without recorded settings; adopting the current ones", settings_path.parent)
    return write_text_atomic(settings_path, json.dumps({**recorded, **settings, **(notes or {})}, indent=2,
                                                       sort_keys=True) + "\n")


Named = tuple[str, "str | os.PathLike | None"]  # (what the command calls it, e.g. "--out"; a path)


def _real(path: str | os.PathLike) -> Path:
    """``path`` made absolute with every symbolic link resolved (a path that does not exist yet is
    resolved as far as it exists)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _same(a: Path, b: Path) -> bool:
    """Whether two resolved paths name one file (hard links too)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: Path, folder: Path) -> bool:
    return any(_same(parent, folder) if parent.exists() else parent == folder for parent in child.parents)


def refuse_output_over_input(inputs: Iterable[Named], outputs: Iterable[Named], replaced: Iterable[Named] = ()) -> None:
    """The one rule for every command's outputs and inputs: refuse (:class:`~refine_rft.errors.OutputIsInput`,
    exit status 2, naming both paths) before anything is written when

    - an output (a file or folder the command writes, from ``outputs`` or ``replaced``) is one of the
      ``inputs`` (by resolved path, symbolic and hard links included),
    - an output lies inside an input (a folder the command reads: a model, a dataset root, a run folder), or
    - an input lies inside one of the ``replaced`` outputs (folders the command removes or replaces as a
      whole: a merged model, a training run's checkpoints).

    Each entry is ``(name, path)``: ``name`` is what the user wrote it as (``--out``); a ``None`` path is
    skipped, and so is an input that does not exist (a hub id such as ``Qwen/Qwen2-VL-7B-Instruct``).

    >>> import tempfile, os
    >>> run = tempfile.mkdtemp(); data = os.path.join(run, "predictions.jsonl"); _ = open(data, "w").close()
    >>> refuse_output_over_input([("PREDICTIONS", data)], [("--out", os.path.join(run, "scores.jsonl"))])
    >>> refuse_output_over_input([("PREDICTIONS", data)], [("--out", data)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    refine_rft.errors.OutputIsInput: --out .../predictions.jsonl is the input PREDICTIONS .../predictions.jsonl; write it elsewhere
    """
    given = [(name, path, _real(path)) for name, path in inputs if path is not None and os.path.lexists(path)]
    targets = [(name, path, _real(path), False) for name, path in outputs if path is not None]
    targets += [(name, path, _real(path), True) for name, path in replaced if path is not None]
    for out_name, out_path, out_real, whole in targets:
        for in_name, in_path, in_real in given:
            if _same(out_real, in_real):
                problem = f"is the input {in_name} {in_path}"
            elif _inside(out_real, in_real):
                problem = f"is inside the input {in_name} {in_path}, which this command reads"
            elif whole and _inside(in_real, out_real):
                problem = f"would replace the folder holding the input {in_name} {in_path}"
            else:
                continue
            raise OutputIsInput(f"{out_name} {out_path} {problem}; write it elsewhere")


def write_rejects(path: str | os.PathLike, rejects: list[dict]) -> None:
    """Write a rejects file (one row per rejected input row) atomically, or remove a stale one
    when this run rejected nothing."""
    path = Path(path)
    if rejects:
        write_jsonl_atomic(path, rejects)
    else:
        path.unlink(missing_ok=True)


LOCK_NAME = ".refine-rft.lock"
_held: dict[Path, list] = {}  # lock file -> [open handle, depth]: a process may nest its own lock
_held_guard = threading.Lock()


def lock_path(output: str | os.PathLike, folder: bool = False) -> Path:
    """The lock file of an output: ``OUTPUT.lock`` beside a file, ``FOLDER/.refine-rft.lock`` in a folder.

    >>> lock_path("runs/eval/judge_scores.jsonl").name, lock_path("runs/eval", folder=True).name
    ('judge_scores.jsonl.lock', '.refine-rft.lock')
    """
    output = Path(output)
    return output / LOCK_NAME if folder else output.with_name(output.name + ".lock")


@contextmanager
def output_lock(output: str | os.PathLike, folder: bool = False, what: str = "output") -> Iterator[Path]:
    """Hold the one-writer lock of ``output`` (a file, or a ``folder``) for the ``with`` block.

    The lock is ``fcntl.flock`` on :func:`lock_path`, which holds the holder's pid and host. A second
    writer (another process, here or on a host sharing the file system) refuses at once with
    :class:`~refine_rft.errors.OutputLocked`, naming them. The kernel drops the lock of a process that
    dies, so a lock whose holder is gone (killed, crashed) is taken over, with a warning naming it.
    The same process may take a lock it already holds (nested stages of one run). A folder the lock
    created is removed again if nothing but the lock was written in it (the run refused its input).

    >>> import tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "scores.jsonl")
    >>> with output_lock(out) as lock:
    ...     with output_lock(out):  # the same process: nested
    ...         Path(lock).read_text().split()[0] == f"pid={os.getpid()}"
    True
    >>> Path(lock).read_text()  # released: emptied
    ''
    """
    lock = lock_path(output, folder).absolute()
    with _held_guard:
        if lock in _held:
            _held[lock][1] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield lock
        finally:
            with _held_guard:
                _held[lock][1] -= 1
        return
    created = folder and not lock.parent.exists()
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 (held past this frame)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "pid=? host=?"
            raise OutputLocked(f"{output} is being written by another {what} run ({holder}, lock {lock}); "
                               f"wait for it to finish, or write elsewhere") from None
        handle.seek(0)
        previous = handle.read().strip()
        if previous:  # written by a holder that never released it: it is gone
            logger.warning("%s: took over the lock of a %s run that is gone (%s)", output, what, previous)
        handle.seek(0)
        handle.truncate()
        with naming_the_file(lock):
            handle.write(f"pid={os.getpid()} host={socket.gethostname()}\n")
            handle.flush()
            os.fsync(handle.fileno())
        with _held_guard:
            _held[lock] = [handle, 1]
        try:
            yield lock
        finally:
            with _held_guard:
                del _held[lock]
            handle.seek(0)
            handle.truncate()  # an empty lock file: released cleanly, nobody to take over from
            handle.flush()
            if created and os.listdir(lock.parent) == [LOCK_NAME]:  # refused before writing anything
                lock.unlink()
                lock.parent.rmdir()
    finally:
        handle.close()  # closing drops the flock


@contextmanager
def resumable_output(out: str | os.PathLike, key: Callable[[dict], object], settings_path: str | os.PathLike,
                     settings: dict, also: Iterable[str | os.PathLike], rejects_path: str | os.PathLike,
                     rejects: Callable[[], list[dict]], overwrite: bool = False,
                     keep: Callable[[dict], bool] | None = None, lock: str | os.PathLike | None = None,
                     what: str = "output") -> Iterator[JsonlAppender]:
    """The resume bookkeeping of a stage that appends keyed rows to ``out`` (generation, judging):

    1. the one-writer lock of ``lock`` (a folder; else of ``out`` itself, a file);
    2. :func:`guard_settings`: ``settings`` recorded in ``settings_path``, a rerun with others refused
       unless ``overwrite``, which removes ``out``, ``also`` and ``rejects_path`` first;
    3. a :class:`JsonlAppender` on ``out`` keyed by ``key`` (``keep`` drops rows no longer valid),
       yielded: its ``done`` keys are what a rerun skips;
    4. on the way out, normal or not, the rejects file: ``rejects()`` at that moment, or none.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp(); out = os.path.join(folder, "rows.jsonl"); rejected = []
    >>> def run(settings):
    ...     with resumable_output(out, lambda r: r["id"], os.path.join(folder, "settings.json"), settings, [],
    ...                           os.path.join(folder, "rejects.jsonl"), lambda: rejected) as rows:
    ...         rejected.append({"id": "b", "reason": "no image"})
    ...         return rows.write({"id": "a"})
    >>> run({"model": "m"}), run({"model": "m"}), sorted(os.listdir(folder))
    (True, False, ['rejects.jsonl', 'rows.jsonl', 'rows.jsonl.lock', 'settings.json'])
    """
    out = Path(out)
    with output_lock(lock if lock is not None else out, folder=lock is not None, what=what):
        guard_settings(settings_path, settings, [out, *also, rejects_path], overwrite)
        try:
            with JsonlAppender(out, key=key, keep=keep) as appender:
                yield appender
        finally:
            write_rejects(rejects_path, rejects())
