"""One settings path: every command's flags in both spellings, ``--config FILE`` with sections of one
experiment file, one line for a bad flag, values of the file checked and named (in-process)."""

from __future__ import annotations

import json

import pytest

from refine_rft.cli import COMMANDS
from refine_rft.cli import main as refine_rft
from refine_rft_workshop import RECIPES as TINY

# A command line each command accepts (so that only the flag under test can be wrong).
VALID = {
    "prepare": ["cub", "--root", "r", "--split", "train", "--out", "o.jsonl"],
    "judge": ["p.jsonl", "--out", "s.jsonl"],
    "train": ["--config", str(TINY / "refine_rft.yaml"), "--train_file", "q.jsonl", "--model_name_or_path", "m"],
    "sft": ["--config", str(TINY / "sft.yaml"), "--train_file", "q.jsonl", "--model_name_or_path", "m"],
    "export": ["--adapter", "a", "--out", "o"],
    "eval": ["--model", "m", "--data", "d.jsonl", "--out", "o"],
    "general-eval": ["--model", "m", "--out", "o"],
    "predict": ["--model", "m", "--image", "x.png"],
    "report": ["r1", "--out", "o"],
}


def test_every_command_is_covered():
    assert set(VALID) == set(COMMANDS)


@pytest.mark.parametrize("command", VALID)
def test_a_bad_flag_is_one_line_under_the_command(command, capsys):
    assert refine_rft([command, *VALID[command], "--foo", "1"]) == 2
    err = capsys.readouterr().err
    name = f"refine-rft {command}" + (" cub" if command == "prepare" else "")
    assert err == f"{name}: unknown flag --foo (see {name} --help)\n"


@pytest.mark.parametrize("command", VALID)
def test_a_bad_flag_is_named_before_the_flags_it_leaves_missing(command, capsys):
    """A misspelt required flag: the misspelling is the news, not the flag it leaves missing."""
    argv = [command, *VALID[command][:1], "--foo", "1"] if command == "prepare" else [command, "--foo", "1"]
    assert refine_rft(argv) == 2
    err = capsys.readouterr().err
    name = f"refine-rft {command}" + (" cub" if command == "prepare" else "")
    assert err == f"{name}: unknown flag --foo (see {name} --help)\n"


@pytest.mark.parametrize("command, argv, line", [
    ("eval", ["--model", "m", "--out", "o"], "refine-rft eval: missing --data (see refine-rft eval --help)\n"),
    ("report", ["--out", "o"], "refine-rft report: missing RUN_DIR (see refine-rft report --help)\n"),
    ("eval", ["--model", "m", "--data", "d", "--out", "o", "--batch-size", "x"],
     "refine-rft eval: --batch_size: invalid int value: 'x' (see refine-rft eval --help)\n"),
    ("prepare", ["imagenet"], "refine-rft prepare: unknown dataset 'imagenet'; choose from cub, aircraft, cars, dogs, "
                              "flowers, pets, folder, csv, paper, fine-r1 (see refine-rft prepare --help)\n"),
])
def test_usage_errors_are_one_line(command, argv, line, capsys):
    assert refine_rft([command, *argv]) == 2
    assert capsys.readouterr().err == line


def test_help_lists_both_spellings_and_config(capsys):
    assert refine_rft(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--max_pixels MAX_PIXELS, --max-pixels MAX_PIXELS" in out and "--config FILE" in out


@pytest.mark.parametrize("command", ["eval", "predict", "general-eval"])
@pytest.mark.parametrize("spelling", ["--max_pixels", "--max-pixels"])
def test_both_spellings(command, spelling):
    import importlib

    parsed = importlib.import_module(COMMANDS[command][0]).parse_args([*VALID[command], spelling, "1003520"])
    assert parsed[1].max_pixels == 1003520


def test_one_experiment_file_for_train_eval_and_judge(tmp_path):
    """The training recipe, with an ``eval:`` and an ``rsc_judge:`` section: each command reads its own,
    flags win over the file, and training reads the recipe without the eval section."""
    from refine_rft.evaluate.cli import parse_args as eval_args
    from refine_rft.judge.cli import parse_args as judge_args
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    exp = tmp_path / "exp.yaml"
    exp.write_text(f"include: {TINY / 'refine_rft.yaml'}\ntrain_file: q.jsonl\nmodel_name_or_path: m\n"
                   "judge: {backend: attributes}\n"
                   "rsc_judge: {backend: openai, base_urls: [http://judge:8000/v1], model: rsc, timeout: 5}\n"
                   "eval: {model: m, adapter: runs/a, data: t.jsonl, out: runs/a/eval, prompts: cot,\n"
                   "       max_new_tokens: {cot: 64}, max_pixels: 50176}\n")
    args, pixels, _ = eval_args(["--config", str(exp), "--batch_size", "4"])
    assert (args.model, args.adapter, args.data, args.out, args.prompts, args.max_new_tokens, args.batch_size) == (
        "m", "runs/a", ["t.jsonl"], "runs/a/eval", "cot", {"cot": 64}, 4)
    assert pixels.max_pixels == 50176
    # A mapping flag changes the named keys of the file's mapping and keeps the others.
    assert eval_args(["--config", str(exp), "--max-new-tokens", '{"choice": 2}'])[0].max_new_tokens == {
        "cot": 64, "choice": 2}
    run, judge = judge_args(["p.jsonl", "--out", "s.jsonl", "--config", str(exp), "--timeout", "9"])
    assert (judge.model, judge.base_urls, judge.timeout, judge.api_key_env) == (
        "rsc", ["http://judge:8000/v1"], 9.0, "REFINE_RFT_JUDGE_API_KEY")
    script, training, _ = parse_recipe(grpo._dataclass_types(), ["--config", str(exp), "--bf16", "false",
                                                                 "--use_cpu", "true"])
    assert script.judge.backend == "attributes" and script.rsc_judge.model == "rsc"
    assert training.num_generations == 4


def test_a_file_without_the_commands_section_is_refused(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 1.0e-5\n")
    assert refine_rft(["eval", "--config", str(recipe)]) == 2
    assert f"{recipe} has no 'eval:' section" in capsys.readouterr().err


def test_a_plain_settings_file_with_env_and_include(tmp_path, monkeypatch):
    from refine_rft.report.cli import parse_args

    monkeypatch.delenv("REFINE_RFT_TEST_VARIABLE", raising=False)
    (tmp_path / "base.yaml").write_text("runs: [r1, r2]\nsamples: 3\n")
    (tmp_path / "report.yaml").write_text("include: base.yaml\nenv: {REFINE_RFT_TEST_VARIABLE: set}\nout: o\n")
    (args,) = parse_args(["--config", str(tmp_path / "report.yaml"), "--seed", "2"])
    assert (args.runs, args.out, args.samples, args.seed) == (["r1", "r2"], "o", 3, 2)
    import os

    assert os.environ["REFINE_RFT_TEST_VARIABLE"] == "set"


def test_file_values_are_checked_and_named(tmp_path, capsys):
    settings = tmp_path / "eval.yaml"
    settings.write_text("eval: {model: m, data: [d], out: o, batch_size: many, limt: 3}\n")
    assert refine_rft(["eval", "--config", str(settings)]) == 2
    assert capsys.readouterr().err == (f"refine-rft eval: error: {settings}: unknown key 'limt' (did you mean "
                                       "'limit'?); see 'refine-rft eval --help' for the valid ones\n")
    settings.write_text("eval: {model: m, data: [d], out: o, batch_size: many}\n")
    assert refine_rft(["eval", "--config", str(settings)]) == 2
    assert capsys.readouterr().err == f"refine-rft eval: error: {settings}: batch_size must be an integer, got 'many'\n"
    settings.write_text("eval: {model: m, data: [d], out: o, backend: tgi}\n")
    assert refine_rft(["eval", "--config", str(settings)]) == 2
    assert capsys.readouterr().err == "refine-rft eval: error: unknown backend 'tgi'; valid backends: hf, vllm\n"


def test_repeated_endpoints_add_up_and_replace_the_files(tmp_path):
    from refine_rft.judge.cli import parse_args

    settings = tmp_path / "judge.yaml"
    settings.write_text(json.dumps({"base_urls": ["http://x/v1"], "model": "m"}))
    assert parse_args(["p", "--out", "s", "--config", str(settings)])[1].base_urls == ["http://x/v1"]
    assert parse_args(["p", "--out", "s", "--config", str(settings), "--endpoint", "http://a/v1", "--base-urls",
                       "http://b/v1", "http://c/v1"])[1].base_urls == ["http://a/v1", "http://b/v1", "http://c/v1"]


def test_a_boolean_flag_before_a_positional_argument():
    from refine_rft.judge.cli import parse_args

    run, _ = parse_args(["--overwrite", "p.jsonl", "--out", "s.jsonl"])
    assert (str(run.predictions), run.overwrite) == ("p.jsonl", True)
    assert parse_args(["p.jsonl", "--overwrite", "false", "--out", "s.jsonl"])[0].overwrite is False


@pytest.mark.parametrize("argv, line", [
    (["synthetic", "--out", "o", "--foo"],
     "refine-rft-workshop synthetic: unknown flag --foo (see refine-rft-workshop synthetic --help)\n"),
    (["tiny-model", "--arch", "qwen2_vl"],
     "refine-rft-workshop tiny-model: missing OUT (see refine-rft-workshop tiny-model --help)\n"),
])
def test_the_workshops_commands_answer_alike(argv, line, capsys):
    from refine_rft_workshop.cli import main as workshop

    assert workshop(argv) == 2
    assert capsys.readouterr().err == line
