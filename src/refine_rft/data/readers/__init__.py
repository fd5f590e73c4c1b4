"""Readers for the FGVR benchmarks as their authors distribute them, and for custom data.

Every reader takes the dataset's folder and a split name and returns a :class:`LabelledSplit`:
the split's images with their class names, plus the dataset's full class list (in the official
order). Class names are the strings the published choice files use (see ``official.py``). A
benchmark's reader is named by its :class:`~refine_rft.dataset_specs.DatasetSpec`; custom data is
read by :data:`GENERIC_READERS`.

>>> reader_names()
('cub', 'aircraft', 'cars', 'dogs', 'flowers', 'pets', 'folder', 'csv')
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

from refine_rft.data.readers.base import Example, LabelledSplit, pretty_name
from refine_rft.data.readers.generic import read_csv, read_folder
from refine_rft.dataset_specs import DATASETS
from refine_rft.errors import ConfigError

Reader = Callable[[Path, str], LabelledSplit]
GENERIC_READERS: dict[str, Reader] = {"folder": read_folder, "csv": read_csv}


def reader_names() -> tuple[str, ...]:
    """Every name ``read_split`` takes: the benchmarks with a spec, then the custom-data readers."""
    return (*DATASETS, *GENERIC_READERS)


def reader_of(dataset: str) -> Reader:
    """The reader of ``dataset``: its spec's (loaded from its import path) or a custom-data reader;
    an unknown name fails, listing the valid ones.

    >>> reader_of("cub").__name__, reader_of("csv").__name__
    ('read_cub', 'read_csv')
    """
    if dataset in GENERIC_READERS:
        return GENERIC_READERS[dataset]
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(reader_names())}")
    module, _, name = DATASETS[dataset].reader.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"dataset {dataset!r}: cannot load its reader {DATASETS[dataset].reader!r} "
                          f"({error})") from None


def read_split(dataset: str, root: str | Path, split: str) -> LabelledSplit:
    """Read ``split`` of ``dataset`` from ``root``; unknown dataset names list the valid ones.

    ``root`` is made absolute first, so every image path is absolute: a question file then means
    the same pictures wherever it is written and from whatever folder it is read (a relative
    ``image`` in a JSONL is read relative to the JSONL's folder, not to where ``prepare`` ran).
    """
    return reader_of(dataset)(Path(os.path.abspath(root)), split)


__all__ = ["Example", "GENERIC_READERS", "LabelledSplit", "pretty_name", "read_split", "reader_names", "reader_of"]
