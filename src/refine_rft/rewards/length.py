"""A length reward that penalises thinking beyond a token budget.

Reinforcement fine-tuning with a reasoning reward tends to lengthen the ``<think>`` block: longer
reasoning names more attributes and pleases the teacher. This reward keeps the thinking within a
budget: 1.0 up to ``budget`` tokens, then falling linearly to 0.0 at twice the budget. A response
without a ``<think>`` block counts as all thinking, so dropping the tags never earns the reward for
free (the format rewards deal with the tags themselves).
"""

from __future__ import annotations

import re

from refine_rft.errors import ConfigError
from refine_rft.rewards.rules import completion_text


def thinking_text(text: str) -> str:
    """The reasoning of a response: the first ``<think>`` block, or the whole text if it has none.

    >>> thinking_text("<think>red wings</think><answer>A</answer>")
    'red wings'
    >>> thinking_text("no tags at all")
    'no tags at all'
    """
    match = re.search(r"<think>(.*?)(?:</think>|$)", text, flags=re.DOTALL)
    return match.group(1).strip() if match else text.strip()


def budget_score(num_tokens: int, budget: int) -> float:
    """1.0 within ``budget`` tokens, then linear down to 0.0 at ``2 * budget``.

    >>> [budget_score(n, 100) for n in (0, 100, 150, 200, 500)]
    [1.0, 1.0, 0.5, 0.0, 0.0]
    """
    if budget <= 0:
        raise ConfigError(f"the thinking budget must be a positive number of tokens, got {budget}")
    return max(0.0, min(1.0, 2.0 - num_tokens / budget))


def make_length_reward(budget: int, tokenizer=None):
    """A TRL reward ``length_reward(completions, **kwargs)`` scoring the thinking length against ``budget``.

    Args:
        budget: the number of thinking tokens allowed without penalty.
        tokenizer: counts tokens with the policy's tokenizer (``tokenizer.encode``); without one,
            whitespace-separated words are counted (for tests and tokenizer-free use).

    Example:
        >>> reward = make_length_reward(4)
        >>> reward(["<think>a b c</think><answer>A</answer>", "<think>a b c d e f</think>", "a b c d e f g h i"])
        [1.0, 0.5, 0.0]
    """
    if budget <= 0:
        raise ConfigError(f"length reward: 'length_budget' must be a positive number of tokens, got {budget}")

    def count(text: str) -> int:
        if tokenizer is None:
            return len(text.split())
        return len(tokenizer.encode(text, add_special_tokens=False))

    def length_reward(completions, **kwargs) -> list[float]:
        return [budget_score(count(thinking_text(completion_text(c))), budget) for c in completions]

    return length_reward
