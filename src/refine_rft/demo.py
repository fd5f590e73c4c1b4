"""``refine-rft demo``: the whole ReFine-RFT pipeline on CPU."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print("the demo arrives with the demo issue", file=sys.stderr)
    return 1
