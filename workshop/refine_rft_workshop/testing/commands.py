"""Run a command's ``main(argv)`` in this process, as a shell would run it, and keep what it printed.

A command in a fresh interpreter pays the torch/transformers/TRL import (seconds) before it does
anything; the same entry point called here pays it once per test session. :func:`run_in_process`
gives the command what a process of its own would have, and puts everything back afterwards:

- standard output and error, at the file-descriptor level too (tqdm, warnings, C libraries), are
  captured into the returned :class:`subprocess.CompletedProcess`;
- the root logger has no handlers, as in a fresh interpreter, so a warning reaches standard error
  the way it would there (Python's last-resort handler, or the command's own ``basicConfig``);
- ``cwd``, ``umask`` and the environment are the command's own, and restored after.

What it cannot give is a fresh interpreter: a test of import-time behaviour, of peak memory or of
a kill belongs in a real subprocess.

>>> from refine_rft.cli import main
>>> done = run_in_process(main, ["--version"])
>>> done.returncode, done.stdout.startswith("refine-rft ")
(0, True)
>>> run_in_process(main, ["no-such-command"]).returncode
2
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path


def run_in_process(main: Callable[[list[str]], int | None], argv: Sequence[object], cwd: str | os.PathLike | None = None,
                   umask: int = -1, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``main(argv)`` with its output captured, under ``cwd``, ``umask`` and ``env`` (added to the
    environment), as :func:`subprocess.run` with ``capture_output=True, text=True`` reports it."""
    argv = [str(arg) for arg in argv]
    with ExitStack() as stack:
        out = stack.enter_context(tempfile.TemporaryFile(mode="w+b"))
        err = stack.enter_context(tempfile.TemporaryFile(mode="w+b"))
        stack.enter_context(_restored_environment(env or {}))
        stack.enter_context(_working_directory(cwd))
        stack.enter_context(_umask(umask))
        stack.enter_context(_bare_root_logger())
        with _redirected(out, err):
            try:
                status = main(argv)
            except SystemExit as exit_:  # as the interpreter turns it into an exit status
                status = exit_.code
                if status is not None and not isinstance(status, int):
                    print(status, file=sys.stderr)
                    status = 1
        stdout, stderr = (_read(handle) for handle in (out, err))
    return subprocess.CompletedProcess(["<in-process>", *argv], int(status or 0), stdout, stderr)


def _read(handle) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", errors="replace")


@contextmanager
def _redirected(out, err):
    """File descriptors 1 and 2 and ``sys.stdout``/``sys.stderr`` into ``out`` and ``err``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    streams = sys.stdout, sys.stderr
    try:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = open(os.dup(1), "w", encoding="utf-8", errors="replace", buffering=1, closefd=True)  # noqa: SIM115
        sys.stderr = open(os.dup(2), "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=True)  # noqa: SIM115
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
            stream.close()
        sys.stdout, sys.stderr = streams
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


@contextmanager
def _bare_root_logger():
    """The root logger as a fresh interpreter has it (no handlers, level WARNING), then as it was;
    handlers the command added (``logging.basicConfig``) are closed and dropped."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = handlers
        root.setLevel(level)


@contextmanager
def _restored_environment(extra: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(extra)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _working_directory(cwd: str | os.PathLike | None):
    before = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def _umask(mask: int):
    if mask < 0:
        yield
        return
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)
