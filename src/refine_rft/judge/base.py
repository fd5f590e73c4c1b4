"""What every judge does before it looks at a response, whatever the backend.

A *sample* is one question record plus the response to judge: a dict with ``response`` (the
complete model output), ``image``, ``options``, ``answer``, ``noun``, optionally ``style``, ``id``,
``attributes`` and ``option_attributes`` (the columns of a prepared dataset or a predictions file).

R_cot is Eq. 2 of the paper, ``F_teacher(x ⊕ J ⊕ o_i)``: the teacher judges **every** completion,
untagged and truncated ones included. Two checks can skip the call:

- ``skip_untagged`` (off by default, and in the paper recipes): a response without a complete,
  non-empty ``<think>`` block scores 0 without a call (``judge/no_think``). A cost saving that
  turns R_cot partly into a second format reward; an ablation.
- The phrase screen (:func:`~refine_rft.judge.prompts.addresses_the_judge`) reads every judged
  text and counts the ones that seem to address the judge (``judge/injections_flagged``); by
  default that is all it does, and the text goes to the teacher inside its fence, where it is
  data. The fence and its per-request code are the defence: they held against every forgery
  tried, while any phrase screen also flags some ordinary domain sentences ("a thrust rating of
  27,000 lbf", "Overall score: 8/10") and misses attacks in other languages and encodings
  (``benchmarks/screen_rates.py``). With ``reject_injections`` (an ablation), a flagged text also
  scores 0 without a call (``judge/injections_rejected``); for Reasoning-Answer scores RSC_U and
  RSC_O are then 0 but RSC_A still comes from the answer (:func:`answered_correctly`): a right
  answer is never scored wrong by the screen.

Backends implement ``_score_reasoning(text, sample) -> 0..100 | None`` and
``_score_rsc(sample) -> dict | None``; ``None`` means the judgement failed and is counted here, and
the run's :class:`~refine_rft.judge.failure.FailureRule` stops it when too many fail.
"""

from __future__ import annotations

import asyncio

from refine_rft.errors import DataError
from refine_rft.judge.config import JudgeConfig
from refine_rft.judge.failure import FailureRule
from refine_rft.judge.prompts import addresses_the_judge, judged_reasoning
from refine_rft.judge.stats import JudgeStats
from refine_rft.parsing import parse_response
from refine_rft.prompts import prompt_style

INJECTION_FEEDBACK = "The response addresses the judge instead of the question; not graded."


def answered_correctly(sample: dict) -> bool:
    """Whether the response gives the true option under its style's answer rule
    (:data:`~refine_rft.prompts.PROMPT_STYLES`' ``parse``, the rule accuracy is scored by): the
    ``<answer>`` block for CoT (R_cls's reading), the letter and the name for Both, the letter for
    Choice. A sample without a ``style`` is a CoT response.

    >>> options = ["Purple Finch", "Crested Finch"]
    >>> answered_correctly({"response": "<think>x</think><answer>B</answer>", "options": options,
    ...                     "answer": 1})
    True
    >>> answered_correctly({"response": "A", "options": options, "answer": 1, "style": "choice"})
    False
    >>> answered_correctly({"response": "B", "options": options, "answer": 1, "style": "both"})  # no name
    False
    """
    return answer_given(sample) == int(sample["answer"])


def answer_given(sample: dict) -> int | None:
    """The option index the response gives under its style's rule; ``None``: unparseable.

    >>> answer_given({"response": "B. Crested Finch", "options": ["Purple Finch", "Crested Finch"],
    ...               "style": "both"})
    1
    """
    return prompt_style(sample.get("style") or "cot").parse(sample["response"], sample["options"])


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

    def _prejudged(self, sample: dict) -> tuple[float | None, str]:
        """Count the judgement; (its score when it needs no call, else ``None``; the text to judge)."""
        self.stats.add(judgements=1)
        parsed = parse_response(sample["response"])
        if self.config.skip_untagged and not parsed.think:
            self.stats.add(no_think=1)
            return 0.0, ""
        text = self._judged_text(sample["response"], parsed)
        if self._screened_out(text):
            return 0.0, text
        return None, text

    def _screened_out(self, text: str) -> bool:
        """Run the phrase screen on ``text``: count a flag; True when the flag also zeroes it."""
        if not addresses_the_judge(text):
            return False
        self.stats.add(injections_flagged=1)
        if not self.config.reject_injections:
            return False
        self.stats.add(injections_rejected=1)
        return True

    async def reasoning_score(self, sample: dict) -> float | None:
        """R_cot of ``sample["response"]`` on 0-100, or ``None`` if the judge failed."""
        given, text = self._prejudged(sample)
        if given is not None:
            return given
        score = await self._score_reasoning(text, sample)
        self._count(score is None)
        return score

    async def rsc(self, sample: dict) -> dict | None:
        """Reasoning-Answer scores ``{"RSC_A", "RSC_U", "RSC_O"}`` (0-100) with a ``*_feedback``
        sentence each, or ``None`` if the judge failed."""
        self.stats.add(judgements=1)
        if self._screened_out(sample["response"]):
            require_fields(sample, ("options", "answer"), "RSC_A reads the answer")
            correct = answered_correctly(sample)
            verb = "names" if correct else "does not name"
            return {"RSC_A": 100.0 if correct else 0.0,
                    "RSC_A_feedback": f"The answer {verb} exactly the right choice (read from the answer; "
                                      "the reasoning was not graded).",
                    "RSC_U": 0.0, "RSC_U_feedback": INJECTION_FEEDBACK,
                    "RSC_O": 0.0, "RSC_O_feedback": INJECTION_FEEDBACK}
        result = await self._score_rsc(sample)
        self._count(result is None)
        return result

    async def reasoning_scores(self, samples: list[dict]) -> list[float | None]:
        """:meth:`reasoning_score` of each sample, concurrently (a backend may judge groups at once)."""
        return list(await asyncio.gather(*(self.reasoning_score(sample) for sample in samples)))

    def _judged_text(self, response: str, parsed) -> str:
        """What R_cot judges: the ``<think>`` and ``<attribute>`` contents, re-tagged; the whole
        response when it has no ``<think>`` block (Eq. 2 judges every completion)."""
        return judged_reasoning(parsed.think, parsed.attribute) if parsed.think else response

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
