"""``refine-rft-workshop tiny-model OUT``: build the embedded tiny VLM into a folder."""

from __future__ import annotations

import argparse

from refine_rft_workshop.tiny import ARCHS, SIZES, build_tiny_model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="refine-rft-workshop tiny-model", description=__doc__)
    parser.add_argument("out", help="folder to write the model, tokenizer and processor to")
    parser.add_argument("--arch", choices=ARCHS, default="qwen2_vl", help="architecture (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default: %(default)s)")
    parser.add_argument("--size", choices=list(SIZES), default="tiny", help="model size preset (default: %(default)s)")
    args = parser.parse_args(argv)
    path = build_tiny_model(args.out, arch=args.arch, seed=args.seed, size=args.size)
    print(f"tiny {args.arch} model written to {path}")
    return 0
