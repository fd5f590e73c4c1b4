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
    "prepare": ("refine_rft.data.cli", "build question JSONL files from datasets or the paper's setup"),
    "judge": ("refine_rft.judge.cli", "score predictions with a teacher MLLM or the attribute judge (RSC)"),
    "train": ("refine_rft.train.grpo", "ReFine-RFT GRPO training from a YAML recipe"),
    "sft": ("refine_rft.train.sft", "the SFT baseline from a YAML recipe"),
    "export": ("refine_rft.train.export", "merge a LoRA adapter into its base model"),
    "eval": ("refine_rft.evaluate.cli", "generate and score Answer-only predictions (choice, both, cot, open, open_cot)"),
    "general-eval": ("refine_rft.evaluate.general", "general VQA (MMStar, MMMU, TextVQA) through lmms-eval"),
    "predict": ("refine_rft.evaluate.predict", "answer one image with reasoning, attributes and answer"),
    "report": ("refine_rft.report.cli", "tables, plots and the HTML report from run folders"),
}


def _usage(prog: str, commands: dict[str, tuple[str, str]], about: str) -> str:
    width = max(map(len, commands))
    lines = [f"usage: {prog} COMMAND [ARGS...]", "", about, "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in commands.items()]
    lines += ["", f"Run '{prog} COMMAND --help' for a command's options."]
    return "\n".join(lines)


def run_command(prog: str, commands: dict[str, tuple[str, str]], about: str, argv: list[str]) -> int:
    """Dispatch ``argv`` to one of ``commands`` behind the error boundary (shared with the workshop's
    command, so both answer errors alike)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(prog, commands, about))
        return 0
    if argv[0] in ("-V", "--version"):
        from refine_rft import __version__

        print(f"{prog} {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"{prog}: unknown command {name!r}; valid commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    from refine_rft.errors import UserError

    try:
        module = importlib.import_module(commands[name][0])
        return int(module.main(rest) or 0)
    except UserError as error:
        print(f"{prog} {name}: error: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run_command("refine-rft", COMMANDS, "Reinforcement fine-tuning for fine-grained visual recognition "
                       "with reasoning (ReFine-RFT).", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
