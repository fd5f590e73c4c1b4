"""R_cot: the teacher judge's score of the reasoning, as an async TRL reward function.

TRL's ``GRPOTrainer`` runs async reward functions concurrently on its own event loop and passes
every dataset column as a keyword list, one entry per completion: the image arrives as the
``image`` column (a PIL image when the dataset decodes images, a path string when it stores paths)
or as ``images`` (a list per prompt); both are accepted. ``None`` scores (a judgement that failed
after its retries) are turned into NaN by TRL and skipped for that sample.
"""

from __future__ import annotations

import asyncio

from refine_rft.data.records import TEXT_COLUMNS
from refine_rft.judge import JudgeConfig, make_judge
from refine_rft.rewards.rules import completion_text


def make_reasoning_reward(config: JudgeConfig):
    """An async reward ``reasoning_reward(completions, image, **kwargs) -> list[float | None]``.

    Scores are the judge's 0-100 scaled to [0, 1]; 0.0 without a call for a completion without
    ``<think>`` or (with ``reject_injections``) one that addresses the judge; ``None`` when the
    judge failed after its retries.

    The judge's counters (failures, retries, reminders, mean latency, injections rejected, cache
    hits) are on ``reasoning_reward.stats`` (a :class:`~refine_rft.judge.JudgeStats`). When TRL
    passes its ``log_metric`` hook, each call logs them as ``judge/*`` metrics and resets them, so
    they appear in the trainer's logs with nothing else to wire; otherwise read them with
    ``reasoning_reward.stats.read_and_reset()``.

    Args:
        config: the judge settings (a recipe's ``judge:``, parsed).

    Example:
        >>> import asyncio
        >>> reward = make_reasoning_reward(JudgeConfig(backend="attributes"))
        >>> image = {"wing_color": "crimson", "crest": "crested"}
        >>> kwargs = dict(options=[["Crimson-winged Finch", "Common Finch"]] * 2, answer=[0, 0],
        ...               attributes=[image] * 2, option_attributes=[[image, {**image, "wing_color": "black"}]] * 2)
        >>> asyncio.run(reward(["<think>Crimson wings.</think><answer>A</answer>", "<answer>A</answer>"],
        ...                    image=["a.png", "a.png"], **kwargs))
        [1.0, 0.0]
        >>> reward.__name__, reward.stats.read_and_reset()["judge/no_think"]
        ('reasoning_reward', 1)
    """
    judge = make_judge(config)

    async def reasoning_reward(completions, image=None, images=None, **kwargs) -> list[float | None]:
        pictures = image if image is not None else images
        if pictures is None:
            pictures = [None] * len(completions)
        samples = []
        for index, completion in enumerate(completions):
            sample = {name: kwargs[name][index] for name in TEXT_COLUMNS if kwargs.get(name) is not None}
            sample["response"] = completion_text(completion)
            sample["image"] = pictures[index]
            samples.append(sample)
        scores = await asyncio.gather(*(judge.reasoning_score(sample) for sample in samples))
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            for name, value in judge.stats.read_and_reset().items():
                log_metric(name, float(value))
        return [None if score is None else score / 100.0 for score in scores]

    reasoning_reward.stats = judge.stats
    reasoning_reward.judge = judge
    return reasoning_reward
