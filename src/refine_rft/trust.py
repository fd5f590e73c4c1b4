"""Code in a model folder runs only when the user asks for it (``--trust-remote-code``).

A model folder or hub repository may ship Python (``auto_map`` in its configuration files points
transformers at it), and loading it with ``trust_remote_code=True`` runs that code. So every
command that loads a processor or model (``eval``, ``predict``, ``export``, ``general-eval``, the
vLLM backend, training) decides here:

- ``--trust-remote-code`` (or the recipe key ``trust_remote_code: true``): the code runs;
- a folder without code: loaded with ``trust_remote_code=False``;
- a folder with code (a ``.py`` file, or an ``auto_map`` entry in its configuration files):
  refused, naming the code and the flag, before any of it is imported. No folder is trusted for
  what it is or says about itself: a model that ships code (the workshop's tiny models ship an
  image-only processor) is run with the flag, as their recipes set it.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "config.json").write_text('{"model_type": "qwen2_vl"}')
>>> trust_for(folder), trust_for(folder, trust_remote_code=True)
(False, True)
>>> _ = (folder / "processing_evil.py").write_text("import os")
>>> trust_for(folder)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
refine_rft.errors.ConfigError: ...ships code that loading would run (processing_evil.py); ...
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.errors import ConfigError

CONFIG_FILES = ("config.json", "processor_config.json", "tokenizer_config.json", "preprocessor_config.json",
                "image_processor_config.json", "video_preprocessor_config.json")
FLAG = "--trust-remote-code (recipe key trust_remote_code: true)"


def _auto_map_targets(folder: Path) -> list[str]:
    """Every class reference of every ``auto_map`` in the folder's configuration files."""
    targets = []
    for name in CONFIG_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # not ours to judge: transformers reports a broken config itself
        auto_map = config.get("auto_map") if isinstance(config, dict) else None
        for value in (auto_map or {}).values() if isinstance(auto_map, dict) else []:
            targets += [v for v in (value if isinstance(value, list) else [value]) if v]
    return [str(t) for t in targets]


def trust_for(model: str | os.PathLike, trust_remote_code: bool = False) -> bool:
    """The ``trust_remote_code`` to load ``model`` (a folder or hub id) with (see the module
    docstring); raises :class:`~refine_rft.errors.ConfigError` for a folder that ships code that
    was not trusted."""
    if trust_remote_code:
        return True
    folder = Path(model)
    if not folder.is_dir():
        return False  # a hub id: transformers refuses its code unless trusted (see load_processor)
    code = sorted(p.name for p in folder.glob("*.py")) + _auto_map_targets(folder)
    if not code:
        return False
    raise ConfigError(f"{folder} ships code that loading would run ({', '.join(code)}); if you trust it, rerun "
                      f"with {FLAG}")


def load_processor(model: str | os.PathLike, trust_remote_code: bool = False, **kwargs):
    """``AutoProcessor.from_pretrained(model, **kwargs)`` with :func:`trust_for`'s decision; a hub
    repository that needs its code trusted fails in one line naming the flag."""
    from transformers import AutoProcessor

    trust = trust_for(model, trust_remote_code)
    try:
        return AutoProcessor.from_pretrained(model, trust_remote_code=trust, **kwargs)
    except ValueError as error:
        if trust or "trust_remote_code" not in str(error):
            raise
        raise ConfigError(f"{model} needs its own code to load; if you trust it, rerun with {FLAG}") from None


@dataclass
class TrustArguments:
    """``--trust-remote-code``, for every command that loads a model folder."""

    trust_remote_code: bool = field(default=False, metadata={
        "help": "run the Python code a model folder or hub repository ships (off by default)"})
