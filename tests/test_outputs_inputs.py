"""One rule for every command: an output is never one of its inputs, nor inside an input folder it reads
(nor, for a folder the command replaces whole, around one). Each command is called in-process through
the real entry point (``refine_rft.cli.main``) and must refuse with exit 2 in one line naming both paths,
before it writes anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refine_rft.cli import main
from refine_rft_workshop import RECIPES


def refused(capsys, *argv) -> str:
    """Run ``refine-rft ARGV``; assert a one-line exit-2 refusal and return the line."""
    status = main([*map(str, argv)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"refine-rft {argv[0]}: error: ")]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def run(tmp_path) -> Path:
    """A run folder with a predictions file (rows that are questions too) and a model-like folder."""
    folder = tmp_path / "run"
    folder.mkdir()
    row = {"id": "q1", "dataset": "birds", "noun": "birds", "label": "Finch", "options": ["Finch", "Tit"],
           "answer": 0, "image": "x.png", "style": "cot", "response": "<answer>A. Finch</answer>"}
    (folder / "predictions.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    return folder


def test_judge_refuses_to_write_its_scores_over_the_predictions(run, capsys):
    predictions = run / "predictions.jsonl"
    before = predictions.read_bytes()
    line = refused(capsys, "judge", predictions, "--backend", "attributes", "--out", predictions)
    assert f"--out {predictions} is the input PREDICTIONS {predictions}" in line
    # Through a symbolic link and a hard link: the same file under another name.
    (run / "link.jsonl").symlink_to(predictions)
    assert "is the input PREDICTIONS" in refused(capsys, "judge", predictions, "--backend", "attributes",
                                                 "--out", run / "link.jsonl")
    (run / "hard.jsonl").hardlink_to(predictions)
    assert "is the input PREDICTIONS" in refused(capsys, "judge", run / "hard.jsonl", "--backend", "attributes",
                                                 "--out", predictions)
    # A sidecar of the scores file (its settings) would land on the input.
    (run / "s.settings.json").write_bytes(before)
    line = refused(capsys, "judge", run / "s.settings.json", "--backend", "attributes", "--out", run / "s.jsonl")
    assert "s.settings.json is the input PREDICTIONS" in line
    # The recipe is an input too.
    recipe = run / "judge.yaml"
    recipe.write_text("backend: attributes\n")
    assert f"is the input --config {recipe}" in refused(capsys, "judge", predictions, "--config", recipe,
                                                         "--out", recipe)
    assert predictions.read_bytes() == before and not (run / "predictions.settings.json").exists()


def test_eval_refuses_a_run_folder_over_its_data_or_inside_the_adapter(run, tmp_path, capsys):
    predictions, model = run / "predictions.jsonl", tmp_path / "model"
    line = refused(capsys, "eval", "--trust-remote-code", "--model", model, "--data", predictions, "--out", run)
    assert f"{predictions} is the input --data {predictions}" in line
    line = refused(capsys, "eval", "--trust-remote-code", "--model", model, "--data", predictions, "--out", predictions)
    assert f"--out {predictions} is the input --data" in line
    # Inside the adapter folder: eval's run_settings.json would replace the training run's.
    line = refused(capsys, "eval", "--trust-remote-code", "--model", "Qwen/Qwen2-VL-7B-Instruct", "--adapter", model, "--data",
                   predictions, "--out", model / "eval")
    assert f"--out {model / 'eval'} is inside the input --adapter {model}" in line
    assert not (model / "eval").exists() and sorted(p.name for p in run.iterdir()) == ["predictions.jsonl"]


def test_report_refuses_to_write_into_a_run_folder(run, capsys):
    line = refused(capsys, "report", run, "--out", run / "report")
    assert f"--out {run / 'report'} is inside the input RUN_DIR {run}" in line
    assert "is the input RUN_DIR" in refused(capsys, "report", run, "--out", run)


def test_export_refuses_an_out_inside_or_around_the_adapter(tmp_path, capsys):
    adapter = tmp_path / "train" / "checkpoint-5"
    adapter.mkdir(parents=True)
    line = refused(capsys, "export", "--trust-remote-code", "--adapter", adapter, "--out", adapter / "merged")
    assert f"is inside the input --adapter {adapter}" in line
    line = refused(capsys, "export", "--trust-remote-code", "--adapter", adapter, "--out", tmp_path / "train")
    assert f"--out {tmp_path / 'train'} would replace the folder holding the input --adapter {adapter}" in line
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["checkpoint-5"]


def test_prepare_refuses_an_out_over_its_csv_or_inside_the_dataset(tmp_path, capsys):
    table = tmp_path / "train.csv"
    table.write_text("image,label\na.png,Finch\n")
    line = refused(capsys, "prepare", "csv", "--root", table, "--split", "train", "--out", table)
    assert f"--out {table} is the input --root {table}" in line
    assert table.read_text() == "image,label\na.png,Finch\n"
    roots, choices = tmp_path / "roots", tmp_path / "choices"
    roots.mkdir(), choices.mkdir()
    line = refused(capsys, "prepare", "paper", "--roots", roots, "--choices-dir", choices, "--out", roots / "q")
    assert f"is inside the input --roots {roots}" in line


def test_general_eval_refuses_to_write_inside_the_model(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    line = refused(capsys, "general-eval", "--trust-remote-code", "--model", model, "--out", model, "--dry-run")
    assert f"is inside the input --model {model}" in line


def test_train_refuses_an_output_dir_over_its_data_or_model(run, tmp_path, capsys):
    data = run / "predictions.jsonl"
    recipe = RECIPES / "vanilla_grpo.yaml"
    line = refused(capsys, "train", "--config", recipe, "--model_name_or_path", tmp_path / "model",
                   "--train_file", data, "--output_dir", data)
    assert f"output_dir {data} is the input train_file {data}" in line
    line = refused(capsys, "sft", "--config", RECIPES / "sft.yaml", "--model_name_or_path", tmp_path / "model",
                   "--train_file", data, "--output_dir", tmp_path / "model" / "sft")
    assert f"is inside the input model_name_or_path {tmp_path / 'model'}" in line
    # Training on from one of its own checkpoints into the same folder: --overwrite would remove it.
    checkpoint = tmp_path / "out" / "checkpoint-5"
    checkpoint.mkdir(parents=True)
    line = refused(capsys, "train", "--config", recipe, "--model_name_or_path", checkpoint,
                   "--train_file", data, "--output_dir", tmp_path / "out")
    assert f"is the input model_name_or_path {checkpoint}" in line
    assert data.read_text().startswith("{") and not (tmp_path / "model" / "sft").exists()
