"""``refine-rft eval``: generate Answer-only predictions, then score them.

    refine-rft eval --model Qwen/Qwen2-VL-7B-Instruct --data data/paper/test/cub.jsonl --prompts choice,both,cot --out runs/eval

writes ``OUT/predictions.jsonl`` (resumable: rerun the same command after an interruption) and
``OUT/scores.json``, and prints the accuracy table. Questions that cannot be used are listed in
``OUT/rejects.jsonl`` and the command then exits with status 1; a rerun with other settings than
those recorded in ``OUT/run_settings.json`` refuses unless ``--overwrite``.

The settings may come from a file: ``refine-rft eval --config exp.yaml`` reads the ``eval:`` section
of an experiment file (the training recipe with the evaluation beside it), or a file of these
settings alone; flags override it::

    # exp.yaml
    include: recipes/qwen2vl7b/refine_rft.yaml
    eval: {model: Qwen/Qwen2-VL-7B-Instruct, adapter: runs/qwen2vl7b/refine_rft,
           data: [data/paper/test/cub.jsonl], out: runs/qwen2vl7b/refine_rft/eval}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from refine_rft.data.records import report_rejects
from refine_rft.errors import ConfigError
from refine_rft.evaluate.generate import (
    BACKENDS,
    DEFAULT_MAX_NEW_TOKENS,
    REJECTS_FILE,
    EvalSettings,
    eval_inputs,
    eval_outputs,
    check_styles,
    generate_predictions,
)
from refine_rft.evaluate.score import score_predictions
from refine_rft.evaluate.similarity import DEFAULT_PROTOCOL, PROTOCOLS
from refine_rft.files import output_lock, refuse_output_over_input
from refine_rft.resolution import ResolutionArguments, choose_resolution
from refine_rft.settings import parse
from refine_rft.trust import TrustArguments


def parse_max_tokens(text: str) -> dict[str, int]:
    """``"cot=256,choice=4"`` (or a JSON object) -> ``{"cot": 256, "choice": 4}``.

    >>> parse_max_tokens("cot=256, choice=4")
    {'cot': 256, 'choice': 4}
    """
    if text.lstrip().startswith("{"):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"max_new_tokens: not a JSON object: {text!r} ({error.msg})") from None
        return dict(values)
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        style, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ConfigError(f"max_new_tokens: expected STYLE=N[,STYLE=N], got {item!r}")
        out[style.strip()] = int(value)
    return out


@dataclass
class EvalArguments:
    """What ``refine-rft eval`` evaluates and where; ``--config FILE`` reads a file's ``eval:`` section."""

    model: str = field(metadata={"help": "model folder or hub id"})
    data: list[str] = field(metadata={"help": "question JSONL file(s)"})
    out: str = field(metadata={"help": "run folder for predictions.jsonl and scores.json"})
    adapter: str | None = field(default=None, metadata={"help": "peft LoRA adapter folder"})
    prompts: str = field(default="choice,both,cot", metadata={"help": "comma-separated styles"})
    backend: str = field(default="hf", metadata={"help": "generation engine", "choices": BACKENDS})
    batch_size: int = field(default=16, metadata={"help": "questions per generate call"})
    max_new_tokens: dict | str | None = field(default=None, metadata={
        "help": f"per-style budgets, e.g. cot=256,choice=4 or a mapping (defaults: {DEFAULT_MAX_NEW_TOKENS})"})
    limit: int | None = field(default=None, metadata={"help": "only the first N questions"})
    similarity: Literal["siglip", "minilm", "auto"] | None = field(default=None, metadata={
        "help": "add Fine-R1's embedding-similarity score to the open-world styles: siglip (Fine-R1's encoder, "
                "google/siglip-base-patch16-256: needs its weights and sentencepiece), minilm (an offline stand-in, "
                "labelled as such) or auto (siglip where it loads)"})
    similarity_protocol: str = field(default=DEFAULT_PROTOCOL, metadata={
        "help": "fine-r1 (default: Fine-R1's computation, quirks included, to compare with its tables) or "
                "corrected (each dataset's own domain word and full class names)", "choices": PROTOCOLS})
    max_prompt_tokens: int | None = field(default=None, metadata={
        "help": "reject questions whose prompt is longer (default: the model's context less the style's "
                "max_new_tokens)"})
    overwrite: bool = field(default=False, metadata={
        "help": "start OUT's predictions afresh (needed when model, adapter, backend, budgets or data change)"})

    def __post_init__(self) -> None:
        if isinstance(self.data, str):  # one file, from a settings file
            self.data = [self.data]
        if self.max_new_tokens is None:
            self.max_new_tokens = {}
        elif isinstance(self.max_new_tokens, str):
            self.max_new_tokens = parse_max_tokens(self.max_new_tokens)


def parse_args(argv: list[str] | None = None) -> tuple[EvalArguments, ResolutionArguments, TrustArguments]:
    return parse("refine-rft eval", [EvalArguments, ResolutionArguments, TrustArguments], argv,
                 description=__doc__, select="eval")


def format_scores(scores: dict) -> str:
    """A plain-text summary: one line per style with per-dataset and average accuracy."""
    lines = []
    for style, s in scores["styles"].items():
        per = "  ".join(f"{name}={d['accuracy']:.1f}" for name, d in s["per_dataset"].items())
        extra = f"  exact={s['exact_average']:.1f}" if "exact_average" in s else ""
        if "similarity" in s:
            extra += (f"  similarity={s['similarity']['average']:.3f} ({s['similarity']['encoder']}, "
                      f"{s['similarity'].get('protocol', 'fine-r1')} protocol)")
        if "per_class_split" in s:
            extra += "  " + "  ".join(f"{k}={v['accuracy'] if isinstance(v, dict) else v:.1f}"
                                      for k, v in s["per_class_split"].items())
        lines.append(f"{style:<6} avg={s['average']:.1f}  {per}  (n={s['n']}, unparseable {s['unparseable']:.1f}%)"
                     + extra)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args, pixels, trust = parse_args(argv)
    refuse_output_over_input(eval_inputs(args.data, args.model, args.adapter), eval_outputs(args.out))
    styles = check_styles([s.strip() for s in args.prompts.split(",") if s.strip()])
    resolution = choose_resolution(pixels.min_pixels, pixels.max_pixels, args.adapter, args.model)
    print(f"image resolution: {resolution.processor_kwargs() or 'the processor default'}")
    # One writer per run folder, from the first prediction to scores.json (the folder is removed
    # again if the input is refused before anything is written in it).
    with output_lock(args.out, folder=True, what="eval"):
        settings = EvalSettings(args.model, resolution, adapter=args.adapter, backend=args.backend,
                                batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, limit=args.limit,
                                overwrite=args.overwrite, trust_remote_code=trust.trust_remote_code,
                                max_prompt_tokens=args.max_prompt_tokens)
        path = generate_predictions(args.data, styles, args.out, settings)
        if path.is_file():
            scores = score_predictions(path, similarity=args.similarity, protocol=args.similarity_protocol)
            print(format_scores(scores))
            print(f"wrote {path} and {Path(path).parent / 'scores.json'}")
    return report_rejects("eval", Path(args.out) / REJECTS_FILE, "questions")


if __name__ == "__main__":
    raise SystemExit(main())
