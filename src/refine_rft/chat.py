"""What a chat template writes of the assistant's answer before the model speaks.

Some chat templates open the thinking block themselves: a Qwen3-VL ``-Thinking`` model's generation
prompt ends in ``<|im_start|>assistant\\n<think>\\n``, so the model's completion starts inside the
block and never writes ``<think>``. Scored as it stands, a correct three-tag answer then fails the
format rewards (R_f, R_fa) and the parsers. Every place that reads a completion of the policy (the
rewards during training, the evaluation generators) therefore puts back what the template wrote:
:func:`generation_prefix` finds it once per tokenizer, :func:`restore_prefix` prepends it.

A template that opens *and closes* the block (Qwen3's ``enable_thinking=False``:
``<think>\\n\\n</think>\\n\\n``) or writes nothing (Qwen2-VL, Qwen2.5-VL, Qwen3-VL-Instruct) needs
nothing put back: the model writes its own tags.

>>> restore_prefix("<think>\\n", "red crown</think><answer>A</answer>")
'<think>\\nred crown</think><answer>A</answer>'
>>> restore_prefix("<think>\\n", "<think>red crown</think><answer>A</answer>")  # wrote it anyway
'<think>red crown</think><answer>A</answer>'
>>> restore_prefix("", "<answer>A</answer>")
'<answer>A</answer>'
"""

from __future__ import annotations

from refine_rft.parsing import tag

OPEN, CLOSE = tag("think"), tag("think", closing=True)  # the one spelling every parser reads
_PROBE = [{"role": "user", "content": [{"type": "text", "text": "?"}]}]


def generation_prefix(tokenizer) -> str:
    """The opening of the thinking block that ``tokenizer``'s (or a processor's) chat template writes
    after the assistant header of its generation prompt (``"<think>\\n"``), or ``""``.

    Found by rendering one question with and without the generation prompt: the difference is what
    the template adds for the assistant, whatever its wording.
    """
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return ""
    with_prompt = tokenizer.apply_chat_template(_PROBE, add_generation_prompt=True, tokenize=False)
    without = tokenizer.apply_chat_template(_PROBE, add_generation_prompt=False, tokenize=False)
    added = with_prompt[len(without):] if with_prompt.startswith(without) else with_prompt
    start = added.rfind(OPEN)
    if start < 0 or CLOSE in added[start:]:
        return ""
    return added[start:]


def restore_prefix(prefix: str, text: str) -> str:
    """``text`` (a completion) with the template's ``prefix`` put back, unless the model wrote it anyway."""
    if not prefix or text.lstrip().startswith(OPEN):
        return text
    return prefix + text


def restore_in_completions(prefix: str, completions: list) -> list:
    """:func:`restore_prefix` over TRL's completions, plain strings or conversational
    (``[{"role": "assistant", "content": ...}]``).

    >>> restore_in_completions("<think>\\n", [[{"role": "assistant", "content": "x</think>"}]])
    [[{'role': 'assistant', 'content': '<think>\\nx</think>'}]]
    """
    if not prefix:
        return completions
    restored = []
    for completion in completions:
        if isinstance(completion, str):
            restored.append(restore_prefix(prefix, completion))
            continue
        *head, last = completion
        content = last["content"]
        if isinstance(content, str):
            content = restore_prefix(prefix, content)
        else:
            parts = [dict(part) for part in content]
            first = next((part for part in parts if part.get("type") == "text"), None)
            if first is not None:
                first["text"] = restore_prefix(prefix, first.get("text", ""))
            content = parts
        restored.append([*head, {**last, "content": content}])
    return restored
