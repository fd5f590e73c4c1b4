"""Reasoning-Answer (RSC) scores of a predictions file: the library behind ``refine-rft judge``.

Each predictions row (:data:`~refine_rft.data.records.PREDICTION_FIELDS`, and for the attribute
judge ``attributes, option_attributes``) of the chosen styles gets one score row
``{id, style, dataset, RSC_A, RSC_U, RSC_O, *_feedback, judge}``, appended as it is judged. Rows are
keyed by ``(id, style)``: a rerun skips what is done and retries what failed. At the end the mean
RSC per dataset over every score row is written next to the scores as ``<SCORES>.summary.json``.

>>> import json, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> image = {"wing_color": "crimson"}
>>> row = {"id": "q1", "style": "cot", "dataset": "synthetic", "image": "a.png", "options": ["Finch", "Tit"],
...        "answer": 0, "noun": "birds", "attributes": image, "option_attributes": [image, {"wing_color": "black"}],
...        "response": "<think>Crimson wings.</think><attribute>crimson wings</attribute><answer>A. Finch</answer>"}
>>> _ = (folder / "predictions.jsonl").write_text(json.dumps(row) + "\\n")
>>> result = score_reasoning_answers(folder / "predictions.jsonl", folder / "judge_scores.jsonl",
...                                  JudgeConfig(backend="attributes"))
>>> result.judged, result.failures, result.summary["all"]
(1, 0, {'n': 1, 'RSC_A': 100.0, 'RSC_U': 100.0, 'RSC_O': 100.0})
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from refine_rft.data.records import RSC_KEYS, prediction_key, resolve_image, validate_prediction
from refine_rft.files import JsonlAppender, iter_jsonl_tolerant, read_jsonl, write_text_atomic
from refine_rft.judge import JudgeConfig, make_judge
from refine_rft.judge.health import probe_endpoints


@dataclass
class RscResult:
    """What one scoring pass did: rows judged now, already scored before, failed (left for a
    rerun), the judge's counters, and the per-dataset summary of every score row."""

    judged: int
    already_scored: int
    failures: int
    stats: dict
    summary: dict[str, dict]
    summary_path: Path


def summary_path(scores: str | Path) -> Path:
    """Where the summary of a scores file goes: ``<SCORES>.summary.json``.

    >>> summary_path("runs/eval/judge_scores.jsonl").name
    'judge_scores.summary.json'
    """
    return Path(scores).with_suffix(".summary.json")


def pending_rows(predictions: Path, styles: set[str], done: set) -> list[dict]:
    """The prediction rows of ``styles`` not judged yet, images resolved against the predictions
    file's folder; fails on a row missing a field, naming the file and line."""
    rows = []
    for row in read_jsonl(predictions, check=validate_prediction):
        if row["style"] in styles and prediction_key(row) not in done:
            rows.append({**row, "image": resolve_image(row["image"], predictions)})
    return rows


def summarize(score_rows: Iterable[dict]) -> dict[str, dict]:
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


async def judge_rows(rows: list[dict], config: JudgeConfig, out: JsonlAppender, progress=None) -> tuple[int, dict]:
    """Judge ``rows`` concurrently, appending each score row as it completes; return (failures, stats).

    A teacher's endpoints get the health check first (:mod:`refine_rft.judge.health`); a refused
    configuration, an unreachable replica or too many failed judgements raise
    :class:`~refine_rft.errors.JudgeUnavailable`, keeping the rows already written."""
    if rows:
        await probe_endpoints(config)
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
            if progress is not None:
                progress.update(1)
            if result is None:
                failures += 1
                continue
            out.write({"id": row["id"], "style": row["style"], "dataset": row["dataset"], **result,
                       "judge": config.model if config.backend == "openai" else "attributes"})
    finally:
        await judge.aclose()
    return failures, judge.stats.snapshot()


def score_reasoning_answers(predictions: str | Path, out: str | Path, config: JudgeConfig,
                            styles: Iterable[str] = ("cot",), progress: bool = False) -> RscResult:
    """Judge the not yet scored rows of ``predictions`` (of ``styles``) into the scores JSONL
    ``out`` and write its summary (see the module docstring). ``progress`` shows a bar on stderr.

    Failed judgements are counted in ``failures`` and left out of ``out``, so a rerun retries them.
    Raises :class:`~refine_rft.errors.JudgeUnavailable` when the judge cannot judge (see
    :func:`judge_rows`).
    """
    import sys

    from tqdm import tqdm

    predictions, out, styles = Path(predictions), Path(out), set(styles)
    with JsonlAppender(out, key=prediction_key) as appender:
        already = len(appender.done)
        rows = pending_rows(predictions, styles, appender.done)
        with tqdm(total=len(rows), desc="judge", unit="resp", file=sys.stderr, disable=not progress) as bar:
            failures, stats = asyncio.run(judge_rows(rows, config, appender, bar))
    summary = summarize(row for row in iter_jsonl_tolerant(out) if row["style"] in styles)
    path = write_text_atomic(summary_path(out), json.dumps(summary, indent=2) + "\n")
    return RscResult(len(rows) - failures, already, failures, stats, summary, path)
