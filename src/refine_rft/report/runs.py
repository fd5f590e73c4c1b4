"""A run folder, as the report reads it (files only; nothing is generated or judged here).

    RUN_DIR/
      run.json             optional: {"name": "ReFine-RFT", "ablation": {"R_fa": true, "R_cls": true,
                           "R_cot": false}, "train_dir": "../train/refine"}
      predictions.jsonl    refine-rft eval
      scores.json          refine-rft eval (recomputed from predictions.jsonl when absent)
      classes.json         refine-rft eval: every class of each dataset (open-world answers are read against it)
      judge_scores.jsonl   refine-rft judge RUN_DIR/predictions.jsonl --out RUN_DIR/judge_scores.jsonl
                           (rsc_scores.jsonl is read when judge_scores.jsonl is absent)
      general_eval/        refine-rft general-eval (lmms-eval's *_results.json; VLMEvalKit's
                           *_acc.csv under general_eval/vlmevalkit)
      trainer_state.json   or checkpoint-*/trainer_state.json, here or in run.json's "train_dir"

Numbers never outlive the predictions they came from. When ``predictions.jsonl`` is there, the
accuracies are computed from it; a ``scores.json`` that disagrees with it (written for other
predictions, or empty, or damaged) is not shown: the report recomputes the scores and warns,
naming the file. A judge score row records what it judged (``judged_sha256``, see
:func:`~refine_rft.judge.reasoning_answer.judged_digest`); rows that judged another response than
the one ``predictions.jsonl`` now holds, or a question it no longer has, make the report refuse the
run in one line, naming the ``refine-rft judge`` command that brings the scores up to date.

Every RSC score in ``judge_scores.jsonl`` must be a number in [0, 100] or ``null`` (a failed
judgement). Anything else is rejected when the file is loaded: the value is emptied (the row then
counts as a failed judgement, and the value never reaches a table or the page) and reported in
``Run.rejected`` with the file and the row id.

``name`` defaults to the folder's name. A run with an ``ablation`` object (reward or component
name -> used or not) joins the ablation table; ``train_dir`` (relative to the run folder, or
absolute) points at the trainer's output folder for the training curves.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.data.records import (
    JUDGE_FILE,
    PREDICTIONS_FILE,
    RSC_KEYS,
    RUN_FILE,
    SCORES_FILE,
    prediction_key,
    read_rows,
    require_all,
    score_key,
    validate_prediction,
    validate_score_row,
)
from refine_rft.errors import DataError, MissingFile
from refine_rft.evaluate.general import general_scores
from refine_rft.evaluate.score import score_rows
from refine_rft.judge.provenance import scores_judge, training_teacher
from refine_rft.metrics import group_means, macro_mean

JUDGE_FILES = (JUDGE_FILE, "rsc_scores.jsonl")

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything the report needs from one run folder."""

    path: Path
    name: str
    meta: dict
    predictions: list[dict]
    scores: dict  # style -> {"per_dataset": {name: {"accuracy", ...}}, "average", ...}
    judge: dict = field(default_factory=dict)  # (id, style) -> judge row
    general: dict = field(default_factory=dict)  # lmms-eval task or VLMEvalKit dataset -> percentage
    log_history: list[dict] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # "file: row id: why", one per rejected value or row
    # Who judged: the RSC judge of judge_scores.jsonl and the R_cot teacher of the trained model
    # (refine_rft.judge.provenance; None when the run's files do not say).
    rsc_judge: str | None = None
    teacher: str | None = None

    @property
    def ablation(self) -> dict | None:
        return self.meta.get("ablation")

    def accuracy(self, style: str, dataset: str | None = None) -> float | None:
        """Accuracy (%) of ``style`` on ``dataset`` (``None``: the average); ``None`` if not evaluated."""
        s = self.scores.get(style)
        if s is None:
            return None
        if dataset is None:
            return s["average"]
        d = s["per_dataset"].get(dataset)
        return None if d is None else d["accuracy"]

    def rsc(self, style: str = "cot") -> dict:
        """Mean RSC_A/U/O per dataset and on average, over judged rows (the average is
        :func:`~refine_rft.metrics.macro_mean`, the mean of datasets, as in the judge's summary).

        Rows whose judgement failed (``None`` scores) are left out of the means and counted in
        ``failed``, so an outage shows as missing judgements, not as low scores.
        """
        datasets = {(p["id"], p["style"]): p["dataset"] for p in self.predictions}
        judged, failed = [], 0
        for (qid, row_style), row in self.judge.items():
            if row_style != style:
                continue
            dataset = row.get("dataset") or datasets.get((qid, row_style))
            if dataset is None or not all(is_score(row.get(k)) for k in RSC_KEYS):
                failed += 1
                continue
            judged.append({**row, "dataset": dataset})
        by_key = {k: group_means(judged, k) for k in RSC_KEYS}
        per = {d: {k: by_key[k][d] for k in RSC_KEYS} for d in by_key[RSC_KEYS[0]]}
        average = {k: macro_mean(judged, k) for k in RSC_KEYS} if judged else {}
        return {"per_dataset": per, "average": average, "failed": failed}


def is_score(value) -> bool:
    """True for an RSC score: a finite number (not a bool) in [0, 100].

    >>> [is_score(v) for v in (85, 0.5, 100.0, 101, "90", True, float("nan"), None)]
    [True, True, True, False, False, False, False, False]
    """
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 <= value <= 100)


def load_judge_rows(path: Path) -> tuple[dict, list[str]]:
    """Judge rows keyed by ``(id, style)`` and what was rejected in them (see the module docstring),
    read under :func:`~refine_rft.data.records.read_rows`' rule (a duplicate ``(id, style)`` fails).

    A row without an id is left out; a bad score is emptied.
    """
    if not path.is_file() or not path.read_text(encoding="utf-8").strip():
        return {}, []  # nothing judged yet (every judgement failed, or the file was emptied)
    rowset = read_rows([path], validate_score_row, key=score_key)
    rejected = [f"{path}: row {reject['line']}: {reject['reason']}; row left out" for reject in rowset.rejects]
    rows = {}
    for row in rowset.rows:
        for key in RSC_KEYS:
            if row.get(key) is not None and not is_score(row[key]):
                shown = repr(row[key])
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                rejected.append(f"{path}: row {row['id']!r}: {key} is {shown}, not a number in [0, 100]; left out")
                row[key] = None
        rows[score_key(row)] = row
    for message in rejected:
        logger.warning(message)
    return rows, rejected


def _trainer_state(folder: Path) -> Path | None:
    """``trainer_state.json`` in ``folder``, else in its latest ``checkpoint-N`` (it holds the whole log)."""
    if (folder / "trainer_state.json").is_file():
        return folder / "trainer_state.json"
    checkpoints = [p for p in folder.glob("checkpoint-*/trainer_state.json") if re.fullmatch(r"checkpoint-\d+", p.parent.name)]
    return max(checkpoints, key=lambda p: int(p.parent.name.split("-")[1]), default=None)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error.msg})") from None


def _accuracy_scores(path: Path, predictions: list[dict]) -> dict:
    """Accuracies per style: computed from the predictions when the run has them (a ``scores.json``
    that disagrees is replaced, with a warning), else read from ``scores.json``."""
    scores_file = path / SCORES_FILE
    recorded = None
    if scores_file.is_file():
        try:
            recorded = json.loads(scores_file.read_text(encoding="utf-8"))["styles"]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError) as error:
            if not predictions:
                raise DataError(f"{scores_file}: not a scores file ({type(error).__name__}: {error}); rerun "
                                f"refine-rft eval to rewrite it") from None
    if not predictions:
        if recorded is not None and not isinstance(recorded, dict):
            raise DataError(f"{scores_file}: 'styles' must be an object of per-style scores")
        return recorded or {}
    from refine_rft.openworld import gather_class_lists

    computed = score_rows(predictions, class_lists=gather_class_lists([path / "predictions.jsonl"]),
                          where=str(path / "predictions.jsonl"))
    if _agrees(recorded, computed):
        return recorded  # it may hold what only eval computes (the open-world similarity score)
    if scores_file.is_file():
        logger.warning("%s disagrees with %s (made from other predictions, or damaged); showing the scores "
                       "recomputed from the predictions", scores_file, path / PREDICTIONS_FILE)
    return computed


def _agrees(recorded, computed) -> bool:
    """Whether ``recorded`` (a ``scores.json``'s styles) holds every score recomputed from the
    predictions, unchanged, at every level: extra keys (``similarity``, which needs an encoder)
    are kept, nothing else may differ.

    >>> _agrees({"open": {"average": 50.0, "similarity": {"average": 0.7}}}, {"open": {"average": 50.0}})
    True
    >>> _agrees({"open": {"average": 40.0}}, {"open": {"average": 50.0}}), _agrees(None, {})
    (False, False)
    >>> _agrees({"open": {"average": 50.0}, "cot": {}}, {"open": {"average": 50.0}})  # another style set
    False
    """
    return _holds(recorded, computed, same_keys=True)


def _holds(recorded, computed, same_keys: bool) -> bool:
    """``computed`` inside ``recorded``; ``same_keys``: the styles, and each style's datasets, must be
    the same sets (a score may only be added, never a style or a dataset)."""
    if not isinstance(computed, dict):
        return recorded == computed
    if not isinstance(recorded, dict) or (same_keys and set(recorded) != set(computed)):
        return False
    return all(key in recorded and _holds(recorded[key], value, same_keys=key == "per_dataset")
               for key, value in computed.items())


def check_judged_responses(judge_file: Path, judge: dict, predictions: list[dict]) -> None:
    """Refuse judge rows that judged another response than the predictions now hold (or a question
    they no longer have): their RSC would describe another model's answers."""
    from refine_rft.judge.reasoning_answer import DIGEST_FIELD, judged_digest

    current = {prediction_key(row): row for row in predictions}
    gone = [key for key in judge if key not in current]
    changed = [key for key, row in judge.items() if key in current
               and DIGEST_FIELD in row and row[DIGEST_FIELD] != judged_digest(current[key])]
    if not gone and not changed:
        return
    source = judge_file.parent / PREDICTIONS_FILE
    what = []
    if changed:
        what.append(f"{len(changed)} judged a response that has changed since (first: {changed[0][0]!r}, "
                    f"style {changed[0][1]!r})")
    if gone:
        what.append(f"{len(gone)} judged a prediction no longer in it, deleted or renamed (first: "
                    f"{gone[0][0]!r}, style {gone[0][1]!r})")
    raise DataError(f"{judge_file}: judge scores out of date with {source}: {'; '.join(what)}; bring them up to "
                    f"date with refine-rft judge {source} --out {judge_file} (same settings)")


def load_run(path: str | Path) -> Run:
    """Read a run folder (see the module docstring); fails naming the folder if it has no results."""
    path = Path(path)
    if not path.is_dir():
        raise MissingFile(f"no such run folder: {path}")
    meta = _read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    if not isinstance(meta, dict) or not isinstance(meta.get("ablation", {}), dict):
        raise DataError(f"{path / RUN_FILE}: expected an object with an optional 'ablation' object")
    # The rule every stage reads rows by: relative image paths are relative to the predictions
    # file, an empty file or a duplicate (id, style) fails, and so does any unusable row (a report
    # built from part of a run would misstate it).
    predictions = []
    if (path / PREDICTIONS_FILE).is_file():
        predictions = require_all(read_rows([path / PREDICTIONS_FILE], validate_prediction, key=prediction_key))
    scores = _accuracy_scores(path, predictions)
    judge_file = next((path / name for name in JUDGE_FILES if (path / name).is_file()), path / JUDGE_FILE)
    judge, rejected = load_judge_rows(judge_file)
    if predictions:
        check_judged_responses(judge_file, judge, predictions)
    general = general_scores(path)
    train_dir = path / meta["train_dir"] if "train_dir" in meta else path
    state = _trainer_state(train_dir)
    log_history = _read_json(state).get("log_history", []) if state else []
    if not (predictions or scores or judge or general or log_history):
        raise DataError(f"{path}: no {PREDICTIONS_FILE}, {SCORES_FILE}, {JUDGE_FILE}, general_eval/ or trainer logs")
    teacher = training_teacher(path / PREDICTIONS_FILE)
    return Run(path, str(meta.get("name", path.name)), meta, predictions, scores, judge, general, log_history,
               rejected, scores_judge(judge_file, judge.values()) if judge else None, teacher and teacher[0])
