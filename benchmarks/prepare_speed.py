"""How fast the six published test sets are prepared from their official layouts.

Builds stand-in official layouts (empty image files, real index and .mat files) from the images
the six published choice files list, then times ``prepare_dataset(..., choices=...)`` for each
test set without decoding images (``verify_images=False`` still checks every file exists), and
prints question counts, the share of each correct letter and seconds. Goal: under 10 s for all
35,566 questions on a laptop-class CPU.

    python benchmarks/prepare_speed.py --choices-dir path/to/fgvr-choices [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from refine_rft.dataset_specs import DATASETS
from refine_rft_workshop.testing.fake_layouts import write_layout
from refine_rft.data.paper import letter_shares
from refine_rft.data.prepare import prepare_dataset


def build_layouts(choices_dir: Path, root: Path) -> None:
    """One official layout per dataset, holding exactly the test images its choice file lists."""
    for dataset, file_name in ((key, spec.choices) for key, spec in DATASETS.items()):
        content = json.loads((choices_dir / file_name).read_text(encoding="utf-8"))
        images = [(entry["image"], label) for label, entries in content.items() for entry in entries]
        # Dogs' class order is its wnid folder order; the others' official lists are stood in by the file's.
        classes = sorted(content) if dataset == "dogs" else list(content)
        write_layout(dataset, root, {"test": images}, classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--choices-dir", required=True, type=Path, help="folder with the six published choice files")
    parser.add_argument("--work", type=Path, help="where to build the layouts (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="prepare-speed-"))
    started = time.perf_counter()
    build_layouts(args.choices_dir, work)
    print(f"built six stand-in layouts in {time.perf_counter() - started:.1f} s under {work}\n")

    print(f"{'dataset':<10} {'questions':>9} {'classes':>7}   {'A':>6} {'B':>6} {'C':>6} {'D':>6}   {'seconds':>7}")
    total_rows, total_seconds = [], 0.0
    for dataset, file_name in ((key, spec.choices) for key, spec in DATASETS.items()):
        started = time.perf_counter()
        rows = prepare_dataset(dataset, work, "test", choices=args.choices_dir / file_name, seed=args.seed,
                               verify_images=False)
        seconds = time.perf_counter() - started
        total_rows += rows
        total_seconds += seconds
        shares = " ".join(f"{v:>6.2%}" for v in letter_shares(rows).values())
        print(f"{dataset:<10} {len(rows):>9,} {len({r['label'] for r in rows}):>7}   {shares}   {seconds:>7.2f}")
    shares = " ".join(f"{v:>6.2%}" for v in letter_shares(total_rows).values())
    print(f"{'all':<10} {len(total_rows):>9,} {len({(r['dataset'], r['label']) for r in total_rows}):>7}   "
          f"{shares}   {total_seconds:>7.2f}")


if __name__ == "__main__":
    main()
