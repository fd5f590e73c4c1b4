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

Two open-world styles ask a question without options (:func:`open_question`: "What species is
this bird?") and read a class name, not a letter (:mod:`refine_rft.openworld`):

- ``open``:     the bare question, answered with the category's name (as Fine-R1's open-world
  questions and the ReFine-RFT authors' open-set prompt ask it); prose around the one name is
  allowed, a second name or a hedge is not;
- ``open_cot``: the ``cot`` format, with the category name alone in ``<answer>``.

Changing any string here changes every reported number: ``tests/test_prompts.py`` snapshots them,
so a change must be a visible, deliberate diff.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from refine_rft.dataset_specs import DATASETS
from refine_rft.errors import ConfigError
from refine_rft.parsing import LETTERS, answer_block, both_choice, cot_choice, extract_choice

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
    open_world: bool = False  # no options shown; the answer is a class name (refine_rft.openworld)
    answer: Callable[[str | None], str | None] = lambda response: response  # the part read as the answer


def _open_choice(answer: Callable[[str | None], str | None]):
    def parse(text: str | None, options: Sequence[str]) -> int | None:
        """The option that an open answer names in full (the options as the whole vocabulary)."""
        from refine_rft.openworld import ClassVocabulary

        named = ClassVocabulary.build(options).named(answer(text))
        return None if named is None else list(options).index(named)
    return parse


PROMPT_STYLES: dict[str, PromptStyle] = {style.name: style for style in (
    PromptStyle("choice", "Answer with the letter from the given choices directly.", 8,
                extract_choice, "CH."),
    PromptStyle("both", "Answer the correct choice and its category name.", 48, both_choice, "Both"),
    PromptStyle("cot", (
        "First think about the visual details in the image and compare them with the choices "
        "inside <think> </think>. Then list the discriminative attributes that identify the "
        "category inside <attribute> </attribute>. Finally give the letter and the category "
        "name of the correct choice inside <answer> </answer>."
    ), 512, cot_choice, "CoT"),
    PromptStyle("open", "", 32, _open_choice(lambda r: r), "Open", open_world=True),
    PromptStyle("open_cot", (
        "First think about the visual details in the image inside <think> </think>. Then list the "
        "discriminative attributes that identify the category inside <attribute> </attribute>. "
        "Finally give only the category name inside <answer> </answer>."
    ), 512, _open_choice(answer_block), "Open CoT", open_world=True, answer=answer_block),
)}
CLOSED_STYLES = tuple(name for name, style in PROMPT_STYLES.items() if not style.open_world)
OPEN_STYLES = tuple(name for name, style in PROMPT_STYLES.items() if style.open_world)
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
    >>> print(question_text("aircrafts", ["A300", "A310"], "open"))
    What model is this aircraft?
    """
    chosen = prompt_style(style)
    if chosen.open_world:
        return "\n".join(filter(None, [open_question(noun), chosen.instruction]))
    return QUESTION_TEMPLATE.format(noun=noun, choices=format_choices(options)) + chosen.instruction


def open_question(noun: str) -> str:
    """The open-world question for a question noun (no options). It asks for the word a user would,
    the ``kind`` of the benchmark whose noun it is (the species of a bird, the breed of a dog, the
    model of a car: :mod:`refine_rft.dataset_specs`), else "what kind of".

    >>> open_question("birds"), open_question("dogs"), open_question("objects")
    ('What species is this bird?', 'What breed is this dog?', 'What kind of object is this?')
    """
    one = singular(noun)
    kind = next((spec.kind for spec in DATASETS.values() if singular(spec.noun) == one), None)
    return f"What {kind} is this {one}?" if kind else f"What kind of {one} is this?"


def singular(noun: str) -> str:
    """The singular of a question noun (``birds`` -> ``bird``; FOCI's ``aircrafts`` -> ``aircraft``).

    >>> singular("birds"), singular("aircrafts"), singular("fish")
    ('bird', 'aircraft', 'fish')
    """
    return noun[:-1] if noun.endswith("s") and not noun.endswith("ss") else noun


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
