"""The teacher judge: R_cot for training and Reasoning-Answer (RSC) scores for evaluation.

Two backends behind one interface (:class:`~refine_rft.judge.base.Judge`):

- ``openai``: a teacher MLLM behind any OpenAI-compatible endpoint (``vllm serve``, hosted APIs),
  see :mod:`refine_rft.judge.teacher` and :mod:`refine_rft.judge.client`;
- ``attributes``: a deterministic judge from ground-truth attributes, see :mod:`refine_rft.judge.attributes`.

Settings are parsed once into a :class:`JudgeConfig` (from a recipe's ``judge:``, a ``--judge``
flag or ``refine-rft judge`` flags); everything here takes that object.
:func:`~refine_rft.judge.reasoning_answer.score_reasoning_answers` scores a predictions file.

>>> judge = make_judge(JudgeConfig(backend="attributes"))
>>> type(judge).__name__
'AttributeJudge'
"""

from __future__ import annotations

from refine_rft.judge.base import Judge
from refine_rft.judge.config import JudgeConfig, JudgeConfigError
from refine_rft.judge.stats import JudgeStats

__all__ = ["Judge", "JudgeConfig", "JudgeConfigError", "JudgeStats", "make_judge"]


def make_judge(config: JudgeConfig, stats: JudgeStats | None = None) -> Judge:
    """The judge that ``config.backend`` names."""
    if not isinstance(config, JudgeConfig):
        raise TypeError(f"make_judge takes a JudgeConfig (JudgeConfig.from_dict(mapping)), got {type(config).__name__}")
    if config.backend == "attributes":
        from refine_rft.judge.attributes import AttributeJudge

        return AttributeJudge(config, stats)
    # Imported here: the HTTP client stack, which the attribute judge never needs.
    from refine_rft.judge.teacher import TeacherJudge

    return TeacherJudge(config, stats)
