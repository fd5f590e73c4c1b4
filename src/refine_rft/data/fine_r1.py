"""Fine-R1's released evaluation files as question rows (``refine-rft prepare fine-r1``).

Fine-R1 (github.com/PKU-ICST-MIPL/FineR1_ICLR2026, commit 84cdc5c) releases one JSONL per benchmark
and side, ``eval/data/<stem>_seen.jsonl`` and ``<stem>_unseen.jsonl`` with ``stem`` in ``aircraft``,
``bird``, ``car``, ``dog``, ``flower``, ``pet``; one line per question::

    {"image_path": "bird_200/images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
     "question": "Do you know what bird this is?",
     "options": ["Black Footed Albatross", "Heermann Gull", "Sooty Albatross", "Laysan Albatross"],
     "ground_truth": "Black Footed Albatross"}

The same files serve its closed world (the options shown) and its open world (the options not
shown). Image paths are relative to the user's image folder (its README asks users to edit them).

Each line becomes one question row of this project: ``dataset`` is the benchmark's name here
(``cub`` for ``bird``, ...), ``label`` Fine-R1's ground truth, ``options`` **in the released order**
(in every released file the true class is listed first: ``answer`` is 0 throughout), or, with a
``shuffle_seed``, re-shuffled per question with that seed; ``option_order`` records which
(``released`` or ``shuffled (seed N)``), ``class_split`` the side. Fine-R1's question wording is
kept in ``fine_r1_question``; prompts are this project's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from refine_rft.errors import MissingFile

SIDES = ("seen", "unseen")
# Fine-R1's released file stem per benchmark (eval/data/<stem>_seen.jsonl, <stem>_unseen.jsonl).
FILE_STEMS = {"aircraft": "aircraft", "cub": "bird", "cars": "car", "dogs": "dog", "flowers": "flower",
              "pets": "pet"}


def released_files(root: str | Path) -> dict[tuple[str, str], Path]:
    """``{(dataset, side): path}`` of the released files under ``root`` (the files' folder or a
    Fine-R1 checkout, whose ``eval/data`` holds them).

    Raises:
        MissingFile: none is there.
    """
    root = Path(root)
    folder = root / "eval" / "data" if (root / "eval" / "data").is_dir() else root
    found = {(dataset, side): folder / f"{stem}_{side}.jsonl" for dataset, stem in FILE_STEMS.items()
             for side in SIDES if (folder / f"{stem}_{side}.jsonl").is_file()}
    if not found:
        names = ", ".join(f"{stem}_seen.jsonl" for stem in FILE_STEMS.values())
        raise MissingFile(f"{folder}: none of Fine-R1's evaluation files ({names}, and _unseen)")
    return found


def read_released(path: Path, dataset: str, side: str, images: Path, shuffle_seed: int | None = None
                  ) -> tuple[list[dict], list[dict]]:
    """The question rows of one released file and the lines rejected (``rejection`` rows)."""
    from refine_rft.data.records import rejection, shuffle_options
    from refine_rft.dataset_specs import dataset_spec

    rows, rejects = [], []
    stem = path.stem
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        question_id = f"fine-r1/{stem}/{number:05d}"
        try:
            item = json.loads(line)
            problem = _problem(item)
        except ValueError as error:
            item, problem = None, f"not JSON ({error})"
        if problem is not None:
            rejects.append(rejection(question_id, path, number, problem))
            continue
        label, options = item["ground_truth"], list(item["options"])
        order = "released"
        answer = options.index(label)
        if shuffle_seed is not None:
            options, answer = shuffle_options(question_id, options, label, shuffle_seed)
            order = f"shuffled (seed {shuffle_seed})"
        image = Path(item["image_path"])
        rows.append({"id": question_id, "dataset": dataset, "image": str(image if image.is_absolute() else
                                                                            (images / image).absolute()),
                     "label": label, "options": options, "answer": answer, "noun": dataset_spec(dataset).noun,
                     "class_split": side, "option_order": order, "fine_r1_question": item.get("question", "")})
    return rows, rejects


def _problem(item) -> str | None:
    """Why a released line cannot be a question, else ``None``."""
    if not isinstance(item, dict):
        return "not a JSON object"
    for key in ("image_path", "ground_truth"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            return f"field {key!r} must be a non-empty string"
    options = item.get("options")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
        return "field 'options' must be a list of at least 2 non-empty strings"
    if len(set(options)) != len(options):
        return f"duplicate options {options}"
    if item["ground_truth"] not in options:
        return f"the ground truth {item['ground_truth']!r} is not among the options"
    return None


def prepare_fine_r1(root: str | Path, out_dir: str | Path, images: str | Path | None = None,
                    shuffle_seed: int | None = None, verify_images: bool = True) -> tuple[dict[str, Path], list[dict]]:
    """Write ``out_dir/test_seen/<dataset>.jsonl`` and ``test_unseen/<dataset>.jsonl`` from the released
    files under ``root`` (images under ``images``, default ``root``), ``classes.json`` beside them and
    ``split.json``; return ``{name: path}`` and the rejected lines. Nothing is written when no line is usable.
    """
    from refine_rft.data.aliases import attach_aliases, shipped_aliases
    from refine_rft.data.base_to_new import ClassSplit, write_split_file
    from refine_rft.data.questions import check_images
    from refine_rft.errors import DataError
    from refine_rft.files import write_jsonl_atomic
    from refine_rft.openworld import write_class_lists

    out_dir, images = Path(out_dir), Path(images if images is not None else root)
    built, rejects = {}, []
    for (dataset, side), path in released_files(root).items():
        rows, rejected = read_released(path, dataset, side, images, shuffle_seed)
        built[(dataset, side)] = attach_aliases(rows, shipped_aliases(dataset))
        rejects += rejected
    every = [row for rows in built.values() for row in rows]
    if not every:
        raise DataError(f"{root}: no usable question in Fine-R1's files ({len(rejects)} line(s) rejected)")
    check_images([r["image"] for r in every], verify_images, desc="verify Fine-R1 images")
    lists = class_lists(every)
    paths = {f"test_{side}/{dataset}": write_jsonl_atomic(out_dir / f"test_{side}" / f"{dataset}.jsonl", rows)
             for (dataset, side), rows in built.items() if rows}
    for side in SIDES:
        write_class_lists(out_dir / f"test_{side}", lists)
    paths["classes"] = write_class_lists(out_dir, lists)
    splits = [ClassSplit(d, tuple(sorted({r["label"] for r in built.get((d, "seen"), [])})),
                         tuple(sorted({r["label"] for r in built.get((d, "unseen"), [])})),
                         "Fine-R1's released evaluation files") for d in lists]
    paths["split"] = write_split_file(out_dir, splits)
    return paths, rejects


def class_lists(rows: Iterable[dict]) -> dict[str, dict]:
    """Every class each dataset's rows name (both sides), with the shipped aliases, as ``classes.json`` entries."""
    from refine_rft.data.aliases import shipped_aliases
    from refine_rft.openworld import class_list
    from refine_rft.parsing import normalize_name

    names: dict[str, dict[str, None]] = {}
    for row in rows:
        seen = names.setdefault(row["dataset"], {})
        seen[row["label"]] = None
        seen.update(dict.fromkeys(row["options"]))
    out = {}
    for dataset, classes in names.items():
        table = shipped_aliases(dataset)
        out[dataset] = class_list(classes, {c: table.get(normalize_name(c), []) for c in classes},
                                  source="Fine-R1's released evaluation files (both sides)")
    return out
