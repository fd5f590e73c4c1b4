"""Question records from a dataset (the library behind
``refine-rft prepare``; the command is :mod:`refine_rft.data.cli`, the paper's setup
:mod:`refine_rft.data.paper`).

:func:`prepare_dataset` reads one split of a dataset in its official layout (``cub``, ``aircraft``,
``cars``, ``dogs``, ``flowers``, ``pets``) or of custom data (``folder``, ``csv``): with a published
choice file every entry becomes one question with exactly its options, otherwise each image gets
distractors. Images are checked (opened and verified with PIL unless ``verify_images=False``);
nothing is written.
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
from refine_rft.dataset_specs import noun_of
from refine_rft.errors import ConfigError
from refine_rft.parsing import normalize_name


def dataset_class_list(dataset: str, root: str | Path, split: str, pretty: bool = False,
                       aliases: dict[str, list[str]] | None = None, classes: Sequence[str] | None = None) -> dict:
    """The ``classes.json`` entry of ``dataset`` (:func:`~refine_rft.openworld.class_list`): every
    class of its ``split`` (or ``classes``, both sides of a base-to-new split) as its rows name them
    (``pretty``), with their aliases (default: the shipped table of ``dataset``)."""
    from refine_rft.data.aliases import shipped_aliases
    from refine_rft.data.readers import pretty_name
    from refine_rft.openworld import class_list

    names = list(classes) if classes is not None else read_split(dataset, root, split).classes
    table = shipped_aliases(dataset) if aliases is None else aliases
    shown = {(pretty_name(c) if pretty else c): table.get(normalize_name(c), []) for c in names}
    return class_list(shown, shown, source=f"refine-rft prepare {dataset} (split {split})")


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
    noun = noun or noun_of(dataset)
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
