"""The prompt-length check every question passes before it costs anything: a question whose prompt
the model cannot take is rejected with its length, before the first generation or training step.

A prompt is the question text (the instruction and every option name) plus the image tokens. One
hostile row with a 100,000-character option name would otherwise become a 100,000-token prompt:
minutes of attention and tens of gigabytes for one row. The cap is the model's context
(``max_position_embeddings``) less the tokens the answer needs, or a smaller cap the user sets
(``--max-prompt-tokens`` for ``eval``, ``max_prompt_tokens`` in a training recipe). The image counts
as the most tokens the run's resolution allows (``max_pixels``), or nothing when no resolution is
set (the processor's default then decides).

>>> class Chars:  # a tokenizer with one token per character
...     def __call__(self, text, add_special_tokens=False): return {"input_ids": list(text)}
>>> record = {"noun": "birds", "options": ["a" * 500, "b"]}
>>> prompt_problem(Chars(), record, "choice", cap=300)[:66]
'prompt of about 649 tokens (choice style) is longer than the 300 t'
"""

from __future__ import annotations

from refine_rft.errors import ConfigError
from refine_rft.prompts import question_text

# The chat template's role markers and the image's start and end markers, generously.
TEMPLATE_TOKENS = 32


def context_length(model_path: str) -> int | None:
    """The most tokens the model at ``model_path`` takes (its text model's ``max_position_embeddings``),
    ``None`` when its configuration does not say."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    text_config = config.get_text_config()
    return text_config.to_dict().get("max_position_embeddings")


def prompt_token_cap(context: int | None, answer_tokens: int,
                     max_prompt_tokens: int | None = None) -> int | None:
    """The most tokens a prompt may have: the model's ``context`` (:func:`context_length`) less
    ``answer_tokens``, and at most ``max_prompt_tokens`` when it is given; ``None`` when neither is known.

    >>> prompt_token_cap(4096, 1024), prompt_token_cap(4096, 1024, 2000), prompt_token_cap(None, 8)
    (3072, 2000, None)
    """
    if max_prompt_tokens is not None and (isinstance(max_prompt_tokens, bool)
                                          or not isinstance(max_prompt_tokens, int) or max_prompt_tokens < 1):
        raise ConfigError(f"max_prompt_tokens must be a positive integer, got {max_prompt_tokens!r}")
    room = None if context is None else context - answer_tokens
    caps = [c for c in (max_prompt_tokens, room) if c is not None]
    return min(caps) if caps else None


def prompt_problem(tokenizer, record: dict, style: str, cap: int | None, image_tokens: int = 0) -> str | None:
    """Why ``record``'s prompt in ``style`` is too long for ``cap`` tokens, or ``None``."""
    if cap is None:
        return None
    text = question_text(record["noun"], record["options"], style)
    tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"]) + image_tokens + TEMPLATE_TOKENS
    if tokens <= cap:
        return None
    return (f"prompt of about {tokens:,} tokens ({style} style) is longer than the {cap:,} this run allows "
            f"(the model's context less the answer's tokens, or --max-prompt-tokens / max_prompt_tokens); "
            f"its option names hold {sum(map(len, record['options'])):,} characters")
