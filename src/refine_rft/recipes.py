"""YAML recipes with ``include``: the one loader for every file that holds run settings.

A recipe may start from other recipes with ``include`` (a path, or a list of paths, relative to
the including file: local ``.yaml``, ``.yml`` or ``.json`` files only, never a URL; a cycle is refused naming the
chain). YAML is read with ``yaml.safe_load`` (a ``!!python/object`` tag is refused, never run), and a
recipe whose aliases expand past :data:`MAX_RECIPE_VALUES` values is refused. Included files are read first, in order, and the including file's keys win;
mappings (such as ``judge``) are merged key by key, everything else is replaced. Training
and every command's ``--config`` (:mod:`refine_rft.settings`) read files here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from refine_rft.errors import ConfigError, MissingFile


def load_recipe(path: str | os.PathLike) -> dict:
    """Read a YAML recipe, resolving ``include`` (see the module docstring).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "base.yaml").write_text("learning_rate: 1.0\\njudge: {backend: openai, timeout: 30}\\n")
    >>> _ = (d / "run.yaml").write_text("include: base.yaml\\njudge: {timeout: 5}\\n")
    >>> load_recipe(d / "run.yaml")
    {'learning_rate': 1.0, 'judge': {'backend': 'openai', 'timeout': 5}}
    """
    return _load(Path(path), chain=())


def json_mapping(text: str, must: str) -> dict:
    """``text`` read as a JSON object, for a setting given as text that must be a mapping; ``must`` says
    what was expected, and starts the one-line error.

    >>> json_mapping('{"a": 1}', "--judge must be a JSON object")
    {'a': 1}
    >>> json_mapping("[1]", "--judge must be a JSON object")
    Traceback (most recent call last):
    refine_rft.errors.ConfigError: --judge must be a JSON object, got '[1]'
    """
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{must}, got {text!r} ({error.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{must}, got {text!r}")
    return value


# The most values a recipe may expand to once its YAML aliases are followed: a real recipe has a few
# hundred; nine nested lists of nine aliases ("billion laughs") expand to 387 million, which every
# later copy, merge and JSON dump of the settings would build.
MAX_RECIPE_VALUES = 100_000
RECIPE_SUFFIXES = (".yaml", ".yml", ".json")  # JSON is YAML too


def expanded_size(value, limit: int = MAX_RECIPE_VALUES) -> int:
    """How many values ``value`` holds with every alias followed, counted without building them
    (shared lists and mappings are sized once); stops counting past ``limit``.

    >>> import yaml
    >>> bomb = yaml.safe_load("a: &a [x, x, x]\\nb: &b [*a, *a, *a]\\nc: &c [*b, *b, *b]\\nd: [*c, *c, *c]")
    >>> expanded_size(bomb)
    179
    """
    sizes: dict[int, int] = {}

    def size(item) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        if id(item) not in sizes:
            children = item.values() if isinstance(item, dict) else item
            sizes[id(item)] = min(limit + 1, 1 + sum(size(child) for child in children))
        return sizes[id(item)]

    return size(value)


def _load(path: Path, chain: tuple[Path, ...]) -> dict:
    where = f" (included from {chain[-1]})" if chain else ""
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"recipe include cycle: {' -> '.join(map(str, (*chain, path)))}")
    if not path.exists():
        raise MissingFile(f"no such recipe: {path}{where}")
    if not path.is_file() or path.suffix.lower() not in RECIPE_SUFFIXES:
        # A device, a FIFO or /proc file would be read forever or leak what it holds into a message.
        raise ConfigError(f"recipe {path}{where} must be a regular .yaml, .yml or .json file")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"recipe {path}{where}: not valid YAML ({problem})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipe {path}: not UTF-8 text") from None
    if not isinstance(config, dict):
        raise ConfigError(f"recipe {path} must be a YAML mapping of argument names to values")
    if expanded_size(config) > MAX_RECIPE_VALUES:
        raise ConfigError(f"recipe {path} expands to more than {MAX_RECIPE_VALUES:,} values through its YAML "
                          f"aliases (an alias bomb?); write the values out")
    includes = config.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(item, str) and item for item in includes):
        raise ConfigError(f"recipe {path}: 'include' must be a path or a list of paths (relative to the "
                          f"recipe), got {includes!r}")
    merged: dict = {}
    for include in includes:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", include):
            raise ConfigError(f"recipe {path}: include {include!r}: only local files can be included, not URLs")
        merged = merge(merged, _load(path.parent / include, (*chain, path)))
    return merge(merged, config)


def merge(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``; nested mappings merge key by key, anything else is replaced.

    >>> merge({"a": 1, "j": {"x": 1, "y": 2}, "l": [1]}, {"j": {"y": 3}, "l": [2]})
    {'a': 1, 'j': {'x': 1, 'y': 3}, 'l': [2]}
    """
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
