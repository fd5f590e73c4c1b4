"""``refine-rft eval``: generate Answer-only predictions, then score them.

    refine-rft eval --model Qwen/Qwen2-VL-7B-Instruct --data data/paper/test/cub.jsonl --prompts choice,both,cot --out runs/eval

writes ``OUT/predictions.jsonl`` (resumable: rerun the same command after an interruption) and
``OUT/scores.json``, and prints the accuracy table. Questions that cannot be used are listed in
``OUT/rejects.jsonl`` and the command then exits with status 1; a rerun with other settings than
those recorded in ``OUT/run_settings.json`` refuses unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from refine_rft.data.records import report_rejects
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
from refine_rft.resolution import choose_resolution
from refine_rft.trust import add_trust_argument


def parse_max_tokens(text: str) -> dict[str, int]:
    """``"cot=256,choice=4"`` -> ``{"cot": 256, "choice": 4}``.

    >>> parse_max_tokens("cot=256, choice=4")
    {'cot': 256, 'choice': 4}
    """
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        style, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"--max-new-tokens: expected STYLE=N[,STYLE=N], got {item!r}")
        out[style.strip()] = int(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or hub id")
    parser.add_argument("--adapter", help="peft LoRA adapter folder")
    parser.add_argument("--data", nargs="+", required=True, help="question JSONL file(s)")
    parser.add_argument("--prompts", default="choice,both,cot", help="comma-separated styles (default: %(default)s)")
    parser.add_argument("--out", required=True, help="run folder for predictions.jsonl and scores.json")
    parser.add_argument("--backend", choices=BACKENDS, default="hf")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=parse_max_tokens, default={},
                        help=f"per-style budgets, e.g. cot=256 (defaults: {DEFAULT_MAX_NEW_TOKENS})")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--similarity", choices=("siglip", "minilm", "auto"),
                        help="add Fine-R1's embedding-similarity score to the open-world styles: siglip (Fine-R1's "
                             "encoder, google/siglip-base-patch16-256: needs its weights and sentencepiece), minilm "
                             "(an offline stand-in, labelled as such) or auto (siglip where it loads)")
    parser.add_argument("--similarity-protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                        help="fine-r1 (default: Fine-R1's computation, quirks included, to compare with its "
                             "tables) or corrected (each dataset's own domain word and full class names)")
    parser.add_argument("--max-prompt-tokens", type=int,
                        help="reject questions whose prompt is longer (default: the model's context less the "
                             "style's --max-new-tokens)")
    add_resolution_arguments(parser)
    add_trust_argument(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="start OUT's predictions afresh (needed when model, adapter, backend, budgets or data change)")
    return parser


def add_resolution_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels`` / ``--min-pixels``: the image resolution (default: the training run's)."""
    parser.add_argument("--max-pixels", type=int,
                        help="largest image area in pixels, e.g. 1003520 = 1280*28*28 (default: the value saved "
                             "with the adapter's or merged model's training run, else the processor's default)")
    parser.add_argument("--min-pixels", type=int, help="smallest image area in pixels, e.g. 200704 = 256*28*28 "
                                                      "(default: as for --max-pixels)")


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
    args = build_parser().parse_args(argv)
    refuse_output_over_input(eval_inputs(args.data, args.model, args.adapter), eval_outputs(args.out))
    styles = check_styles([s.strip() for s in args.prompts.split(",") if s.strip()])
    resolution = choose_resolution(args.min_pixels, args.max_pixels, args.adapter, args.model)
    print(f"image resolution: {resolution.processor_kwargs() or 'the processor default'}")
    # One writer per run folder, from the first prediction to scores.json (the folder is removed
    # again if the input is refused before anything is written in it).
    with output_lock(args.out, folder=True, what="eval"):
        settings = EvalSettings(args.model, resolution, adapter=args.adapter, backend=args.backend,
                                batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, limit=args.limit,
                                overwrite=args.overwrite, trust_remote_code=args.trust_remote_code,
                                max_prompt_tokens=args.max_prompt_tokens)
        path = generate_predictions(args.data, styles, args.out, settings)
        if path.is_file():
            scores = score_predictions(path, similarity=args.similarity, protocol=args.similarity_protocol)
            print(format_scores(scores))
            print(f"wrote {path} and {Path(path).parent / 'scores.json'}")
    return report_rejects("eval", Path(args.out) / REJECTS_FILE, "questions")


if __name__ == "__main__":
    raise SystemExit(main())
