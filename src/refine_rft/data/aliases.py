"""Alias tables: well-known synonyms of class names, which the open-world answer rule accepts.

The project ships one table per benchmark (``tables/aliases.json``; each entry names its source),
for example Stanford Dogs' ``Japanese_spaniel``, also called "Japanese Chin". A user may pass a
table of their own (``refine-rft prepare ... --aliases FILE``): a JSON object
``{"class name": ["alias", ...]}``. ``refine-rft prepare`` writes each question's aliases into its
row (the ``aliases`` column), so every later stage reads them from the data alone.

Classes are matched after :func:`~refine_rft.parsing.normalize_name` (``Japanese_spaniel`` is
``japanese spaniel``), so a table applies whether or not ``--pretty-names`` was given.

>>> table = shipped_aliases("dogs")
>>> table["japanese spaniel"]
['Japanese Chin']
>>> attach_aliases([{"label": "Japanese_spaniel"}, {"label": "Pug"}], table)
[{'label': 'Japanese_spaniel', 'aliases': ['Japanese Chin']}, {'label': 'Pug'}]
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from refine_rft.errors import DataError
from refine_rft.parsing import normalize_name

TABLE = Path(__file__).parent / "tables" / "aliases.json"


@lru_cache(maxsize=1)
def _shipped() -> dict:
    return json.loads(TABLE.read_text(encoding="utf-8"))["datasets"]


def shipped_aliases(dataset: str) -> dict[str, list[str]]:
    """The shipped table of ``dataset`` (``{normalised class name: aliases}``; empty if none)."""
    return {normalize_name(entry["class"]): list(entry["aliases"]) for entry in _shipped().get(dataset, [])}


def shipped_entries(dataset: str) -> list[dict]:
    """The shipped entries of ``dataset``: ``{"class", "aliases", "source"}`` each."""
    return [dict(entry) for entry in _shipped().get(dataset, [])]


def read_alias_file(path: str | Path) -> dict[str, list[str]]:
    """A user's alias table: a JSON object ``{"class": ["alias", ...]}``, keys normalised."""
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the alias table ({error})") from None
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) for a in v)
            for k, v in table.items()):
        raise DataError(f"{path}: an alias table is a JSON object {{\"class\": [\"alias\", ...]}}")
    return {normalize_name(k): list(v) for k, v in table.items()}


def attach_aliases(rows: list[dict], table: dict[str, list[str]]) -> list[dict]:
    """Give each row whose label has aliases in ``table`` an ``aliases`` column (in place; returned)."""
    for row in rows:
        aliases = table.get(normalize_name(row["label"]))
        if aliases:
            row["aliases"] = list(aliases)
    return rows
