"""R_cot: the teacher judge's score of the reasoning, as an async TRL reward function.

TRL's ``GRPOTrainer`` runs async reward functions concurrently on its own event loop and passes
every dataset column as a keyword list, one entry per completion: the image arrives as the
``image`` column (a PIL image when the dataset decodes images, a path string when it stores paths)
or as ``images`` (a list per prompt); both are accepted.

Every completion is judged, as Eq. 2 defines R_cot, untagged and truncated ones included
(``judge.skip_untagged: true`` scores those 0 without a call: a cost saving, not the paper). With
``judge.group_judging: true`` the completions of one question (consecutive entries with the same
``id``) go to the teacher in one request (:mod:`refine_rft.judge.group`).

**A failed judgement** (the teacher still unreachable or unparseable after its retries) must neither
penalise nor reward the completion. Returning ``None`` would not do that: with several reward
functions TRL turns ``None`` into NaN and sums the weighted rewards with ``nansum``, so the failed
R_cot counts as 0, a penalty of ``w_cot`` against the completion's siblings. Instead, a failed R_cot
is replaced by **the mean of the scored R_cot of the same question's completions in the batch** (its
GRPO group), so R_cot neither raises nor lowers its advantage; only when no completion of the group
was scored does it stay ``None``. Then every completion of that group gets the same 0 for R_cot, a
constant that the group normalisation of Eq. 4 removes: R_cot is skipped for that group. Both cases
are counted (``judge/failures_imputed``, ``judge/failures_unscored``, beside ``judge/failures``).
A group's completions sit next to each other in a batch (TRL repeats each prompt G times); when a
group is split across training processes, its mean is over the part this process scored.

**An outage stops the run.** TRL calls the reward once per step's batch; when more than
``judge.max_failure_rate`` of the judgements of that call failed, it raises
:class:`~refine_rft.errors.JudgeUnavailable` quoting the latest failure, so a judge that goes down
mid-run can never train on without R_cot (:class:`~refine_rft.judge.failure.FailureRule`).
"""

from __future__ import annotations

from refine_rft.data.records import TEXT_COLUMNS
from refine_rft.judge import JudgeConfig, make_judge
from refine_rft.rewards.rules import completion_text


def make_reasoning_reward(config: JudgeConfig):
    """An async reward ``reasoning_reward(completions, image, **kwargs) -> list[float | None]``.

    Scores are the judge's 0-100 scaled to [0, 1]; 0.0 without a call for a completion that
    the phrase screen flags, with ``reject_injections`` (off by default: flagged text is only
    counted), or, with ``skip_untagged``, has no ``<think>``.
    A judgement that
    failed after its retries gets its group's mean score, or ``None`` if the whole group failed
    (:func:`fill_failed_scores`, module docstring).

    The judge's counters (failures, retries, reminders, mean latency, injections flagged and rejected, cache
    hits) are on ``reasoning_reward.stats`` (a :class:`~refine_rft.judge.JudgeStats`). When TRL
    passes its ``log_metric`` hook, each call logs them as ``judge/*`` metrics and resets them, so
    they appear in the trainer's logs with nothing else to wire; otherwise read them with
    ``reasoning_reward.stats.read_and_reset()``. The judge's connections and cache are closed by
    ``await reasoning_reward.aclose()``, on the event loop that ran the reward (training does it
    at its end).

    Args:
        config: the judge settings (a recipe's ``judge:``, parsed).

    Example:
        >>> import asyncio
        >>> reward = make_reasoning_reward(JudgeConfig(backend="attributes"))
        >>> image = {"wing_color": "crimson", "crest": "crested"}
        >>> kwargs = dict(options=[["Crimson-winged Finch", "Purple Finch"]] * 2, answer=[0, 0],
        ...               attributes=[image] * 2, option_attributes=[[image, {**image, "wing_color": "black"}]] * 2)
        >>> asyncio.run(reward(["<think>Crimson wings.</think><answer>A</answer>", "<answer>A</answer>"],
        ...                    image=["a.png", "a.png"], **kwargs))
        [1.0, 0.0]
        >>> reward.__name__, reward.stats.read_and_reset()["judge/judgements"]
        ('reasoning_reward', 2)
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
        scores = await judge.reasoning_scores(samples)
        scores, imputed, unscored = fill_failed_scores(list(scores), kwargs.get("id"))
        judge.stats.add(failures_imputed=imputed, failures_unscored=unscored)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            for name, value in judge.stats.read_and_reset().items():
                log_metric(name, float(value))
        # TRL calls this once per step's batch: a step whose judgements mostly failed stops the
        # run, however few it judged (judge.health, failure rules).
        judge.failure_rule.end_step(judge.latest_failure())
        return [None if score is None else score / 100.0 for score in scores]

    reasoning_reward.stats = judge.stats
    reasoning_reward.judge = judge
    reasoning_reward.aclose = judge.aclose
    return reasoning_reward


def fill_failed_scores(scores: list[float | None], ids: list | None) -> tuple[list[float | None], int, int]:
    """Replace each failed score (``None``) by the mean of the scored ones of its group: a run of
    consecutive completions with the same question ``id`` (every completion is its own group when
    ``ids`` is ``None``). Returns the scores, how many were filled, and how many stay ``None``
    because their whole group failed.

    >>> fill_failed_scores([80.0, None, 40.0, None, None], ["a", "a", "a", "b", "b"])
    ([80.0, 60.0, 40.0, None, None], 1, 2)
    >>> fill_failed_scores([None, 10.0], None)
    ([None, 10.0], 0, 1)
    """
    keys = list(ids) if ids is not None else list(range(len(scores)))
    filled, imputed, unscored = list(scores), 0, 0
    start = 0
    while start < len(scores):
        end = start
        while end < len(scores) and keys[end] == keys[start]:
            end += 1
        scored = [s for s in scores[start:end] if s is not None]
        mean = sum(scored) / len(scored) if scored else None
        for index in range(start, end):
            if scores[index] is None:
                filled[index] = mean
                imputed += mean is not None
                unscored += mean is None
        start = end
    return filled, imputed, unscored
