"""Prepared question records -> the datasets TRL's trainers consume.

GRPO rows are ``{"prompt": [user turn], "image": <image>, ...record fields}``: TRL inserts the
image into the conversational prompt itself (``prepare_multimodal_messages`` puts an image block
before the text of the first user turn, which is where :func:`refine_rft.prompts.question_messages`
puts it too), and passes every other column (``options``, ``answer``, ``id``, ``attributes``,
``option_attributes``, ...) to the reward functions as keyword lists.

The user turn's content is stored as a plain string rather than as ``[{"type": "image"}, {"type":
"text", ...}]`` because Arrow stores a list of dicts with one shared schema: the image block would
gain a ``"text": None`` key. The rendered prompt is the same either way.

SFT rows are ``{"messages": [user turn, assistant turn], "image": <image>, "id": ...}`` with the
assistant turn ``"B. Laysan_Albatross"`` (:func:`refine_rft.prompts.answer_text`).

Images stay file paths in the records and are opened lazily by :func:`to_dataset`.
"""

from __future__ import annotations

import os
from pathlib import Path

from refine_rft.data.records import TEXT_COLUMNS
from refine_rft.errors import ConfigError
from refine_rft.prompts import PROMPT_STYLES, STYLES, answer_text, question_text


def load_records(path: str | os.PathLike, max_samples: int | None = None, max_pixels: int | None = None,
                 prompt_check=None) -> list[dict]:
    """The questions a run trains on, every one checked before the first step: read under
    :func:`~refine_rft.data.records.read_rows`' rule (relative image paths are relative to the
    JSONL's folder; empty files and duplicate ids fail), each image decoded once (bounded by
    ``max_pixels``, :mod:`refine_rft.data.images`), and each prompt checked by ``prompt_check(record)``
    (a reason or ``None``). Any unusable row fails the run with a :class:`~refine_rft.errors.DataError`
    naming the ids (the first ten, then how many more), since training on a silently smaller set
    would change the experiment."""
    from refine_rft.data.records import (question_key, read_rows, reject_bad_images, require_all,
                                         validate_record)

    rowset = read_rows([path], validate_record)
    if max_samples is not None:
        rowset.rows = rowset.rows[:max_samples]
    for record in list(rowset.rows) if prompt_check is not None else []:
        if (problem := prompt_check(record)) is not None:
            rowset.reject(record, question_key(record), problem)
    return require_all(reject_bad_images(rowset, decode=True, max_pixels=max_pixels))


def grpo_rows(records: list[dict], style: str = "cot") -> list[dict]:
    """One GRPO row per record (see the module docstring).

    >>> rows = grpo_rows([{"id": "q1", "dataset": "cub", "image": "a.png", "label": "y", "options": ["x", "y"],
    ...                    "answer": 1, "noun": "birds"}], style="choice")
    >>> rows[0]["prompt"][0]["content"].splitlines()[0], rows[0]["answer"], rows[0]["image"]
    ('Which of these birds is shown in the image?', 1, 'a.png')
    """
    _check_style(style)
    rows = []
    for record in records:
        row = {"prompt": [{"role": "user", "content": question_text(record["noun"], record["options"], style)}],
               "image": record["image"]}
        row.update({key: record[key] for key in TEXT_COLUMNS if key in record})
        rows.append(row)
    return rows


def reference_cot_response(record: dict) -> str:
    """A reference response in the ReFine-RFT format, from a record's ground-truth ``attributes``:
    every attribute in ``<think>``, those that set the true option apart from the others (per
    ``option_attributes``; all of them when absent) in ``<attribute>``, the answer in ``<answer>``.

    >>> print(reference_cot_response({"options": ["x", "y"], "answer": 1, "attributes": {"crest": "crested", "tail_shape": "fan"},
    ...                   "option_attributes": [{"crest": "no crest", "tail_shape": "fan"},
    ...                                         {"crest": "crested", "tail_shape": "fan"}]}))
    <think>The image shows: crested, fan tail.</think><attribute>crested</attribute><answer>B. y</answer>
    """
    from refine_rft.judge.attributes import attribute_phrase

    attributes = record.get("attributes")
    if not attributes:
        raise ConfigError(f"question {record.get('id')}: sft_target 'cot' needs ground-truth 'attributes' "
                         "in its row")
    others = [a for i, a in enumerate(record.get("option_attributes") or []) if i != record["answer"]]
    telling = [k for k, v in attributes.items() if not others or any(o.get(k) != v for o in others)] or list(attributes)
    seen = ", ".join(attribute_phrase(k, v) for k, v in attributes.items())
    key = ", ".join(attribute_phrase(k, attributes[k]) for k in telling)
    answer = answer_text(record["options"], record["answer"])
    return f"<think>The image shows: {seen}.</think><attribute>{key}</attribute><answer>{answer}</answer>"


def sft_rows(records: list[dict], style: str = "both", target: str = "answer") -> list[dict]:
    """One SFT conversation per record: the question, then the answer ``"B. <name>"`` (``target=
    "answer"``, the SFT baseline) or a full ReFine-RFT response from the record's ground-truth
    attributes (``target="cot"``, :func:`reference_cot_response`: a format warm-up for data with attributes).

    >>> rows = sft_rows([{"id": "q1", "dataset": "cub", "image": "a.png", "label": "y", "options": ["x", "y"],
    ...                   "answer": 1, "noun": "birds"}])
    >>> rows[0]["messages"][1]
    {'role': 'assistant', 'content': 'B. y'}
    >>> sft_rows([{"id": "q1", "image": "a.png", "label": "y", "options": ["x", "y"], "answer": 1,
    ...            "noun": "birds"}], style="open")[0]["messages"]
    [{'role': 'user', 'content': 'What species is this bird?'}, {'role': 'assistant', 'content': 'y'}]
    """
    _check_style(style)
    return [
        {
            "messages": [
                {"role": "user", "content": question_text(record["noun"], record["options"], style)},
                {"role": "assistant", "content": _sft_target(record, target, style)},
            ],
            "image": record["image"],
            "id": record["id"],
        }
        for record in records
    ]


def _sft_target(record: dict, target: str, style: str = "both") -> str:
    if target == "answer":
        # An open-world question shows no letters: its answer is the class name alone.
        return record["label"] if PROMPT_STYLES[style].open_world else answer_text(record["options"], record["answer"])
    if target == "cot":
        return reference_cot_response(record)
    raise ConfigError(f"unknown sft_target {target!r}; valid: answer, cot")


def to_dataset(rows: list[dict], resolution=None):
    """A ``datasets.Dataset`` whose ``image`` column holds file paths, opened on access by the one
    image-opening function of every stage (:func:`~refine_rft.data.images.open_image`: EXIF
    orientation, 16-bit, alpha and CMYK handled as evaluation and the judge handle them) and resized
    to ``resolution``'s grid (an :class:`~refine_rft.resolution.ImageResolution`) when it is
    set: then the trainer's processor and TRL's vLLM engine see the same image and count the same tokens."""
    from datasets import Dataset

    from refine_rft.data.images import open_image

    max_pixels = resolution.max_pixels if resolution is not None else None
    fit = resolution.fit if resolution is not None and resolution.is_set else (lambda image: image)

    def open_images(batch: dict) -> dict:
        return {**batch, "image": [fit(open_image(path, max_pixels)) for path in batch["image"]]}

    return Dataset.from_list(rows).with_transform(open_images)


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ConfigError(f"unknown prompt_style {style!r}; valid styles: {', '.join(STYLES)}")


def load_training_inputs(script_args, training_args, model_args, answer_tokens: int = 0):
    """The processor, the training records and the image resolution a run uses:
    ``(processor, records, resolution)``. A question whose prompt, with ``answer_tokens`` for the
    answer, does not fit the model's context or ``max_prompt_tokens`` fails the run before it starts.
    """
    from refine_rft.data.prompt_length import context_length, prompt_problem, prompt_token_cap
    from refine_rft.resolution import ImageResolution
    from refine_rft.train.model import load_processor, model_path

    resolution = ImageResolution(script_args.min_pixels, script_args.max_pixels)
    processor = load_processor(model_args, training_args, resolution)
    resolution = resolution.for_processor(processor)
    context = context_length(model_path(model_args))
    cap = prompt_token_cap(context, answer_tokens, script_args.max_prompt_tokens)
    image_tokens = resolution.max_tokens() if resolution.is_set else 0

    def prompt_check(record: dict) -> str | None:
        return prompt_problem(processor.tokenizer, record, script_args.prompt_style, cap, image_tokens)

    records = load_records(script_args.train_file, script_args.max_train_samples, resolution.max_pixels,
                           prompt_check)
    return processor, records, resolution
