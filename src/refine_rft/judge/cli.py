"""``refine-rft judge``: Reasoning-Answer (RSC) scores for a predictions file.

    refine-rft judge runs/eval/predictions.jsonl --endpoint http://judge:8000/v1 \\
        --model OpenGVLab/InternVL3-38B --out runs/eval/rsc_scores.jsonl
    refine-rft judge runs/eval/predictions.jsonl --backend attributes --out runs/eval/rsc_scores.jsonl

Each predictions row (``id, style, dataset, image, options, answer, noun, response`` and, for the
attribute judge, ``attributes, option_attributes``) of the chosen styles (default: ``cot``) gets
one score row ``{id, style, dataset, RSC_A, RSC_U, RSC_O, *_feedback, judge}``, appended as it is
judged. Rows are keyed by ``(id, style)``: a rerun skips what is done and retries what failed.
At the end, a per-dataset summary (mean RSC over every score row) is printed and written next to
the scores as ``<SCORES>.summary.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

import yaml
from tqdm import tqdm

from refine_rft.files import JsonlAppender, iter_jsonl_tolerant, read_jsonl, write_text_atomic
from refine_rft.judge import JudgeConfig, make_judge

RSC_KEYS = ("RSC_A", "RSC_U", "RSC_O")
PREDICTION_FIELDS = ("id", "style", "dataset", "image", "options", "answer", "noun", "response")


def _row_key(row: dict) -> tuple[str, str]:
    return (row["id"], row["style"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="predictions JSONL (from refine-rft eval)")
    parser.add_argument("--out", type=Path, required=True, help="scores JSONL (appended; resumable)")
    parser.add_argument("--backend", choices=("openai", "attributes"), help="judge backend (default: openai)")
    parser.add_argument("--endpoint", action="append", dest="base_urls", metavar="URL",
                        help="OpenAI-compatible base URL, e.g. http://host:8000/v1 (repeat for replicas)")
    parser.add_argument("--model", help="judge model name as the endpoint knows it")
    parser.add_argument("--config", type=Path, help="YAML with judge settings (a mapping, or a recipe with a "
                                                    "'judge:' section); flags override it")
    parser.add_argument("--api-key-env", help="environment variable holding the API key")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default 32)")
    parser.add_argument("--timeout", type=float, help="seconds per request")
    parser.add_argument("--max-retries", type=int, help="retries on 429 / 5xx / timeouts")
    parser.add_argument("--cache", dest="cache_path", help="sqlite cache of judgements")
    parser.add_argument("--no-reject-injections", dest="reject_injections", action="store_false", default=None,
                        help="judge responses that address the judge instead of scoring them 0")
    parser.add_argument("--styles", default="cot", help="comma-separated styles to judge (default: cot)")
    return parser


def config_from_args(args: argparse.Namespace) -> JudgeConfig:
    """The judge configuration: the ``--config`` file, then the flags given on top."""
    values: dict = {}
    if args.config:
        loaded = yaml.safe_load(args.config.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.config}: expected a mapping of judge settings")
        values = dict(loaded.get("judge", loaded))
    for name in ("backend", "base_urls", "model", "api_key_env", "concurrency", "timeout", "max_retries",
                 "cache_path", "reject_injections"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return JudgeConfig.from_dict(values)


def pending_rows(predictions: Path, styles: set[str], done: set) -> list[dict]:
    """The prediction rows of ``styles`` not judged yet; fails on a row missing a field."""
    rows = []
    for number, row in enumerate(read_jsonl(predictions), 1):
        missing = [name for name in PREDICTION_FIELDS if name not in row]
        if missing:
            raise ValueError(f"{predictions}:{number}: missing field(s) {', '.join(missing)}")
        if row["style"] in styles and _row_key(row) not in done:
            image = Path(row["image"])
            if not image.is_absolute() and not image.exists():  # relative to the predictions file
                row["image"] = str(predictions.parent / image)
            rows.append(row)
    return rows


def summarize(score_rows: list[dict]) -> dict[str, dict]:
    """Mean RSC_A / RSC_U / RSC_O and the row count per dataset, plus ``"all"``.

    >>> summarize([{"dataset": "cub", "RSC_A": 100, "RSC_U": 50, "RSC_O": 100},
    ...            {"dataset": "cub", "RSC_A": 0, "RSC_U": 30, "RSC_O": 100}])["cub"]
    {'n': 2, 'RSC_A': 50.0, 'RSC_U': 40.0, 'RSC_O': 100.0}
    """
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in score_rows:
        groups[row["dataset"]].append(row)
        groups["all"].append(row)
    ordered = sorted(groups.items(), key=lambda item: (item[0] == "all", item[0]))  # "all" last
    return {name: {"n": len(rows), **{key: round(sum(r[key] for r in rows) / len(rows), 2) for key in RSC_KEYS}}
            for name, rows in ordered}


async def judge_rows(rows: list[dict], config: JudgeConfig, out: JsonlAppender, progress) -> tuple[int, dict]:
    """Judge ``rows`` concurrently, appending each score row as it completes; return (failures, stats)."""
    judge = make_judge(config)
    # A window of judgements in flight keeps memory flat on large files; the client bounds requests.
    window = asyncio.Semaphore(2 * config.concurrency)
    failures = 0

    async def one(row: dict):
        async with window:
            return row, await judge.rsc(row)

    try:
        for next_done in asyncio.as_completed([one(row) for row in rows]):
            row, result = await next_done
            progress.update(1)
            if result is None:
                failures += 1
                continue
            out.write({"id": row["id"], "style": row["style"], "dataset": row["dataset"], **result,
                       "judge": config.model if config.backend == "openai" else "attributes"})
    finally:
        await judge.aclose()
    return failures, judge.stats.snapshot()


def print_summary(summary: dict[str, dict]) -> None:
    print(f"{'dataset':<16}{'n':>7}{'RSC_A':>9}{'RSC_U':>9}{'RSC_O':>9}")
    for name, values in summary.items():
        print(f"{name:<16}{values['n']:>7}" + "".join(f"{values[key]:>9.2f}" for key in RSC_KEYS))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        styles = {style.strip() for style in args.styles.split(",") if style.strip()}
        with JsonlAppender(args.out, key=_row_key) as out:
            rows = pending_rows(args.predictions, styles, out.done)
            print(f"judging {len(rows)} responses ({len(out.done)} already scored in {args.out})", file=sys.stderr)
            with tqdm(total=len(rows), desc="judge", unit="resp", file=sys.stderr) as progress:
                failures, stats = asyncio.run(judge_rows(rows, config, out, progress))
    except (ValueError, FileNotFoundError) as error:
        print(f"refine-rft judge: {error}", file=sys.stderr)
        return 2
    summary = summarize([row for row in iter_jsonl_tolerant(args.out) if row["style"] in styles])
    write_text_atomic(args.out.with_suffix(".summary.json"), json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    counters = ", ".join(f"{name.removeprefix('judge/')}={value:g}" for name, value in stats.items())
    print(f"judge: {counters}", file=sys.stderr)
    if failures:
        print(f"refine-rft judge: {failures} responses could not be judged; rerun to retry them", file=sys.stderr)
    return 0
