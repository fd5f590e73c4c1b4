"""CUB-200-2011's 312 binary attributes, grouped into readable ``{attribute: value}`` dicts.

The 312 attributes are ``has_<group>::<value>`` pairs (``has_wing_color::black``) in 28 groups.
An image's dict holds, per group, the values its annotator marked present with certainty
"probably" or "definitely" (certainty ids 3 and 4; "guessing" claims are too noisy to judge
against), joined with " and " when several are present (``"wing_color": "black and white"``).
A class's dict holds, per group, the value most often present among its images according to
``class_attribute_labels_continuous.txt``; these serve as ``option_attributes``.

The attribute names file ``attributes.txt`` ships beside the ``CUB_200_2011`` folder in the
official archive; it is also looked for inside the folder and inside ``attributes/``.
"""

from __future__ import annotations

from pathlib import Path

from refine_rft.data.readers.base import require
from refine_rft.errors import DataError, MissingFile

CONFIDENT = {"3", "4"}  # certainty ids: 1 not visible, 2 guessing, 3 probably, 4 definitely


def split_attribute_name(name: str) -> tuple[str, str]:
    """``has_bill_shape::curved_(up_or_down)`` -> ``('bill_shape', 'curved (up or down)')``.

    >>> split_attribute_name("has_wing_color::black")
    ('wing_color', 'black')
    """
    group, _, value = name.partition("::")
    group = group.removeprefix("has_")
    return group, value.replace("_", " ")


def _attribute_names(base: Path) -> dict[str, tuple[str, str]]:
    candidates = [base.parent / "attributes.txt", base / "attributes.txt", base / "attributes" / "attributes.txt"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise MissingFile("cub: the attributes/ folder is present but attributes.txt (the 312 attribute "
                                f"names) is not; looked for {', '.join(map(str, candidates))}")
    names = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            attribute_id, _, name = line.strip().partition(" ")
            if "::" not in name:
                raise DataError(f"cub: {path}:{number}: expected '<id> has_<group>::<value>', got {line!r}")
            names[attribute_id] = split_attribute_name(name)
    return names


def _join(values: dict[str, list[str]]) -> dict[str, str]:
    return {group: " and ".join(found) for group, found in values.items()}


def read_cub_attributes(base: Path, image_ids: set[str]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per-image attribute dicts for ``image_ids`` and per-class dicts keyed by CUB class id."""
    names = _attribute_names(base)
    labels_path = require(base / "attributes" / "image_attribute_labels.txt", "cub")
    per_image: dict[str, dict[str, list[str]]] = {i: {} for i in image_ids}
    with labels_path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            # <image_id> <attribute_id> <is_present> <certainty_id> <time>; some official lines
            # carry an extra field, so only the first four are read.
            fields = line.split()
            if len(fields) < 4:
                if fields:
                    raise DataError(f"cub: {labels_path}:{number}: expected at least 4 fields, got {line!r}")
                continue
            image_id, attribute_id, present, certainty = fields[:4]
            if present != "1" or certainty not in CONFIDENT or image_id not in per_image:
                continue
            if attribute_id not in names:
                raise DataError(f"cub: {labels_path}:{number}: unknown attribute id {attribute_id}")
            group, value = names[attribute_id]
            per_image[image_id].setdefault(group, []).append(value)

    per_class: dict[str, dict[str, str]] = {}
    class_path = base / "attributes" / "class_attribute_labels_continuous.txt"
    if class_path.is_file():
        order = list(names)  # rows have one percentage per attribute, in attribute id order
        rows = [line.split() for line in class_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for class_number, row in enumerate(rows, 1):
            if len(row) != len(order):
                raise DataError(f"cub: {class_path}:{class_number}: expected {len(order)} percentages, got {len(row)}")
            best: dict[str, tuple[float, str]] = {}
            for attribute_id, share in zip(order, map(float, row)):
                group, value = names[attribute_id]
                if share > 0 and share > best.get(group, (0.0, ""))[0]:
                    best[group] = (share, value)
            per_class[str(class_number)] = {group: value for group, (_, value) in best.items()}
    return {i: _join(v) for i, v in per_image.items()}, per_class
