"""Per-step monitoring of a GRPO run through TRL's reward-function hooks.

TRL calls every reward function once per generation batch with the batch's dataset columns
(``id``, ...), the ``trainer_state`` and a ``log_metric(name, value)`` hook whose values it
averages over each logging step and reports beside its own metrics (``rewards/<name>/mean``,
``completions/mean_length``, ...). Wrapping reward functions is therefore the one place that sees
which questions a step trained on and can add metrics to the same log without a custom trainer:

- the first reward also records the step's question ids in ``sample_ids.rank<N>.jsonl`` (the
  resume test compares them with an uninterrupted run) and logs format compliance
  (``format/think_answer``: R_f's rate, ``format/think_attribute_answer``: R_fa's), whatever the
  recipe's rewards are.

The reasoning reward logs the judge's counters (``judge/failures``, ``judge/retries``,
``judge/mean_latency_s``, ...) through the same hook itself (:mod:`refine_rft.rewards.reasoning`).

The wrapper keeps the wrapped function's name (TRL's metric names) and its sync/async kind (TRL
runs async rewards concurrently).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from transformers import TrainerCallback
from trl.trainer.utils import get_callable_name, is_async_callable

from refine_rft.files import JsonlAppender
from refine_rft.rewards.rules import attribute_format_reward, format_reward


class SampleIdLog:
    """Appends ``{"step": S, "ids": [...]}`` per generation batch to a JSONL file through
    :class:`~refine_rft.files.JsonlAppender` (fsynced row by row, so that a killed run keeps every
    line it logged).

    >>> import tempfile
    >>> log = SampleIdLog(Path(tempfile.mkdtemp()) / "ids.jsonl")
    >>> log.write(3, ["q1", "q1"])
    >>> read_sample_ids(log.path)
    {3: ['q1', 'q1']}
    >>> asyncio.run(log.aclose())
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._out: JsonlAppender | None = None

    def write(self, step: int, ids: list) -> None:
        if self._out is None:  # opened on the first row: a resumed run has trimmed the log by then
            self._out = JsonlAppender(self.path, key=None)
        self._out.write({"step": step, "ids": list(ids)})

    async def aclose(self) -> None:
        """Close the file (a later :meth:`write` opens it again); awaited by :class:`CloseRewards` with the rewards."""
        if self._out is not None:
            out, self._out = self._out, None
            out.close()


def read_sample_ids(path: str | os.PathLike) -> dict[int, list]:
    """Step -> ids from a :class:`SampleIdLog` file. A step logged twice (the steps between the
    last checkpoint and a kill, run again after resuming) keeps its last entry."""
    from refine_rft.files import iter_jsonl_tolerant

    return {row["step"]: row["ids"] for row in iter_jsonl_tolerant(path)}


def _first_reward_monitor(func, sample_log: SampleIdLog | None):
    def observe(completions, kwargs):
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            log_metric("format/think_answer", _mean(format_reward(completions)))
            log_metric("format/think_attribute_answer", _mean(attribute_format_reward(completions)))
        if sample_log is not None and "id" in kwargs and kwargs.get("trainer_state") is not None:
            sample_log.write(kwargs["trainer_state"].global_step, kwargs["id"])

    if is_async_callable(func):
        async def monitored(completions, **kwargs):
            observe(completions, kwargs)
            return await func(completions, **kwargs)
    else:
        def monitored(completions, **kwargs):
            observe(completions, kwargs)
            return func(completions, **kwargs)
    return _named_like(func, monitored)


def monitor_rewards(reward_funcs: list, sample_log: SampleIdLog | None = None) -> list:
    """``reward_funcs`` wrapped for per-step monitoring (see the module docstring), the first also
    writing ``sample_log`` (its owner closes it); the rewards they return are unchanged."""
    return [_first_reward_monitor(func, sample_log) if index == 0 else func
            for index, func in enumerate(reward_funcs)]


def with_template_prefix(reward_funcs: list, prefix: str) -> list:
    """``reward_funcs`` scoring each completion with the ``prefix`` its chat template wrote before it put
    back (``<think>\n`` for a template that opens the thinking block; :mod:`refine_rft.chat`); unchanged
    when ``prefix`` is empty."""
    from refine_rft.chat import restore_in_completions

    if not prefix:
        return list(reward_funcs)

    def wrap(func):
        if is_async_callable(func):
            async def restored(completions, **kwargs):
                return await func(restore_in_completions(prefix, completions), **kwargs)
        else:
            def restored(completions, **kwargs):
                return func(restore_in_completions(prefix, completions), **kwargs)
        return _named_like(func, restored)

    return [wrap(func) for func in reward_funcs]


def _named_like(func, wrapper):
    """Give ``wrapper`` the name TRL would log ``func`` under."""
    wrapper.__name__ = wrapper.__qualname__ = get_callable_name(func)
    wrapper.__doc__ = func.__doc__
    return wrapper


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def umask_callback():
    """A trainer callback that gives each saved checkpoint (and the final save) the umask's modes:
    safetensors writes adapters 0600 whatever the umask (see :func:`refine_rft.files.honour_umask`)."""
    from transformers import TrainerCallback

    from refine_rft.files import honour_umask

    class HonourUmask(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                honour_umask(args.output_dir)

    return HonourUmask()



class CloseRewards(TrainerCallback):
    """Closes, when training ends, what the rewards hold open: each reward (and the sample-id log) with an ``aclose``
    coroutine function (the judge rewards: their HTTP connections and judge cache; a reward of the
    user's may define one too) is awaited on TRL's reward event loop, the loop whose connections
    they are. A run stopped by an error never reaches ``on_train_end``: :func:`close_rewards` closes
    them then."""

    def __init__(self, trainer, closers: list):
        self.trainer, self.closers = trainer, closers

    def close(self) -> None:
        closers, self.closers = self.closers, []  # once, whichever end comes first

        async def close_all() -> None:
            for close in closers:
                await close()

        loop = getattr(self.trainer, "async_loop", None)  # TRL makes it only for async rewards
        if closers and loop is not None:
            asyncio.run_coroutine_threadsafe(close_all(), loop).result()
        elif closers:  # no async reward, so no connection: only files (the sample-id log) to close
            asyncio.run(close_all())

    def on_train_end(self, args, state, control, **kwargs):
        self.close()


def close_rewards_callback(trainer, reward_funcs: list) -> CloseRewards | None:
    """The :class:`CloseRewards` callback of ``trainer`` for ``reward_funcs``; ``None`` when no
    reward holds anything."""
    closers = [reward.aclose for reward in reward_funcs if callable(getattr(reward, "aclose", None))]
    return CloseRewards(trainer, closers) if closers else None


def close_rewards(trainer) -> None:
    """Close what ``trainer``'s rewards hold (see :class:`CloseRewards`), if it has not been."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, CloseRewards):
            callback.close()
