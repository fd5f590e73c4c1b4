"""The k-shot training sets: k images per class from a dataset's ``train`` split, seeded.

``train`` is every official non-test image (each spec's ``train_split``,
:mod:`refine_rft.dataset_specs`): CUB train (5,994), Aircraft trainval (6,667), Cars train (8,144),
Dogs train (12,000), Flowers trnid+valid (2,040), Pets trainval (3,680). With k=5 the paper's setup has
(200 + 100 + 196 + 120 + 102 + 37) classes x 5 = 755 x 5 = 3,775 questions.
"""

from __future__ import annotations

from collections import defaultdict

from refine_rft.data.readers import Example, LabelledSplit
from refine_rft.data.records import seeded_rng
from refine_rft.dataset_specs import DATASETS, dataset_spec
from refine_rft.errors import DataError


def fewshot_size(shots: int, datasets=None) -> int:
    """How many questions a k-shot set over ``datasets`` (default: every benchmark) has: ``shots``
    per class, from each spec's class count.

    >>> fewshot_size(5), fewshot_size(5, ["pets"])
    (3775, 185)
    """
    return shots * sum(dataset_spec(d).classes for d in (DATASETS if datasets is None else datasets))


def sample_shots(split: LabelledSplit, shots: int, seed: int = 0) -> list[Example]:
    """``shots`` examples of every class of ``split``, in class order.

    Each class draws with its own RNG keyed by ``(seed, dataset, class)``, from its examples
    sorted by key, so a class's shots do not change when other classes or files are added.
    A class with fewer than ``shots`` images is an error naming it.
    """
    if shots < 1:
        raise DataError(f"shots must be >= 1, got {shots}")
    by_class: dict[str, list[Example]] = defaultdict(list)
    for example in split.examples:
        by_class[example.label].append(example)
    short = [f"{c} ({len(by_class[c])})" for c in split.classes if len(by_class[c]) < shots]
    if short:
        raise DataError(f"{split.dataset}/{split.split}: {len(short)} class(es) have fewer than {shots} images: "
                         f"{', '.join(short[:5])}")
    chosen = []
    for label in split.classes:
        pool = sorted(by_class[label], key=lambda e: e.key)
        rng = seeded_rng(seed, f"{split.dataset}/shots/{label}")
        chosen.extend(sorted(rng.sample(pool, shots), key=lambda e: e.key))
    return chosen
