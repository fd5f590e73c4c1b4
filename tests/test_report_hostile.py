"""A hostile run folder: markup in names, ids, options, responses and feedback, and judge scores that
are not numbers. Everything reaches the page escaped; bad scores are reported, not written."""

from __future__ import annotations

import json

from PIL import Image

from refine_rft.cli import main
from refine_rft.files import write_jsonl_atomic
from refine_rft.report.runs import load_run

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"


def hostile_run(folder):
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "q.png")
    options = [f"Finch {SCRIPT}", "Sparrow", f"Lark {IMG}", "Wren"]
    question = {"dataset": "synthetic", "image": str(folder / "q.png"), "options": options, "answer": 1,
                "noun": "birds", "model": "m"}
    predictions = [
        {**question, "id": f"q1{SCRIPT}", "style": "cot", "response": f"<think>{SCRIPT}</think><answer>B</answer>"},
        {**question, "id": "q2", "style": "cot", "response": "<answer>B</answer>"},
        {**question, "id": "q3", "style": "cot", "response": "<answer>B</answer>"},
    ]
    judged = [
        {"id": f"q1{SCRIPT}", "style": "cot", "RSC_A": SCRIPT, "RSC_U": 50, "RSC_O": 60, "RSC_A_feedback": IMG},
        {"id": "q2", "style": "cot", "RSC_A": True, "RSC_U": 150, "RSC_O": "90"},
        {"id": "q3", "style": "cot", "RSC_A": 80, "RSC_U": 70, "RSC_O": 60},
        {"style": "cot", "RSC_A": 100, "RSC_U": 100, "RSC_O": 100},              # no id
    ]
    write_jsonl_atomic(folder / "predictions.jsonl", predictions)
    write_jsonl_atomic(folder / "judge_scores.jsonl", judged)
    (folder / "run.json").write_text(json.dumps({"name": f"run {SCRIPT}"}))
    return folder


def test_bad_scores_are_rejected_with_file_and_row_id(tmp_path):
    run = load_run(hostile_run(tmp_path / "run"))
    assert len(run.rejected) == 5
    assert any("judge_scores.jsonl: row 'q1<script>alert(1)</script>': RSC_A is" in m for m in run.rejected)
    assert any("row 'q2': RSC_A is True" in m for m in run.rejected)
    assert any("row 'q2': RSC_U is 150" in m for m in run.rejected)
    assert any("row 'q2': RSC_O is '90'" in m for m in run.rejected)
    assert any("row 4: no id" in m for m in run.rejected)
    rsc = run.rsc()
    assert rsc["failed"] == 2 and rsc["average"] == {"RSC_A": 80.0, "RSC_U": 70.0, "RSC_O": 60.0}


def test_the_page_has_no_markup_from_the_files_and_the_command_says_what_it_rejected(tmp_path, capsys):
    folder = hostile_run(tmp_path / "run")
    assert main(["report", str(folder), "--out", str(tmp_path / "report"), "--samples", "3"]) == 1
    err = capsys.readouterr().err
    assert "5 judge value(s) rejected" in err and "judge_scores.jsonl: row 'q2': RSC_U is 150" in err
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page     # shown, as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "RSC_A –" in page and "RSC_U 150" not in page      # a rejected score is not written
    tables = (tmp_path / "report" / "tables.md").read_text()
    assert "150" not in tables and "80.0" in tables
