"""``refine-rft judge``: Reasoning-Answer (RSC) scores for a predictions file.

    refine-rft judge runs/eval/predictions.jsonl --endpoint http://judge:8000/v1 \\
        --model OpenGVLab/InternVL3-38B --out runs/eval/rsc_scores.jsonl
    refine-rft judge runs/eval/predictions.jsonl --backend attributes --out runs/eval/rsc_scores.jsonl
    refine-rft judge runs/eval/predictions.jsonl --config recipes/qwen2vl7b/refine_rft.yaml --out ...

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
from refine_rft.judge.config import BACKENDS, JudgeConfig, judge_settings
from refine_rft.judge.reasoning_answer import score_reasoning_answers

# Flags that set a judge setting of the same name (on top of --config).
SETTING_FLAGS = ("backend", "base_urls", "model", "api_key_env", "concurrency", "timeout", "max_retries",
                 "cache_path", "reject_injections", "max_failure_rate", "failure_window", "sight_check")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="predictions JSONL (from refine-rft eval)")
    parser.add_argument("--out", type=Path, required=True, help="scores JSONL (appended; resumable)")
    parser.add_argument("--backend", choices=BACKENDS, help="judge backend (default: openai)")
    parser.add_argument("--endpoint", action="append", dest="base_urls", metavar="URL",
                        help="OpenAI-compatible base URL, e.g. http://host:8000/v1 (repeat for replicas)")
    parser.add_argument("--model", help="judge model name as the endpoint knows it")
    parser.add_argument("--config", type=Path, help="YAML with judge settings: a training recipe (its 'judge:' "
                                                    "section, includes resolved) or a mapping; flags override it")
    parser.add_argument("--api-key-env", help="environment variable holding the API key")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default 32)")
    parser.add_argument("--timeout", type=float, help="seconds per request")
    parser.add_argument("--max-retries", type=int, help="retries on 429 / 5xx / timeouts")
    parser.add_argument("--max-failure-rate", type=float,
                        help="stop when more than this share of the last --failure-window judgements failed "
                             "(default 0.5; 1.0 never stops)")
    parser.add_argument("--failure-window", type=int, help="judgements the failure rule looks at (default 64)")
    parser.add_argument("--cache", dest="cache_path", help="sqlite cache of judgements")
    parser.add_argument("--no-reject-injections", dest="reject_injections", action="store_false", default=None,
                        help="judge responses that address the judge instead of scoring them 0")
    parser.add_argument("--no-sight-check", dest="sight_check", action="store_false", default=None,
                        help="skip the health check's colour question (for small teachers that cannot name "
                             "colours)")
    parser.add_argument("--styles", default="cot", help="comma-separated styles to judge (default: cot)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start the scores afresh (needed when the predictions, backend, model or prompt change)")
    return parser


def config_from_args(args: argparse.Namespace) -> JudgeConfig:
    """The judge configuration: the ``--config`` file's settings, then the flags given on top."""
    values = judge_settings(args.config) if args.config else {}
    values.update({name: getattr(args, name) for name in SETTING_FLAGS if getattr(args, name) is not None})
    return JudgeConfig.from_dict(values)


def print_summary(summary: dict[str, dict]) -> None:
    print(f"{'dataset':<16}{'n':>7}" + "".join(f"{key:>9}" for key in RSC_KEYS))
    for name, values in summary.items():
        print(f"{name:<16}{values['n']:>7}" + "".join(f"{values[key]:>9.2f}" for key in RSC_KEYS))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    styles = [style.strip() for style in args.styles.split(",") if style.strip()]
    config = config_from_args(args)
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
