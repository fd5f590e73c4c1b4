"""What every reader returns, and the small file helpers they share (errors name the file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.errors import DataError, MissingFile

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Example:
    """One labelled image of a split.

    ``key`` is unique within the split and stable across machines (the file stem for the official
    datasets); question ids are built from it.
    """

    key: str
    image: Path
    label: str
    attributes: dict | None = None


@dataclass
class LabelledSplit:
    """A split's examples and the dataset's whole class list (official order).

    ``class_attributes`` maps a class name to its class-level attributes where the dataset has them
    (CUB with its ``attributes/`` folder).
    """

    dataset: str
    split: str
    examples: list[Example]
    classes: list[str]
    class_attributes: dict[str, dict] = field(default_factory=dict)
    source: str = ""  # the file the labels came from, for error messages

    def __post_init__(self) -> None:
        known = set(self.classes)
        unknown = sorted({e.label for e in self.examples} - known)
        if unknown:
            where = f" in {self.source}" if self.source else ""
            raise DataError(f"{self.dataset}/{self.split}: images labelled{where} with unknown class(es) {unknown[:5]}")


def pretty_name(name: str) -> str:
    """A class name as shown to the model with ``--pretty-names``: underscores become spaces.

    >>> pretty_name("Black_footed_Albatross"), pretty_name("707-320")
    ('Black footed Albatross', '707-320')
    """
    return " ".join(name.replace("_", " ").split())


def check_split(dataset: str, split: str, valid: tuple[str, ...] = SPLITS) -> None:
    if split not in valid:
        raise DataError(f"{dataset}: unknown split {split!r}; valid splits: {', '.join(valid)}")


def dataset_dir(root: Path, marker: str, folder_name: str, dataset: str) -> Path:
    """The dataset's own folder: ``root`` itself, or ``root/folder_name`` (its name as distributed).

    ``marker`` is a file or folder that the official layout has directly inside that folder.
    """
    for candidate in (root, root / folder_name):
        if (candidate / marker).exists():
            return candidate
    raise MissingFile(
        f"{dataset}: not the official layout: expected {root / marker} (or {root / folder_name / marker})")


def require(path: Path, dataset: str) -> Path:
    if not path.exists():
        raise MissingFile(f"{dataset}: missing file {path} (expected in the official layout)")
    return path


def read_pairs(path: Path, dataset: str) -> list[tuple[str, str]]:
    """Lines ``<first> <rest>`` split on the first space only (Aircraft labels contain spaces)."""
    pairs = []
    with require(path, dataset).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            first, sep, rest = line.partition(" ")
            if not sep or not rest.strip():
                raise DataError(f"{dataset}: {path}:{number}: expected '<id> <value>', got {line!r}")
            pairs.append((first, rest.strip()))
    return pairs


def load_mat(path: Path, dataset: str, *keys: str) -> dict:
    """A MATLAB file's variables (squeezed), checking that ``keys`` are present."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    require(path, dataset)
    try:
        content = loadmat(str(path), squeeze_me=True)
    except (MatReadError, ValueError, OSError, TypeError) as error:
        raise DataError(f"{dataset}: cannot read {path} as a MATLAB file ({error})") from None
    missing = [k for k in keys if k not in content]
    if missing:
        raise DataError(f"{dataset}: {path} has no variable(s) {', '.join(missing)}")
    return content
