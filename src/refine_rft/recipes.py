"""YAML recipes with ``include``: the one loader for every file that holds run settings.

A recipe may start from other recipes with ``include`` (a path, or a list of paths, relative to
the including file). Included files are read first, in order, and the including file's keys win;
mappings (such as ``judge``) are merged key by key, everything else is replaced. Training
and every command's ``--config`` (:mod:`refine_rft.settings`) read files here.
"""

from __future__ import annotations

import os
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


def _load(path: Path, chain: tuple[Path, ...]) -> dict:
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"recipe include cycle: {' -> '.join(map(str, (*chain, path)))}")
    if not path.is_file():
        where = f" (included from {chain[-1]})" if chain else ""
        raise MissingFile(f"no such recipe: {path}{where}")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"recipe {path}{where}: not valid YAML ({problem})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipe {path}: not UTF-8 text") from None
    if not isinstance(config, dict):
        raise ConfigError(f"recipe {path} must be a YAML mapping of argument names to values")
    includes = config.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(item, str) and item for item in includes):
        raise ConfigError(f"recipe {path}: 'include' must be a path or a list of paths (relative to the "
                          f"recipe), got {includes!r}")
    merged: dict = {}
    for include in includes:
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
