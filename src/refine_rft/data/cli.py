"""``refine-rft prepare``: write question JSONL files from a dataset or the paper's setup.

- ``refine-rft prepare DATASET --root DIR --split {train,test} --out FILE`` reads one split of a
  dataset in its official layout (``cub``, ``aircraft``, ``cars``, ``dogs``, ``flowers``, ``pets``)
  or of custom data (``folder``, ``csv``). With ``--choices FILE`` every entry of a published choice
  file becomes one question with exactly its options; otherwise each image gets distractors from
  ``--distractors``. ``--shots K`` keeps K seeded images per class.
- ``refine-rft prepare paper --roots DIR --choices-dir DIR --out DIR`` builds the paper's setup:
  the six published test sets and the 5-shot training set (3,775 questions).

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
from refine_rft.files import write_jsonl_atomic


def summary_line(name: str, rows: list[dict], path: Path) -> str:
    """One line per written file: question and class counts, letter balance, path."""
    shares = " ".join(f"{k}={v:.0%}" for k, v in letter_shares(rows).items())
    classes = len({r["label"] for r in rows})
    return f"{name}: {len(rows)} questions, {classes} classes, answers {shares} -> {path}"


def _clip_options(args: argparse.Namespace) -> dict:
    return {"model_name": args.clip_model, "pretrained": args.clip_pretrained, "device": args.device}


def _dataset_main(args: argparse.Namespace) -> int:
    rows = prepare_dataset(args.dataset, args.root, args.split, choices=args.choices, shots=args.shots,
                           seed=args.seed, distractors=args.distractors, pretty=args.pretty_names,
                           verify_images=not args.no_verify_images, noun=args.noun, name=args.name,
                           clip_options=_clip_options(args))
    path = write_jsonl_atomic(args.out, rows)
    print(summary_line(f"{args.name or args.dataset} {args.split}", rows, path))
    return 0


def _paper_main(args: argparse.Namespace) -> int:
    paths = prepare_paper(args.roots, args.choices_dir, args.out, shots=args.shots, seed=args.seed,
                          distractors=args.distractors, pretty=args.pretty_names,
                          verify_images=not args.no_verify_images, clip_options=_clip_options(args))
    print(paths["summary"].read_text(encoding="utf-8"), end="")
    print(f"written to {Path(args.out)}: " + ", ".join(f"{name}.jsonl" for name in paths if name != "summary"))
    return 0


def _common(parser: argparse.ArgumentParser, shots_default: int | None) -> None:
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
