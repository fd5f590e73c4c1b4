"""Readers for custom data: one folder per class, or a CSV of ``path,label`` rows."""

from __future__ import annotations

import csv
from pathlib import Path

from refine_rft.data.readers.base import Example, LabelledSplit, require
from refine_rft.errors import DataError, MissingFile

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_folder(root: Path, split: str) -> LabelledSplit:
    """``root/<split>/<class>/<image>`` when ``root/<split>`` exists, else ``root/<class>/<image>``.

    Class names are the folder names, in sorted order; keys are ``<class>/<stem>``.
    """
    base = root / split if (root / split).is_dir() else root
    if not base.is_dir():
        raise MissingFile(f"folder: no such folder {base}")
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir())
    if not class_dirs:
        raise DataError(f"folder: {base} has no class folders (expected {base}/<class>/<image>)")
    examples = [
        Example(f"{d.name}/{image.stem}", image.resolve(), d.name)
        for d in class_dirs
        for image in sorted(d.iterdir())
        if image.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not examples:
        raise DataError(f"folder: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {base}")
    return LabelledSplit("folder", split, examples, [d.name for d in class_dirs])


def read_csv(root: Path, split: str) -> LabelledSplit:
    """A CSV file with a header and columns ``path,label`` (paths relative to the CSV's folder).

    ``root`` is the CSV file itself, or a folder holding ``<split>.csv``. Classes are listed in
    order of first appearance; keys are the paths without their suffix.
    """
    path = root if root.is_file() else root / f"{split}.csv"
    require(path, "csv")
    examples, classes = [], {}
    with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM (Excel writes one) is accepted
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DataError(f"csv: {path} needs a header with columns 'path' and 'label', got {reader.fieldnames}")
        for number, row in enumerate(reader, 2):
            image, label = (row["path"] or "").strip(), (row["label"] or "").strip()
            if not image or not label:
                raise DataError(f"csv: {path}:{number}: empty 'path' or 'label'")
            classes.setdefault(label, None)
            key = str(Path(image).with_suffix(""))
            examples.append(Example(key, (path.parent / image).resolve(), label))
    if not examples:
        raise DataError(f"csv: {path} has no rows")
    return LabelledSplit("csv", split, examples, list(classes))
