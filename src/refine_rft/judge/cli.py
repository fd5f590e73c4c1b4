"""``refine-rft judge``: Reasoning-Answer (RSC) scores for a predictions file.

    refine-rft judge runs/eval/predictions.jsonl --endpoint http://judge:8000/v1 \\
        --model OpenGVLab/InternVL3-38B --out runs/eval/judge_scores.jsonl
    refine-rft judge runs/eval/predictions.jsonl --backend attributes --out runs/eval/judge_scores.jsonl
    refine-rft judge runs/eval/predictions.jsonl --config recipes/qwen2vl7b/refine_rft.yaml --out ...
    refine-rft judge runs/eval/predictions.jsonl --out ...     # the paper's GPT-4.1-mini (OPENAI_API_KEY)

The Reasoning-Answer judge is not the R_cot teacher: ``--config RECIPE`` takes the recipe's ``rsc_judge:``
section (the paper recipes: GPT-4.1-mini through OpenAI's endpoint), and without ``--config``,
``--endpoint`` or ``--model`` the command uses the paper's GPT-4.1-mini too
(:data:`~refine_rft.judge.config.PAPER_RSC_JUDGE`). When the judge is the very model that gave R_cot
in the training of the model being judged (read from the run's saved recipe, which the predictions'
``run_settings.json`` leads to; two attribute judges count as one), the command warns: that judge
favours the model trained to please it.

Each predictions row of the chosen styles (default: ``cot``) gets one score row, appended as it is
judged; a rerun skips what is done, retries what failed and judges again the rows whose response
changed (see
:mod:`refine_rft.judge.reasoning_answer`, the library this command runs). At the end, a per-dataset
summary is printed and written next to the scores as ``<SCORES>.summary.json``. Rows that cannot
be judged are listed in ``<SCORES>.rejects.jsonl`` and the command then exits with status 1; a
rerun with other settings than those in ``<SCORES>.settings.json`` refuses unless ``--overwrite``.

Exit status: 0 when every row is scored; 1 when rows were rejected or some judgements failed (their
count is printed, and a rerun retries them); 2 when nothing could be judged as configured: bad
settings or input, or a judge that cannot judge (refused key or model, unreachable URL, too many
failures; see :mod:`refine_rft.judge.health`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from refine_rft.data.records import RSC_KEYS, report_rejects
from refine_rft.files import refuse_output_over_input
from refine_rft.judge.config import PAPER_RSC_JUDGE, JudgeConfig, add_setting_flags, judge_name, judge_settings
from refine_rft.judge.provenance import training_teacher
from refine_rft.judge.reasoning_answer import score_reasoning_answers, scores_outputs

# The judge settings the command takes as flags (on top of --config): --endpoint (base_urls), --cache
# (cache_path), --reject-injections, --no-sight-check, and the others by their own names.
SETTING_FLAGS = ("backend", "base_urls", "model", "api_key_env", "concurrency", "timeout", "max_retries",
                 "cache_path", "reject_injections", "max_failure_rate", "failure_window", "sight_check")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="predictions JSONL (from refine-rft eval)")
    parser.add_argument("--out", type=Path, required=True, help="scores JSONL (appended; resumable)")
    parser.add_argument("--config", type=Path, help="YAML with judge settings: a training recipe (its "
                                                    "'rsc_judge:', else 'judge:' section, includes resolved) or "
                                                    "a mapping; flags override it")
    # Made from JudgeConfig's fields (names, types, help); where a setting comes from when no flag
    # gives it (the paper's judge, or --config) is this command's, said in its description.
    add_setting_flags(parser, SETTING_FLAGS, unstated=("backend", "base_urls", "model", "api_key_env"))
    parser.add_argument("--styles", default="cot", help="comma-separated styles to judge (default: cot)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start the scores afresh (needed when the predictions, backend, model or prompt change)")
    return parser


def config_from_args(args: argparse.Namespace) -> JudgeConfig:
    """The judge configuration: the ``--config`` file's ``rsc_judge`` (else its ``judge``) settings, or
    the paper's GPT-4.1-mini when neither ``--config`` nor an endpoint or model is given; then the flags."""
    if args.config:
        values = judge_settings(args.config, "rsc_judge") or judge_settings(args.config, "judge")
    elif args.base_urls is None and args.model is None and args.backend in (None, "openai"):
        values = dict(PAPER_RSC_JUDGE)
    else:
        values = {}
    values.update({name: getattr(args, name) for name in SETTING_FLAGS if getattr(args, name) is not None})
    return JudgeConfig.from_dict(values)


def warn_if_judge_is_the_teacher(config: JudgeConfig, predictions: Path) -> bool:
    """Warn when the Reasoning-Answer judge is the judge that gave R_cot in training (the same model,
    or both the attribute judge); whether it did."""
    found = training_teacher(predictions)
    if found is None or found[0] != judge_name(config):
        return False
    teacher, run = found
    print(f"refine-rft judge: warning: the Reasoning-Answer judge {teacher!r} is the teacher that gave R_cot "
          f"when {run} was trained; it favours the model trained to please it. The paper judges with another "
          f"model ({PAPER_RSC_JUDGE['model']}): see the recipe's rsc_judge, or --model/--endpoint",
          file=sys.stderr)
    return True


def print_summary(summary: dict[str, dict]) -> None:
    print(f"{'dataset':<16}{'n':>7}" + "".join(f"{key:>9}" for key in RSC_KEYS))
    for name, values in summary.items():
        print(f"{name:<16}{values['n']:>7}" + "".join(f"{values[key]:>9.2f}" for key in RSC_KEYS))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    styles = [style.strip() for style in args.styles.split(",") if style.strip()]
    # The recipe is an input too (the predictions are checked where they are read).
    refuse_output_over_input([("--config", args.config)], scores_outputs(args.out))
    config = config_from_args(args)
    warn_if_judge_is_the_teacher(config, args.predictions)
    result = score_reasoning_answers(args.predictions, args.out, config, styles, progress=True,
                                     overwrite=args.overwrite)
    changed = f", re-judged {result.rejudged} whose response changed" if result.rejudged else ""
    print(f"judged {result.judged} responses ({result.already_scored} already scored in {args.out}{changed})",
          file=sys.stderr)
    if result.dropped:
        print(f"removed {result.dropped} scores of rows no longer in {args.predictions}", file=sys.stderr)
    print_summary(result.summary)
    counters = ", ".join(f"{name.removeprefix('judge/')}={value:g}" for name, value in result.stats.items())
    print(f"judge: {counters}", file=sys.stderr)
    if result.failures:
        print(f"refine-rft judge: {result.failures} of {result.failures + result.judged} responses could not be "
              f"judged (not written to {args.out}); rerun the same command to retry them", file=sys.stderr)
    rejected = report_rejects("judge", result.rejects_path, "rows") if result.rejects_path else 0
    return 1 if result.failures or rejected else 0
