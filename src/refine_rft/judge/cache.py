"""A persistent sqlite cache of judgements, so reruns and resumed evaluations never pay twice.

Keyed by (model, prompt version, image hash, judged text): a different teacher, a prompt change or
a different picture is a different judgement. The judged text includes everything else the prompt
shows (options, answer, noun). WAL mode and a busy timeout let several processes (one per GPU
rank) share one file; a lock serialises this process' threads. Only successful judgements are
stored: a failure is retried next time, not remembered.

A cache file that is not a readable sqlite database (a torn copy, a file that is something else)
is moved aside to ``<CACHE>.corrupt-<time>`` with a warning, and a fresh cache takes its place:
a cache only saves calls, so losing one must never stop a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def judgement_key(model: str, prompt_version: str, image_hash: str, judged_text: str) -> str:
    """SHA-256 of the four key parts (unambiguous: JSON-encoded as a list).

    >>> judgement_key("m", "v1", "abc", "text") == judgement_key("m", "v1", "abc", "text")
    True
    >>> judgement_key("m", "v1", "abc", "text") == judgement_key("m", "v2", "abc", "text")
    False
    """
    return hashlib.sha256(json.dumps([model, prompt_version, image_hash, judged_text]).encode()).hexdigest()


class JudgeCache:
    """``get(key) -> dict | None`` and ``put(key, value)`` over one sqlite file.

    Example:
        >>> import tempfile, os
        >>> cache = JudgeCache(os.path.join(tempfile.mkdtemp(), "judge.sqlite"))
        >>> cache.put("k", {"score": 85.0}, model="m")
        >>> cache.get("k"), cache.get("other"), len(cache)
        ({'score': 85.0}, None, 1)
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = self._open_when_free()
        except sqlite3.DatabaseError as error:  # SQLITE_CORRUPT / SQLITE_NOTADB: not a database
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.replace(f"{aside}{suffix}")
            logger.warning("judge cache %s is not a usable sqlite database (%s); moved it to %s and started "
                           "a new one", self.path, error, aside)
            self._db = self._open()

    def _open_when_free(self, tries: int = 50) -> sqlite3.Connection:
        """:meth:`_open`, waiting while another connection holds the file: switching to WAL mode can
        fail with "database is locked" without waiting for the busy timeout. A locked file is never
        a corrupt one, so it is never moved aside."""
        for _ in range(tries - 1):
            try:
                return self._open()
            except sqlite3.OperationalError:
                time.sleep(0.1)
        return self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (not a power cut) without an fsync per row,
            # which would otherwise stall the event loop at a few hundred judgements per step.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, model TEXT, "
                       "value TEXT NOT NULL, created REAL)")
            db.execute("SELECT key, value FROM judgements LIMIT 1").fetchall()  # a readable table
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get(self, key: str) -> dict | None:
        """The stored judgement, or ``None``; a damaged entry counts as absent (judged again)."""
        try:
            with self._lock:
                row = self._db.execute("SELECT value FROM judgements WHERE key = ?", (key,)).fetchone()
            return json.loads(row[0]) if row else None
        except (sqlite3.DatabaseError, json.JSONDecodeError, TypeError) as error:
            logger.warning("judge cache %s: entry unreadable (%s); judging again", self.path, error)
            return None

    def put(self, key: str, value: dict, model: str = "") -> None:
        """Store a judgement; a cache that cannot store (disk full, damaged file) warns, and the run
        goes on."""
        try:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO judgements (key, model, value, created) "
                                 "VALUES (?, ?, ?, ?)", (key, model, json.dumps(value), time.time()))
        except sqlite3.DatabaseError as error:
            logger.warning("judge cache %s: could not store a judgement (%s); it will be paid again next "
                           "time", self.path, error)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
