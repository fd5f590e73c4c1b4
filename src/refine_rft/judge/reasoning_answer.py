"""Reasoning-Answer (RSC) scores of a predictions file: the library behind ``refine-rft judge``.

Each predictions row (:data:`~refine_rft.data.records.PREDICTION_FIELDS`, and for the attribute
judge ``attributes, option_attributes``) of the chosen styles gets one score row
``{id, style, dataset, RSC_A, RSC_U, RSC_O, *_feedback, judge, judged_sha256}``, appended as it is
judged. Rows are keyed by ``(id, style)`` and by what was judged (:func:`judged_digest` of the
response, options, answer and noun): a rerun skips what is done, retries what failed, and judges
again every row whose response changed since (an ``eval --overwrite`` with another model, say),
saying how many; scores of questions no longer in the predictions are removed. At the end the mean
RSC per dataset over every score row, and their mean (:func:`rsc_means`: every dataset weighs the
same, as the paper's "Avg"), is written next to the scores as ``<SCORES>.summary.json``.

The predictions are read under :func:`~refine_rft.data.records.read_rows`' rule (an empty file or
duplicate ``(id, style)`` keys fail, naming them). A row that cannot be judged (a missing field, an
``answer`` outside the options, a missing or truncated image) is listed in
``<SCORES>.rejects.jsonl`` and the others are judged. The settings that define the scores (the
predictions file, backend, judge model, prompt version, injection filter, image size) are recorded
in ``<SCORES>.settings.json``; a rerun with others refuses unless ``overwrite``.

>>> import json, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> image = {"wing_color": "crimson"}
>>> row = {"id": "q1", "style": "cot", "dataset": "cub", "image": "a.png", "options": ["Finch", "Tit"],
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
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from refine_rft.data.records import (
    RSC_KEYS,
    RowSet,
    prediction_key,
    read_rows,
    reject_bad_images,
    rejection,
    score_key,
    validate_prediction,
    validate_score_row,
)
from refine_rft.errors import DataError
from refine_rft.files import JsonlAppender, lock_path, refuse_output_over_input, resumable_output, write_text_atomic
from refine_rft.judge import JudgeConfig, make_judge
from refine_rft.judge.prompts import PROMPT_VERSION
from refine_rft.judge.health import probe_endpoints
from refine_rft.metrics import group_means, macro_mean


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
    rejected: int = 0
    rejects_path: Path | None = None
    rejudged: int = 0  # rows scored before whose response has changed since: judged again
    dropped: int = 0  # scores of questions no longer in the predictions: removed


DIGEST_FIELD = "judged_sha256"


def judged_digest(row: dict) -> str:
    """What a score row was judged from: SHA-256 of the prediction's response, options, answer and
    noun. A score row whose digest differs from its prediction's judged another response.

    >>> row = {"response": "<answer>A. Finch</answer>", "options": ["Finch", "Tit"], "answer": 0,
    ...        "noun": "birds"}
    >>> judged_digest(dict(row)) == judged_digest(row) != judged_digest({**row, "response": "B"})
    True
    """
    judged = [row.get("response"), row.get("options"), row.get("answer"), row.get("noun")]
    return hashlib.sha256(json.dumps(judged, ensure_ascii=False).encode("utf-8")).hexdigest()


def summary_path(scores: str | Path) -> Path:
    """Where the summary of a scores file goes: ``<SCORES>.summary.json``.

    >>> summary_path("runs/eval/judge_scores.jsonl").name
    'judge_scores.summary.json'
    """
    return Path(scores).with_suffix(".summary.json")


def scores_outputs(scores: str | Path) -> list[tuple[str, Path]]:
    """Every file a judge run writes for the scores file ``scores``, named for
    :func:`~refine_rft.files.refuse_output_over_input`."""
    scores = Path(scores)
    siblings = [sibling_path(scores, kind) for kind in ("settings.json", "rejects.jsonl")]
    return [("--out", scores), *(("the output", path) for path in (*siblings, summary_path(scores), lock_path(scores)))]


def sibling_path(scores: str | Path, kind: str) -> Path:
    """A file that belongs to a scores file: ``<SCORES>.<kind>``.

    >>> sibling_path("runs/eval/judge_scores.jsonl", "rejects.jsonl").name
    'judge_scores.rejects.jsonl'
    """
    return Path(scores).with_suffix(f".{kind}")


def judge_settings_record(predictions: Path, config: JudgeConfig) -> dict:
    """What defines a scores file: a rerun into it must share these."""
    settings = {"predictions": str(predictions.resolve()), "backend": config.backend,
                "reject_injections": config.reject_injections}
    if config.backend == "openai":
        settings.update(model=config.model, prompt_version=PROMPT_VERSION, max_image_side=config.max_image_side)
    return settings


def pending_rows(predictions: Path, styles: set[str]) -> RowSet:
    """The prediction rows of ``styles`` (images resolved against the predictions file's folder),
    and every rejected row of the file. Fails when the file has no row of ``styles`` at all."""
    rowset = read_rows([predictions], validate_prediction, key=prediction_key)
    present = {row["style"] for row in rowset.rows}
    if not present & styles and not rowset.rejects:
        raise DataError(f"{predictions}: no rows of style(s) {', '.join(sorted(styles))} to judge "
                        f"(the file has: {', '.join(sorted(present))}); choose them with --styles")
    rowset.rows = [row for row in rowset.rows if row["style"] in styles]
    return rowset


def rsc_means(score_rows: Iterable[dict]) -> dict[str, dict]:
    """Mean RSC_A / RSC_U / RSC_O and the row count per dataset, then ``"all"``: the paper's "Avg"
    (Table 3, :func:`~refine_rft.metrics.macro_mean`: every dataset weighs the same whatever its
    size). Rows need ``dataset`` and a number for each RSC key.

    >>> rows = [{"dataset": "cub", "RSC_A": 100, "RSC_U": 90, "RSC_O": 80}] * 3 + [
    ...        {"dataset": "dogs", "RSC_A": 0, "RSC_U": 10, "RSC_O": 20}]
    >>> means = rsc_means(rows)
    >>> means["cub"]["RSC_A"], means["dogs"]["RSC_A"], means["all"]  # 50, not the rows' 75
    (100.0, 0.0, {'n': 4, 'RSC_A': 50.0, 'RSC_U': 50.0, 'RSC_O': 50.0})
    """
    rows = list(score_rows)
    counts = Counter(row["dataset"] for row in rows)
    per_key = {key: group_means(rows, key) for key in RSC_KEYS}
    means = {name: {"n": counts[name], **{key: per_key[key][name] for key in RSC_KEYS}} for name in sorted(counts)}
    if means:
        means["all"] = {"n": len(rows), **{key: macro_mean(rows, key) for key in RSC_KEYS}}
    return means


def summarize(score_rows: Iterable[dict]) -> dict[str, dict]:
    """:func:`rsc_means`, rounded to two decimals: the judge's summary file and printout.

    >>> summarize([{"dataset": "cub", "RSC_A": 100, "RSC_U": 50, "RSC_O": 100},
    ...            {"dataset": "cub", "RSC_A": 0, "RSC_U": 30, "RSC_O": 100}])["cub"]
    {'n': 2, 'RSC_A': 50.0, 'RSC_U': 40.0, 'RSC_O': 100.0}
    """
    return {name: {"n": cell["n"], **{key: round(cell[key], 2) for key in RSC_KEYS}}
            for name, cell in rsc_means(score_rows).items()}


async def judge_rows(rows: RowSet, config: JudgeConfig, out: JsonlAppender, progress=None) -> tuple[int, dict]:
    """Judge ``rows.rows`` concurrently, appending each score row as it completes; a row that
    cannot be judged (a :class:`~refine_rft.errors.DataError`, e.g. its image does not decode) joins
    ``rows.rejects``. Return (failures, stats).

    On the way out, normal or not (a refused endpoint, Ctrl-C), every outstanding judgement is
    cancelled and awaited before the client closes: no request runs on a closed client and no
    task's exception goes unretrieved.

    A teacher's endpoints get the health check first (:mod:`refine_rft.judge.health`); a refused
    configuration, an unreachable replica or too many failed judgements raise
    :class:`~refine_rft.errors.JudgeUnavailable`, keeping the rows already written.
    """
    if rows.rows:
        await probe_endpoints(config, asks="rsc")
    judge = make_judge(config)
    # A window of judgements in flight keeps memory flat on large files; the client bounds requests.
    window = asyncio.Semaphore(2 * config.concurrency)
    failures = 0

    async def one(row: dict):
        async with window:
            try:
                return row, await judge.rsc(row), None
            except DataError as error:  # this row's own problem: the others go on
                return row, None, str(error)

    tasks = [asyncio.ensure_future(one(row)) for row in rows.rows]
    try:
        for next_done in asyncio.as_completed(tasks):
            row, result, problem = await next_done
            if progress is not None:
                progress.update(1)
            if problem is not None:
                rows.rejects.append(rejection(row["id"], *rows.sources[prediction_key(row)], problem))
            elif result is None:
                failures += 1
            else:
                out.write({"id": row["id"], "style": row["style"], "dataset": row["dataset"], **result,
                           "judge": config.model if config.backend == "openai" else "attributes",
                           DIGEST_FIELD: judged_digest(row)})
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await judge.aclose()
    return failures, judge.stats.snapshot()


def score_reasoning_answers(predictions: str | Path, out: str | Path, config: JudgeConfig,
                            styles: Iterable[str] = ("cot",), progress: bool = False,
                            overwrite: bool = False) -> RscResult:
    """Judge the not yet scored rows of ``predictions`` (of ``styles``) into the scores JSONL
    ``out`` and write its summary (see the module docstring). ``progress`` shows a bar on stderr;
    ``overwrite`` starts ``out`` afresh (else a rerun must have the same settings).

    Failed judgements are counted in ``failures`` and left out of ``out``, so a rerun retries them.
    Rejected rows are counted in ``rejected`` and listed in ``rejects_path``.
    Raises :class:`~refine_rft.errors.JudgeUnavailable` when the judge cannot judge (see
    :func:`judge_rows`). Another process writing ``out`` refuses this one
    (:class:`~refine_rft.errors.OutputLocked`).
    """
    import sys

    from tqdm import tqdm

    predictions, out, styles = Path(predictions), Path(out), set(styles)
    refuse_output_over_input([("PREDICTIONS", predictions)], scores_outputs(out))
    rows = pending_rows(predictions, styles)  # bad input fails before anything is written
    rejects_path = sibling_path(out, "rejects.jsonl")
    current = {prediction_key(row): judged_digest(row) for row in rows.rows}

    def still_holds(score: dict) -> bool:
        """A score row of another style is not this run's business; one of these styles must match
        a prediction row's digest (a row without one predates digests and is judged again)."""
        if score.get("style") not in styles:
            return True
        return current.get(prediction_key(score)) == score.get(DIGEST_FIELD)

    # One writer per scores file, settings guarded, done keys skipped, rejects written: as eval does.
    with resumable_output(out, prediction_key, sibling_path(out, "settings.json"),
                          judge_settings_record(predictions, config), [summary_path(out)], rejects_path,
                          lambda: rows.rejects, overwrite, keep=still_holds, what="judge") as appender:
        stale = appender.dropped_keys
        already = len(appender.done)
        rejudged = len(stale & current.keys())
        rows.rows = [row for row in rows.rows if prediction_key(row) not in appender.done]
        if config.backend == "openai":  # the attribute judge never looks at the image
            reject_bad_images(rows, prediction_key, decode=False)
        with tqdm(total=len(rows.rows), desc="judge", unit="resp", file=sys.stderr, disable=not progress) as bar:
            failures, stats = asyncio.run(judge_rows(rows, config, appender, bar))
        judged = len(appender.done) - already
        scored = read_rows([out], validate_score_row, key=score_key).rows if out.is_file() and out.stat().st_size \
            else []
        summary = summarize(row for row in scored if row["style"] in styles)
        path = write_text_atomic(summary_path(out), json.dumps(summary, indent=2) + "\n")
    return RscResult(judged, already, failures, stats, summary, path, len(rows.rejects),
                     rejects_path if rows.rejects else None, rejudged, len(stale - current.keys()))
