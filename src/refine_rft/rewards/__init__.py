"""Rewards by name, as recipes list them.

======================  ======  ===========================================================
name                    paper   what it scores
======================  ======  ===========================================================
``format``              R_f     ``<think>…</think><answer>…</answer>``
``attribute_format``    R_fa    ``<think>…</think><attribute>…</attribute><answer>…</answer>``
``classification``      R_cls   the ``<answer>`` names exactly the true option
``reasoning``           R_cot   a teacher judge scores the reasoning against the image (0-1)
``length``              —       thinking within a token budget (1.0), beyond it less
======================  ======  ===========================================================

Every reward has TRL's signature ``f(completions, **kwargs) -> list[float | None]``.

>>> [f.__name__ for f in get_reward_funcs(["attribute_format", "classification"])]
['attribute_format_reward', 'classification_reward']
>>> get_reward_funcs(["acc"])
Traceback (most recent call last):
...
ValueError: unknown reward 'acc'; valid rewards: format, attribute_format, classification, reasoning, length
"""

from __future__ import annotations

from collections.abc import Sequence

from refine_rft.rewards.rules import attribute_format_reward, classification_reward, format_reward

REWARD_NAMES = ("format", "attribute_format", "classification", "reasoning", "length")


def get_reward_funcs(
    names: Sequence[str],
    judge: dict | None = None,
    length_budget: int = 256,
    tokenizer=None,
) -> list:
    """The reward functions named in ``names``, in that order.

    Args:
        names: reward names from :data:`REWARD_NAMES`.
        judge: the judge settings (a :class:`refine_rft.judge.JudgeConfig` as a dict); required by
            ``reasoning`` and ignored otherwise.
        length_budget: thinking tokens allowed by ``length`` without penalty.
        tokenizer: the policy tokenizer, with which ``length`` counts tokens.

    Raises:
        ValueError: an unknown or repeated name (the message lists the valid ones), or ``reasoning``
            without judge settings.
    """
    unknown = [name for name in names if name not in REWARD_NAMES]
    if unknown:
        raise ValueError(f"unknown reward {unknown[0]!r}; valid rewards: {', '.join(REWARD_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"rewards listed twice in {list(names)}; each reward may appear once")
    if not names:
        raise ValueError(f"no rewards given; choose from: {', '.join(REWARD_NAMES)}")
    funcs = []
    for name in names:
        if name == "format":
            funcs.append(format_reward)
        elif name == "attribute_format":
            funcs.append(attribute_format_reward)
        elif name == "classification":
            funcs.append(classification_reward)
        elif name == "reasoning":
            funcs.append(_reasoning_reward(judge))
        else:
            from refine_rft.rewards.length import make_length_reward

            funcs.append(make_length_reward(length_budget, tokenizer))
    return funcs


def _reasoning_reward(judge: dict | None):
    # Imported here: the judge pulls in the HTTP client stack, which rule-only runs never need.
    from refine_rft.judge import JudgeConfig
    from refine_rft.rewards.reasoning import make_reasoning_reward

    if not judge:
        raise ValueError("the 'reasoning' reward needs judge settings: set 'judge' in the recipe "
                         "(e.g. judge: {backend: attributes} or judge: {backend: openai, base_urls: [...]})")
    return make_reasoning_reward(JudgeConfig.from_dict(dict(judge)))
