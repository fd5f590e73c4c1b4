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

A dataset's classes are its questions' labels and options (:func:`vocabularies`), its aliases the
``aliases`` column of its rows (written by ``refine-rft prepare`` from the alias tables of
:mod:`refine_rft.data.aliases`). Linear in the answer's length, like every parser here.

>>> vocab = ClassVocabulary.build(["Japanese_spaniel", "Pug", "Boston_bull", "Yorkshire_terrier",
...                                "Border_terrier"], {"Japanese_spaniel": ["Japanese Chin"]})
>>> [vocab.named(t) for t in ["Japanese Chin", "It is a pug.", "Terrier", "Pug or Boston bull", ""]]
['Japanese_spaniel', 'Pug', None, None, None]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from refine_rft.parsing import NameIndex, name_index, read_names


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


def true_label(row: dict) -> str:
    """The class a question or prediction row is about (its ``label``, else its true option)."""
    return row["label"] if row.get("label") is not None else row["options"][row["answer"]]
