"""Rule rewards with TRL's signature ``f(completions, **kwargs) -> list[float | None]``.

- :func:`format_reward` (R_f): a ``<think>…</think>`` block then an ``<answer>…</answer>`` block,
  the "traditional" format the paper cites; other text and tags may sit inside or between them.
- :func:`attribute_format_reward` (R_fa): ``<think>…</think><attribute>…</attribute><answer>…</answer>``.
- :func:`classification_reward` (R_cls): the single ``<answer>`` block names exactly the true option.

Completions arrive either as strings or in conversational form
(``[{"role": "assistant", "content": "..."}]``); dataset columns arrive as keyword lists
(``options: list[list[str]]``, ``answer: list[int]``).
"""

from __future__ import annotations

from refine_rft.parsing import THINK_ATTRIBUTE_ANSWER, cot_choice, follows_format, think_then_answer


def completion_text(completion) -> str:
    """The text of one completion, whether plain or conversational.

    >>> completion_text([{"role": "assistant", "content": "<answer>A</answer>"}])
    '<answer>A</answer>'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "B"}]}])
    'B'
    """
    if isinstance(completion, str):
        return completion
    content = completion[-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def format_reward(completions, **kwargs) -> list[float]:
    """R_f: 1.0 iff the response has one complete ``<think>…</think>`` followed by one complete
    ``<answer>…</answer>`` and nothing after the answer, else 0.0
    (:func:`~refine_rft.parsing.think_then_answer`).

    The paper's "traditional format reward" of the works it cites: the two blocks are required,
    other text and tags between or inside them (an ``<attribute>`` block too) are not forbidden.

    Args:
        completions: list of completions (strings or conversational).

    Returns:
        One float per completion.

    Example:
        >>> format_reward(["<think>red</think> <answer>A</answer>", "<answer>A</answer>",
        ...                "<think>red</think><attribute>x</attribute><answer>A</answer>",
        ...                "<think>red</think><answer>A</answer> or B"])
        [1.0, 0.0, 1.0, 0.0]
    """
    return [float(think_then_answer(completion_text(c))) for c in completions]


def attribute_format_reward(completions, **kwargs) -> list[float]:
    """R_fa: 1.0 iff the response is ``<think>`` ``<attribute>`` ``<answer>`` blocks in that order.

    Each tag exactly once, each block non-blank, only whitespace outside the blocks.

    Args:
        completions: list of completions (strings or conversational).

    Returns:
        One float per completion.

    Example:
        >>> attribute_format_reward(["<think>red</think>\\n<attribute>red wing</attribute>\\n<answer>A</answer>",
        ...                          "<think>red</think><answer>A</answer>",
        ...                          "<attribute>x</attribute><think>y</think><answer>A</answer>"])
        [1.0, 0.0, 0.0]
    """
    return [float(follows_format(completion_text(c), THINK_ATTRIBUTE_ANSWER)) for c in completions]


def classification_reward(completions, options, answer, **kwargs) -> list[float]:
    """R_cls: 1.0 iff the response's one ``<answer>`` block names exactly the true option.

    The block is :func:`~refine_rft.parsing.answer_block`'s (one block, nothing after it) and the
    option :func:`~refine_rft.parsing.extract_choice`'s: hedges, negations and second options earn 0.

    Args:
        completions: list of completions (strings or conversational).
        options: per completion, the option names in the order shown to the model.
        answer: per completion, the index of the correct option in ``options``.

    Returns:
        One float per completion.

    Example:
        >>> opts = [["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]] * 5
        >>> classification_reward(["<answer>B. Sooty_Albatross</answer>", "<answer>A or B</answer>",
        ...                        "<answer></answer>", "B", "<answer>B</answer> Actually A"],
        ...                       options=opts, answer=[1] * 5)
        [1.0, 0.0, 0.0, 0.0, 0.0]
    """
    return [float(cot_choice(completion_text(c), opts) == int(correct))
            for c, opts, correct in zip(completions, options, answer, strict=True)]
