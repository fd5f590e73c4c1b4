"""Running counters of what the judge did, so a trainer can log them per step."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class JudgeStats:
    """Counters since the last :meth:`read_and_reset` (thread-safe: TRL calls async rewards from its
    own event-loop thread while the trainer reads the stats from the main thread).

    Example:
        >>> stats = JudgeStats()
        >>> stats.add(requests=2, latency_total=0.5)
        >>> stats.read_and_reset()["judge/mean_latency_s"]
        0.25
        >>> stats.read_and_reset()["judge/requests"]
        0
    """

    judgements: int = 0  # scores asked for (including cached and rejected ones)
    requests: int = 0  # HTTP attempts: first tries and retries, answered or failed
    request_failures: int = 0  # HTTP attempts that failed (error status, timeout, refused or dropped)
    cooldowns: int = 0  # replicas taken out for a cool-down
    retries: int = 0  # requests repeated after 429 / 5xx / timeout / dropped connection
    reminders: int = 0  # replies without a usable score, asked again once
    failures: int = 0  # judgements that ended as None
    failures_imputed: int = 0  # R_cot failures given the mean of their group's scored R_cot
    failures_unscored: int = 0  # R_cot failures in a group with no scored R_cot, left None (no R_cot term)
    injections_flagged: int = 0  # judged texts the phrase screen flags as addressing the judge
    injections_rejected: int = 0  # of them, scored 0 without a call (reject_injections)
    cache_hits: int = 0
    no_think: int = 0  # responses without <think>, scored 0 without a call (skip_untagged)
    group_requests: int = 0  # group judging: one request for a GRPO group's responses
    group_fallbacks: int = 0  # group judging: unusable group replies, judged per response instead
    latency_total: float = 0.0  # seconds, summed over every HTTP attempt
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts) -> None:
        """Add to the named counters."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def _counters(self) -> list[str]:
        return [f.name for f in fields(self) if not f.name.startswith("_")]

    def snapshot(self, reset: bool = False) -> dict[str, float]:
        """The counters as ``judge/<name>`` metrics, plus the mean latency of every HTTP attempt."""
        with self._lock:
            values = {name: getattr(self, name) for name in self._counters()}
            if reset:
                for name in values:
                    setattr(self, name, type(values[name])())
        latency = values.pop("latency_total")
        metrics = {f"judge/{name}": value for name, value in values.items()}
        metrics["judge/mean_latency_s"] = latency / values["requests"] if values["requests"] else 0.0
        return metrics

    def read_and_reset(self) -> dict[str, float]:
        """:meth:`snapshot`, then zero every counter (call once per logging step)."""
        return self.snapshot(reset=True)
