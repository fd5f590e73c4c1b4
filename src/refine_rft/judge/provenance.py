"""Who judged what, read from the files the stages wrote: the R_cot teacher that trained the model
behind a predictions file, and the judge that scored a Reasoning-Answer scores file.

Names are :func:`~refine_rft.judge.config.judge_name`'s: a model's name for an endpoint judge,
``"attribute judge"`` for the attribute backend. ``refine-rft judge`` warns, and ``refine-rft report``
says so under Table 3, when the two are the same: a judge favours the model trained to please it.
"""

from __future__ import annotations

import json
from pathlib import Path

from refine_rft.judge.config import judge_name


def training_teacher(predictions: Path) -> tuple[str, Path] | None:
    """The R_cot teacher that trained the model behind ``predictions`` and the run folder that says
    so: the predictions' ``run_settings.json`` names the adapter (or merged model) folder, whose saved
    recipe names the teacher. ``None`` when any link is missing or the run had no teacher (no judge,
    or no ``reasoning`` among its rewards).

    >>> training_teacher(Path("no/such/predictions.jsonl")) is None
    True
    """
    import yaml

    from refine_rft.data.records import SETTINGS_FILE
    from refine_rft.resolution import SAVED_CONFIG_NAME

    settings_path = Path(predictions).parent / SETTINGS_FILE
    if not settings_path.is_file():
        return None
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    for key in ("adapter", "model"):
        folder = settings.get(key)
        if not folder or not (Path(folder) / SAVED_CONFIG_NAME).is_file():
            continue
        saved = yaml.safe_load((Path(folder) / SAVED_CONFIG_NAME).read_text(encoding="utf-8")) or {}
        script = saved.get("script") or {}
        rewards, judge = script.get("rewards"), script.get("judge") or {}
        if rewards is not None and "reasoning" not in rewards:
            return None
        if isinstance(judge, dict) and judge_name(judge):
            return judge_name(judge), Path(folder)
    return None


def scores_judge(scores: Path, rows=()) -> str | None:
    """The judge that wrote the Reasoning-Answer scores file ``scores``: from its ``.settings.json``
    (what ``refine-rft judge`` records), else from the ``judge`` field of its ``rows``; ``None`` when
    neither says.

    >>> scores_judge(Path("no/such/judge_scores.jsonl"), [{"judge": "attributes"}, {"judge": "attributes"}])
    'attribute judge'
    """
    settings_path = Path(scores).with_suffix(".settings.json")
    if settings_path.is_file():
        try:
            recorded = json.loads(settings_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            recorded = None
        if isinstance(recorded, dict) and judge_name(recorded):
            return judge_name(recorded)
    names = sorted({str(row["judge"]) for row in rows if isinstance(row, dict) and row.get("judge")})
    names = ["attribute judge" if name == "attributes" else name for name in names]
    return " and ".join(names) if names else None
