"""The ``refine-rft`` command: one subcommand per pipeline stage.

Each subcommand lives in its own module with a ``main(argv) -> int``; this file only dispatches,
and imports a stage's module when that stage runs (so ``refine-rft --help`` is instant).
``train`` and ``sft`` parse their arguments with TRL's ``TrlParser``, the others with argparse.

This is also the one error boundary: a :class:`~refine_rft.errors.UserError` (bad configuration,
bad data, a refused endpoint) is printed as one line, ``refine-rft <command>: error: <message>``,
with exit status 2; any other exception is a bug and keeps its traceback. Exit status 1 means the
command ran but rejected some rows (it says how many and where they are listed).
"""

from __future__ import annotations

import importlib
import sys

# name -> (module with main(argv), one-line help), in pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "tiny-model": ("refine_rft.models.tiny_cli", "build the embedded tiny random-weight VLM (offline)"),
    "build-base": ("refine_rft.demo.build_base", "build the tiny instruct base (tiny:instruct) from scratch"),
    "prepare": ("refine_rft.data.cli", "build question JSONL files from datasets or the synthetic set"),
    "judge": ("refine_rft.judge.cli", "score predictions with a teacher MLLM or the attribute judge (RSC)"),
    "train": ("refine_rft.train.grpo", "ReFine-RFT GRPO training from a YAML recipe"),
    "sft": ("refine_rft.train.sft", "the SFT baseline from a YAML recipe"),
    "export": ("refine_rft.train.export", "merge a LoRA adapter into its base model"),
    "eval": ("refine_rft.evaluate.cli", "generate and score Answer-only predictions (choice, both, cot, open, open_cot)"),
    "general-eval": ("refine_rft.evaluate.general", "general VQA (MMStar, MMMU, TextVQA) through lmms-eval"),
    "predict": ("refine_rft.evaluate.predict", "answer one image with reasoning, attributes and answer"),
    "report": ("refine_rft.report.cli", "tables, plots and the HTML report from run folders"),
    "demo": ("refine_rft.demo.pipeline", "the whole pipeline on CPU: tiny VLM, synthetic data, report"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: refine-rft COMMAND [ARGS...]", "", "Reinforcement fine-tuning for fine-grained "
             "visual recognition with reasoning (ReFine-RFT).", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'refine-rft COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from refine_rft import __version__

        print(f"refine-rft {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"refine-rft: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from refine_rft.errors import UserError

    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(rest) or 0)
    except UserError as error:
        print(f"refine-rft {name}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
