"""The shipped tiny instruct base, addressed as ``tiny:instruct``.

A ``base``-size tiny Qwen2-VL trained by ``refine-rft-workshop build-base`` (:mod:`refine_rft_workshop.base.build_base`)
to answer the synthetic birds' questions the way an off-the-shelf instruct MLLM answers real ones:
Choice well, the CoT tag format only part of the time. It lives in the package
(``refine_rft_workshop/tiny_instruct/``, fp16 safetensors, its card in ``README.md``) and loads
offline in about a second.

``checksums.json``, written last by the build, lists every file with its SHA-256: a missing or
altered file is reported, with the command that rebuilds the folder, before any loader sees it.

>>> INSTRUCT_DIR.name
'tiny_instruct'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from refine_rft.errors import MissingFile

INSTRUCT_DIR = Path(__file__).with_name("tiny_instruct")
CHECKSUMS = "checksums.json"


class InstructBaseError(MissingFile):
    """The shipped instruct base is missing or corrupt (the message says how to rebuild it)."""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: Path) -> dict[str, str]:
    """Write ``folder/checksums.json`` (every other file's SHA-256) and return it."""
    sums = {p.name: file_digest(p) for p in sorted(Path(folder).iterdir()) if p.is_file() and p.name != CHECKSUMS}
    (Path(folder) / CHECKSUMS).write_text(json.dumps(sums, indent=1, sort_keys=True) + "\n")
    return sums


def verify_instruct_base(folder: str | Path = INSTRUCT_DIR) -> Path:
    """``folder`` if it holds a complete, unaltered instruct base; else :class:`InstructBaseError`.

    >>> import tempfile
    >>> try:
    ...     verify_instruct_base(tempfile.mkdtemp())
    ... except InstructBaseError as error:
    ...     print(error)  # doctest: +ELLIPSIS
    the tiny instruct base in ... is missing or corrupt (checksums.json is missing); rebuild it with: refine-rft-workshop build-base --out ... --force
    """
    folder = Path(folder)

    def fail(why: str) -> InstructBaseError:
        return InstructBaseError(f"the tiny instruct base in {folder} is missing or corrupt ({why}); rebuild it "
                                 f"with: refine-rft-workshop build-base --out {folder} --force")

    listing = folder / CHECKSUMS
    if not listing.is_file():
        raise fail(f"{CHECKSUMS} is missing")
    try:
        sums = json.loads(listing.read_text())
    except (OSError, ValueError) as error:
        raise fail(f"{CHECKSUMS} is unreadable: {error}") from None
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if name not in sums:
            raise fail(f"{CHECKSUMS} does not list {name}")
    for name, expected in sums.items():
        path = folder / name
        if not path.is_file():
            raise fail(f"{name} is missing")
        if file_digest(path) != expected:
            raise fail(f"{name} does not match its checksum")
    return folder


def instruct_model_path() -> Path:
    """The folder of the shipped instruct base, checked (see :func:`verify_instruct_base`)."""
    return verify_instruct_base(INSTRUCT_DIR)
