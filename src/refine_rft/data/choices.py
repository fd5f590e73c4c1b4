"""The published multiple-choice test sets (FOCI / Finedefics protocol) and matching them to images.

A choice file is one JSON object per dataset::

    {"Black_footed_Albatross": [{"image": "images/001.Black_footed_Albatross/....jpg",
                                 "options": ["Black_footed_Albatross", "Heermann_Gull", ...],
                                 "groundtruth": "Black_footed_Albatross"}, ...], ...}

Image paths are relative and do not always follow the official folder names (Cars and Flowers use
``images/...``), so entries are matched to the images of the official split by file name.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from refine_rft.data.readers import Example, LabelledSplit
from refine_rft.errors import DataError, MissingFile

SHOW_UNMATCHED = 5  # how many unmatched entries an error message lists


@dataclass(frozen=True)
class Choice:
    """One published question: the image's relative path, its options (true class first), the true class."""

    image: str
    options: tuple[str, ...]
    groundtruth: str


def read_choices(path: str | Path) -> list[Choice]:
    """Read and check a choice file; errors name the file, the class and the entry.

    >>> import json, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "c.json")
    >>> _ = Path(path).write_text(json.dumps({"a": [{"image": "x/1.jpg", "options": ["a", "b"], "groundtruth": "a"}]}))
    >>> read_choices(path)
    [Choice(image='x/1.jpg', options=('a', 'b'), groundtruth='a')]
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"no such choice file: {path}")
    try:
        content = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected an object {{class_name: [entries]}}, got {type(content).__name__}")
    choices = []
    for class_name, entries in content.items():
        if not isinstance(entries, list):
            raise DataError(f"{path}: class {class_name!r}: expected a list of entries")
        for number, entry in enumerate(entries):
            where = f"{path}: class {class_name!r} entry {number}"
            if not isinstance(entry, dict) or not {"image", "options", "groundtruth"} <= set(entry):
                raise DataError(f"{where}: needs the fields 'image', 'options' and 'groundtruth'")
            options = entry["options"]
            if not isinstance(options, list) or len(options) < 2 or len(set(options)) != len(options):
                raise DataError(f"{where}: 'options' must list at least 2 distinct class names, got {options!r}")
            if entry["groundtruth"] != class_name or class_name not in options:
                raise DataError(f"{where}: groundtruth {entry['groundtruth']!r} must be the class and one of the options")
            choices.append(Choice(str(entry["image"]), tuple(options), class_name))
    return choices


def _pick(candidates: list[Example], relative: str) -> Example | None:
    """Among images sharing a file name, the one whose path ends with most of ``relative``'s parts."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    parts = PurePosixPath(relative).parts

    def shared_tail(example: Example) -> int:
        mine = example.image.parts
        n = 0
        while n < min(len(parts), len(mine)) and parts[-1 - n] == mine[-1 - n]:
            n += 1
        return n

    ranked = sorted(candidates, key=shared_tail, reverse=True)
    return ranked[0] if shared_tail(ranked[0]) > shared_tail(ranked[1]) else None


def match_choices(choices: list[Choice], split: LabelledSplit, source: str | Path) -> list[tuple[Choice, Example]]:
    """Pair every choice with its image in ``split`` (by file name); fail listing what does not fit.

    Raises ``ValueError`` when entries match no image of the split, when an entry's groundtruth is
    not the class the dataset's own annotation gives that image, or when options name classes the
    dataset does not have.
    """
    by_name: dict[str, list[Example]] = defaultdict(list)
    for example in split.examples:
        by_name[example.image.name].append(example)
    known = set(split.classes)
    matched, unmatched, mislabelled, unknown = [], [], [], set()
    for choice in choices:
        example = _pick(by_name.get(PurePosixPath(choice.image).name, []), choice.image)
        if example is None:
            shared = len(by_name.get(PurePosixPath(choice.image).name, []))
            unmatched.append(choice.image + (f" (ambiguous: {shared} images have this name)" if shared else ""))
            continue
        if example.label != choice.groundtruth:
            mislabelled.append(f"{choice.image}: file says {choice.groundtruth!r}, dataset says {example.label!r}")
        unknown.update(o for o in choice.options if o not in known)
        matched.append((choice, example))
    where = f"{source} vs the {split.dataset} {split.split} split"
    if unmatched:
        raise DataError(f"{where}: {len(unmatched)} of {len(choices)} entries match no image by file name; "
                         f"first unmatched: {', '.join(unmatched[:SHOW_UNMATCHED])}")
    if mislabelled:
        raise DataError(f"{where}: {len(mislabelled)} entries disagree with the dataset's labels; first: "
                         + "; ".join(mislabelled[:SHOW_UNMATCHED]))
    if unknown:
        raise DataError(f"{where}: options name unknown class(es) {sorted(unknown)[:SHOW_UNMATCHED]}")
    return matched
