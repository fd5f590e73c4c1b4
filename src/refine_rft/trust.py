"""Code in a model folder runs only when the user asks for it (``--trust-remote-code``).

A model folder or hub repository may ship Python (``auto_map`` in its configuration files points
transformers at it), and loading it with ``trust_remote_code=True`` runs that code. So every
command that loads a processor or model (``eval``, ``predict``, ``export``, ``general-eval``, the
vLLM backend, training) decides here:

- ``--trust-remote-code`` (or the recipe key ``trust_remote_code: true``): the code runs;
- a folder without code: loaded with ``trust_remote_code=False``;
- the project's own small models (the workshop's, and what is trained or exported from them):
  their one code file, ``image_only_processor.py``, is the project's own; its SHA-256 must be the
  one recorded here (:data:`PROCESSOR_SHA256`, which a test keeps equal to the workshop's copy),
  and every ``auto_map`` entry must point into it. Then it loads without the flag;
- anything else with code (another file, a modified copy, an ``auto_map`` into another module
  or repository): refused, naming the file and the flag, before any of it is imported.

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

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.errors import ConfigError

# The project's own processor code (the workshop's image-only processor, copied beside its models'
# weights), recorded by name and digest: the pipeline never imports the workshop to find it.
PROCESSOR_NAME = "image_only_processor.py"
PROCESSOR_SHA256 = "354c462e7e25da7b2fa720443621671e41280eddfbdaeeea3a3c24fd945047f3"
CONFIG_FILES = ("config.json", "processor_config.json", "tokenizer_config.json", "preprocessor_config.json",
                "image_processor_config.json", "video_preprocessor_config.json")
FLAG = "--trust-remote-code (recipe key trust_remote_code: true)"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    docstring); raises :class:`~refine_rft.errors.ConfigError` for a folder whose code is not the
    project's and was not trusted."""
    if trust_remote_code:
        return True
    folder = Path(model)
    if not folder.is_dir():
        return False  # a hub id: transformers refuses its code unless trusted (see load_processor)
    code = sorted(p.name for p in folder.glob("*.py"))
    targets = _auto_map_targets(folder)
    if not code and not targets:
        return False
    ours = PROCESSOR_NAME
    foreign = [name for name in code if name != ours]
    foreign += [t for t in targets if not t.startswith(f"{Path(ours).stem}.")]
    if not foreign and ours in code and _sha256(folder / ours) != PROCESSOR_SHA256:
        foreign = [f"{ours} (modified: its SHA-256 is not the project's)"]
    if foreign or ours not in code:
        shown = ", ".join(foreign) or ", ".join(targets)
        raise ConfigError(f"{folder} ships code that loading would run ({shown}); if you trust it, rerun "
                          f"with {FLAG}")
    return True


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
        "help": "run the Python code a model folder or hub repository ships (off by default; the project's "
                "tiny models load without it, their processor file being checksummed)"})
