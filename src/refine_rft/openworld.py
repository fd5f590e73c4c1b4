"""Open-world answers: which class of a dataset a free-form answer names, strictly.

Under the ``open`` and ``open_cot`` prompt styles the model sees no options and answers with a
class name. Such an answer names a class when, under the answer grammar of
:mod:`refine_rft.parsing` (the one :func:`~refine_rft.parsing.extract_choice` uses, over every
class name and alias of the dataset instead of four options), it states **exactly one class, in
full**:

- by its name or one of its aliases (``"Japanese Chin"`` for Stanford Dogs' ``Japanese_spaniel``),
  compared after normalising case, ``_``/``-``/spaces, punctuation and a leading article
  (``"the japanese-spaniel."``), with prose around it allowed (``"It is a Japanese Chin."``);
- two classes (``"Pug, Boxer"``), a hedge or negation (``"maybe a Pug"``, ``"not a Pug"``), an
  empty answer, a bare word that several classes share (``"Terrier"``), a fragment of one name
  (``"Japanese"``), a list item made of another class's words or more than
  :data:`~refine_rft.parsing.MAX_ANSWER_WORDS` words name nothing.

The substring test of other open-world code (``label in answer``) scores an empty answer and
``"A or B or C"`` as correct and a synonym as wrong; this rule does the reverse on all three.

A dataset's classes are **all** its classes, whichever file is read: ``refine-rft prepare``
records each dataset's full class list (both sides of a base-to-new split) and their aliases in
``classes.json`` beside the question files it writes (:func:`write_class_lists`), ``refine-rft
eval`` copies it beside ``predictions.jsonl``, and scoring, the open reward and the verifier read
it (:func:`dataset_vocabularies`). So on a base-to-new *unseen* file scored alone, naming a *seen*
class beside the true one still names two classes. Without a recorded list the vocabulary is what
the rows show (:func:`vocabularies`: labels, options, the rows' ``aliases``), and rows of a
base-to-new split are refused (their file shows one side only). Aliases come from the alias tables
of :mod:`refine_rft.data.aliases`. Linear in the answer's length, like every parser here.

>>> vocab = ClassVocabulary.build(["Japanese_spaniel", "Pug", "Boston_bull", "Yorkshire_terrier",
...                                "Border_terrier"], {"Japanese_spaniel": ["Japanese Chin"]})
>>> [vocab.named(t) for t in ["Japanese Chin", "It is a pug.", "Terrier", "Pug or Boston bull", ""]]
['Japanese_spaniel', 'Pug', None, None, None]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from refine_rft.errors import DataError
from refine_rft.parsing import NameIndex, name_index, read_names

CLASSES_FILE = "classes.json"


@dataclass(frozen=True)
class ClassVocabulary:
    """Every name an open answer may give for a dataset: its classes and their aliases.

    ``names`` are the class names then the aliases (aliases that repeat another name, or that are
    another class's name, are left out: they would name two classes at once); ``owners[i]`` is
    the class that ``names[i]`` stands for.
    """

    classes: tuple[str, ...]
    names: tuple[str, ...]
    owners: tuple[str, ...]

    @classmethod
    def build(cls, classes: Iterable[str], aliases: Mapping[str, Sequence[str]] | None = None) -> ClassVocabulary:
        """The vocabulary of ``classes`` (deduplicated, order kept) and their ``aliases``.

        >>> v = ClassVocabulary.build(["Pug", "Boxer"], {"Pug": ["Mops", "boxer"]})
        >>> v.names, v.owners
        (('Pug', 'Boxer', 'Mops'), ('Pug', 'Boxer', 'Pug'))
        """
        from refine_rft.parsing import normalize_name

        classes = tuple(dict.fromkeys(classes))
        names, owners, seen = list(classes), list(classes), {normalize_name(c) for c in classes}
        for label, extra in (aliases or {}).items():
            if label not in classes:
                continue
            for alias in extra:
                key = normalize_name(alias)
                if key and key not in seen:
                    seen.add(key)
                    names.append(alias)
                    owners.append(label)
        return cls(classes, tuple(names), tuple(owners))

    @property
    def index(self) -> NameIndex:
        return name_index(self.names)

    def named(self, answer: str | None) -> str | None:
        """The one class ``answer`` names in full (name or alias), else ``None`` (see the module)."""
        if answer is None or not answer.strip():
            return None
        reading = read_names(answer, self.index)
        if reading.refusal is not None:
            return None
        named = {self.owners[i] for i in reading.by_name}
        if len(named) != 1:
            return None
        (label,) = named
        # A list item made only of class words must belong to the named class ("Pug, Boxer").
        if any(label not in {self.owners[i] for i in item} for item in reading.items):
            return None
        return label

    def exact(self, answer: str | None) -> str | None:
        """Like :meth:`named`, but only class names count (aliases name nothing): exact accuracy.

        >>> v = ClassVocabulary.build(["Pug", "Boxer"], {"Pug": ["Mops"]})
        >>> v.named("Mops"), v.exact("Mops"), v.exact("pug")
        ('Pug', None, 'Pug')
        """
        label = self.named(answer)
        if label is None:
            return None
        reading = read_names(answer, self.index)
        return label if all(i < len(self.classes) for i in reading.by_name) else None


def vocabularies(rows: Iterable[dict]) -> dict[str, ClassVocabulary]:
    """Per dataset, the vocabulary its rows show: labels, options and the rows' ``aliases``.

    >>> rows = [{"dataset": "dogs", "label": "Pug", "options": ["Pug", "Boxer"], "aliases": ["Mops"]}]
    >>> vocabularies(rows)["dogs"].names
    ('Pug', 'Boxer', 'Mops')
    """
    classes: dict[str, dict[str, None]] = {}
    aliases: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        names = classes.setdefault(row["dataset"], {})
        label = row.get("label")
        if label is None and row.get("options") and isinstance(row.get("answer"), int):
            label = row["options"][row["answer"]]
        if label is not None:
            names[label] = None
            if row.get("aliases"):
                aliases.setdefault(row["dataset"], {}).setdefault(label, list(row["aliases"]))
        for option in row.get("options") or ():
            names[option] = None
    return {dataset: ClassVocabulary.build(names, aliases.get(dataset)) for dataset, names in classes.items()}


def class_list(classes: Iterable[str], aliases: Mapping[str, Sequence[str]] | None = None,
               source: str = "") -> dict:
    """One dataset's entry of ``classes.json``: every class, in order, and the aliases of those that have any.

    >>> class_list(["Pug", "Boxer", "Pug"], {"Pug": ["Mops"], "Corgi": ["x"]})
    {'classes': ['Pug', 'Boxer'], 'aliases': {'Pug': ['Mops']}, 'source': ''}
    """
    classes = list(dict.fromkeys(classes))
    kept = {c: list(aliases[c]) for c in classes if aliases and aliases.get(c)}
    return {"classes": classes, "aliases": kept, "source": source}


def write_class_lists(folder: str | Path, lists: Mapping[str, dict], keep: bool = True) -> Path:
    """Record ``{dataset: class_list(...)}`` in ``folder/classes.json`` (atomically); ``keep``: keep
    the other datasets already recorded there (several ``prepare`` runs may share a folder)."""
    from refine_rft.files import write_text_atomic

    path = Path(folder) / CLASSES_FILE
    recorded = read_class_lists(folder) if keep else {}
    recorded.update({dataset: dict(entry) for dataset, entry in lists.items()})
    return write_text_atomic(path, json.dumps(dict(sorted(recorded.items())), indent=1, ensure_ascii=False) + "\n")


def read_class_lists(folder: str | Path) -> dict[str, dict]:
    """``folder/classes.json`` as ``{dataset: {"classes", "aliases", "source"}}`` (empty when absent).

    Raises:
        DataError: the file is not a class-list file.
    """
    path = Path(folder) / CLASSES_FILE
    if not path.is_file():
        return {}
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the class lists ({error})") from None
    good = isinstance(body, dict) and all(
        isinstance(e, dict) and isinstance(e.get("classes"), list) and all(isinstance(c, str) for c in e["classes"])
        and isinstance(e.get("aliases", {}), dict)
        and all(isinstance(v, list) and all(isinstance(a, str) for a in v) for v in e.get("aliases", {}).values())
        for e in body.values())
    if not good:
        raise DataError(f"{path}: expected {{dataset: {{\"classes\": [...], \"aliases\": {{class: [...]}}}}}}")
    return body


def gather_class_lists(files: Iterable[str | Path]) -> dict[str, dict]:
    """The class lists recorded beside ``files`` (question or prediction files), merged.

    Raises:
        DataError: two folders record different classes for one dataset.
    """
    merged: dict[str, dict] = {}
    where: dict[str, Path] = {}
    for folder in dict.fromkeys(Path(f).resolve().parent for f in files):
        for dataset, entry in read_class_lists(folder).items():
            if dataset in merged and merged[dataset]["classes"] != entry["classes"]:
                raise DataError(f"{folder / CLASSES_FILE} and {where[dataset] / CLASSES_FILE} record different "
                                f"classes for {dataset!r}; prepare the question files together")
            merged.setdefault(dataset, entry)
            where.setdefault(dataset, folder)
    return merged


def dataset_vocabularies(rows: Iterable[dict], class_lists: Mapping[str, dict] | None = None,
                         where: str = "") -> dict[str, ClassVocabulary]:
    """Per dataset of ``rows``, its vocabulary: the recorded class list (all its classes) where
    ``class_lists`` has one, plus the rows' own aliases; else what the rows show (:func:`vocabularies`).
    ``class_lists=None`` says that the caller has none to give (in-memory rows); a mapping, even an
    empty one, is what the files' folders record.

    Raises:
        DataError: a row's label or option is not in its dataset's recorded list, or, given
            ``class_lists``, rows of a base-to-new split (``class_split``) have no recorded list
            (``where`` names their file).

    >>> lists = {"birds": class_list(["Herring Gull", "California Gull", "Ivory Gull"])}
    >>> unseen = [{"dataset": "birds", "label": "California Gull", "options": ["California Gull", "Ivory Gull"],
    ...            "class_split": "unseen"}]
    >>> vocab = dataset_vocabularies(unseen, lists)["birds"]
    >>> vocab.named("California Gull"), vocab.named("California Gull, Herring Gull")
    ('California Gull', None)
    """
    rows = list(rows)
    shown = vocabularies(rows)
    lists = class_lists or {}
    split_rows = {row["dataset"] for row in rows if row.get("class_split")}
    out = {}
    for dataset, seen in shown.items():
        entry = lists.get(dataset)
        if entry is None:
            if class_lists is not None and dataset in split_rows:
                raise DataError(f"{where or 'rows'}: dataset {dataset!r} is split into seen and unseen classes but "
                                f"no {CLASSES_FILE} records all its classes (a file of one side alone would let a "
                                f"name of the other side pass); rerun refine-rft prepare, which writes it")
            out[dataset] = seen
            continue
        unknown = [c for c in seen.classes if c not in set(entry["classes"])]
        if unknown:
            raise DataError(f"{where or 'rows'}: {len(unknown)} class(es) of {dataset!r} are not in its recorded "
                            f"class list ({', '.join(unknown[:3])}); the questions and {CLASSES_FILE} disagree")
        aliases = {c: list(a) for c, a in entry.get("aliases", {}).items()}
        for name, owner in zip(seen.names[len(seen.classes):], seen.owners[len(seen.classes):], strict=True):
            aliases.setdefault(owner, []).append(name)
        out[dataset] = ClassVocabulary.build(entry["classes"], aliases)
    return out


def true_label(row: dict) -> str:
    """The class a question or prediction row is about (its ``label``, else its true option)."""
    return row["label"] if row.get("label") is not None else row["options"][row["answer"]]
