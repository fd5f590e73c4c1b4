"""Rewards by name, as recipes list them: the table :data:`REWARDS` is the one list of them, and
the errors, the recipe help and this table are made from it. A recipe may also name a reward of its
own by import path, ``module:function`` (or TRL's dotted ``module.function``)::

    rewards: [attribute_format, classification, mypkg.rewards:brevity]

Every reward has TRL's signature ``f(completions, **kwargs) -> list[float | None]``; each entry of
:data:`REWARDS` builds one from the run's :class:`RewardSettings`, and an imported one is checked
for that signature when the recipe is read (:func:`load_reward`).

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
refine_rft.errors.ConfigError: unknown reward 'acc'; valid rewards: format, attribute_format, classification, reasoning, length, open_classification, open_verifier, or a function by import path (module:function)
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
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


# What TRL passes every reward by keyword besides the completions (and the question rows' columns).
TRL_REWARD_ARGUMENTS = ("prompts", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments")


def is_import_path(name: str) -> bool:
    """Whether a recipe's reward entry names a function by import path rather than :data:`REWARDS`.

    >>> is_import_path("mypkg.rewards:brevity"), is_import_path("mypkg.rewards.brevity"), is_import_path("format")
    (True, True, False)
    """
    return name not in REWARDS and (":" in name or "." in name)


def load_reward(path: str) -> Callable:
    """The reward function ``path`` names (``module:function`` or ``module.function``), imported with the
    working folder on ``sys.path`` (as TRL's GRPO script does), and checked for TRL's signature
    ``f(completions, **kwargs) -> list[float | None]``: ``completions`` first, ``**kwargs`` for what
    TRL passes besides (``prompts``, the rows' columns ``answer``, ``options``, ...). Any failure is one
    ``ConfigError`` line naming the entry.

    >>> load_reward("refine_rft.rewards.rules:format_reward").__name__
    'format_reward'
    >>> load_reward("os.path:join")
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: reward 'os.path:join' must have TRL's signature f(completions, **kwargs) -> list[float | None]; its signature is (a, *p)
    """
    module_name, sep, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attribute or not sep:
        raise ConfigError(f"reward {path!r}: give an import path as module:function (e.g. mypkg.rewards:brevity)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"reward {path!r}: cannot import {module_name!r} ({error}); install it, or run from "
                          f"the folder that holds it, or add that folder to PYTHONPATH") from None
    func = getattr(module, attribute, None)
    if func is None:
        raise ConfigError(f"reward {path!r}: module {module_name!r} has no {attribute!r}")
    if not callable(func):
        raise ConfigError(f"reward {path!r} is not a function (a {type(func).__name__})")
    check_reward_signature(func, path)
    return func


def check_reward_signature(func: Callable, name: str) -> None:
    """Refuse, in one line, a reward TRL could not call: TRL calls ``f(prompts=..., completions=...,
    completion_ids=..., **columns)`` and this project's wrappers pass ``completions`` first."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: let TRL's own call decide
        return
    parameters = list(signature.parameters.values())
    kinds = inspect.Parameter
    ok = (bool(parameters) and parameters[0].name == "completions"
          and parameters[0].kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
          and any(p.kind is kinds.VAR_KEYWORD for p in parameters))
    if not ok:
        raise ConfigError(f"reward {name!r} must have TRL's signature f(completions, **kwargs) -> "
                          f"list[float | None]; its signature is {signature}")
    from refine_rft.data.records import QUESTION_COLUMNS

    passed = {*TRL_REWARD_ARGUMENTS, *QUESTION_COLUMNS}
    missing = [p.name for p in parameters[1:] if p.default is kinds.empty
               and p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL) and p.name not in passed]
    if missing:
        raise ConfigError(f"reward {name!r} requires {', '.join(map(repr, missing))}, which TRL does not pass; "
                          f"give a default or read it from **kwargs (TRL passes {', '.join(TRL_REWARD_ARGUMENTS)} "
                          f"and the question's columns)")


def check_reward_names(names: Sequence[str]) -> None:
    """Refuse unknown, repeated or missing reward names, and import-path rewards that do not load or
    lack TRL's signature, when a recipe is read (before any model loads)."""
    unknown = [name for name in names if name not in REWARDS and not is_import_path(name)]
    if unknown:
        raise ConfigError(f"unknown reward {unknown[0]!r}; valid rewards: {', '.join(REWARDS)}, or a function by "
                          f"import path (module:function)")
    if len(set(names)) != len(names):
        raise ConfigError(f"rewards listed twice in {list(names)}; each reward may appear once")
    if not names:
        raise ConfigError(f"no rewards given; choose from: {', '.join(REWARDS)}")
    for name in names:
        if is_import_path(name):
            load_reward(name)


def get_reward_funcs(
    names: Sequence[str],
    judge: JudgeConfig | None = None,
    length_budget: int = 256,
    tokenizer=None,
    classes: dict | None = None,
) -> list:
    """The reward functions named in ``names``, in that order.

    Args:
        names: reward names, keys of :data:`REWARDS`, or import paths (:func:`load_reward`).
        judge: the judge settings; required by ``reasoning`` and ignored otherwise.
        length_budget: thinking tokens allowed by ``length`` without penalty.
        tokenizer: the policy tokenizer, with which ``length`` counts tokens.
        classes: ``{dataset: ClassVocabulary}`` of the training data, for the open-world rewards.

    Raises:
        ValueError: an unknown or repeated name (the message lists the valid ones), or ``reasoning``
            without judge settings.
    """
    check_reward_names(names)
    settings = RewardSettings(judge, length_budget, tokenizer, classes)
    return [load_reward(name) if is_import_path(name) else REWARDS[name].make(settings) for name in names]
