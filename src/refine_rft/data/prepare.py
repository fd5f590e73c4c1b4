"""``refine-rft prepare``: write question JSONL files from a dataset, the paper's setup, or the synthetic set.

- ``refine-rft prepare DATASET --root DIR --split {train,test} --out FILE`` reads one split of a
  dataset in its official layout (``cub``, ``aircraft``, ``cars``, ``dogs``, ``flowers``, ``pets``)
  or of custom data (``folder``, ``csv``). With ``--choices FILE`` every entry of a published choice
  file becomes one question with exactly its options; otherwise each image gets distractors from
  ``--distractors``. ``--shots K`` keeps K seeded images per class.
- ``refine-rft prepare paper --roots DIR --choices-dir DIR --out DIR`` builds the paper's setup:
  the six published test sets and the 5-shot training set (3,775 questions).
- ``refine-rft prepare synthetic --out DIR`` draws the embedded synthetic birds.

Images are checked (opened and verified with PIL unless ``--no-verify-images``), and every file
is written atomically, only after all of a run's questions are built: a failed run leaves no
partial JSONL behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from refine_rft.data.choices import PUBLISHED_FILES, match_choices, read_choices
from refine_rft.data.distractors import STRATEGIES, choose_distractors
from refine_rft.data.fewshot import sample_shots
from refine_rft.data.questions import check_images, questions_from_choices, questions_with_distractors
from refine_rft.data.paper import letter_shares
from refine_rft.data.readers import FOLDER_NAMES, READERS, read_split
from refine_rft.data.records import NOUNS, read_jsonl, write_jsonl_atomic
from refine_rft.data.synthetic import synthetic_questions

def prepare_synthetic(
    out_dir: str | Path,
    num_classes: int = 24,
    shots: int = 5,
    test_per_class: int = 10,
    pool_per_class: int = 0,
    image_size: int = 112,
    seed: int = 0,
    image_seed: int | None = None,
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
    """
    sizes = {"train": shots, "test": test_per_class, "pool": pool_per_class}
    for name, count in sizes.items():
        if count < 0:
            raise ValueError(f"{name} images per class must be >= 0, got {count}")
    if shots < 1 or test_per_class < 1:
        raise ValueError(f"shots and test_per_class must be >= 1, got {shots} and {test_per_class}")
    out_dir = Path(out_dir)
    paths = {}
    for split, per_class in sizes.items():
        if per_class == 0:
            continue
        rows = synthetic_questions(out_dir, split, per_class, num_classes=num_classes,
                                   image_size=image_size, seed=seed, image_seed=image_seed)
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
) -> list[dict]:
    """Question records for one split of ``dataset`` read from ``root`` (nothing is written).

    With ``choices`` (a published choice file): one question per entry, with exactly its options.
    Otherwise one question per image (``shots`` per class when given), with 3 distractors from
    the ``distractors`` strategy. ``name`` and ``noun`` set the record fields for custom data
    (defaults: the reader's name and the dataset's noun, or "objects").
    """
    labelled = read_split(dataset, root, split)
    name = name or dataset
    noun = noun or NOUNS.get(dataset, "objects")
    if choices is not None:
        if shots is not None:
            raise ValueError("--shots and --choices exclude each other: a choice file fixes its questions")
        matched = match_choices(read_choices(choices), labelled, choices)
        rows = questions_from_choices(matched, name, split, noun, seed, pretty, labelled.class_attributes)
    else:
        examples = sample_shots(labelled, shots, seed) if shots is not None else labelled.examples
        picked = choose_distractors(distractors, examples, labelled.classes, seed, dataset=name,
                                    **(clip_options or {}))
        rows = questions_with_distractors(examples, picked, name, split, noun, seed, pretty,
                                          labelled.class_attributes)
    check_images([r["image"] for r in rows], verify_images, desc=f"verify {name} {split} images")
    return rows


def summary_line(name: str, rows: list[dict], path: Path) -> str:
    """One line per written file: question and class counts, letter balance, path."""
    shares = " ".join(f"{k}={v:.0%}" for k, v in letter_shares(rows).items())
    classes = len({r["label"] for r in rows})
    return f"{name}: {len(rows)} questions, {classes} classes, answers {shares} -> {path}"


def _synthetic_main(args: argparse.Namespace) -> int:
    paths = prepare_synthetic(args.out, num_classes=args.classes, shots=args.shots,
                              test_per_class=args.test_per_class, pool_per_class=args.pool_per_class,
                              image_size=args.image_size, seed=args.seed, image_seed=args.image_seed)
    for split, path in paths.items():
        print(summary_line(split, read_jsonl(path), path))
    return 0


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
    from refine_rft.data.paper import prepare_paper

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
    parser.add_argument("--clip-model", default="ViT-L-14", help="open_clip model for --distractors clip")
    parser.add_argument("--clip-pretrained", default="openai",
                        help="open_clip weights tag or checkpoint file for --distractors clip (default: openai)")
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

    synthetic = commands.add_parser("synthetic", help="draw the embedded synthetic birds")
    synthetic.add_argument("--out", required=True, help="folder for the JSONL files and images/")
    synthetic.add_argument("--classes", type=int, default=24, help="number of species (default: %(default)s)")
    synthetic.add_argument("--shots", type=int, default=5, help="training images per class (default: %(default)s)")
    synthetic.add_argument("--test-per-class", type=int, default=10, help="test images per class (default: %(default)s)")
    synthetic.add_argument("--pool-per-class", type=int, default=0,
                           help="images per class in pool.jsonl, a pre-training pool; 0 = none (default: %(default)s)")
    synthetic.add_argument("--image-size", type=int, default=112, help="image side in pixels (default: %(default)s)")
    synthetic.add_argument("--seed", type=int, default=0, help="option-set and option-order seed (default: %(default)s)")
    synthetic.add_argument("--image-seed", type=int, default=None,
                           help="image seed (default: --seed); another value draws other images of the same "
                                "species, attributes and options")
    synthetic.set_defaults(run=_synthetic_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        # Bad data or configuration: one clear line, no traceback, non-zero exit.
        print(f"refine-rft prepare: error: {error}", file=sys.stderr)
        return 1
