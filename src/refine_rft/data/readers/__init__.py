"""Readers for the six FGVR benchmarks as their authors distribute them, and for custom data.

Every reader takes the dataset's folder and a split name and returns a :class:`LabelledSplit`:
the split's images with their class names, plus the dataset's full class list (in the official
order). Class names are the strings the published choice files use (see ``official.py``).

>>> sorted(READERS)
['aircraft', 'cars', 'csv', 'cub', 'dogs', 'flowers', 'folder', 'pets']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from refine_rft.data.readers.base import Example, LabelledSplit, pretty_name
from refine_rft.data.readers.generic import read_csv, read_folder
from refine_rft.data.readers.official import (
    FOLDER_NAMES,
    read_aircraft,
    read_cars,
    read_cub,
    read_dogs,
    read_flowers,
    read_pets,
)
from refine_rft.errors import ConfigError

OFFICIAL = ("cub", "aircraft", "cars", "dogs", "flowers", "pets")

READERS: dict[str, Callable[[Path, str], LabelledSplit]] = {
    "cub": read_cub,
    "aircraft": read_aircraft,
    "cars": read_cars,
    "dogs": read_dogs,
    "flowers": read_flowers,
    "pets": read_pets,
    "folder": read_folder,
    "csv": read_csv,
}


def read_split(dataset: str, root: str | Path, split: str) -> LabelledSplit:
    """Read ``split`` of ``dataset`` from ``root``; unknown dataset names list the valid ones.

    ``root`` is made absolute first, so every image path is absolute: a question file then means
    the same pictures wherever it is written and from whatever folder it is read (a relative
    ``image`` in a JSONL is read relative to the JSONL's folder, not to where ``prepare`` ran).
    """
    if dataset not in READERS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(READERS)}")
    return READERS[dataset](Path(os.path.abspath(root)), split)


__all__ = ["Example", "FOLDER_NAMES", "LabelledSplit", "OFFICIAL", "READERS", "pretty_name", "read_split"]
