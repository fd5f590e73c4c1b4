"""The ``eval`` and ``general-eval`` commands end to end (tiny model; lmms-eval absent)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from refine_rft_workshop.synthetic import synthetic_questions
from refine_rft.evaluate import cli, general
from refine_rft.files import write_jsonl_atomic


def test_eval_command_writes_predictions_and_scores(tmp_path, tiny_model_path, capsys):
    data = write_jsonl_atomic(tmp_path / "q.jsonl", synthetic_questions(tmp_path, "test", per_class=1, num_classes=4))
    out = tmp_path / "run"
    assert cli.main(["--trust-remote-code", "--model", str(tiny_model_path), "--data", str(data), "--prompts", "choice,cot", "--out", str(out),
                     "--limit", "3", "--max-new-tokens", "choice=2,cot=6"]) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["max_new_tokens"] for r in rows} == {2, 6}
    scores = json.loads((out / "scores.json").read_text())["styles"]
    assert set(scores) == {"choice", "cot"} and scores["cot"]["n"] == 3
    assert "choice avg=" in capsys.readouterr().out


def test_eval_command_rejects_bad_budget(capsys):
    from refine_rft.cli import main as refine_rft

    assert refine_rft(["eval", "--model", "m", "--data", "d", "--out", "o", "--max-new-tokens", "cot=lots"]) == 2
    assert capsys.readouterr().err == ("refine-rft eval: error: max_new_tokens: expected STYLE=N[,STYLE=N], "
                                       "got 'cot=lots'\n")


def test_general_eval_dry_run_prints_the_command(tmp_path, capsys):
    assert general.main(["--model", "m", "--out", str(tmp_path), "--tasks", "mmstar", "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith(f"-m lmms_eval --model qwen2_vl --model_args pretrained=m --tasks mmstar --batch_size 1 "
                         f"--output_path {tmp_path / 'general_eval'}")


@pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is not None, reason="lmms-eval is installed here")
def test_general_eval_without_lmms_eval_is_a_clear_error(tmp_path, capsys):
    assert general.main(["--model", "m", "--out", str(tmp_path)]) == 2
    assert "lmms-eval is not installed" in capsys.readouterr().err
