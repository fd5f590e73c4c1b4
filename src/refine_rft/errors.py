"""The errors a user can fix: one family, printed by the command line as one line.

``refine-rft`` catches :class:`UserError` at one place (:mod:`refine_rft.cli`) and prints
``refine-rft <command>: error: <message>`` with exit status 2; any other exception is a bug and
keeps its traceback. So a message here must say everything: which file, field, id or setting is
wrong, and what the valid values are.

The subclasses also derive from the built-in exception a Python caller would expect
(``ValueError``, ``FileNotFoundError``), so library code and tests may catch either.

>>> issubclass(DataError, ValueError), issubclass(MissingFile, FileNotFoundError)
(True, True)
>>> str(DataError("data/test.jsonl: no rows"))
'data/test.jsonl: no rows'
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user gave (configuration, data, endpoint), not a bug."""


class ConfigError(UserError, ValueError):
    """Bad configuration: an unknown name, a value out of range, a missing dependency."""


class DataError(UserError, ValueError):
    """Bad data: an empty or malformed file, duplicate ids, a row that cannot be used."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class SettingsChanged(ConfigError):
    """A rerun into an existing output with settings that differ from those that made it."""


class JudgeUnavailable(UserError):
    """The judge cannot judge: its endpoint refuses the configuration, cannot be reached, or fails
    too many judgements for its scores to mean anything. The run stops rather than go on without them."""


class OutputExists(UserError, FileExistsError):
    """An output the command would replace already exists and it was not asked to replace it."""


class MissingDependency(ConfigError, ImportError):
    """An optional package the chosen setting needs is not installed; the message says how to get it."""


class OutputIsInput(ConfigError):
    """An output the command would write is one of its inputs, or lies inside (or would replace) an
    input folder it reads (see :func:`refine_rft.files.refuse_output_over_input`)."""


class OutputLocked(UserError):
    """Another process is writing the same output (see :func:`refine_rft.files.output_lock`)."""
