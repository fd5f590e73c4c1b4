"""Secrets never leave: every configured key value is replaced by ``***`` wherever text crosses a boundary.

A judge's API key is read from the environment variable its configuration names (``api_key_env``) and
is never configured, stored or logged by this package. But a server may say it back: a gateway's 401
that echoes the ``Authorization`` header, a reply that quotes it. So the key's value is registered here
when a judge configuration is made (:func:`register_secret`), and masked

- in what a server sends: reply bodies and error bodies are masked as they arrive
  (:class:`refine_rft.judge.client.JudgeClient`), so replies, feedback fields, scores, the judge cache
  and reports built from them never hold it;
- in every log record (:func:`install_log_masking`: a record factory that masks the formatted message);
- in every line the command line prints for an error, and in a bug's traceback (:mod:`refine_rft.cli`).

Values shorter than :data:`MIN_SECRET_LENGTH` characters are not registered: masking ``"x"`` would
mangle every text, and such a value is a placeholder (``EMPTY``), not a secret.

>>> register_secret("sk-test-0123456789")
>>> mask("HTTP 401: bad key sk-test-0123456789")
'HTTP 401: bad key ***'
>>> mask_value({"feedback": ["key sk-test-0123456789"], "score": 5})
{'feedback': ['key ***'], 'score': 5}
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse

MASK = "***"
MIN_SECRET_LENGTH = 8

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def _forms(value: str) -> set[str]:
    """The spellings a server may echo a value in: as is, JSON-escaped, URL-encoded."""
    return {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}


def register_secret(value: str | None) -> None:
    """Mask ``value`` from now on (in this process); ``None`` and short placeholders are ignored."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets.update(form for form in _forms(value) if len(form) >= MIN_SECRET_LENGTH)
    install_log_masking()


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (longest first, so that a secret
    containing another is masked whole)."""
    if not _secrets or not isinstance(text, str):
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_value(value):
    """:func:`mask` through strings, bytes, mappings (keys too) and lists, as JSON holds them."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, bytes):
        return mask(value.decode("utf-8", errors="replace")).encode("utf-8") if any(
            secret.encode() in value for secret in _secrets) else value
    if isinstance(value, dict):
        return {mask_value(key): mask_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(item) for item in value)
    return value


def install_log_masking() -> None:
    """Mask the message of every log record from now on, whichever logger or handler it goes to (a
    record factory: handlers and their formatters are set up by each command, libraries add their own)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _secrets:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string is logging's to report, as it would
                return record
            masked = mask(message)
            if masked != message:
                record.msg, record.args = masked, None
        return record

    logging.setLogRecordFactory(factory)
