"""When the judge fails too often, the run stops: it never trains on without R_cot.

During the run, a judgement that fails after its retries
is counted and skipped, and the run stops with :class:`JudgeUnavailable`, quoting the latest
failure, instead of training on without R_cot when

- more than ``judge.max_failure_rate`` of one training step's judgements failed (the R_cot reward
  is called once per step's batch, :meth:`FailureRule.end_step`), however few the step judged; or
- more than ``judge.max_failure_rate`` of the last ``judge.failure_window`` judgements failed
  (default: half of the last 64), which also covers ``refine-rft judge``.

``judge.max_failure_rate: 1.0`` never stops.
"""

from __future__ import annotations

import threading
from collections import deque

from refine_rft.errors import JudgeUnavailable


class FailureRule:
    """Stop when more than ``max_rate`` of one step's judgements, or of the last ``window``, failed.

    Example:
        >>> rule = FailureRule(max_rate=0.5, window=4)
        >>> for failed in (True, False, True):
        ...     rule.record(failed)
        >>> rule.record(True, "HTTP 500 from http://judge/v1: upstream down")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        refine_rft.errors.JudgeUnavailable: judge: 3 of the last 4 judgements failed (more than judge.max_failure_rate=50%; ...
        >>> rule = FailureRule(max_rate=0.5, window=64)
        >>> rule.record(True), rule.record(False)
        (None, None)
        >>> rule.end_step("HTTP 503")  # 1 of 2: not more than half
        >>> rule.record(True)
        >>> rule.end_step("HTTP 503 from http://judge/v1: down")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        refine_rft.errors.JudgeUnavailable: judge: 1 of the 1 judgements of this training step failed (more than ...
    """

    def __init__(self, max_rate: float, window: int):
        self.max_rate = max_rate
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.step_judged = 0
        self.step_failed = 0
        self._lock = threading.Lock()

    def _stop(self, what: str, latest_failure: str) -> JudgeUnavailable:
        latest = f"; latest: {latest_failure}" if latest_failure else ""
        return JudgeUnavailable(
            f"judge: {what} failed (more than judge.max_failure_rate={self.max_rate:.0%}{latest}); stopping "
            f"instead of going on without the judge's scores. Fix the endpoint and rerun, or raise "
            f"judge.max_failure_rate (1.0 never stops).")

    def record(self, failed: bool, latest_failure: str = "") -> None:
        """Count one judgement's outcome; raise :class:`JudgeUnavailable` once the window is full
        and its share of failures passes the threshold."""
        with self._lock:
            self.outcomes.append(failed)
            self.step_judged += 1
            self.step_failed += failed
            full = len(self.outcomes) == self.outcomes.maxlen
            failures = sum(self.outcomes)
        if full and failures > self.max_rate * len(self.outcomes):
            raise self._stop(f"{failures} of the last {len(self.outcomes)} judgements", latest_failure)

    def end_step(self, latest_failure: str = "") -> None:
        """Close a training step: raise :class:`JudgeUnavailable` when more than ``max_rate`` of the
        judgements recorded since the previous step failed, however few there were."""
        with self._lock:
            judged, failed = self.step_judged, self.step_failed
            self.step_judged = self.step_failed = 0
        if judged and failed > self.max_rate * judged:
            raise self._stop(f"{failed} of the {judged} judgements of this training step", latest_failure)
