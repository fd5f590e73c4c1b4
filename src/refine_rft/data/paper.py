"""The paper's data in one go: the six published test sets and the k-shot training set.

``DIR/test/<dataset>.jsonl`` (35,566 questions with the published choice files),
``DIR/train.jsonl`` (5 shots x 755 classes = 3,775 questions), ``DIR/summary.md`` and
``classes.json`` (every class of each dataset, :mod:`refine_rft.openworld`) beside each question file.
"""

from __future__ import annotations

from pathlib import Path

from refine_rft.data.prepare import dataset_class_list, prepare_dataset
from refine_rft.dataset_specs import dataset_spec, official
from refine_rft.errors import MissingFile
from refine_rft.files import write_jsonl_atomic, write_text_atomic
from refine_rft.openworld import write_class_lists
from refine_rft.prompts import LETTERS


def letter_shares(rows: list[dict]) -> dict[str, float]:
    """The share of questions whose correct answer is each letter.

    >>> letter_shares([{"answer": 0, "options": list("abcd")}, {"answer": 2, "options": list("abcd")}])
    {'A': 0.5, 'B': 0.0, 'C': 0.5, 'D': 0.0}
    """
    width = max((len(r["options"]) for r in rows), default=4)
    counts = [0] * width
    for row in rows:
        counts[row["answer"]] += 1
    return {LETTERS[i]: counts[i] / max(len(rows), 1) for i in range(width)}


def summary_table(tests: dict[str, list[dict]], train: dict[str, list[dict]]) -> str:
    """A Markdown table: per dataset, test and train questions and classes and the test letter balance."""
    lines = ["| dataset | test questions | test classes | test answers A / B / C / D | train questions | train classes |",
             "| --- | ---: | ---: | --- | ---: | ---: |"]
    for dataset in tests:
        test_rows, train_rows = tests[dataset], train.get(dataset, [])
        shares = " / ".join(f"{v:.1%}" for v in letter_shares(test_rows).values())
        lines.append(f"| {dataset} | {len(test_rows):,} | {len({r['label'] for r in test_rows})} | {shares} "
                     f"| {len(train_rows):,} | {len({r['label'] for r in train_rows})} |")
    all_test = [r for rows in tests.values() for r in rows]
    all_train = [r for rows in train.values() for r in rows]
    shares = " / ".join(f"{v:.1%}" for v in letter_shares(all_test).values())
    lines.append(f"| **all** | {len(all_test):,} | {len({(r['dataset'], r['label']) for r in all_test})} | {shares} "
                 f"| {len(all_train):,} | {len({(r['dataset'], r['label']) for r in all_train})} |")
    return "\n".join(lines)


def _write_classes(out_dir: Path, folders: list[str], lists: dict[str, dict]) -> Path:
    """``classes.json`` (every class of each dataset, both sides of a split) beside every question file."""
    for folder in folders:
        write_class_lists(out_dir / folder, lists)
    return write_class_lists(out_dir, lists)


def prepare_paper(roots: str | Path, choices_dir: str | Path, out_dir: str | Path, shots: int = 5, seed: int = 0,
                  distractors: str = "similar", pretty: bool = False, verify_images: bool = True,
                  datasets: tuple[str, ...] | None = None, clip_options: dict | None = None,
                  base_to_new: bool = False) -> dict[str, Path]:
    """Build and write the test sets and the k-shot training set; return ``{name: path}``.

    ``roots`` holds each dataset under its distributed folder name (``CUB_200_2011``,
    ``fgvc-aircraft-2013b``, ``stanford_cars``, ``stanford_dogs``, ``flowers-102``,
    ``oxford-iiit-pet``); ``choices_dir`` holds the published choice files (``bird-200.json``, ...).
    Everything is built before anything is written, so a failure writes nothing.

    ``datasets``: the benchmarks to build (default: every one with a spec, :mod:`refine_rft.dataset_specs`).
    ``base_to_new``: Fine-R1's seen/unseen classes (:mod:`refine_rft.data.base_to_new`); the
    training set from seen classes only, ``test_seen/<dataset>.jsonl`` and
    ``test_unseen/<dataset>.jsonl``, and ``split.json``.
    """
    datasets = official() if datasets is None else tuple(datasets)
    if base_to_new:
        return _paper_base_to_new(Path(roots), Path(choices_dir), Path(out_dir), shots, seed, distractors, pretty,
                                  verify_images, datasets, clip_options)
    from tqdm.auto import tqdm

    roots, choices_dir, out_dir = Path(roots), Path(choices_dir), Path(out_dir)
    missing = [str(choices_dir / dataset_spec(d).choices) for d in datasets if not (choices_dir / dataset_spec(d).choices).is_file()]
    if missing:
        raise MissingFile(f"missing published choice file(s): {', '.join(missing)}")
    tests, train = {}, {}
    steps = tqdm([(d, s) for d in datasets for s in ("test", "train")], desc="prepare paper", unit="split")
    for dataset, split in steps:
        steps.set_postfix_str(f"{dataset} {split}")
        if split == "test":
            tests[dataset] = prepare_dataset(dataset, roots, "test", choices=choices_dir / dataset_spec(dataset).choices,
                                             seed=seed, pretty=pretty, verify_images=verify_images)
        else:
            train[dataset] = prepare_dataset(dataset, roots, "train", shots=shots, seed=seed, distractors=distractors,
                                             pretty=pretty, verify_images=verify_images, clip_options=clip_options)
    lists = {d: dataset_class_list(d, roots, "test", pretty) for d in datasets}
    paths = {f"test/{d}": write_jsonl_atomic(out_dir / "test" / f"{d}.jsonl", rows) for d, rows in tests.items()}
    paths["train"] = write_jsonl_atomic(out_dir / "train.jsonl", [r for rows in train.values() for r in rows])
    paths["classes"] = _write_classes(out_dir, ["test"], lists)
    paths["summary"] = write_text_atomic(out_dir / "summary.md", summary_table(tests, train) + "\n")
    return paths


def _paper_base_to_new(roots: Path, choices_dir: Path, out_dir: Path, shots: int, seed: int, distractors: str,
                       pretty: bool, verify_images: bool, datasets: tuple[str, ...],
                       clip_options: dict | None) -> dict[str, Path]:
    from refine_rft.data.base_to_new import check_disjoint, class_split, mark, write_split_file
    from refine_rft.data.readers import read_split

    missing = [str(choices_dir / dataset_spec(d).choices) for d in datasets if not (choices_dir / dataset_spec(d).choices).is_file()]
    if missing:
        raise MissingFile(f"missing published choice file(s): {', '.join(missing)}")
    splits, tests, train = [], {"test_seen": {}, "test_unseen": {}}, {}
    for dataset in datasets:
        split = class_split(dataset, read_split(dataset, roots, "train").classes, seed)
        splits.append(split)
        for side, classes in (("seen", split.seen), ("unseen", split.unseen)):
            rows = prepare_dataset(dataset, roots, "test", choices=choices_dir / dataset_spec(dataset).choices, seed=seed,
                                   pretty=pretty, verify_images=verify_images, classes=classes)
            tests[f"test_{side}"][dataset] = [dict(r, class_split=side) for r in rows]
        train[dataset] = mark(prepare_dataset(dataset, roots, "train", shots=shots, seed=seed, distractors=distractors,
                                              pretty=pretty, verify_images=verify_images, clip_options=clip_options,
                                              classes=split.seen), split)
        check_disjoint(train[dataset], tests["test_unseen"][dataset])
    lists = {s.dataset: dataset_class_list(s.dataset, roots, "test", pretty, classes=[*s.seen, *s.unseen])
             for s in splits}
    paths = {f"{side}/{d}": write_jsonl_atomic(out_dir / side / f"{d}.jsonl", rows)
             for side, by_dataset in tests.items() for d, rows in by_dataset.items()}
    paths["train"] = write_jsonl_atomic(out_dir / "train.jsonl", [r for rows in train.values() for r in rows])
    paths["classes"] = _write_classes(out_dir, list(tests), lists)
    paths["split"] = write_split_file(out_dir, splits)
    summary = "\n\n".join(f"{side}\n\n{summary_table(tests[side], train)}" for side in tests)
    paths["summary"] = write_text_atomic(out_dir / "summary.md", summary + "\n")
    return paths
