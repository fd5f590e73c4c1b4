"""Question records from a dataset, and the synthetic set written to disk (the library behind
``refine-rft prepare``; the command is :mod:`refine_rft.data.cli`, the paper's setup
:mod:`refine_rft.data.paper`).

:func:`prepare_dataset` reads one split of a dataset in its official layout (``cub``, ``aircraft``,
``cars``, ``dogs``, ``flowers``, ``pets``) or of custom data (``folder``, ``csv``): with a published
choice file every entry becomes one question with exactly its options, otherwise each image gets
distractors. Images are checked (opened and verified with PIL unless ``verify_images=False``);
nothing is written. :func:`prepare_synthetic` draws the embedded synthetic birds and writes each
split atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from refine_rft.data.choices import match_choices, read_choices
from refine_rft.data.distractors import choose_distractors
from refine_rft.data.fewshot import sample_shots
from refine_rft.data.questions import check_images, questions_from_choices, questions_with_distractors
from refine_rft.data.readers import read_split
from refine_rft.data.records import NOUNS
from refine_rft.data.synthetic import synthetic_base_to_new, synthetic_questions
from refine_rft.errors import ConfigError
from refine_rft.files import write_jsonl_atomic
from refine_rft.parsing import normalize_name


def prepare_synthetic(
    out_dir: str | Path,
    num_classes: int = 24,
    shots: int = 5,
    test_per_class: int = 10,
    pool_per_class: int = 0,
    image_size: int = 112,
    seed: int = 0,
    image_seed: int | None = None,
    base_to_new: bool = False,
) -> dict[str, Path]:
    """Draw the synthetic splits into ``out_dir`` and return ``{split: jsonl path}``.

    ``train`` has ``shots`` images per class (the k-shot training set), ``test`` has
    ``test_per_class``, and ``pool`` (only when ``pool_per_class > 0``) is a larger set for
    pre-training. All splits share one species set (fixed by ``num_classes``); their images are
    drawn with RNGs keyed by split, so no two splits share an image. Images go to
    ``out_dir/images/<split>/``. ``seed`` fixes the option sets and orders, ``image_seed``
    (default: ``seed``) the images: another image seed gives other images of the same questions.

    >>> import tempfile
    >>> paths = prepare_synthetic(tempfile.mkdtemp(), num_classes=4, shots=1, test_per_class=1)
    >>> sorted(paths)
    ['test', 'train']

    ``base_to_new`` splits the species in seen and unseen halves (seeded by ``seed``;
    :mod:`refine_rft.data.base_to_new`): ``train`` (and ``pool``) from seen species only,
    ``test_seen`` and ``test_unseen``, and ``split.json``.
    """
    sizes = {"train": shots, "test": test_per_class, "pool": pool_per_class}
    for name, count in sizes.items():
        if count < 0:
            raise ConfigError(f"{name} images per class must be >= 0, got {count}")
    if shots < 1 or test_per_class < 1:
        raise ConfigError(f"shots and test_per_class must be >= 1, got {shots} and {test_per_class}")
    out_dir = Path(out_dir)
    common = {"num_classes": num_classes, "image_size": image_size, "seed": seed, "image_seed": image_seed}
    if base_to_new:
        return synthetic_base_to_new(out_dir, sizes, common)
    paths = {}
    for split, per_class in sizes.items():
        if per_class == 0:
            continue
        rows = synthetic_questions(out_dir, split, per_class, **common)
        paths[split] = write_jsonl_atomic(out_dir / f"{split}.jsonl", rows)
    return paths


def prepare_dataset(
    dataset: str,
    root: str | Path,
    split: str,
    choices: str | Path | None = None,
    shots: int | None = None,
    seed: int = 0,
    distractors: str = "similar",
    pretty: bool = False,
    verify_images: bool = True,
    noun: str | None = None,
    name: str | None = None,
    clip_options: dict | None = None,
    classes: Sequence[str] | None = None,
    aliases: dict[str, list[str]] | None = None,
) -> list[dict]:
    """Question records for one split of ``dataset`` read from ``root`` (nothing is written).

    With ``choices`` (a published choice file): one question per entry, with exactly its options.
    Otherwise one question per image (``shots`` per class when given), with 3 distractors from
    the ``distractors`` strategy. ``name`` and ``noun`` set the record fields for custom data
    (defaults: the reader's name and the dataset's noun, or "objects").

    ``classes`` (one side of a base-to-new split) keeps only questions about those classes, and
    without a choice file draws their distractors from those classes only. Each row gets its
    label's ``aliases`` from ``aliases`` (default: the shipped table of ``dataset``).
    """
    from refine_rft.data.aliases import attach_aliases, shipped_aliases

    labelled = read_split(dataset, root, split)
    kept = None if classes is None else {normalize_name(c) for c in classes}
    if kept is not None and choices is None:
        labelled = replace(labelled, examples=[e for e in labelled.examples if normalize_name(e.label) in kept],
                           classes=[c for c in labelled.classes if normalize_name(c) in kept])
    name = name or dataset
    noun = noun or NOUNS.get(dataset, "objects")
    if choices is not None:
        if shots is not None:
            raise ConfigError("--shots and --choices exclude each other: a choice file fixes its questions")
        matched = match_choices(read_choices(choices), labelled, choices)
        rows = questions_from_choices(matched, name, split, noun, seed, pretty, labelled.class_attributes)
        if kept is not None:
            rows = [r for r in rows if normalize_name(r["label"]) in kept]
    else:
        examples = sample_shots(labelled, shots, seed) if shots is not None else labelled.examples
        picked = choose_distractors(distractors, examples, labelled.classes, seed, dataset=name,
                                    **(clip_options or {}))
        rows = questions_with_distractors(examples, picked, name, split, noun, seed, pretty,
                                          labelled.class_attributes)
    check_images([r["image"] for r in rows], verify_images, desc=f"verify {name} {split} images")
    return attach_aliases(rows, shipped_aliases(dataset) if aliases is None else aliases)
