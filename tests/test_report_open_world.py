"""Report tables for open-world predictions and base-to-new splits, and only when those exist."""

from __future__ import annotations

import json

from refine_rft.evaluate.score import score_predictions
from refine_rft.report.runs import load_run
from refine_rft.report.tables import all_tables

OPTIONS = ["Crested Finch", "Common Finch", "Spotted Finch", "Crested Warbler"]


def _row(i, style, response, side=None):
    row = {"id": f"q{i}", "dataset": "synthetic", "image": "/nowhere/x.png", "label": OPTIONS[0], "options": OPTIONS,
           "answer": 0, "noun": "birds", "aliases": ["Tufted Finch"], "style": style, "response": response}
    return row if side is None else {**row, "class_split": side}


def _run(tmp_path, rows, name="run"):
    from refine_rft.openworld import class_list, write_class_lists

    folder = tmp_path / name
    folder.mkdir()
    write_class_lists(folder, {"synthetic": class_list(OPTIONS, {OPTIONS[0]: ["Tufted Finch"]})})
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    score_predictions(folder / "predictions.jsonl")
    return load_run(folder)


def test_closed_world_runs_get_only_the_papers_tables(tmp_path):
    run = _run(tmp_path, [_row(i, "choice", "A") for i in range(4)])
    assert [t.key for t in all_tables([run])] == ["table2_answer_only"]


def test_open_world_predictions_add_columns_and_their_table(tmp_path):
    responses = ["It is a Tufted Finch.", "Crested Finch", "Finch", "Crested Finch or Common Finch"]
    rows = [_row(i, "choice", "A") for i in range(4)] + [_row(i, "open", r) for i, r in enumerate(responses)]
    tables = {t.key: t for t in all_tables([_run(tmp_path, rows)])}
    assert list(tables) == ["table2_answer_only", "table2b_open_world"]
    assert [label for _, label in tables["table2_answer_only"].columns] == ["Run", "CH.", "Open", "CH.", "Open"]
    # Alias counted; exact: names only; Fine-R1's substring rule counts "Crested Finch or Common Finch".
    assert tables["table2b_open_world"].rows == [["run", 50.0, 25.0, 50.0]]


def test_a_base_to_new_run_shows_seen_unseen_and_harmonic_mean(tmp_path):
    rows = [_row(i, "open", "Crested Finch" if i < 3 else "Common Finch", "seen") for i in range(4)]
    rows += [_row(10 + i, "open", "Crested Finch" if i < 1 else "", "unseen") for i in range(4)]
    tables = {t.key: t for t in all_tables([_run(tmp_path, rows)])}
    (row,) = tables["table2c_base_to_new"].rows
    assert row[0] == "run" and row[1:3] == [75.0, 25.0] and abs(row[3] - 37.5) < 1e-9
