"""The teacher judge: R_cot for training and Reasoning-Answer (RSC) scores for evaluation.

Two backends behind one interface (:class:`~refine_rft.judge.base.Judge`):

- ``openai``: a teacher MLLM behind any OpenAI-compatible endpoint (``vllm serve``, hosted APIs),
  see :mod:`refine_rft.judge.teacher` and :mod:`refine_rft.judge.client`;
- ``attributes``: a deterministic judge from ground-truth attributes, see :mod:`refine_rft.judge.attributes`.

>>> judge = make_judge({"backend": "attributes"})
>>> type(judge).__name__
'AttributeJudge'
"""

from __future__ import annotations

from refine_rft.judge.base import Judge
from refine_rft.judge.client import JudgeConfigError
from refine_rft.judge.config import JudgeConfig
from refine_rft.judge.stats import JudgeStats

__all__ = ["Judge", "JudgeConfig", "JudgeConfigError", "JudgeStats", "make_judge"]


def make_judge(config: JudgeConfig | dict, stats: JudgeStats | None = None) -> Judge:
    """The judge that ``config.backend`` names."""
    if isinstance(config, dict):
        config = JudgeConfig.from_dict(config)
    if config.backend == "attributes":
        from refine_rft.judge.attributes import AttributeJudge

        return AttributeJudge(config, stats)
    from refine_rft.judge.teacher import TeacherJudge

    return TeacherJudge(config, stats)
