"""What every judge does before it looks at a response, whatever the backend.

A *sample* is one question record plus the response to judge: a dict with ``response`` (the
complete model output), ``image``, ``options``, ``answer``, ``noun``, optionally ``style``, ``id``,
``attributes`` and ``option_attributes`` (the columns of a prepared dataset or a predictions file).

Two checks cost nothing and come first, so no request is spent on them:

- R_cot judges the ``<think>`` (and ``<attribute>``) contents; a response without a non-empty
  ``<think>`` block scores 0.
- With ``reject_injections``, a judged text that addresses the judge (see
  :func:`~refine_rft.judge.prompts.addresses_the_judge`) scores 0 and is counted.

Backends implement ``_score_reasoning(text, sample) -> 0..100 | None`` and
``_score_rsc(sample) -> dict | None``; ``None`` means the judgement failed and is counted here, and
the run's :class:`~refine_rft.judge.health.FailureRule` stops it when too many fail.
"""

from __future__ import annotations

from refine_rft.data.records import RSC_KEYS
from refine_rft.errors import DataError
from refine_rft.judge.config import JudgeConfig
from refine_rft.judge.health import FailureRule
from refine_rft.judge.prompts import addresses_the_judge, judged_reasoning
from refine_rft.judge.stats import JudgeStats
from refine_rft.parsing import parse_response

INJECTION_FEEDBACK = "The response addresses the judge instead of the question; not graded."


def require_fields(sample: dict, names: tuple[str, ...], why: str) -> None:
    """Fail fast, naming the sample and the missing field(s)."""
    missing = [name for name in names if sample.get(name) is None]
    if missing:
        raise DataError(f"judge: sample {sample.get('id', '?')!r} lacks field(s) {', '.join(missing)} ({why})")


class Judge:
    """The shared front of every judge backend: gating, counting, and the two public scores."""

    def __init__(self, config: JudgeConfig, stats: JudgeStats | None = None):
        self.config = config
        self.stats = stats or JudgeStats()
        self.failure_rule = FailureRule(config.max_failure_rate, config.failure_window)

    async def reasoning_score(self, sample: dict) -> float | None:
        """R_cot of ``sample["response"]`` on 0-100, or ``None`` if the judge failed."""
        self.stats.add(judgements=1)
        parsed = parse_response(sample["response"])
        if not parsed.think:
            self.stats.add(no_think=1)
            return 0.0
        text = self._judged_text(sample["response"], parsed)
        if self.config.reject_injections and addresses_the_judge(text):
            self.stats.add(injections_rejected=1)
            return 0.0
        score = await self._score_reasoning(text, sample)
        self._count(score is None)
        return score

    async def rsc(self, sample: dict) -> dict | None:
        """Reasoning-Answer scores ``{"RSC_A", "RSC_U", "RSC_O"}`` (0-100) with a ``*_feedback``
        sentence each, or ``None`` if the judge failed."""
        self.stats.add(judgements=1)
        if self.config.reject_injections and addresses_the_judge(sample["response"]):
            self.stats.add(injections_rejected=1)
            return {key: 0.0 for key in RSC_KEYS} | {f"{key}_feedback": INJECTION_FEEDBACK for key in RSC_KEYS}
        result = await self._score_rsc(sample)
        self._count(result is None)
        return result

    def _judged_text(self, response: str, parsed) -> str:
        """What R_cot judges: the ``<think>`` and ``<attribute>`` contents, re-tagged."""
        return judged_reasoning(parsed.think, parsed.attribute)

    def _count(self, failed: bool) -> None:
        if failed:
            self.stats.add(failures=1)
        self.failure_rule.record(failed, self.latest_failure())

    def latest_failure(self) -> str:
        """What the latest failed request got (for the failure rule's message); '' if unknown."""
        return ""

    async def _score_reasoning(self, text: str, sample: dict) -> float | None:
        raise NotImplementedError

    async def _score_rsc(self, sample: dict) -> dict | None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections and files (the base holds none)."""
