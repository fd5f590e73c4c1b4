"""Hostile inputs through the real command line (``python -m refine_rft.cli`` in a subprocess) and
the real HTTP judge server: one bad row never costs the others, bad input fails in one line.

Each class of fault has its test: unusable rows (truncated JPEG, missing image, answer index out of
range, missing field, ...) in judge, eval and train; duplicate ids; empty files; a resume with
changed settings; relative image paths read from another working directory; a judge answering 401.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import refine_rft
from refine_rft_workshop.synthetic import attribute_phrase, synthetic_questions
from refine_rft.prompts import answer_text
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status
from refine_rft_workshop import RECIPES, tiny_instruct_path
from refine_rft_workshop.models import resolve_model_path as tiny

SRC = Path(refine_rft.__file__).resolve().parents[1]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``refine-rft ARGS`` in a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "refine_rft.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def one_line_error(result: subprocess.CompletedProcess, command: str) -> str:
    """The error line of a known error: exit 2, no traceback, ``refine-rft <command>: error: ...``."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"refine-rft {command}: error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A data folder: ``questions.jsonl`` with relative image paths (``images/...``), rows that are
    both questions and cot predictions (a correct response), so every stage can read the file."""
    folder = tmp_path_factory.mktemp("faults-data")
    rows = []
    for row in synthetic_questions(folder, "test", per_class=1, num_classes=4):
        traits = ", ".join(attribute_phrase(a, v) for a, v in row["attributes"].items())
        rows.append({**row, "image": str(Path(row["image"]).relative_to(folder)), "style": "cot",
                     "response": f"<think>The bird has {traits}.</think><attribute>{traits}</attribute>"
                                 f"<answer>{answer_text(row['options'], row['answer'])}</answer>"})
    write_jsonl(folder / "questions.jsonl", rows)
    return folder


def good_rows(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "questions.jsonl").read_text().splitlines()]


def hostile_rows(data: Path, folder: Path) -> dict[str, object]:
    """id -> a row (or raw line) that cannot be used; the images live in ``folder``."""
    base = good_rows(data)[0]
    image = Image.open(data / base["image"]).convert("RGB")
    image.save(folder / "whole.jpg", quality=95)
    whole = (folder / "whole.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image")
    (folder / "a_folder.jpg").mkdir(exist_ok=True)

    def row(qid, **changes):
        return {**base, "id": qid, **changes}

    return {
        "truncated-jpeg": row("truncated-jpeg", image=str(folder / "truncated.jpg")),
        "zero-byte-image": row("zero-byte-image", image=str(folder / "empty.jpg")),
        "text-as-image": row("text-as-image", image=str(folder / "text.jpg")),
        "folder-as-image": row("folder-as-image", image=str(folder / "a_folder.jpg")),
        "missing-image": row("missing-image", image="images/nowhere.png"),
        "answer-out-of-range": row("answer-out-of-range", answer=7),
        "answer-negative": row("answer-negative", answer=-1),
        "answer-boolean": row("answer-boolean", answer=True),
        "answer-string": row("answer-string", answer="B"),
        "options-not-a-list": row("options-not-a-list", options="Finch, Tit"),
        "missing-response": {k: v for k, v in row("missing-response").items() if k != "response"},
        "missing-image-field": {k: v for k, v in row("missing-image-field").items() if k != "image"},
        "id-not-a-string": row(12345),
        "not-json": '{"id": "not-json", "style": "cot", ',
        "json-array": '["a", "row", "that", "is", "a", "list"]',
    }


def test_judge_rejects_each_bad_row_and_judges_the_others(data, tmp_path):
    hostile = hostile_rows(data, tmp_path)
    predictions = write_jsonl(data / "hostile_predictions.jsonl", [*good_rows(data), *hostile.values()])
    out = tmp_path / "scores.jsonl"
    with ScriptedJudgeServer() as server:
        result = cli("judge", predictions, "--endpoint", server.url, "--model", "teacher", "--out", out,
                     "--max-retries", "0")
    assert result.returncode == 1, result.stderr
    assert f"{len(hostile)} rows rejected, listed in {out.with_suffix('.rejects.jsonl')}" in result.stderr
    for noise in ("Traceback", "client has been closed", "never retrieved"):
        assert noise not in result.stderr
    assert sorted(row["id"] for row in map(json.loads, out.read_text().splitlines())) == sorted(
        row["id"] for row in good_rows(data))
    rejects = [json.loads(line) for line in out.with_suffix(".rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == len(hostile) and all(r["file"] == str(predictions) and r["line"] > 4 for r in rejects)
    reasons = {r["id"]: r["reason"] for r in rejects}
    assert "image file is truncated" in reasons["truncated-jpeg"]
    assert reasons["missing-image"] == f"image not found: {data / 'images' / 'nowhere.png'}"
    assert "field 'answer' must index 'options'" in reasons["answer-out-of-range"]
    assert reasons["missing-response"].startswith("missing field(s) response")
    assert {r["id"] for r in rejects} == {qid for qid in hostile if qid not in ("id-not-a-string", "not-json",
                                                                               "json-array")} | {None}
    # The rejected rows are tried again on a rerun (and rejected again): nothing is lost or skipped.
    with ScriptedJudgeServer() as server:
        again = cli("judge", predictions, "--endpoint", server.url, "--model", "teacher", "--out", out)
    assert again.returncode == 1 and "judged 0 responses (4 already scored" in again.stderr


def test_judge_refused_endpoint_is_one_line_and_leaves_no_task_behind(data, tmp_path):
    with ScriptedJudgeServer(reply=lambda request: Status(401, message="invalid api key")) as server:
        result = cli("judge", data / "questions.jsonl", "--endpoint", server.url, "--model", "teacher",
                     "--out", tmp_path / "scores.jsonl")
    line = one_line_error(result, "judge")
    # The health check meets the 401 before the first judgement.
    assert "refused the health check (HTTP 401" in line and "REFINE_RFT_JUDGE_API_KEY" in line
    assert "never retrieved" not in result.stderr and "client has been closed" not in result.stderr


def test_duplicate_ids_are_refused_by_every_reader(data, tmp_path):
    rows = good_rows(data)
    twice = write_jsonl(data / "duplicates.jsonl", [*rows, rows[2]])
    judge = one_line_error(cli("judge", twice, "--backend", "attributes", "--out", tmp_path / "s.jsonl"), "judge")
    assert "1 duplicate id(s)" in judge and f"{rows[2]['id']!r}" in judge and f"{twice}:3 and {twice}:5" in judge
    evaluated = one_line_error(cli("eval", "--model", tiny("tiny:qwen2_vl"), "--data", twice, "--prompts", "choice",
                                   "--out", tmp_path / "eval"), "eval")
    assert "duplicate id(s)" in evaluated and rows[2]["id"] in evaluated
    # Across files too: the same question in two data files.
    across = one_line_error(cli("eval", "--model", tiny("tiny:qwen2_vl"), "--data", data / "questions.jsonl",
                                data / "questions.jsonl", "--prompts", "choice", "--out", tmp_path / "eval"), "eval")
    assert "4 duplicate id(s)" in across
    assert not (tmp_path / "eval").exists() and not (tmp_path / "s.jsonl").exists()  # nothing written


def test_empty_files_are_an_error_naming_the_file(tmp_path):
    empty = write_jsonl(tmp_path / "empty.jsonl", ["", "  "])
    for command, args in (("judge", [empty, "--backend", "attributes", "--out", tmp_path / "s.jsonl"]),
                          ("eval", ["--model", tiny("tiny:qwen2_vl"), "--data", empty, "--out", tmp_path / "eval"])):
        assert one_line_error(cli(command, *args), command).endswith(f"error: {empty}: empty data file (no rows)")
    missing = one_line_error(cli("judge", tmp_path / "nope.jsonl", "--backend", "attributes", "--out",
                                 tmp_path / "s.jsonl"), "judge")
    assert missing.endswith(f"no such data file: {tmp_path / 'nope.jsonl'}")


def test_judge_without_rows_of_the_chosen_style_is_an_error(data, tmp_path):
    line = one_line_error(cli("judge", data / "questions.jsonl", "--backend", "attributes", "--styles", "choice",
                              "--out", tmp_path / "s.jsonl"), "judge")
    assert "no rows of style(s) choice to judge (the file has: cot)" in line


def test_judge_resume_with_changed_settings_refuses_unless_overwrite(data, tmp_path):
    out = tmp_path / "scores.jsonl"
    assert cli("judge", data / "questions.jsonl", "--backend", "attributes", "--out", out).returncode == 0
    with ScriptedJudgeServer() as server:
        teacher = ["judge", data / "questions.jsonl", "--endpoint", server.url, "--model", "teacher", "--out", out]
        line = one_line_error(cli(*teacher), "judge")
        assert "was made with other settings: backend 'attributes' -> 'openai'" in line and "--overwrite" in line
        assert server.count == 0
        assert cli(*teacher, "--overwrite").returncode == 0
    assert {json.loads(row)["judge"] for row in out.read_text().splitlines()} == {"teacher"}


def test_eval_rejects_bad_questions_refuses_changed_settings_and_resumes(data, tmp_path):
    hostile = hostile_rows(data, tmp_path)
    question = hostile.pop("missing-response")  # a question needs no response: this row is a good question
    questions = write_jsonl(data / "hostile_questions.jsonl", [*good_rows(data)[:2], question, *hostile.values()])
    out = tmp_path / "eval"
    args = ["eval", "--model", tiny("tiny:qwen2_vl"), "--data", questions, "--prompts", "choice", "--out", out,
            "--batch-size", "4"]
    result = cli(*args)
    assert result.returncode == 1, result.stderr
    assert f"refine-rft eval: {len(hostile)} questions rejected, listed in {out / 'rejects.jsonl'}" in result.stderr
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(row["id"] for row in predictions) == sorted([*(r["id"] for r in good_rows(data)[:2]),
                                                              "missing-response"])
    rejects = {r["id"]: r["reason"] for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())}
    assert "image file is truncated" in rejects["truncated-jpeg"] and len(rejects) == len(hostile) - 2  # 3 without an id
    assert json.loads((out / "scores.json").read_text())["styles"]["choice"]["n"] == 3
    # Other settings, same folder: refused before the model is loaded, naming the change.
    line = one_line_error(cli(*args, "--max-new-tokens", "choice=4"), "eval")
    assert "max_new_tokens/choice 8 -> 4" in line and "--overwrite" in line
    other_model = one_line_error(cli(*args[:2], tiny("tiny:qwen2_5_vl"), *args[3:]), "eval")
    assert f"model {tiny('tiny:qwen2_vl')!r} -> {tiny('tiny:qwen2_5_vl')!r}" in other_model
    # The same settings resume (nothing left to generate); --overwrite starts afresh.
    assert cli(*args).returncode == 1
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3
    fresh = cli(*args, "--max-new-tokens", "choice=4", "--overwrite")
    assert fresh.returncode == 1 and json.loads((out / "run_settings.json").read_text())["max_new_tokens/choice"] == 4
    assert {json.loads(row)["max_new_tokens"] for row in (out / "predictions.jsonl").read_text().splitlines()} == {4}


def test_train_checks_every_row_before_the_first_step(data, tmp_path):
    hostile = hostile_rows(data, tmp_path)
    rows = [*good_rows(data), *(hostile[q] for q in ("truncated-jpeg", "missing-image", "answer-out-of-range"))]
    train_file = write_jsonl(data / "hostile_train.jsonl", rows)
    result = cli("train", "--config", RECIPES / "vanilla_grpo.yaml", "--model_name_or_path", tiny_instruct_path(),
                 "--train_file", train_file, "--output_dir", tmp_path / "run", "--max_steps", "1")
    line = one_line_error(result, "train")
    assert "3 of 7 rows cannot be used: " in line
    assert all(f"{qid} ({train_file}:" in line for qid in ("truncated-jpeg", "missing-image", "answer-out-of-range"))
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_relative_image_paths_mean_the_same_file_to_every_stage(data, tmp_path, monkeypatch):
    """The same JSONL, read from another working directory by train, eval, judge and report."""
    from refine_rft.evaluate.generate import load_questions
    from refine_rft.judge.reasoning_answer import pending_rows
    from refine_rft.report.runs import load_run
    from refine_rft.train.data import load_records

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "images").mkdir(parents=True)  # a decoy: the same relative paths, no such images
    monkeypatch.chdir(elsewhere)
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.jsonl").symlink_to(data / "questions.jsonl")
    expected = [str(data / row["image"]) for row in good_rows(data)]
    read_by = {
        "train": load_records(data / "questions.jsonl"),
        "eval": load_questions([data / "questions.jsonl"]),
        "judge": pending_rows(data / "questions.jsonl", {"cot"}).rows,
        "report": load_run(run).predictions,
    }
    for stage, rows in read_by.items():
        images = [row["image"] for row in rows]
        if stage == "report":  # the report reads the file where the run folder lists it
            expected_here = [str(run / row["image"]) for row in good_rows(data)]
            assert images == expected_here, stage
        else:
            assert images == expected, stage
    # And the judge command from that folder scores every row (the attribute judge needs no image;
    # the teacher reads each image, so a wrong folder would reject every row).
    with ScriptedJudgeServer() as server:
        result = cli("judge", data / "questions.jsonl", "--endpoint", server.url, "--model", "teacher",
                     "--out", tmp_path / "s.jsonl", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 4


def test_prepare_writes_image_paths_that_resolve_from_anywhere(tmp_path, monkeypatch):
    """prepare run with a relative --root, the JSONL written into another folder, read from a third."""
    from refine_rft.data.records import read_questions
    from refine_rft_workshop.testing.fake_layouts import tiny_jpeg, write_layout

    labels = ["Abyssinian", "Bengal", "Birman", "Bombay"]
    write_layout("pets", tmp_path / "roots", {"train": [(f"{c}_1.jpg", c) for c in labels], "test": []}, labels,
                 image=tiny_jpeg())
    result = cli("prepare", "pets", "--root", "roots", "--split", "train", "--distractors", "random",
                 "--out", tmp_path / "data" / "pets.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    monkeypatch.chdir(tmp_path / "data")
    rows = read_questions(tmp_path / "data" / "pets.jsonl")
    assert len(rows) == 4 and all(Path(row["image"]).is_file() for row in rows)
    assert all(Path(row["image"]).is_relative_to(tmp_path / "roots") for row in rows)
