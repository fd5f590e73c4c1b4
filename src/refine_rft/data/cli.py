"""``refine-rft prepare``: write question JSONL files from a dataset or the paper's setup.

- ``refine-rft prepare DATASET --root DIR --split {train,test} --out FILE`` reads one split of a
  dataset in its official layout (``cub``, ``aircraft``, ``cars``, ``dogs``, ``flowers``, ``pets``)
  or of custom data (``folder``, ``csv``). With ``--choices FILE`` every entry of a published choice
  file becomes one question with exactly its options; otherwise each image gets distractors from
  ``--distractors``. ``--shots K`` keeps K seeded images per class.
- ``refine-rft prepare paper --roots DIR --choices-dir DIR --out DIR`` builds the paper's setup:
  the six published test sets and the 5-shot training set (3,775 questions).
- ``refine-rft prepare fine-r1 --root DIR --out DIR [--shuffle-seed N]`` reads Fine-R1's released
  evaluation files (seen and unseen classes; :mod:`refine_rft.data.fine_r1`), options in the
  released order unless re-shuffled.

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

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from refine_rft.data.distractors import FOCI_CLIP_MODEL, FOCI_CLIP_PRETRAINED, STRATEGIES
from refine_rft.data.paper import letter_shares, prepare_paper
from refine_rft.data.prepare import prepare_dataset
from refine_rft.data.readers import reader_names
from refine_rft.dataset_specs import DATASETS
from refine_rft.files import refuse_output_over_input, write_jsonl_atomic


def summary_line(name: str, rows: list[dict], path: Path) -> str:
    """One line per written file: question and class counts, letter balance, path."""
    shares = " ".join(f"{k}={v:.0%}" for k, v in letter_shares(rows).items())
    classes = len({r["label"] for r in rows})
    return f"{name}: {len(rows)} questions, {classes} classes, answers {shares} -> {path}"


def _clip_options(args) -> dict:
    return {"model_name": args.clip_model, "pretrained": args.clip_pretrained, "device": args.device}


def _dataset_main(args) -> int:
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


def _write_classes(args, folder: Path, classes) -> None:
    """Every class of the dataset (both sides of a split) and their aliases, in ``folder/classes.json``."""
    from refine_rft.data.prepare import dataset_class_list
    from refine_rft.openworld import write_class_lists

    entry = dataset_class_list(args.dataset, args.root, args.split, args.pretty_names, classes=classes)
    path = write_class_lists(folder, {args.name or args.dataset: entry})
    print(f"classes: {len(entry['classes'])} ({len(entry['aliases'])} with aliases) -> {path}")


def _dataset_base_to_new(args) -> int:
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


def _paper_main(args) -> int:
    paths = prepare_paper(args.roots, args.choices_dir, args.out, shots=args.shots, seed=args.seed,
                          distractors=args.distractors, pretty=args.pretty_names,
                          verify_images=not args.no_verify_images, clip_options=_clip_options(args),
                          base_to_new=args.base_to_new)
    print(paths["summary"].read_text(encoding="utf-8"), end="")
    print(f"written to {Path(args.out)}: " + ", ".join(path.name if name in ("split", "summary", "classes") else f"{name}.jsonl"
                                                      for name, path in paths.items() if name != "summary"))
    return 0


def _fine_r1_main(args) -> int:
    import sys

    from refine_rft.data.fine_r1 import prepare_fine_r1
    from refine_rft.data.records import describe_rejects, read_questions

    paths, rejects = prepare_fine_r1(args.root, args.out, images=args.images, shuffle_seed=args.shuffle_seed,
                                     verify_images=not args.no_verify_images)
    for name, path in paths.items():
        if path.suffix == ".jsonl":
            print(summary_line(f"fine-r1 {name}", read_questions(path), path))
    order = "in the released order" if args.shuffle_seed is None else f"shuffled with seed {args.shuffle_seed}"
    print(f"options {order}; classes -> {paths['classes']}; split -> {paths['split']}")
    if rejects:
        print(f"refine-rft prepare: {len(rejects)} line(s) of Fine-R1's files rejected: {describe_rejects(rejects, 5)}",
              file=sys.stderr)
        return 1
    return 0


@dataclass
class SamplingArguments:
    """How questions are drawn: shots, seed, distractors, names, image checks, the class split."""

    base_to_new: bool = field(default=False, metadata={
        "help": "split the classes into seen and unseen (Fine-R1's split where published, else a half split "
                "seeded by --seed): train from seen classes only, test sets per side"})
    shots: int | None = field(default=None, metadata={
        "help": "training images per class, seeded (default: all images; 5 for paper)"})
    seed: int = field(default=0, metadata={"help": "shot, distractor and option-order seed"})
    distractors: str = field(default="similar", metadata={
        "help": "distractors for questions without a choice file", "choices": STRATEGIES})
    pretty_names: bool = field(default=False, metadata={
        "help": "show class names with spaces instead of underscores (Black footed Albatross)"})
    no_verify_images: bool = field(default=False, metadata={
        "help": "only check that image files exist; do not open and verify them"})
    clip_model: str = field(default=FOCI_CLIP_MODEL, metadata={
        "help": "open_clip model for --distractors clip (default: FOCI's)"})
    clip_pretrained: str = field(default=FOCI_CLIP_PRETRAINED, metadata={
        "help": "open_clip weights tag or checkpoint file for --distractors clip (default: FOCI's)"})
    device: str = field(default="cpu", metadata={"help": "device for --distractors clip"})


@dataclass
class DatasetArguments:
    """One split of one dataset (``refine-rft prepare DATASET``)."""

    # Checked by parse_args against reader_names() when it runs (a spec added at run time counts).
    dataset: str = field(metadata={"positional": True, "metavar": "DATASET", "help": "the dataset's reader"})
    root: str = field(metadata={
        "help": "the dataset's folder (or its parent); for csv the CSV file or a folder of <split>.csv"})
    split: str = field(metadata={"help": "which split to read", "choices": ("train", "test")})
    out: str = field(metadata={"help": "the JSONL file to write"})
    choices: str | None = field(default=None, metadata={
        "help": "a published choice file: one question per entry, with its options"})
    noun: str | None = field(default=None, metadata={
        "help": "the noun in the question (default: the dataset's, else 'objects')"})
    name: str | None = field(default=None, metadata={"help": "the records' dataset field (default: the DATASET name)"})


@dataclass
class FineR1Arguments:
    """Fine-R1's released evaluation files (``refine-rft prepare fine-r1``)."""

    dataset: str = field(metadata={"positional": True, "metavar": "fine-r1", "choices": ("fine-r1",),
                                   "help": "Fine-R1's released evaluation files (seen and unseen classes)"})
    root: str = field(metadata={
        "help": "folder holding Fine-R1's <dataset>_seen.jsonl / _unseen.jsonl, or a Fine-R1 checkout"})
    out: str = field(metadata={
        "help": "output folder: test_seen/<dataset>.jsonl, test_unseen/<dataset>.jsonl, classes.json"})
    images: str | None = field(default=None, metadata={
        "help": "folder their image_path entries are relative to (default: --root)"})
    shuffle_seed: int | None = field(default=None, metadata={
        "help": "re-shuffle each question's options with this seed (default: keep the released order, in which "
                "the true class is always first)"})
    no_verify_images: bool = field(default=False, metadata={
        "help": "only check that image files exist; do not open and verify them"})


@dataclass
class PaperArguments:
    """The paper's setup (``refine-rft prepare paper``)."""

    dataset: str = field(metadata={"positional": True, "metavar": "paper", "choices": ("paper",),
                                   "help": "the six published test sets and the 5-shot train set (3,775)"})
    roots: str = field(metadata={"help": "folder holding the six datasets under their distributed names"})
    choices_dir: str = field(metadata={
        "help": f"folder holding the published choice files ({', '.join(spec.choices for spec in DATASETS.values())})"})
    out: str = field(metadata={"help": "output folder: test/<dataset>.jsonl, train.jsonl, summary.md"})


def _usage() -> str:
    lines = [__doc__.strip(), "", "datasets:"]
    for dataset in reader_names():
        layout = f"its official layout ({DATASETS[dataset].folder})" if dataset in DATASETS else "custom data"
        lines.append(f"  {dataset:<9} one split of {dataset}, from {layout}")
    lines.append(f"  {'paper':<9} the six published test sets and the 5-shot train set (3,775)")
    lines.append(f"  {'fine-r1':<9} Fine-R1's released evaluation files (seen and unseen classes)")
    lines += ["", "Run 'refine-rft prepare DATASET --help' for its options."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> tuple:
    """``DATASET`` (the first argument) chooses the settings: :class:`PaperArguments` for ``paper``,
    :class:`FineR1Arguments` for ``fine-r1``, else :class:`DatasetArguments`; the first two and the
    last with :class:`SamplingArguments`."""
    from refine_rft.settings import parse

    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv and not argv[0].startswith("-") else None
    if name not in (*reader_names(), "paper", "fine-r1"):
        print(f"refine-rft prepare: {'unknown dataset ' + repr(name) if name else 'no dataset given'}; "
              f"choose from {', '.join((*reader_names(), 'paper', 'fine-r1'))} (see refine-rft prepare --help)",
              file=sys.stderr)
        raise SystemExit(2)
    settings = {"paper": [PaperArguments, SamplingArguments], "fine-r1": [FineR1Arguments]}.get(
        name, [DatasetArguments, SamplingArguments])
    return parse(f"refine-rft prepare {name}", settings, argv, description=__doc__, select="prepare",
                 defaults={"shots": 5} if name == "paper" else None)


def refuse_overwriting_data(args) -> None:
    """The outputs of ``prepare`` kept off what it reads (:func:`~refine_rft.files.refuse_output_over_input`):
    ``--out`` (and, with ``--base-to-new``, the files beside it) is neither an input file nor inside the
    dataset folder or the choice folder."""
    out = Path(args.out)
    if args.dataset == "paper":
        inputs = [("--roots", args.roots), ("--choices-dir", args.choices_dir)]
        outputs = [("--out", out)]
    elif args.dataset == "fine-r1":
        inputs = [("--root", args.root), ("--images", args.images)]
        outputs = [("--out", out)]
    else:
        # --root may be the folder holding the dataset's own (as distributed): that one is what is read.
        root = Path(args.root)
        if args.dataset in DATASETS and (root / DATASETS[args.dataset].folder).is_dir():
            root = root / DATASETS[args.dataset].folder
        inputs = [("--root", root), ("--choices", args.choices)]
        outputs = [("--out", out), *(("the output", out.with_name(f"{out.stem}_{side}{out.suffix or '.jsonl'}"))
                                     for side in ("seen", "unseen") if args.base_to_new)]
    refuse_output_over_input(inputs, outputs)


def main(argv: list[str] | None = None) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    groups = parse_args(argv)
    args = SimpleNamespace(**{k: v for group in groups for k, v in vars(group).items()})  # one set of settings
    refuse_overwriting_data(args)
    run = {"paper": _paper_main, "fine-r1": _fine_r1_main}.get(args.dataset, _dataset_main)
    return run(args)
