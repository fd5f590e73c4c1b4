"""Base-to-new splits: classes divided into *seen* (trained on) and *unseen* (only tested).

``refine-rft prepare ... --base-to-new`` writes the few-shot training set from seen classes only
(targets *and* distractors), and one test set per side. Every row gets a ``class_split`` column
(``seen``/``unseen``), from which the report computes seen, unseen and their harmonic mean.

Which classes are seen:

- the six benchmarks: **Fine-R1's split** (He, Geng & Peng, ICLR 2026), the classes of the
  ``eval/data/<dataset>_seen.jsonl`` / ``_unseen.jsonl`` files of github.com/PKU-ICST-MIPL/
  FineR1_ICLR2026 (commit 84cdc5c), shipped in ``tables/fine_r1_split.json`` (about 60 % seen);
  class names are matched after :func:`~refine_rft.parsing.normalize_name`, or as the end of
  Fine-R1's name (its aircraft carry the maker: ``Airbus A300B4`` is FGVC's ``A300B4``), and a
  dataset whose classes do not all match is refused rather than split differently in silence;
- any other data (custom, synthetic): a **seeded half split** (:func:`half_split`).

>>> half_split(["a", "b", "c", "d", "e"], seed=0) == half_split(["e", "d", "c", "b", "a"], seed=0)
True
>>> seen, unseen = half_split(["a", "b", "c", "d", "e"], seed=0)
>>> len(seen), len(unseen), set(seen) & set(unseen)
(3, 2, set())
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from refine_rft.errors import DataError
from refine_rft.files import write_text_atomic
from refine_rft.parsing import normalize_name

FINE_R1_TABLE = Path(__file__).parent / "tables" / "fine_r1_split.json"
SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class ClassSplit:
    """Seen and unseen classes of one dataset, and where the split comes from."""

    dataset: str
    seen: tuple[str, ...]
    unseen: tuple[str, ...]
    source: str

    def side(self, label: str) -> str:
        """``"seen"`` or ``"unseen"``: which side ``label`` is on."""
        return "seen" if label in self.seen else "unseen"


def half_split(classes: Sequence[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """Seen (the larger half when odd) and unseen classes, drawn with ``seed`` from the sorted classes:
    the same classes give the same split whatever their order."""
    ordered = sorted(set(classes))
    random.Random(f"base-to-new:{seed}").shuffle(ordered)
    cut = (len(ordered) + 1) // 2
    return sorted(ordered[:cut]), sorted(ordered[cut:])


@lru_cache(maxsize=1)
def _fine_r1() -> dict:
    return json.loads(FINE_R1_TABLE.read_text(encoding="utf-8"))


def fine_r1_names(dataset: str) -> list[str]:
    """Fine-R1's class names of ``dataset`` as it spells them (seen, then unseen); empty if it has none.

    >>> fine_r1_names("aircraft")[:2], fine_r1_names("fungi")
    (['ATR-42', 'Airbus A300B4'], [])
    """
    published = _fine_r1()["datasets"].get(dataset)
    return [] if published is None else [*published["seen"], *published["unseen"]]


def fine_r1_split(dataset: str, classes: Sequence[str]) -> ClassSplit | None:
    """Fine-R1's published split of ``dataset`` over our class names, or ``None`` when there is none.

    Raises:
        DataError: some of ``classes`` are on neither side of Fine-R1's split (another spelling).
    """
    table = _fine_r1()
    published = table["datasets"].get(dataset)
    if published is None:
        return None
    sides = {normalize_name(name): side for side in ("seen", "unseen") for name in published[side]}
    found = {c: _side_of(normalize_name(c), sides) for c in classes}
    unknown = sorted(c for c, side in found.items() if side is None)
    if unknown:
        raise DataError(f"{dataset}: {len(unknown)} class(es) are not in Fine-R1's split "
                        f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}); rename them to "
                        f"the dataset's official names, or prepare them as custom data for a seeded split")
    seen = tuple(sorted(c for c in classes if found[c] == "seen"))
    unseen = tuple(sorted(c for c in classes if found[c] == "unseen"))
    return ClassSplit(dataset, seen, unseen, table["source"])


def _side_of(name: str, sides: dict[str, str]) -> str | None:
    """The side of a normalised class name: an exact match, else the one published name it ends.

    >>> _side_of("a300b4", {"airbus a300b4": "seen", "a310": "unseen"}), _side_of("a3", {"airbus a300b4": "seen"})
    ('seen', None)
    """
    if name in sides:
        return sides[name]
    ends = {side for published, side in sides.items() if published.endswith(" " + name)}
    return ends.pop() if len(ends) == 1 else None


def class_split(dataset: str, classes: Sequence[str], seed: int = 0) -> ClassSplit:
    """The base-to-new split of ``dataset``: Fine-R1's where published, else :func:`half_split`."""
    published = fine_r1_split(dataset, classes)
    if published is not None:
        return published
    seen, unseen = half_split(classes, seed)
    if not seen or not unseen:
        raise DataError(f"{dataset}: a base-to-new split needs at least 2 classes, got {len(set(classes))}")
    return ClassSplit(dataset, tuple(seen), tuple(unseen), f"seeded half split (seed {seed})")


def mark(rows: list[dict], split: ClassSplit) -> list[dict]:
    """Write each row's side into its ``class_split`` column (in place; returned)."""
    for row in rows:
        row["class_split"] = split.side(row["label"])
    return rows


def write_split_file(out_dir: str | Path, splits: Sequence[ClassSplit]) -> Path:
    """``out_dir/split.json``: every dataset's seen and unseen classes and the split's source."""
    body = {s.dataset: {**asdict(s), "seen": list(s.seen), "unseen": list(s.unseen)} for s in splits}
    return write_text_atomic(Path(out_dir) / SPLIT_FILE, json.dumps(body, indent=1) + "\n")


def check_disjoint(train: Sequence[dict], unseen_test: Sequence[dict]) -> None:
    """Refuse a split in which a training question shows an unseen class (as target or option).

    >>> check_disjoint([{"options": ["a", "b"]}], [{"label": "b"}])
    Traceback (most recent call last):
    ...
    refine_rft.errors.DataError: base-to-new: 1 unseen class(es) appear in the training questions: b
    """
    unseen = {r["label"] for r in unseen_test}
    shown = {o for r in train for o in r["options"]} & unseen
    if shown:
        raise DataError(f"base-to-new: {len(shown)} unseen class(es) appear in the training questions: "
                        f"{', '.join(sorted(shown)[:5])}")
