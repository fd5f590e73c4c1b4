"""What the pipeline knows about each named benchmark, in one entry per benchmark.

A :class:`DatasetSpec` holds every fact a stage needs: ``prepare`` reads the images with its reader
and finds its official layout, the question uses its noun, the k-shot arithmetic its class count,
the paper's test set its published choice file, open-world questions ask for its kind, the
similarity score compares with its domain word, and the report shows its display name. Data
without a spec (``folder``, ``csv``) works with defaults ("objects", "What kind of object is this?",
the domain word ``object``, its key as the name).

Adding a benchmark is one entry in :data:`DATASETS` plus its reader (see ``docs/data.md``); every
consumer looks the entry up when it runs, so a spec added in-process is seen everywhere. The
reader is named by import path (``module:function``, a function ``(root: Path, split: str) ->
LabelledSplit``) and loaded by :func:`refine_rft.data.readers.read_split` when it reads.

>>> DATASETS["cub"].noun, DATASETS["cub"].classes, DATASETS["cub"].choices
('birds', 200, 'bird-200.json')
>>> sum(spec.classes for spec in DATASETS.values()) * 5  # the paper's 5-shot training set
3775
"""

from __future__ import annotations

from dataclasses import dataclass

from refine_rft.errors import ConfigError


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark's facts.

    Args:
        key: the name in commands and rows (``refine-rft prepare cub``, ``"dataset": "cub"``).
        name: the display name of the report's tables and plots (``CUB-200``).
        reader: import path of the reader, ``module:function`` taking ``(root, split)``.
        folder: the folder the dataset unpacks to (its official layout), looked for under ``--roots``.
        classes: how many classes it has (the k-shot set has ``k * classes`` questions).
        noun: the noun of its question, as FOCI and Finedefics word it, plural ("Which of these
            aircrafts is shown in the image?": kept so that the questions match theirs token for token).
        kind: what the open-world question asks for ("What species is this bird?").
        choices: the file its published multiple-choice test set is distributed as.
        train_split: the official images its ``train`` split (the k-shot pool) is made of.
        domain: the domain word of its open-world similarity score (``std = cos(E(domain), E(label))``
            under the corrected protocol, :mod:`refine_rft.evaluate.similarity`: "bird", "dog"; the
            fine-r1 protocol reproduces Fine-R1's own words instead).
    """

    key: str
    name: str
    reader: str
    folder: str
    classes: int
    noun: str
    kind: str
    choices: str
    train_split: str
    domain: str


_OFFICIAL = "refine_rft.data.readers.official"

# The paper's six benchmarks, in its tables' order.
DATASETS: dict[str, DatasetSpec] = {spec.key: spec for spec in (
    DatasetSpec("cub", "CUB-200", f"{_OFFICIAL}:read_cub", "CUB_200_2011", 200, "birds", "species",
                "bird-200.json", "train (5,994 images)", "bird"),
    DatasetSpec("aircraft", "FGVC-Aircraft", f"{_OFFICIAL}:read_aircraft", "fgvc-aircraft-2013b", 100, "aircrafts",
                "model", "aircraft-102.json", "trainval (6,667 images)", "aircraft"),
    DatasetSpec("cars", "Stanford Cars", f"{_OFFICIAL}:read_cars", "stanford_cars", 196, "cars", "model",
                "car-196.json", "train (8,144 images)", "car"),
    DatasetSpec("dogs", "Stanford Dogs", f"{_OFFICIAL}:read_dogs", "stanford_dogs", 120, "dogs", "breed",
                "dog-120.json", "train (12,000 images)", "dog"),
    DatasetSpec("flowers", "Flowers-102", f"{_OFFICIAL}:read_flowers", "flowers-102", 102, "flowers", "species",
                "flower-102.json", "trnid + valid (2,040 images)", "flower"),
    DatasetSpec("pets", "Oxford Pets", f"{_OFFICIAL}:read_pets", "oxford-iiit-pet", 37, "pets", "breed",
                "pet-37.json", "trainval (3,680 images)", "pet"),
)}
DEFAULT_NOUN = "objects"  # the question noun of data without a spec


def dataset_spec(key: str) -> DatasetSpec:
    """The spec of benchmark ``key``; an unknown key fails, listing the known ones.

    >>> dataset_spec("aircraft").folder
    'fgvc-aircraft-2013b'
    """
    if key not in DATASETS:
        raise ConfigError(f"unknown benchmark {key!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def official() -> tuple[str, ...]:
    """The keys of every benchmark with a spec, in order.

    >>> official()
    ('cub', 'aircraft', 'cars', 'dogs', 'flowers', 'pets')
    """
    return tuple(DATASETS)


def noun_of(dataset: str | None, default: str = DEFAULT_NOUN) -> str:
    """The question noun of ``dataset``, ``default`` for data without a spec.

    >>> noun_of("aircraft"), noun_of("my_fungi")
    ('aircrafts', 'objects')
    """
    spec = DATASETS.get(dataset or "")
    return spec.noun if spec else default


def display_name(dataset: str) -> str:
    """How the report names ``dataset``: its spec's name, else the key itself.

    >>> display_name("cub"), display_name("my_fungi")
    ('CUB-200', 'my_fungi')
    """
    spec = DATASETS.get(dataset)
    return spec.name if spec else dataset
