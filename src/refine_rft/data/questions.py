"""Question records from labelled images: with published options or with mined distractors.

Ids are ``<dataset>/<split>/<image key>`` (a second question on the same image gets ``#2``), and the
option order is :func:`refine_rft.data.records.shuffle_options` keyed by that id: the same seed
gives the same order on every machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from refine_rft.data.choices import Choice
from refine_rft.data.readers import Example, pretty_name
from refine_rft.data.records import make_record
from refine_rft.errors import DataError, MissingFile


def _unique_ids(dataset: str, split: str, examples: Iterable[Example]) -> list[str]:
    seen: Counter = Counter()
    ids = []
    for example in examples:
        seen[example.key] += 1
        suffix = f"#{seen[example.key]}" if seen[example.key] > 1 else ""
        ids.append(f"{dataset}/{split}/{example.key}{suffix}")
    return ids


def build_question(question_id: str, dataset: str, example: Example, options: Sequence[str], noun: str,
                   seed: int, pretty: bool = False, class_attributes: dict | None = None) -> dict:
    """One record; ``pretty`` shows ``pretty_name`` of every class; ``class_attributes`` (class name
    -> attribute dict) adds ``option_attributes`` aligned with the shuffled options."""
    record = make_record(question_id, dataset, str(example.image), example.label, options, noun,
                         seed=seed, attributes=example.attributes)
    if class_attributes:
        record["option_attributes"] = [dict(class_attributes.get(o, {})) for o in record["options"]]
    if pretty:
        shown = [pretty_name(o) for o in record["options"]]
        if len(set(shown)) != len(shown):
            raise DataError(f"question {question_id}: pretty names collide: {shown}")
        record["options"], record["label"] = shown, pretty_name(record["label"])
    return record


def questions_from_choices(matched: Sequence[tuple[Choice, Example]], dataset: str, split: str, noun: str,
                           seed: int = 0, pretty: bool = False, class_attributes: dict | None = None) -> list[dict]:
    """One question per published entry, with exactly its options (shuffled)."""
    ids = _unique_ids(dataset, split, (example for _, example in matched))
    return [build_question(qid, dataset, example, choice.options, noun, seed, pretty, class_attributes)
            for qid, (choice, example) in zip(ids, matched)]


def questions_with_distractors(examples: Sequence[Example], distractors: Sequence[Sequence[str]], dataset: str,
                               split: str, noun: str, seed: int = 0, pretty: bool = False,
                               class_attributes: dict | None = None) -> list[dict]:
    """One question per example: its class plus its distractors (shuffled)."""
    ids = _unique_ids(dataset, split, examples)
    return [build_question(qid, dataset, example, [example.label, *others], noun, seed, pretty, class_attributes)
            for qid, example, others in zip(ids, examples, distractors)]


def check_images(paths: Iterable[str | Path], verify: bool = True, desc: str = "verify images") -> int:
    """Fail on the first missing image; with ``verify``, open each with PIL and verify it.

    Returns how many distinct images were checked. ``verify`` reads each file's header and
    structure without decoding its pixels.
    """
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(str(p) for p in paths))
    for path in tqdm(unique, desc=desc, unit="img", disable=not verify, leave=False):
        if not verify:
            if not Path(path).is_file():
                raise MissingFile(f"missing image {path}")
            continue
        try:
            with Image.open(path) as image:
                image.verify()
        except FileNotFoundError:
            raise MissingFile(f"missing image {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise DataError(f"unreadable image {path} ({error})") from None
    return len(unique)
