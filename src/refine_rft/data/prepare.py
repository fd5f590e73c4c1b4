"""``refine-rft prepare``: write question JSONL files from the synthetic set or a dataset.

``refine-rft prepare synthetic --out DIR`` draws the embedded synthetic birds into ``DIR`` and
writes ``train.jsonl`` (k shots per class), ``test.jsonl`` and, on request, ``pool.jsonl`` (a larger
set for pre-training a tiny instruct model). Every file is written atomically: a failed run
leaves no partial JSONL behind.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from refine_rft.data.records import write_jsonl_atomic
from refine_rft.data.synthetic import synthetic_questions

LETTERS = "ABCDEFGHIJ"


def prepare_synthetic(
    out_dir: str | Path,
    num_classes: int = 24,
    shots: int = 5,
    test_per_class: int = 10,
    pool_per_class: int = 0,
    image_size: int = 112,
    seed: int = 0,
) -> dict[str, Path]:
    """Draw the synthetic splits into ``out_dir`` and return ``{split: jsonl path}``.

    ``train`` has ``shots`` images per class (the k-shot training set), ``test`` has
    ``test_per_class``, and ``pool`` (only when ``pool_per_class > 0``) is a larger set for
    pre-training. All splits share one species set (fixed by ``num_classes``); their images are
    drawn with RNGs keyed by split, so no two splits share an image. Images go to
    ``out_dir/images/<split>/``.

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
                                   image_size=image_size, seed=seed)
        paths[split] = write_jsonl_atomic(out_dir / f"{split}.jsonl", rows)
    return paths


def letter_shares(rows: list[dict]) -> dict[str, float]:
    """The share of questions whose correct answer is each letter.

    >>> letter_shares([{"answer": 0, "options": list("abcd")}, {"answer": 2, "options": list("abcd")}])
    {'A': 0.5, 'B': 0.0, 'C': 0.5, 'D': 0.0}
    """
    width = max((len(r["options"]) for r in rows), default=4)
    counts = Counter(r["answer"] for r in rows)
    return {LETTERS[i]: counts[i] / max(len(rows), 1) for i in range(width)}


def summary_line(name: str, rows: list[dict], path: Path) -> str:
    """One line per written split: question and class counts, letter balance, file."""
    shares = " ".join(f"{k}={v:.0%}" for k, v in letter_shares(rows).items())
    classes = len({r["label"] for r in rows})
    return f"{name}: {len(rows)} questions, {classes} classes, answers {shares} -> {path}"


def _synthetic_main(args: argparse.Namespace) -> int:
    from refine_rft.data.records import read_jsonl

    paths = prepare_synthetic(args.out, num_classes=args.classes, shots=args.shots,
                              test_per_class=args.test_per_class, pool_per_class=args.pool_per_class,
                              image_size=args.image_size, seed=args.seed)
    for split, path in paths.items():
        print(summary_line(split, read_jsonl(path), path))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")

    synthetic = commands.add_parser("synthetic", help="draw the embedded synthetic birds")
    synthetic.add_argument("--out", required=True, help="folder for the JSONL files and images/")
    synthetic.add_argument("--classes", type=int, default=24, help="number of species (default: %(default)s)")
    synthetic.add_argument("--shots", type=int, default=5, help="training images per class (default: %(default)s)")
    synthetic.add_argument("--test-per-class", type=int, default=10, help="test images per class (default: %(default)s)")
    synthetic.add_argument("--pool-per-class", type=int, default=0,
                           help="images per class in pool.jsonl, a pre-training pool; 0 = none (default: %(default)s)")
    synthetic.add_argument("--image-size", type=int, default=112, help="image side in pixels (default: %(default)s)")
    synthetic.add_argument("--seed", type=int, default=0, help="image and option-order seed (default: %(default)s)")
    synthetic.set_defaults(run=_synthetic_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        # Bad data or configuration: one clear line, no traceback, non-zero exit.
        print(f"refine-rft prepare: error: {error}", file=sys.stderr)
        return 1
