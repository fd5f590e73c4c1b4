"""``refine-rft judge``: RSC scores for a predictions file, resumable, with a per-dataset summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refine_rft.cli import main as refine_rft
from refine_rft_workshop.synthetic import attribute_phrase, synthetic_questions
from refine_rft.prompts import answer_text
from refine_rft.recipes import load_recipe
from refine_rft_workshop.testing.scripted_server import RSC_REPLY, ScriptedJudgeServer, Status

PROBE = 3  # the health check's requests: one judgement, two sight questions

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
RECIPES = sorted(RECIPES_DIR.rglob("*.yaml"))


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    """Predictions as ``refine-rft eval`` writes them: a correct cot response and a choice response per question."""
    folder = tmp_path_factory.mktemp("judge-cli")
    rows = []
    for row in synthetic_questions(folder, "test", per_class=1, num_classes=8):
        traits = ", ".join(attribute_phrase(a, v) for a, v in row["attributes"].items())
        response = (f"<think>The bird has {traits}.</think>\n<attribute>{traits}</attribute>\n"
                    f"<answer>{answer_text(row['options'], row['answer'])}</answer>")
        rows.append({**row, "style": "cot", "response": response})
        rows.append({**row, "style": "choice", "response": "ABCD"[row["answer"]]})
    path = folder / "predictions.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_attribute_judge_scores_cot_rows_and_summarises(predictions, tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    assert refine_rft(["judge", str(predictions), "--backend", "attributes", "--out", str(out)]) == 0
    rows = read(out)
    assert len(rows) == 8 and {row["style"] for row in rows} == {"cot"}
    assert all(row["RSC_A"] == 100.0 and row["RSC_O"] == 100.0 and row["RSC_U"] == 100.0 for row in rows)
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["synthetic"] == {"n": 8, "RSC_A": 100.0, "RSC_U": 100.0, "RSC_O": 100.0}
    assert "synthetic" in capsys.readouterr().out


def test_a_rerun_judges_only_what_is_missing(predictions, tmp_path):
    out = tmp_path / "scores.jsonl"
    with ScriptedJudgeServer() as server:
        args = ["judge", str(predictions), "--endpoint", server.url, "--model", "teacher", "--out", str(out),
                "--styles", "cot,choice"]
        assert refine_rft(args) == 0
        assert server.count == PROBE + 16  # the health check, then the rows
        lines = out.read_text().splitlines()
        out.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20])  # lose two rows, tear a third
        assert refine_rft(args) == 0
    assert server.count == PROBE + 16 + PROBE + 3
    assert sorted((r["id"], r["style"]) for r in read(out)) == sorted(
        (r["id"], r["style"]) for r in map(json.loads, predictions.read_text().splitlines()))


def test_failed_judgements_are_left_for_the_next_run(predictions, tmp_path, capsys):
    """Two rows fail after the health check: exit 1, saying how many and that a rerun retries them."""
    out = tmp_path / "scores.jsonl"
    with ScriptedJudgeServer(script=[RSC_REPLY, Status(500), Status(500)]) as server:
        args = ["judge", str(predictions), "--endpoint", server.url, "--model", "teacher", "--out", str(out),
                "--max-retries", "0", "--concurrency", "1"]
        assert refine_rft(args) == 1
        assert len(read(out)) == 6
        err = capsys.readouterr().err
        assert "2 of 8 responses could not be judged" in err and "rerun the same command to retry them" in err
        assert refine_rft(args) == 0
    assert len(read(out)) == 8
    assert server.count == PROBE + 8 + PROBE + 2  # probe, 8 rows (2 failed), probe, the 2 retried


def test_bad_input_fails_with_a_message(tmp_path, capsys):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(json.dumps({"id": "cars/1", "style": "cot", "dataset": "cars", "image": "x.png",
                                       "options": ["a", "b"], "answer": 0, "noun": "cars",
                                       "response": "<think>red</think>"}) + "\n")
    # A row the attribute judge cannot score is rejected (exit 1, listed beside the scores), not fatal.
    assert refine_rft(["judge", str(predictions), "--backend", "attributes", "--out", str(tmp_path / "s.jsonl")]) == 1
    assert "'cars/1' lacks field(s) attributes" in capsys.readouterr().err
    assert json.loads((tmp_path / "s.rejects.jsonl").read_text())["id"] == "cars/1"
    assert refine_rft(["judge", str(predictions), "--endpoint", "http://127.0.0.1:9/v1",
                       "--out", str(tmp_path / "t.jsonl")]) == 2  # an endpoint but no --model
    error = capsys.readouterr().err
    assert error.startswith("refine-rft judge: error: ") and "model is required" in error


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(RECIPES_DIR)))
def test_judge_config_reads_every_recipe_as_training_does(recipe, predictions, tmp_path, monkeypatch):
    """``--config RECIPE`` (includes resolved): the judge that training would use, flags on top."""
    monkeypatch.chdir(tmp_path)  # a recipe's relative cache_path must not leave a cache in the checkout
    from refine_rft.judge.cli import parse_args
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    recipe_values = load_recipe(recipe)
    config = parse_args([str(predictions), "--config", str(recipe), "--out", str(tmp_path / "s.jsonl")])[1] \
        if {"judge", "rsc_judge"} & set(recipe_values) else None
    if config is not None:
        script, _, _ = parse_recipe(grpo._dataclass_types(), ["--config", str(recipe), "--bf16", "false",
                                                              "--use_cpu", "true"])
        # The Reasoning-Answer judge where the recipe names one, else its R_cot teacher.
        assert config == (script.rsc_judge or script.judge)
    out = tmp_path / "scores.jsonl"
    with ScriptedJudgeServer() as server:
        assert refine_rft(["judge", str(predictions), "--config", str(recipe), "--endpoint", server.url,
                           "--model", "teacher", "--out", str(out)]) == 0
    rows = read(out)
    assert len(rows) == 8
    if config is not None and config.backend == "attributes":
        assert server.count == 0 and {row["judge"] for row in rows} == {"attributes"}
    else:
        assert server.count == PROBE + 8 and {row["judge"] for row in rows} == {"teacher"}  # health check + rows


def test_judge_settings_file_with_a_typo_fails(predictions, tmp_path, capsys):
    settings = tmp_path / "judge.yaml"
    settings.write_text("backend: attributes\nconcurency: 4\n")
    assert refine_rft(["judge", str(predictions), "--config", str(settings), "--out", str(tmp_path / "s.jsonl")]) == 2
    assert "unknown key 'concurency'" in capsys.readouterr().err


def test_without_settings_the_judge_is_the_papers_gpt_4_1_mini(predictions, tmp_path):
    from refine_rft.judge.cli import parse_args

    out = str(tmp_path / "s.jsonl")
    config = parse_args([str(predictions), "--out", out])[1]
    assert (config.model, config.base_urls, config.api_key_env) == (
        "gpt-4.1-mini", ["https://api.openai.com/v1"], "OPENAI_API_KEY")
    recipe = RECIPES_DIR / "qwen2vl7b/refine_rft.yaml"
    recipe_judge = parse_args([str(predictions), "--config", str(recipe), "--out", out])[1]
    assert recipe_judge.model == "gpt-4.1-mini" != load_recipe(recipe)["judge"]["model"]


def _predictions_of_a_trained_run(tmp_path: Path, predictions: Path, teacher: str) -> Path:
    """Predictions whose run_settings.json names an adapter folder whose saved recipe had ``teacher``."""
    import yaml

    run = tmp_path / "run"
    run.mkdir()
    (run / "refine_rft_config.yaml").write_text(yaml.safe_dump(
        {"script": {"judge": {"backend": "openai", "model": teacher, "base_urls": ["http://t:8000/v1"]}}}))
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "predictions.jsonl").write_bytes(predictions.read_bytes())
    settings = {"model": "Qwen/Qwen2-VL-7B-Instruct", "adapter": str(run)}
    (folder / "run_settings.json").write_text(json.dumps(settings))
    return folder / "predictions.jsonl"


@pytest.mark.parametrize("judge_model, warned", [("teacher", True), ("gpt-4.1-mini", False)])
def test_warns_when_the_rsc_judge_gave_r_cot(predictions, tmp_path, capsys, judge_model, warned):
    trained = _predictions_of_a_trained_run(tmp_path, predictions, teacher="teacher")
    with ScriptedJudgeServer() as server:
        assert refine_rft(["judge", str(trained), "--endpoint", server.url, "--model", judge_model,
                           "--out", str(tmp_path / "s.jsonl")]) == 0
    error = capsys.readouterr().err
    assert ("warning: the Reasoning-Answer judge 'teacher' is the teacher that gave R_cot" in error) is warned


def test_every_judge_flag_sets_the_judge_setting_it_is_made_from():
    from refine_rft.judge.cli import parse_args

    argv = ["p.jsonl", "--out", "s.jsonl", "--backend", "openai", "--endpoint", "http://a:1/v1", "--endpoint",
            "http://b:2/v1", "--model", "m", "--api-key-env", "KEY", "--concurrency", "3", "--timeout", "2.5",
            "--max-retries", "1", "--max-failure-rate", "0.25", "--failure-window", "8", "--cache", "c.db",
            "--reject-injections", "--no-sight-check"]
    config = parse_args(argv)[1]
    assert (config.base_urls, config.model, config.api_key_env, config.concurrency, config.timeout,
            config.max_retries, config.max_failure_rate, config.failure_window, config.cache_path,
            config.reject_injections, config.sight_check) == (
        ["http://a:1/v1", "http://b:2/v1"], "m", "KEY", 3, 2.5, 1, 0.25, 8, "c.db", True, False)
    # A flag not given leaves the setting to --config or the paper's judge.
    assert parse_args(["p.jsonl", "--out", "s.jsonl"])[1].model == "gpt-4.1-mini"
    with pytest.raises(SystemExit):
        parse_args(["p.jsonl", "--out", "s.jsonl", "--concurrency", "many"])
