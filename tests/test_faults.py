"""Hostile inputs through the real command line (``refine_rft.cli.main``, in this process, or
``python -m refine_rft.cli`` in a subprocess where another process is the point) and the real HTTP
judge server: one bad row never costs the others, bad input fails in one line.

Each class of fault has its test: unusable rows (truncated JPEG, missing image, answer index out of
range, missing field, ...) in judge, eval and train; duplicate ids; empty files; a resume with
changed settings; relative image paths read from another working directory; a judge answering 401.
And what becomes of the outputs: judge scores of responses that changed since, a scores.json that
disagrees with its predictions, two writers of one output, code shipped in a model folder, the
exit status of each kind of error, file modes under the umask, a damaged judge cache.
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
from refine_rft.cli import main as refine_rft_main
from refine_rft_workshop.testing.commands import run_in_process
from refine_rft_workshop.synthetic import attribute_phrase, synthetic_questions
from refine_rft.prompts import answer_text
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status
from refine_rft_workshop import RECIPES, tiny_instruct_path
from refine_rft_workshop.models import resolve_model_path as tiny

SRC = Path(refine_rft.__file__).resolve().parents[1]
RECIPE = RECIPES / "vanilla_grpo.yaml"


def cli_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def cli(*args: str, cwd: Path | None = None, umask: int = -1) -> subprocess.CompletedProcess:
    """``refine-rft ARGS`` (under ``umask`` if given) through its entry point, in this process."""
    return run_in_process(refine_rft_main, args, cwd=cwd, umask=umask)


def cli_process(*args: str, cwd: Path | None = None, umask: int = -1) -> subprocess.CompletedProcess:
    """``refine-rft ARGS`` in a fresh interpreter (under ``umask`` if given), as a user runs it."""
    return subprocess.run([sys.executable, "-m", "refine_rft.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=cli_env(), timeout=600, umask=umask)


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
    evaluated = one_line_error(cli("eval", "--trust-remote-code", "--model", tiny("tiny:qwen2_vl"), "--data", twice, "--prompts", "choice",
                                   "--out", tmp_path / "eval"), "eval")
    assert "duplicate id(s)" in evaluated and rows[2]["id"] in evaluated
    # Across files too: the same question in two data files.
    across = one_line_error(cli("eval", "--trust-remote-code", "--model", tiny("tiny:qwen2_vl"), "--data", data / "questions.jsonl",
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
    args = ["eval", "--trust-remote-code", "--model", tiny("tiny:qwen2_vl"), "--data", questions, "--prompts", "choice", "--out", out,
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
    other_model = one_line_error(cli(*args[:3], tiny("tiny:qwen2_5_vl"), *args[4:]), "eval")
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


# --- Outputs: never a stale number, one writer, trust on request, exit codes, modes ---------------------

def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def eval_cot(data: Path, out: Path, model: str, *extra, umask: int = -1) -> subprocess.CompletedProcess:
    return cli("eval", "--trust-remote-code", "--model", model, "--data", data / "questions.jsonl", "--prompts", "cot",
               "--max-new-tokens", "cot=12", "--batch-size", "4", "--out", out, *extra, umask=umask)


def test_judge_rejudges_exactly_the_responses_that_changed_and_report_refuses_stale_scores(data, tmp_path):
    """eval, judge, eval --overwrite with another model, judge again: the new responses are judged."""
    run = tmp_path / "run"
    predictions, scores = run / "predictions.jsonl", run / "judge_scores.jsonl"
    assert eval_cot(data, run, tiny("tiny:qwen2_vl")).returncode == 0
    before = {row["id"]: row["response"] for row in jsonl(predictions)}
    with ScriptedJudgeServer() as server:
        judge = ["judge", predictions, "--endpoint", server.url, "--model", "teacher", "--out", scores]
        first = cli(*judge)
        assert first.returncode == 0 and "judged 4 responses (0 already scored" in first.stderr, first.stderr
        assert eval_cot(data, run, tiny("tiny:qwen2_5_vl"), "--overwrite").returncode == 0
        after = {row["id"]: row["response"] for row in jsonl(predictions)}
        changed = sum(before[qid] != after[qid] for qid in after)
        assert changed > 0
        # Until the judge has seen the new responses, the report refuses to show the old scores.
        line = one_line_error(cli("report", run, "--out", tmp_path / "report"), "report")
        assert f"out of date with {predictions}: {changed} judged a response that has changed since" in line
        assert f"refine-rft judge {predictions} --out {scores}" in line
        second = cli(*judge)
    assert second.returncode == 0, second.stderr
    assert (f"judged {changed} responses ({4 - changed} already scored in {scores}, re-judged {changed} "
            f"whose response changed)") in second.stderr
    from refine_rft.judge.reasoning_answer import judged_digest

    assert {row["id"]: row["judged_sha256"] for row in jsonl(scores)} == {
        row["id"]: judged_digest(row) for row in jsonl(predictions)}
    assert cli("report", run, "--out", tmp_path / "report").returncode == 0
    # A question gone from the predictions takes its score with it.
    write_jsonl(predictions, jsonl(predictions)[1:])
    with ScriptedJudgeServer() as server:
        third = cli("judge", predictions, "--endpoint", server.url, "--model", "teacher", "--out", scores)
    assert third.returncode == 0 and f"removed 1 scores of rows no longer in {predictions}" in third.stderr
    assert len(jsonl(scores)) == 3


def test_report_recomputes_a_scores_json_that_disagrees_with_its_predictions(data, tmp_path):
    run = tmp_path / "run"
    rows = [{**row, "image": str(data / row["image"])} for row in good_rows(data)]  # every response is right
    write_jsonl(run / "predictions.jsonl", rows)
    stale = {"predictions": "predictions.jsonl", "styles": {"cot": {
        "per_dataset": {"synthetic": {"n": 4, "accuracy": 12.5, "unparseable": 0.0}},
        "average": 12.5, "unparseable": 0.0, "n": 4}}}
    for text in (json.dumps(stale), "", "[1, 2]"):  # another run's numbers, empty, not a scores file
        (run / "scores.json").write_text(text)
        result = cli("report", run, "--out", tmp_path / "report")
        assert result.returncode == 0, result.stderr
        assert f"{run / 'scores.json'} disagrees with {run / 'predictions.jsonl'}" in result.stderr
        table = (tmp_path / "report" / "tables.md").read_text()
        assert "100.0" in table and "12.5" not in table
    # Without predictions to recompute from, a damaged scores.json is a one-line error.
    (run / "predictions.jsonl").unlink()
    line = one_line_error(cli("report", run, "--out", tmp_path / "report"), "report")
    assert f"{run / 'scores.json'}: not a scores file" in line


HOLD_LOCK = """import sys, time
from refine_rft.files import output_lock
with output_lock(sys.argv[1], folder=sys.argv[2] == "folder"):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_lock(output: Path, folder: bool) -> subprocess.Popen:
    """Another process holding ``output``'s lock, as a running eval, judge or train would."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(output), "folder" if folder else "file"],
                              stdout=subprocess.PIPE, text=True, env=cli_env())
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.end_to_end
def test_end_to_end_a_second_writer_of_an_output_refuses_naming_the_first(data, tmp_path):
    import signal
    import socket
    import time

    predictions, scores = data / "questions.jsonl", tmp_path / "scores.jsonl"
    holder_of = f"(pid={{}} host={socket.gethostname()}"
    # Two real judge runs into one scores file: the second refuses while the first is judging.
    with ScriptedJudgeServer(latency=0.3) as server:
        judge = ["judge", predictions, "--endpoint", server.url, "--model", "teacher", "--out", scores,
                 "--concurrency", "1"]
        first = subprocess.Popen([sys.executable, "-m", "refine_rft.cli", *map(str, judge)], env=cli_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lock = tmp_path / "scores.jsonl.lock"
        deadline = time.monotonic() + 120
        while not (lock.is_file() and lock.read_text().startswith(f"pid={first.pid} ")):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        line = one_line_error(cli(*judge), "judge")
        _, first_stderr = first.communicate(timeout=300)  # waits, and closes its pipes
        assert first.returncode == 0, first_stderr
    assert holder_of.format(first.pid) in line and "being written by another judge run" in line
    assert len(jsonl(scores)) == 4  # each row once: nothing judged twice
    # The eval folder and the training output_dir, held by another process.
    for command, args, output, folder in (
            ("eval", ["--trust-remote-code", "--model", tiny("tiny:qwen2_vl"), "--data", predictions, "--prompts", "choice", "--out"],
             tmp_path / "eval", True),
            ("train", ["--config", RECIPE, "--model_name_or_path", tiny_instruct_path(), "--train_file", predictions, "--max_steps", "1", "--output_dir"],
             tmp_path / "train", True),
            ("judge", [predictions, "--backend", "attributes", "--out"], scores, False)):
        holder = hold_lock(output, folder)
        try:
            line = one_line_error(cli(command, *args, output), command)
            assert holder_of.format(holder.pid) in line, line
        finally:
            holder.send_signal(signal.SIGKILL)  # gone without releasing: its pid stays in the lock file
            holder.wait()
            holder.stdout.close()
    # A lock whose holder is gone is taken over, with a message naming it.
    result = cli("judge", predictions, "--backend", "attributes", "--out", scores, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of a judge run that is gone (pid={holder.pid} " in result.stderr
    assert lock.read_text() == ""  # released cleanly


@pytest.mark.end_to_end
def test_end_to_end_code_shipped_in_a_model_folder_runs_only_with_trust_remote_code(data, tmp_path):
    """No folder is trusted for what it holds: the workshop's own tiny model, unchanged, ships a
    processor file and is refused without the flag, by every command, before its code runs."""
    import shutil

    model, marker = tmp_path / "model", tmp_path / "code-ran"
    shutil.copytree(tiny("tiny:qwen2_vl"), model)
    with (model / "image_only_processor.py").open("a") as handle:  # the file, one line added: a probe
        handle.write(f"\nopen({str(marker)!r}, 'w').write('ran')\n")
    image = data / good_rows(data)[0]["image"]
    predict = ["predict", "--model", model, "--image", image, "--options", "Finch;Tit", "--style", "choice"]
    commands = {"eval": ["eval", "--model", model, "--data", data / "questions.jsonl", "--prompts", "choice",
                         "--out", tmp_path / "eval"],
                "predict": predict,
                "general-eval": ["general-eval", "--model", model, "--out", tmp_path / "general", "--dry-run"]}
    for command, args in commands.items():
        line = one_line_error(cli(*args), command)
        assert "image_only_processor.py" in line and "--trust-remote-code" in line, line
    assert not marker.exists()
    for name in ("image_only_processor.py",):  # the unchanged file is refused as well
        shutil.copy(tiny("tiny:qwen2_vl") + "/" + name, model)
    line = one_line_error(cli(*commands["eval"]), "eval")
    assert "image_only_processor.py" in line and "--trust-remote-code" in line
    # Code of its own, named by auto_map only (no .py file of that name): refused, naming the entry.
    config = json.loads((model / "processor_config.json").read_text())
    config["auto_map"]["AutoProcessor"] = "processing_probe.ProbeProcessor"
    (model / "processor_config.json").write_text(json.dumps(config))
    line = one_line_error(cli(*commands["eval"]), "eval")
    assert "processing_probe.ProbeProcessor" in line and "--trust-remote-code" in line and not marker.exists()
    # Asked for, the code runs: the marker the checks above look for does appear.
    with (model / "image_only_processor.py").open("a") as handle:
        handle.write(f"\nopen({str(marker)!r}, 'w').write('ran')\n")
    config["auto_map"]["AutoProcessor"] = "image_only_processor.ImageOnlyQwen2VLProcessor"
    (model / "processor_config.json").write_text(json.dumps(config))
    # (in a process of its own: the model folder's code is imported)
    assert cli_process(*predict, "--trust-remote-code").returncode == 0 and marker.read_text() == "ran"


def test_known_os_conditions_are_one_line_exit_2(data, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "nowhere" / "scores.jsonl")
    eval_into = ["eval", "--trust-remote-code", "--model", tiny("tiny:qwen2_vl"), "--data", data / "questions.jsonl", "--prompts",
                 "choice", "--out"]
    judge_into = ["judge", data / "questions.jsonl", "--backend", "attributes", "--out"]
    cases = [
        (eval_into, a_file, "File exists: "),  # --out an existing file
        (eval_into, tmp_path / "link-to-nowhere", "File exists: "),  # --out a dangling symlink
        (judge_into, dangling, "No such file or directory: "),
        (judge_into, a_file / "scores.jsonl", f"File exists: {a_file}"),  # a file where a folder must be
        (judge_into, tmp_path / ("n" * 300 + ".jsonl"), "File name too long: "),
        (eval_into, tmp_path / ("n" * 300), "File name too long: "),
    ]
    (tmp_path / "link-to-nowhere").symlink_to(tmp_path / "nowhere")
    for args, out, message in cases:
        line = one_line_error(cli(*args, out), args[0])
        assert message in line, line
    # A name the file system takes, but too long for a temporary sibling with a random suffix: written.
    long_name = tmp_path / ("n" * 240 + ".json")
    assert cli(*judge_into, long_name).returncode == 0 and long_name.with_suffix(".summary.json").is_file()
    if os.geteuid() != 0:  # root writes into read-only folders
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o555)
        assert "Permission denied: " in one_line_error(cli(*judge_into, read_only / "s.jsonl"), "judge")


def test_configuration_errors_are_one_line_exit_2(data, tmp_path):
    recipes = {"judge: {backend: openai\n  model: [teacher\n": "not valid YAML",
               "include: 5\n": "'include' must be a path or a list of paths",
               "judge: {backend: attributes, timeout: fast}\n":
                   "timeout must be a number, got 'fast'"}
    for text, message in recipes.items():
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(text)
        line = one_line_error(cli("judge", data / "questions.jsonl", "--config", recipe, "--out",
                                  tmp_path / "s.jsonl"), "judge")
        assert message in line and (str(recipe) in line or "judge config" in line), line
    recipe.write_text("model_name_or_path: tiny:qwen2_vl\nlearning_rate: [1\n")
    line = one_line_error(cli("train", "--config", recipe, "--output_dir", tmp_path / "run"), "train")
    assert f"recipe {recipe}:3:1: not valid YAML" in line, line  # where the parser gave up


def test_an_unexpected_error_keeps_its_traceback_and_its_own_exit_status(monkeypatch):
    """Exit 1 says "rows rejected"; a bug must not look like that."""
    import refine_rft.report.cli as report

    monkeypatch.setattr(report, "main", lambda argv: {}["no such key"])
    result = cli("report")
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "KeyError: 'no such key'" in result.stderr
    assert "refine-rft report: unexpected error (exit status 3)" in result.stderr


def test_outputs_honour_the_umask(data, tmp_path):
    run, report = tmp_path / "run", tmp_path / "report"
    assert eval_cot(data, run, tiny("tiny:qwen2_vl"), umask=0o022).returncode == 0
    judge = ["judge", run / "predictions.jsonl", "--backend", "attributes", "--out",
             run / "judge_scores.jsonl"]
    assert cli(*judge, umask=0o022).returncode == 0
    assert cli("report", run, "--out", report, umask=0o022).returncode == 0
    written = [p for p in [*run.rglob("*"), *report.rglob("*")] if p.is_file()]
    names = {p.name for p in written}
    assert {"scores.json", "run_settings.json", "judge_scores.settings.json", "judge_scores.summary.json",
            "report.html", "predictions.jsonl"} <= names
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: "0o644" for p in written}
    assert cli(*judge, "--overwrite", umask=0o027).returncode == 0
    assert oct((run / "judge_scores.settings.json").stat().st_mode & 0o777) == "0o640"


def test_training_and_export_honour_the_umask_and_export_runs_code_only_on_request(data, tmp_path):
    out = tmp_path / "train"
    result = cli("train", "--config", RECIPE, "--model_name_or_path", tiny_instruct_path(), "--train_file", data / "questions.jsonl", "--output_dir", out,
                 "--max_steps", "1", umask=0o022)
    assert result.returncode == 0, result.stderr
    saved = [out / "adapter_model.safetensors", out / "refine_rft_config.yaml",
             out / "checkpoint-1" / "adapter_model.safetensors"]
    assert {str(p): oct(p.stat().st_mode & 0o777) for p in saved} == {str(p): "0o644" for p in saved}
    merged = tmp_path / "merged"
    assert cli("export", "--trust-remote-code", "--adapter", out, "--out", merged, umask=0o022).returncode == 0
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in merged.iterdir()} == {
        p.name: "0o644" for p in merged.iterdir()}
    assert oct(merged.stat().st_mode & 0o777) == "0o755"
    # An adapter that ships code (the tiny model's processor file) is not exported without the flag.
    line = one_line_error(cli("export", "--adapter", out, "--out", tmp_path / "merged2"), "export")
    assert "image_only_processor.py" in line and "--trust-remote-code" in line


def test_a_corrupt_judge_cache_is_moved_aside_and_judging_goes_on(data, tmp_path):
    cache = tmp_path / "judge.sqlite"
    cache.write_bytes(b"this is not an sqlite database\n" * 64)
    with ScriptedJudgeServer() as server:
        result = cli("judge", data / "questions.jsonl", "--endpoint", server.url, "--model", "teacher",
                     "--cache", cache, "--out", tmp_path / "scores.jsonl")
    assert result.returncode == 0, result.stderr
    aside = list(tmp_path.glob("judge.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"this is not an sqlite database\n" * 64
    assert f"judge cache {cache} is not a usable sqlite database" in result.stderr
    assert f"moved it to {aside[0]}" in result.stderr
    import sqlite3

    with sqlite3.connect(cache) as db:  # the new cache holds this run's judgements
        assert db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0] == 4
    assert len(jsonl(tmp_path / "scores.jsonl")) == 4
