"""Rewards by name, as recipes list them: the table :data:`REWARDS` is the one list of them, and
the errors, the recipe help and this table are made from it.

Every reward has TRL's signature ``f(completions, **kwargs) -> list[float | None]``; each entry of
:data:`REWARDS` builds one from the run's :class:`RewardSettings`.

>>> for name, reward in REWARDS.items():
...     print(f"{name:<20} {reward.paper:<6} {reward.scores}")
format               R_f    ``<think>…</think>`` then ``<answer>…</answer>``, other tags allowed
attribute_format     R_fa   ``<think>…</think><attribute>…</attribute><answer>…</answer>``
classification       R_cls  the ``<answer>`` names exactly the true option
reasoning            R_cot  a teacher judge scores the reasoning against the image (0-1)
length               —      thinking within a token budget (1.0), beyond it less
open_classification  R_cls  open world: the ``<answer>`` names the true class (or an alias), nothing else
open_verifier        R_cls  open world: a text LLM judges that the ``<answer>`` names the true class
>>> [f.__name__ for f in get_reward_funcs(["attribute_format", "classification"])]
['attribute_format_reward', 'classification_reward']
>>> get_reward_funcs(["acc"])
Traceback (most recent call last):
...
refine_rft.errors.ConfigError: unknown reward 'acc'; valid rewards: format, attribute_format, classification, reasoning, length, open_classification, open_verifier
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from refine_rft.errors import ConfigError
from refine_rft.rewards.rules import attribute_format_reward, classification_reward, format_reward

if TYPE_CHECKING:
    from refine_rft.judge import JudgeConfig


@dataclass(frozen=True)
class RewardSettings:
    """What a reward may need from the run: the judge (``reasoning``, ``open_verifier``), the thinking
    budget and the policy's tokenizer (``length``), the training data's class vocabulary
    (``open_classification``, ``open_verifier``: ``{dataset: ClassVocabulary}``)."""

    judge: JudgeConfig | None = None
    length_budget: int = 256
    tokenizer: object = None
    classes: dict | None = None


def _reasoning(settings: RewardSettings):
    # Imported here: the judge pulls in the HTTP client stack, which rule-only runs never need.
    from refine_rft.rewards.reasoning import make_reasoning_reward

    if settings.judge is None:
        raise ConfigError("the 'reasoning' reward needs judge settings: set 'judge' in the recipe "
                         "(e.g. judge: {backend: attributes} or judge: {backend: openai, base_urls: [...]})")
    return make_reasoning_reward(settings.judge)


def _length(settings: RewardSettings):
    from refine_rft.rewards.length import make_length_reward

    return make_length_reward(settings.length_budget, settings.tokenizer)


def _open_classification(settings: RewardSettings):
    from refine_rft.rewards.open import make_open_classification_reward

    return make_open_classification_reward(settings.classes)


def _open_verifier(settings: RewardSettings):
    from refine_rft.rewards.verifier import make_open_verifier_reward

    if settings.judge is None or settings.judge.backend != "openai":
        raise ConfigError("the 'open_verifier' reward needs a text LLM: set 'judge' in the recipe to "
                          "{backend: openai, base_urls: [...], model: ...}")
    return make_open_verifier_reward(settings.judge, settings.classes)


class Reward(NamedTuple):
    """One entry of :data:`REWARDS`: the paper's symbol, what it scores, and its factory."""

    paper: str
    scores: str
    make: Callable[[RewardSettings], Callable]


REWARDS: dict[str, Reward] = {
    "format": Reward("R_f", "``<think>…</think>`` then ``<answer>…</answer>``, other tags allowed",
                     lambda s: format_reward),
    "attribute_format": Reward("R_fa", "``<think>…</think><attribute>…</attribute><answer>…</answer>``",
                               lambda s: attribute_format_reward),
    "classification": Reward("R_cls", "the ``<answer>`` names exactly the true option", lambda s: classification_reward),
    "reasoning": Reward("R_cot", "a teacher judge scores the reasoning against the image (0-1)", _reasoning),
    "length": Reward("—", "thinking within a token budget (1.0), beyond it less", _length),
    "open_classification": Reward("R_cls", "open world: the ``<answer>`` names the true class (or an alias), "
                                  "nothing else", _open_classification),
    "open_verifier": Reward("R_cls", "open world: a text LLM judges that the ``<answer>`` names the true class",
                            _open_verifier),
}
REWARD_NAMES = tuple(REWARDS)


def get_reward_funcs(
    names: Sequence[str],
    judge: JudgeConfig | None = None,
    length_budget: int = 256,
    tokenizer=None,
    classes: dict | None = None,
) -> list:
    """The reward functions named in ``names``, in that order.

    Args:
        names: reward names, keys of :data:`REWARDS`.
        judge: the judge settings; required by ``reasoning`` and ignored otherwise.
        length_budget: thinking tokens allowed by ``length`` without penalty.
        tokenizer: the policy tokenizer, with which ``length`` counts tokens.
        classes: ``{dataset: ClassVocabulary}`` of the training data, for the open-world rewards.

    Raises:
        ValueError: an unknown or repeated name (the message lists the valid ones), or ``reasoning``
            without judge settings.
    """
    unknown = [name for name in names if name not in REWARDS]
    if unknown:
        raise ConfigError(f"unknown reward {unknown[0]!r}; valid rewards: {', '.join(REWARDS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"rewards listed twice in {list(names)}; each reward may appear once")
    if not names:
        raise ConfigError(f"no rewards given; choose from: {', '.join(REWARDS)}")
    settings = RewardSettings(judge, length_budget, tokenizer, classes)
    return [REWARDS[name].make(settings) for name in names]
