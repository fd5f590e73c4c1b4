"""Errors that are the user's to fix (configuration, data, an unusable service), as opposed to bugs.

A command catches :class:`UserError` and prints its message in one line instead of a traceback;
everything else is a bug and keeps its traceback.

>>> issubclass(JudgeUnavailable, UserError)
True
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: the message says what and where."""


class JudgeUnavailable(UserError):
    """The judge cannot judge: its endpoint refuses the configuration, cannot be reached, or fails
    too many judgements for its scores to mean anything. The run stops rather than go on without them."""
