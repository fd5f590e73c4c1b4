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

Images stay file paths in the records and are decoded lazily by ``datasets.Image``.
"""

from __future__ import annotations

import os
from pathlib import Path

from refine_rft.data.records import TEXT_COLUMNS
from refine_rft.errors import ConfigError
from refine_rft.prompts import STYLES, answer_text, question_text


def load_records(path: str | os.PathLike, max_samples: int | None = None) -> list[dict]:
    """The questions a run trains on, every one checked before the first step: read under
    :func:`~refine_rft.data.records.read_rows`' rule (relative image paths are relative to the
    JSONL's folder; empty files and duplicate ids fail), each image decoded once. Any unusable row
    fails the run with a :class:`~refine_rft.errors.DataError` naming the ids (the first ten, then
    how many more), since training on a silently smaller set would change the experiment."""
    from refine_rft.data.records import read_rows, reject_bad_images, require_all, validate_record

    rowset = read_rows([path], validate_record)
    if max_samples is not None:
        rowset.rows = rowset.rows[:max_samples]
    return require_all(reject_bad_images(rowset, decode=True))


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
    <think>The bird has crested, fan tail.</think><attribute>crested</attribute><answer>B. y</answer>
    """
    from refine_rft.data.synthetic import attribute_phrase

    attributes = record.get("attributes")
    if not attributes:
        raise ConfigError(f"question {record.get('id')}: sft_target 'cot' needs ground-truth 'attributes' "
                         "(the synthetic set has them)")
    others = [a for i, a in enumerate(record.get("option_attributes") or []) if i != record["answer"]]
    telling = [k for k, v in attributes.items() if not others or any(o.get(k) != v for o in others)] or list(attributes)
    seen = ", ".join(attribute_phrase(k, v) for k, v in attributes.items())
    key = ", ".join(attribute_phrase(k, attributes[k]) for k in telling)
    answer = answer_text(record["options"], record["answer"])
    return f"<think>The bird has {seen}.</think><attribute>{key}</attribute><answer>{answer}</answer>"


def sft_rows(records: list[dict], style: str = "both", target: str = "answer") -> list[dict]:
    """One SFT conversation per record: the question, then the answer ``"B. <name>"`` (``target=
    "answer"``, the SFT baseline) or a full ReFine-RFT response from the record's ground-truth
    attributes (``target="cot"``, :func:`reference_cot_response`: a format warm-up for the synthetic set).

    >>> rows = sft_rows([{"id": "q1", "dataset": "cub", "image": "a.png", "label": "y", "options": ["x", "y"],
    ...                   "answer": 1, "noun": "birds"}])
    >>> rows[0]["messages"][1]
    {'role': 'assistant', 'content': 'B. y'}
    """
    _check_style(style)
    return [
        {
            "messages": [
                {"role": "user", "content": question_text(record["noun"], record["options"], style)},
                {"role": "assistant", "content": _sft_target(record, target)},
            ],
            "image": record["image"],
            "id": record["id"],
        }
        for record in records
    ]


def _sft_target(record: dict, target: str) -> str:
    if target == "answer":
        return answer_text(record["options"], record["answer"])
    if target == "cot":
        return reference_cot_response(record)
    raise ConfigError(f"unknown sft_target {target!r}; valid: answer, cot")


def to_dataset(rows: list[dict], resolution=None):
    """A ``datasets.Dataset`` whose ``image`` column decodes files to PIL images on access, resized to
    ``resolution``'s grid (an :class:`~refine_rft.models.resolution.ImageResolution`) when it is set:
    then the trainer's processor and TRL's vLLM engine see the same image and count the same tokens."""
    from datasets import Dataset, Image

    dataset = Dataset.from_list(rows).cast_column("image", Image())
    if resolution is None or not resolution.is_set:
        return dataset

    def fit_images(batch: dict) -> dict:
        return {**batch, "image": [resolution.fit(image) for image in batch["image"]]}

    return dataset.with_transform(fit_images)


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ConfigError(f"unknown prompt_style {style!r}; valid styles: {', '.join(STYLES)}")


def synthetic_train_file(out_dir: str | os.PathLike, per_class: int, num_classes: int, image_size: int,
                         seed: int) -> Path:
    """Draw the synthetic training questions into ``out_dir`` once and return their JSONL path.

    An existing file is reused (a resumed run sees the same questions; the drawing is seeded anyway).
    """
    from refine_rft.data.synthetic import synthetic_questions
    from refine_rft.files import write_jsonl_atomic

    path = Path(out_dir) / "train.jsonl"
    if not path.is_file():
        rows = synthetic_questions(out_dir, "train", per_class=per_class, num_classes=num_classes,
                                   image_size=image_size, seed=seed)
        write_jsonl_atomic(path, rows)
    return path


def training_file(script_args, output_dir: str | os.PathLike) -> Path:
    """The JSONL a run trains on: ``script_args.train_file``, or the synthetic set drawn into
    ``<output_dir>/data`` when it is ``"synthetic"``. Under several processes call it inside
    ``training_args.main_process_first()`` so that only the first process draws."""
    if script_args.train_file != "synthetic":
        return Path(script_args.train_file)
    return synthetic_train_file(Path(output_dir) / "data", script_args.synthetic_per_class,
                                script_args.synthetic_num_classes, script_args.synthetic_image_size,
                                script_args.synthetic_seed)


def load_training_inputs(script_args, training_args, model_args):
    """The processor, the training records and the image resolution a run uses:
    ``(processor, records, resolution)``.

    On several processes the main one prepares the training file first (the others then read it).
    """
    from refine_rft.models.resolution import ImageResolution
    from refine_rft.train.model import load_processor

    resolution = ImageResolution(script_args.min_pixels, script_args.max_pixels)
    processor = load_processor(model_args, training_args, resolution)
    resolution = resolution.for_processor(processor)
    with training_args.main_process_first(desc="training questions"):
        train_file = training_file(script_args, training_args.output_dir)
    return processor, load_records(train_file, script_args.max_train_samples), resolution
