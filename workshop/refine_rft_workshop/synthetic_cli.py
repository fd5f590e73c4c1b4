"""``refine-rft-workshop synthetic --out DIR``: draw the synthetic birds into question JSONL files.

The files are ordinary prepared questions (``train.jsonl``, ``test.jsonl``, optionally ``pool.jsonl``,
images under ``images/``, every species and its aliases in ``classes.json``), read by ``refine-rft train``, ``eval`` and ``judge`` like any other data.

Like every command it resumes itself: a folder already drawn with the same settings (recorded in
``synthetic_settings.json``; ``classes.json`` is written last) is left as it is, one drawn with
other settings is refused, naming the change, and ``--overwrite`` draws it afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.data.cli import summary_line
from refine_rft.errors import ConfigError
from refine_rft.data.records import read_rows, require_all, validate_record
from refine_rft.files import guard_settings, output_lock, write_jsonl_atomic
from refine_rft.openworld import write_class_lists
from refine_rft_workshop.synthetic import synthetic_base_to_new, synthetic_class_list, synthetic_questions


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
    ``test_seen`` and ``test_unseen``, and ``split.json``. ``classes.json`` records every species
    (both sides) and its aliases, which open-world answers are read against.
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
        paths = synthetic_base_to_new(out_dir, sizes, common)
        write_class_lists(out_dir, {"synthetic": synthetic_class_list(num_classes)})
        return paths
    paths = {}
    for split, per_class in sizes.items():
        if per_class == 0:
            continue
        rows = synthetic_questions(out_dir, split, per_class, **common)
        paths[split] = write_jsonl_atomic(out_dir / f"{split}.jsonl", rows)
    write_class_lists(out_dir, {"synthetic": synthetic_class_list(num_classes)})
    return paths


@dataclass
class SyntheticArguments:
    """How many synthetic birds, of which size, drawn with which seeds."""

    out: str = field(metadata={"help": "folder for the JSONL files and images/"})
    classes: int = field(default=24, metadata={"help": "number of species"})
    shots: int = field(default=5, metadata={"help": "training images per class"})
    test_per_class: int = field(default=10, metadata={"help": "test images per class"})
    pool_per_class: int = field(default=0, metadata={
        "help": "images per class in pool.jsonl, a pre-training pool; 0 = none"})
    image_size: int = field(default=112, metadata={"help": "image side in pixels"})
    seed: int = field(default=0, metadata={"help": "option-set and option-order seed"})
    image_seed: int | None = field(default=None, metadata={
        "help": "image seed (default: --seed); another value draws other images of the same species, attributes "
                "and options"})
    base_to_new: bool = field(default=False, metadata={
        "help": "split the species into seen and unseen halves (seeded by --seed): train from seen species only, "
                "test_seen.jsonl, test_unseen.jsonl and split.json"})
    overwrite: bool = field(default=False, metadata={
        "help": "draw afresh a folder drawn with other settings (without it, such a folder is refused)"})


SETTINGS_FILE = "synthetic_settings.json"  # the settings a folder's questions were drawn with


def split_names(pool_per_class: int, base_to_new: bool) -> list[str]:
    """The question files ``synthetic`` writes.

    >>> split_names(0, False), split_names(3, True)
    (['train', 'test'], ['train', 'pool', 'test_seen', 'test_unseen'])
    """
    names = ["train", "pool", "test_seen", "test_unseen"] if base_to_new else ["train", "test", "pool"]
    return [name for name in names if name != "pool" or pool_per_class > 0]


def parse_args(argv: list[str] | None = None) -> tuple[SyntheticArguments]:
    from refine_rft.settings import parse

    return parse("refine-rft-workshop synthetic", [SyntheticArguments], argv, description=__doc__,
                 select="synthetic")


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_args(argv)
    out = Path(args.out)
    settings = {name: value for name, value in vars(args).items() if name not in ("out", "overwrite")}
    files = [out / f"{name}.jsonl" for name in split_names(args.pool_per_class, args.base_to_new)]
    finished = [*files, out / "classes.json"] + ([out / "split.json"] if args.base_to_new else [])
    with output_lock(out, folder=True, what="synthetic"):
        guard_settings(out / SETTINGS_FILE, settings, [*finished, out / "images"], overwrite=args.overwrite)
        if all(path.is_file() for path in finished):
            print(f"{out}: already drawn with these settings; nothing to do")
            paths = {path.stem: path for path in files}
        else:
            paths = prepare_synthetic(out, num_classes=args.classes, shots=args.shots,
                                      test_per_class=args.test_per_class, pool_per_class=args.pool_per_class,
                                      image_size=args.image_size, seed=args.seed, image_seed=args.image_seed,
                                      base_to_new=args.base_to_new)
    for split, path in paths.items():
        if path.suffix == ".jsonl":
            print(summary_line(split, require_all(read_rows([path], validate_record)), path))
        else:
            print(f"{split}: {path}")
    return 0
