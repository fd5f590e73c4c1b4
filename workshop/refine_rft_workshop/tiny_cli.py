"""``refine-rft-workshop tiny-model OUT``: build the embedded tiny VLM into a folder."""

from __future__ import annotations

from dataclasses import dataclass, field

from refine_rft_workshop.tiny import ARCHS, SIZES, build_tiny_model


@dataclass
class TinyModelArguments:
    """Where the tiny model goes, and which one."""

    out: str = field(metadata={"positional": True, "metavar": "OUT",
                               "help": "folder to write the model, tokenizer and processor to"})
    arch: str = field(default="qwen2_vl", metadata={"help": "architecture", "choices": ARCHS})
    seed: int = field(default=0, metadata={"help": "weight initialisation seed"})
    size: str = field(default="tiny", metadata={"help": "model size preset", "choices": list(SIZES)})


def parse_args(argv: list[str] | None = None) -> tuple[TinyModelArguments]:
    from refine_rft.settings import parse

    return parse("refine-rft-workshop tiny-model", [TinyModelArguments], argv, description=__doc__,
                 select="tiny_model")


def main(argv: list[str]) -> int:
    (args,) = parse_args(argv)
    path = build_tiny_model(args.out, arch=args.arch, seed=args.seed, size=args.size)
    print(f"tiny {args.arch} model written to {path}")
    return 0
