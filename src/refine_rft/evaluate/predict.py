"""``refine-rft predict``: answer one image, showing the reasoning, the attributes and the answer.

    refine-rft predict --model Qwen/Qwen2-VL-7B-Instruct --adapter runs/refine/adapter \\
        --image bird.jpg --options "Laysan_Albatross;Sooty_Albatross;Least_Auklet;Rusty_Blackbird"
    refine-rft predict --model ... --image bird.jpg --dataset cub --root data/CUB --label Laysan_Albatross

With ``--dataset``/``--root``/``--label`` the options are the labelled class and its three classes
with the most similar names (the ``similar`` distractors of ``refine-rft prepare``), shuffled with
a seed; the answer is then marked right or wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from refine_rft.data.records import shuffle_options
from refine_rft.dataset_specs import noun_of
from refine_rft.errors import ConfigError
from refine_rft.evaluate.generate import BACKENDS, DEFAULT_MAX_NEW_TOKENS, make_generator
from refine_rft.evaluate.score import parsed_choice
from refine_rft.parsing import parse_response
from refine_rft.prompts import LETTERS, STYLES, prompt_style, question_text
from refine_rft.resolution import ResolutionArguments
from refine_rft.settings import SettingsParser
from refine_rft.trust import TrustArguments

PROG = "refine-rft predict"


@dataclass
class PredictArguments:
    """One image and its options (``--options``, or ``--dataset``/``--root``/``--label``); the model."""

    model: str = field(metadata={"help": "model folder or hub id"})
    image: str = field(metadata={"help": "the image file"})
    adapter: str | None = field(default=None, metadata={"help": "peft LoRA adapter folder"})
    options: str | None = field(default=None, metadata={"help": "option names separated by ';'"})
    dataset: str | None = field(default=None, metadata={
        "help": "dataset whose class list gives the options (with --root, --label)"})
    root: str | None = field(default=None, metadata={"help": "dataset folder (as for refine-rft prepare)"})
    label: str | None = field(default=None, metadata={
        "help": "the image's true class (its 3 most similar classes are the distractors)"})
    noun: str | None = field(default=None, metadata={
        "help": "what the options are ('birds', ...; default from --dataset, else 'birds')"})
    style: str = field(default="cot", metadata={"help": "prompt style", "choices": STYLES})
    max_new_tokens: int | None = field(default=None, metadata={"help": "answer budget (default: the style's)"})
    backend: str = field(default="hf", metadata={"help": "generation engine", "choices": BACKENDS})


def parse_args(argv: list[str] | None = None) -> tuple[PredictArguments, ResolutionArguments, TrustArguments]:
    return _parser().parse(argv)


def _parser() -> SettingsParser:
    return SettingsParser(PROG, [PredictArguments, ResolutionArguments, TrustArguments], __doc__, select="predict")


def parse_options(text: str) -> list[str]:
    """``"a; b;c"`` -> ``["a", "b", "c"]`` (2 to 4 distinct names).

    >>> parse_options("Laysan_Albatross; Sooty_Albatross")
    ['Laysan_Albatross', 'Sooty_Albatross']
    """
    options = [o.strip() for o in text.split(";") if o.strip()]
    if not 2 <= len(options) <= len(LETTERS) or len(set(options)) != len(options):
        raise ConfigError(f"--options: give 2 to {len(LETTERS)} distinct names separated by ';', got {options}")
    return options


def dataset_options(dataset: str, root: str, label: str, split: str = "test", seed: int = 0) -> tuple[list[str], int]:
    """``label`` and its 3 most name-similar classes of ``dataset``, shuffled; and the answer index."""
    from refine_rft.data.distractors import name_similarity, ranked_neighbours
    from refine_rft.data.readers import read_split

    classes = read_split(dataset, root, split).classes
    if label not in classes:
        raise ConfigError(f"--label {label!r} is not a class of {dataset} (e.g. {', '.join(classes[:5])}, ...)")
    neighbours = ranked_neighbours(name_similarity(classes), classes)[label][: len(LETTERS) - 1]
    return shuffle_options(f"predict/{label}", [label, *neighbours], label, seed)


def render(console: Console, options: list[str], response: str, style: str, answer: int | None) -> int | None:
    """Print the response's blocks as panels and the parsed answer; return the chosen index."""
    parsed = parse_response(response)
    if parsed.think is not None:
        console.print(Panel(parsed.think, title="Reasoning", border_style="cyan"))
    if parsed.attribute is not None:
        console.print(Panel(parsed.attribute, title="Attributes", border_style="magenta"))
    if parsed.think is None and parsed.attribute is None:
        console.print(Panel(response or "(empty)", title="Response", border_style="cyan"))
    choice = parsed_choice(style, response, options)
    line = Text("Answer: ", style="bold")
    if choice is None:
        line.append(f"none that the {style} rule accepts ({parsed.answer or response!r})", style="yellow")
    else:
        # An open-world answer has no letter: the options served only as the classes it may name.
        named = options[choice] if prompt_style(style).open_world else f"{LETTERS[choice]}. {options[choice]}"
        line.append(named, style="bold green" if answer in (None, choice) else "bold red")
        if answer is not None:
            line.append("  (correct)" if choice == answer else f"  (wrong: {LETTERS[answer]}. {options[answer]})")
    console.print(line)
    return choice


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, pixels, trust = parser.parse(argv)
    if not Path(args.image).is_file():
        parser.error(f"--image: no such file {args.image}")
    if args.options and not args.dataset:
        options, answer = parse_options(args.options), None
    elif args.dataset and args.root and args.label and not args.options:
        options, answer = dataset_options(args.dataset, args.root, args.label)
    else:
        parser.error("give either --options, or --dataset with --root and --label")
    from refine_rft.resolution import choose_resolution

    noun = args.noun or noun_of(args.dataset, default="birds")
    record = {"id": "predict", "image": args.image, "noun": noun, "options": options}
    console = Console()
    console.print(Panel(question_text(noun, options, args.style), title=Path(args.image).name, border_style="blue"))
    resolution = choose_resolution(pixels.min_pixels, pixels.max_pixels, args.adapter, args.model)
    generator = make_generator(args.backend, args.model, args.adapter, resolution, trust.trust_remote_code)
    budget = args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[args.style]
    response = generator.generate([record], args.style, budget)[0]
    render(console, options, response, args.style, answer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
