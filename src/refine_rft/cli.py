"""The ``refine-rft`` command: one subcommand per pipeline stage.

Each subcommand lives in its own module with a ``main(argv) -> int``; this file only dispatches,
and imports a stage's module when that stage runs (so ``refine-rft --help`` is instant). Every
command's settings are dataclasses parsed by :mod:`refine_rft.settings` (TRL's ``TrlParser``): both
flag spellings (``--max_pixels``, ``--max-pixels``) and ``--config FILE``.

This is also the one error boundary, and the exit status is the contract scripts rely on:

====  ===========================================================================================
0     done
1     the command ran, but rejected some rows or some judgements failed (it says how many, where
      they are listed, and that a rerun retries them)
2     a known error, printed as one line ``refine-rft <command>: error: <message>``: a
      :class:`~refine_rft.errors.UserError` (configuration, data, a refused endpoint, an output
      another run is writing) or an operating-system condition (permission denied, no space left,
      read-only file system, a file larger than ``ulimit -f`` allows, not a directory, name too long, a file where a folder is expected, a
      dangling symlink); a bad flag, printed as ``refine-rft <command>: unknown flag --foo (see
      refine-rft <command> --help)``
3     an unexpected error: a bug, printed with its traceback
130   interrupted (Ctrl-C)
====  ===========================================================================================
"""

from __future__ import annotations

import errno
import importlib
import sys
import traceback

# name -> (module with main(argv), one-line help), in pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("refine_rft.data.cli", "build question JSONL files from datasets or the paper's setup"),
    "judge": ("refine_rft.judge.cli", "score predictions with a teacher MLLM or the attribute judge (RSC)"),
    "train": ("refine_rft.train.grpo", "ReFine-RFT GRPO training from a YAML recipe"),
    "sft": ("refine_rft.train.sft", "the SFT baseline from a YAML recipe"),
    "export": ("refine_rft.train.export", "merge a LoRA adapter into its base model"),
    "eval": ("refine_rft.evaluate.cli",
             "generate and score Answer-only predictions (choice, both, cot, open, open_cot)"),
    "general-eval": ("refine_rft.evaluate.general",
                     "general VQA (MMStar, MMMU, TextVQA) through lmms-eval or VLMEvalKit"),
    "predict": ("refine_rft.evaluate.predict", "answer one image with reasoning, attributes and answer"),
    "report": ("refine_rft.report.cli", "tables, plots and the HTML report from run folders"),
}


def _usage(prog: str, commands: dict[str, tuple[str, str]], about: str) -> str:
    width = max(map(len, commands))
    lines = [f"usage: {prog} COMMAND [ARGS...]", "", about, "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in commands.items()]
    lines += ["", f"Run '{prog} COMMAND --help' for a command's options."]
    return "\n".join(lines)


# Exit statuses (see the module docstring).
EXIT_REJECTED, EXIT_KNOWN_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 1, 2, 3, 130

# Operating-system conditions a user fixes (space, permissions, paths), not bugs.
KNOWN_OS_ERRORS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS,
                   errno.ENOTDIR,
                   errno.EISDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOENT, errno.ELOOP, errno.EMFILE,
                   errno.ENFILE, errno.EXDEV, errno.ENOTEMPTY}


def os_error_line(error: OSError) -> str | None:
    """One line for an operating-system condition the user can fix, or ``None`` for other OS errors.

    >>> os_error_line(PermissionError(13, "Permission denied", "runs/eval/predictions.jsonl"))
    'Permission denied: runs/eval/predictions.jsonl'
    >>> os_error_line(OSError(28, "No space left on device"))
    'No space left on device'
    >>> os_error_line(OSError(39, "Directory not empty", "a", None, "b"))
    'Directory not empty: a -> b'
    >>> os_error_line(ConnectionResetError(104, "reset")) is None
    True
    """
    if error.errno not in KNOWN_OS_ERRORS:
        return None
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return error.strerror + (f": {' -> '.join(names)}" if names else "")


def run_command(prog: str, commands: dict[str, tuple[str, str]], about: str, argv: list[str]) -> int:
    """Dispatch ``argv`` to one of ``commands`` behind the error boundary (shared with the workshop's
    command, so both answer errors alike)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(prog, commands, about))
        return 0
    if argv[0] in ("-V", "--version"):
        from refine_rft import __version__

        print(f"{prog} {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"{prog}: unknown command {name!r}; valid commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    from refine_rft.errors import UserError
    from refine_rft.masking import mask

    try:
        module = importlib.import_module(commands[name][0])
        return int(module.main(rest) or 0)
    except UserError as error:
        print(mask(f"{prog} {name}: error: {error}"), file=sys.stderr)  # a configured key never printed
        return EXIT_KNOWN_ERROR
    except SystemExit as stop:  # --help (0) or a bad flag (2), already printed
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else _said(stop.code)
    except KeyboardInterrupt:
        print(f"{prog} {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        line = os_error_line(error)
        if line is None:
            return _bug(prog, name)
        print(mask(f"{prog} {name}: error: {line}"), file=sys.stderr)
        return EXIT_KNOWN_ERROR
    except Exception:
        return _bug(prog, name)


def _said(message) -> int:
    print(message, file=sys.stderr)
    return EXIT_KNOWN_ERROR


def _bug(prog: str, name: str) -> int:
    """Print the traceback of an unexpected error; its own status, so scripts tell it from rejected rows."""
    from refine_rft.masking import mask

    print(mask(traceback.format_exc()), end="", file=sys.stderr)
    print(f"{prog} {name}: unexpected error (exit status {EXIT_BUG}); the traceback above says where",
          file=sys.stderr)
    return EXIT_BUG


def main(argv: list[str] | None = None) -> int:
    return run_command("refine-rft", COMMANDS, "Reinforcement fine-tuning for fine-grained visual "
                       "recognition with reasoning (ReFine-RFT).", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
