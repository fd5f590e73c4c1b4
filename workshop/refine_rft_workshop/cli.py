"""The ``refine-rft-workshop`` command: toy data, toy models and the CPU demo around ``refine-rft``.

Dispatches like ``refine-rft`` (same error boundary: a known error is one line with exit status 2).
"""

from __future__ import annotations

import sys

from refine_rft.cli import run_command

COMMANDS: dict[str, tuple[str, str]] = {
    "synthetic": ("refine_rft_workshop.synthetic_cli", "draw the synthetic birds into question JSONL files"),
    "tiny-model": ("refine_rft_workshop.tiny_cli", "build a tiny random-weight VLM (offline)"),
    "build-base": ("refine_rft_workshop.base.build_base", "build the tiny instruct base from scratch"),
    "demo": ("refine_rft_workshop.demo.pipeline", "the whole pipeline on CPU: tiny VLM, synthetic birds, report"),
}


def main(argv: list[str] | None = None) -> int:
    return run_command("refine-rft-workshop", COMMANDS, "The workshop around refine-rft: toy data, toy "
                       "models and the CPU demo.", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
