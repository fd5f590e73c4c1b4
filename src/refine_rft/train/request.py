"""What a training command was asked (its *request*), read before TRL is imported, so that a rerun of a
finished run ends at once instead of after the seconds that importing TRL and building its configs take.

Whether a run is finished is decided by the settings guard
(:func:`~refine_rft.train.resume.prepare_output_dir`): the settings a request resolves to are compared
with those recorded in ``run_settings.json``. That needs
TRL's config classes, whose defaults fill in what a recipe leaves unsaid. The shortcut here needs none of
it: once the guard has accepted a request's settings for ``output_dir``, the request's digest is recorded
beside them (``request_sha256``, which the guard never compares). A later request with the same digest
resolves to the same settings, so when the run is finished (its final ``trainer_state.json``) and its
training file still has the recorded content, the command says so and returns. Anything else (another
digest, a changed training file, ``overwrite`` asked for, no ``output_dir`` or ``train_file`` to be found)
takes the full path, which compares the settings one by one and refuses or resumes exactly as it always
did.

The digest covers what the settings are resolved from:

- the recipe as read (``include:`` followed, so an edited included file changes it; a mapping from
  Python as given) with the overrides merged over it, less the settings that do not change what a run
  computes (:data:`~refine_rft.train.resume.OPERATIONAL`, which the guard leaves out too: the demo's toy
  teacher is served at a new URL every time);
- the flags, as given;
- the working folder (a relative path means what it meant);
- refine-rft's own source (every ``.py`` file of the package, about 10 ms to read), so that a default
  edited in a checkout, without a new version, takes the full path;
- the versions of the other packages whose defaults apply (TRL, transformers, peft, accelerate, torch),
  and the number of processes (``WORLD_SIZE``; start-up checks it against ``questions_per_step``).

The shortcut loads nothing, so it does not check the GPU against the recipe's ``gpu_memory_gb``.

>>> Request.read("train", ["--output_dir", "runs/x", "--train-file=q.jsonl"]).output_dir
'runs/x'
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from refine_rft.data.records import SETTINGS_FILE
from refine_rft.files import file_digest
from refine_rft.recipes import load_recipe, merge

# Where the digest is recorded in the guard's record (run_settings.json).
REQUEST_KEY = "request_sha256"
# The packages whose defaults fill in the settings a request leaves unsaid, by version (refine-rft's own
# defaults by its source, :func:`source_digest`, as a checkout changes them without a new version).
DEFAULTS_FROM = ("trl", "transformers", "peft", "accelerate", "torch")


@dataclass(frozen=True)
class Request:
    """A training command's request: its digest and the values the shortcut needs (``None``: not given)."""

    command: str
    digest: str
    output_dir: str | None
    train_file: str | None
    overwrite: bool

    @classmethod
    def read(cls, command: str, argv: list | None = None, recipe: str | os.PathLike | dict | None = None,
             overrides: dict | None = None) -> Request:
        """The request of ``refine-rft COMMAND ARGV`` (or of ``train_grpo(recipe, overrides)``): the
        ``--config`` file, else ``recipe``, read as :func:`refine_rft.settings.parse` reads it, then
        ``overrides``, then the flags."""
        from refine_rft.train.resume import OPERATIONAL

        argv = [str(arg) for arg in argv or []]
        source = _flag(argv, "config") or recipe
        values = {} if source is None else dict(source) if isinstance(source, dict) else load_recipe(source)
        values = merge(values, overrides or {})
        defining = {name: value for name, value in values.items() if name not in OPERATIONAL}
        if isinstance(values.get("judge"), dict):
            defining["judge"] = {name: value for name, value in values["judge"].items()
                                 if f"judge.{name}" not in OPERATIONAL}
        described = {"command": command, "recipe": defining, "flags": argv, "cwd": os.getcwd(),
                     "source": source_digest(), "versions": {name: _version(name) for name in DEFAULTS_FROM},
                     "processes": os.environ.get("WORLD_SIZE", "1")}
        digest = hashlib.sha256(json.dumps(described, default=str).encode()).hexdigest()
        # Read here only to find the run: a folder's recorded digest was written by the request that ran
        # into it, so a folder found for a request of the same digest is that request's own.
        output_dir, train_file = (_flag(argv, name) or values.get(name)
                                  for name in ("output_dir", "train_file"))
        overwrite = bool(values.get("overwrite")) or any(arg.partition("=")[0] == "--overwrite" for arg in argv)
        return cls(command, digest, output_dir and str(output_dir), train_file and str(train_file), overwrite)

    def notes(self) -> dict:
        """What the guard records beside the settings it accepted for this request."""
        return {REQUEST_KEY: self.digest}

    def finished_run(self) -> Path | None:
        """``output_dir`` when it holds this request's finished run (see the module docstring), the
        finished-run line said; ``None`` when the full path must decide."""
        from refine_rft.train.resume import say_finished

        if self.overwrite or not self.output_dir or not self.train_file:
            return None
        output_dir = Path(self.output_dir)
        record = output_dir / SETTINGS_FILE
        if not (output_dir / "trainer_state.json").is_file() or not record.is_file():
            return None
        try:
            recorded = json.loads(record.read_text(encoding="utf-8"))
        except ValueError:  # not JSON, not UTF-8: the full path names the file and what is wrong with it
            return None
        if not isinstance(recorded, dict) or recorded.get(REQUEST_KEY) != self.digest:
            return None
        data = Path(self.train_file)
        if not data.is_file() or file_digest(data) != recorded.get("train_file_sha256"):
            return None  # the full path refuses, naming the file whose content changed
        if os.environ.get("RANK", "0") == "0":  # one line per launch (torchrun and accelerate set RANK)
            say_finished(self.command, output_dir)
        return output_dir


def _flag(argv: list[str], name: str) -> str | None:
    """The value the last ``--name`` flag (or ``--na-me``) in ``argv`` gives, ``--name V`` or ``--name=V``.

    >>> _flag(["--output-dir", "a", "--max_steps", "4", "--output_dir=b"], "output_dir")
    'b'
    """
    spellings = {f"--{name}", f"--{name.replace('_', '-')}"}
    value = None
    for index, arg in enumerate(argv):
        flag, equals, inline = arg.partition("=")
        if flag in spellings:
            value = inline if equals else argv[index + 1] if index + 1 < len(argv) else None
    return value


def source_digest() -> str:
    """SHA-256 over the path and content of every ``.py`` file of the installed ``refine_rft`` package.

    >>> len(source_digest())
    64
    """
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        content = path.read_bytes()
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:  # not installed: recorded as absent, which a later install changes
        return None
