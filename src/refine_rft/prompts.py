"""Question prompts in the FOCI multiple-choice format, under three answer styles.

The question text is the one FOCI / Finedefics use, so numbers are comparable with theirs::

    Which of these birds is shown in the image?
    Choices:
    A. Laysan_Albatross
    B. Sooty_Albatross
    ...

followed by one instruction line that sets the answer style (:data:`PROMPT_STYLES` holds each
style's instruction, evaluation token budget, answer rule and report label):

- ``choice``: the letter only (the paper's "Choice" / CH. protocol);
- ``both``:   the letter and the category name;
- ``cot``:    reasoning in ``<think>``, discriminative attributes in ``<attribute>``, the final
  letter and name in ``<answer>``, in that order (the ReFine-RFT training and CoT-evaluation prompt).

Changing any string here changes every reported number: ``tests/test_prompts.py`` snapshots them,
so a change must be a visible, deliberate diff.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from refine_rft.errors import ConfigError
from refine_rft.parsing import LETTERS, both_choice, cot_choice, extract_letter_answer

QUESTION_TEMPLATE = "Which of these {noun} is shown in the image?\nChoices:\n{choices}"


@dataclass(frozen=True)
class PromptStyle:
    """Everything a prompt style means, in one place: the instruction that ends the question, the
    greedy token budget at evaluation, the rule that reads the answer, and the report's label."""

    name: str
    instruction: str
    max_new_tokens: int  # a letter needs a few tokens, "B. <name>" a few dozen, reasoning hundreds
    parse: Callable[[str | None, Sequence[str]], int | None]  # the option an answer gives, None: unparseable
    label: str  # the column label of the paper's tables


PROMPT_STYLES: dict[str, PromptStyle] = {style.name: style for style in (
    PromptStyle("choice", "Answer with the letter from the given choices directly.", 8,
                extract_letter_answer, "CH."),
    PromptStyle("both", "Answer the correct choice and its category name.", 48, both_choice, "Both"),
    PromptStyle("cot", (
        "First think about the visual details in the image and compare them with the choices "
        "inside <think> </think>. Then list the discriminative attributes that identify the "
        "category inside <attribute> </attribute>. Finally give the letter and the category "
        "name of the correct choice inside <answer> </answer>."
    ), 512, cot_choice, "CoT"),
)}
STYLES = tuple(PROMPT_STYLES)
INSTRUCTIONS: dict[str, str] = {name: style.instruction for name, style in PROMPT_STYLES.items()}


def prompt_style(name: str) -> PromptStyle:
    """The style called ``name``; an unknown name fails, listing the valid ones.

    >>> prompt_style("choice").label, prompt_style("cot").max_new_tokens
    ('CH.', 512)
    """
    if name not in PROMPT_STYLES:
        raise ConfigError(f"unknown prompt style {name!r}; valid styles: {', '.join(STYLES)}")
    return PROMPT_STYLES[name]


def format_choices(options: Sequence[str], letters: str = LETTERS) -> str:
    """Render options as ``"A. x\\nB. y\\n..."`` (one per line, trailing newline).

    >>> format_choices(["Laysan_Albatross", "Sooty_Albatross"])
    'A. Laysan_Albatross\\nB. Sooty_Albatross\\n'
    """
    if len(options) > len(letters):
        raise ConfigError(f"{len(options)} options but only {len(letters)} letters ({letters!r})")
    return "".join(f"{letter}. {option}\n" for letter, option in zip(letters, options))


def question_text(noun: str, options: Sequence[str], style: str = "cot") -> str:
    """The full user text: question, choices and the instruction of ``style``.

    >>> print(question_text("birds", ["Laysan_Albatross", "Sooty_Albatross"], "choice"))
    Which of these birds is shown in the image?
    Choices:
    A. Laysan_Albatross
    B. Sooty_Albatross
    Answer with the letter from the given choices directly.
    """
    return QUESTION_TEMPLATE.format(noun=noun, choices=format_choices(options)) + prompt_style(style).instruction


def question_messages(noun: str, options: Sequence[str], style: str = "cot") -> list[dict]:
    """A one-turn conversation with the image first, as TRL and ``apply_chat_template`` expect.

    The image is a placeholder (``{"type": "image"}``); the pixels travel separately (TRL's
    ``image`` column, or ``images=`` of the processor). The image comes before the text, as in
    Qwen2-VL's own examples.

    >>> question_messages("birds", ["a", "b", "c", "d"], "choice")[0]["content"][0]
    {'type': 'image'}
    """
    return [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": question_text(noun, options, style)}],
        }
    ]


def answer_text(options: Sequence[str], answer: int, letters: str = LETTERS) -> str:
    """The canonical short answer ``"B. Laysan_Albatross"`` (the SFT target and Both reference).

    >>> answer_text(["x", "Laysan_Albatross"], 1)
    'B. Laysan_Albatross'
    """
    return f"{letters[answer]}. {options[answer]}"
