"""``refine-rft prepare``: write question JSONL files from a dataset or the paper's setup.

- ``refine-rft prepare DATASET --root DIR --split {train,test} --out FILE`` reads one split of a
  dataset in its official layout (``cub``, ``aircraft``, ``cars``, ``dogs``, ``flowers``, ``pets``)
  or of custom data (``folder``, ``csv``). With ``--choices FILE`` every entry of a published choice
  file becomes one question with exactly its options; otherwise each image gets distractors from
  ``--distractors``. ``--shots K`` keeps K seeded images per class.
- ``refine-rft prepare paper --roots DIR --choices-dir DIR --out DIR`` builds the paper's setup:
  the six published test sets and the 5-shot training set (3,775 questions).

``--base-to-new`` (every form) splits the classes into seen and unseen (Fine-R1's split for the six
benchmarks, a seeded half split otherwise): training questions from seen classes only, one test
set per side, and ``split.json`` (see :mod:`refine_rft.data.base_to_new`).

Every form records each dataset's full class list (both sides of a split) and their aliases in
``classes.json`` beside the question files: open-world answers are read against all of them
(:mod:`refine_rft.openworld`).

Images are checked (opened and verified with PIL unless ``--no-verify-images``), and every file
is written atomically, only after all of a run's questions are built: a failed run leaves no
partial JSONL behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from refine_rft.data.choices import PUBLISHED_FILES
from refine_rft.data.distractors import FOCI_CLIP_MODEL, FOCI_CLIP_PRETRAINED, STRATEGIES
from refine_rft.data.paper import letter_shares, prepare_paper
from refine_rft.data.prepare import prepare_dataset
from refine_rft.data.readers import FOLDER_NAMES, READERS
from refine_rft.files import refuse_output_over_input, write_jsonl_atomic


def summary_line(name: str, rows: list[dict], path: Path) -> str:
    """One line per written file: question and class counts, letter balance, path."""
    shares = " ".join(f"{k}={v:.0%}" for k, v in letter_shares(rows).items())
    classes = len({r["label"] for r in rows})
    return f"{name}: {len(rows)} questions, {classes} classes, answers {shares} -> {path}"


def _clip_options(args: argparse.Namespace) -> dict:
    return {"model_name": args.clip_model, "pretrained": args.clip_pretrained, "device": args.device}


def _dataset_main(args: argparse.Namespace) -> int:
    if args.base_to_new:
        return _dataset_base_to_new(args)
    rows = prepare_dataset(args.dataset, args.root, args.split, choices=args.choices, shots=args.shots,
                           seed=args.seed, distractors=args.distractors, pretty=args.pretty_names,
                           verify_images=not args.no_verify_images, noun=args.noun, name=args.name,
                           clip_options=_clip_options(args))
    path = write_jsonl_atomic(args.out, rows)
    print(summary_line(f"{args.name or args.dataset} {args.split}", rows, path))
    _write_classes(args, path.parent, None)
    return 0


def _write_classes(args: argparse.Namespace, folder: Path, classes) -> None:
    """Every class of the dataset (both sides of a split) and their aliases, in ``folder/classes.json``."""
    from refine_rft.data.prepare import dataset_class_list
    from refine_rft.openworld import write_class_lists

    entry = dataset_class_list(args.dataset, args.root, args.split, args.pretty_names, classes=classes)
    path = write_class_lists(folder, {args.name or args.dataset: entry})
    print(f"classes: {len(entry['classes'])} ({len(entry['aliases'])} with aliases) -> {path}")


def _dataset_base_to_new(args: argparse.Namespace) -> int:
    """One split of one dataset under a base-to-new split: ``--split train`` writes the seen classes'
    questions to ``--out``; ``--split test`` writes ``<out>_seen.jsonl`` and ``<out>_unseen.jsonl``."""
    from refine_rft.data.base_to_new import class_split, mark, write_split_file
    from refine_rft.data.readers import read_split

    name = args.name or args.dataset
    split = class_split(name, read_split(args.dataset, args.root, "train").classes, args.seed)
    out = Path(args.out)
    sides = [("seen", split.seen, out)] if args.split == "train" else [
        (side, classes, out.with_name(f"{out.stem}_{side}{out.suffix or '.jsonl'}"))
        for side, classes in (("seen", split.seen), ("unseen", split.unseen))]
    for side, classes, path in sides:
        rows = prepare_dataset(args.dataset, args.root, args.split, choices=args.choices, shots=args.shots,
                               seed=args.seed, distractors=args.distractors, pretty=args.pretty_names,
                               verify_images=not args.no_verify_images, noun=args.noun, name=args.name,
                               clip_options=_clip_options(args), classes=classes)
        path = write_jsonl_atomic(path, mark(rows, split))
        print(summary_line(f"{name} {args.split} ({side} classes)", rows, path))
    print(f"split: {len(split.seen)} seen, {len(split.unseen)} unseen classes ({split.source}) -> "
          f"{write_split_file(out.parent, [split])}")
    _write_classes(args, out.parent, [*split.seen, *split.unseen])
    return 0


def _paper_main(args: argparse.Namespace) -> int:
    paths = prepare_paper(args.roots, args.choices_dir, args.out, shots=args.shots, seed=args.seed,
                          distractors=args.distractors, pretty=args.pretty_names,
                          verify_images=not args.no_verify_images, clip_options=_clip_options(args),
                          base_to_new=args.base_to_new)
    print(paths["summary"].read_text(encoding="utf-8"), end="")
    print(f"written to {Path(args.out)}: " + ", ".join(path.name if name in ("split", "summary", "classes") else f"{name}.jsonl"
                                                      for name, path in paths.items() if name != "summary"))
    return 0


def _base_to_new(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-to-new", action="store_true",
                        help="split the classes into seen and unseen (Fine-R1's split where published, else a "
                             "half split seeded by --seed): train from seen classes only, test sets per side")


def _common(parser: argparse.ArgumentParser, shots_default: int | None) -> None:
    _base_to_new(parser)
    parser.add_argument("--shots", type=int, default=shots_default,
                        help=f"training images per class, seeded (default: {shots_default or 'all images'})")
    parser.add_argument("--seed", type=int, default=0, help="shot, distractor and option-order seed (default: 0)")
    parser.add_argument("--distractors", choices=STRATEGIES, default="similar",
                        help="distractors for questions without a choice file (default: %(default)s)")
    parser.add_argument("--pretty-names", action="store_true",
                        help="show class names with spaces instead of underscores (Black footed Albatross)")
    parser.add_argument("--no-verify-images", action="store_true",
                        help="only check that image files exist; do not open and verify them")
    parser.add_argument("--clip-model", default=FOCI_CLIP_MODEL,
                        help="open_clip model for --distractors clip (default: FOCI's, %(default)s)")
    parser.add_argument("--clip-pretrained", default=FOCI_CLIP_PRETRAINED,
                        help="open_clip weights tag or checkpoint file for --distractors clip (default: FOCI's, "
                             "%(default)s)")
    parser.add_argument("--device", default="cpu", help="device for --distractors clip (default: cpu)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")

    for dataset in READERS:
        layout = f"its official layout ({FOLDER_NAMES[dataset]})" if dataset in FOLDER_NAMES else "custom data"
        sub = commands.add_parser(dataset, help=f"one split of {dataset}, from {layout}")
        sub.add_argument("--root", required=True,
                         help="the dataset's folder (or its parent); for csv the CSV file or a folder of <split>.csv")
        sub.add_argument("--split", choices=("train", "test"), required=True, help="which split to read")
        sub.add_argument("--choices", help="a published choice file: one question per entry, with its options")
        sub.add_argument("--out", required=True, help="the JSONL file to write")
        sub.add_argument("--noun", help="the noun in the question (default: the dataset's, else 'objects')")
        sub.add_argument("--name", help="the records' dataset field (default: the DATASET name)")
        _common(sub, shots_default=None)
        sub.set_defaults(run=_dataset_main)

    paper = commands.add_parser("paper", help="the six published test sets and the 5-shot train set (3,775)")
    paper.add_argument("--roots", required=True, help="folder holding the six datasets under their distributed names")
    paper.add_argument("--choices-dir", required=True,
                       help=f"folder holding the published choice files ({', '.join(PUBLISHED_FILES.values())})")
    paper.add_argument("--out", required=True, help="output folder: test/<dataset>.jsonl, train.jsonl, summary.md")
    _common(paper, shots_default=5)
    paper.set_defaults(run=_paper_main)

    return parser


def refuse_overwriting_data(args: argparse.Namespace) -> None:
    """The outputs of ``prepare`` kept off what it reads (:func:`~refine_rft.files.refuse_output_over_input`):
    ``--out`` (and, with ``--base-to-new``, the files beside it) is neither an input file nor inside the
    dataset folder or the choice folder."""
    out = Path(args.out)
    if args.dataset == "paper":
        inputs = [("--roots", args.roots), ("--choices-dir", args.choices_dir)]
        outputs = [("--out", out)]
    else:
        # --root may be the folder holding the dataset's own (as distributed): that one is what is read.
        root = Path(args.root)
        if args.dataset in FOLDER_NAMES and (root / FOLDER_NAMES[args.dataset]).is_dir():
            root = root / FOLDER_NAMES[args.dataset]
        inputs = [("--root", root), ("--choices", args.choices)]
        outputs = [("--out", out), *(("the output", out.with_name(f"{out.stem}_{side}{out.suffix or '.jsonl'}"))
                                     for side in ("seen", "unseen") if args.base_to_new)]
    refuse_output_over_input(inputs, outputs)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    refuse_overwriting_data(args)
    return args.run(args)
