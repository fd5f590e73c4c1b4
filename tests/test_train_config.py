"""Recipes, the reward table and the question-to-dataset mapping (fast: no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refine_rft.judge import JudgeConfig
from refine_rft_workshop import RECIPES as TINY

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
PAPER = RECIPES / "qwen2vl7b"
# Parsing on a CPU machine: bf16 is refused without a GPU, everything else is checked as written.
CPU = {"bf16": False, "use_cpu": True}
# The tiny recipes name no model and no data: whoever runs them (the workshop's demo) gives both.
TINY_RUN = {"model_name_or_path": "tiny-model-folder", "train_file": "questions.jsonl"}


def _parse(recipe: Path, overrides: dict | None = None):
    from refine_rft.train import grpo, sft
    from refine_rft.train.config import parse_recipe

    types = sft._dataclass_types() if "sft" in recipe.name else grpo._dataclass_types()
    return parse_recipe(types, recipe=recipe, overrides=overrides)


def _runnable_recipes() -> list[Path]:
    return sorted(p for folder in (RECIPES, TINY) for p in folder.rglob("*.yaml")
                  if p.name not in ("base.yaml", "model.yaml"))


@pytest.mark.parametrize("recipe", _runnable_recipes(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_parses(recipe):
    script, training, model = _parse(recipe, {**CPU, **(TINY_RUN if recipe.parent == TINY else {})})
    assert model.model_name_or_path and training.output_dir
    if hasattr(script, "rewards"):
        assert len(training.reward_weights) == len(script.rewards)


def test_paper_recipe():
    script, training, model = _parse(PAPER / "refine_rft.yaml", CPU)
    assert model.model_name_or_path == "Qwen/Qwen2-VL-7B-Instruct"
    assert model.use_peft and (model.lora_r, model.lora_alpha) == (64, 128)
    assert training.learning_rate == 8e-6 and training.beta == 0.0 and training.num_generations == 6
    # effective batch: 64 questions x G=6 completions per optimizer step on 8 GPUs
    assert 8 * training.per_device_train_batch_size * training.gradient_accumulation_steps == 64 * 6
    assert script.rewards == ["attribute_format", "classification", "reasoning"]
    assert training.reward_weights == pytest.approx([1 / 3] * 3, abs=1e-6)
    assert script.judge.backend == "openai" and script.judge.model == "OpenGVLab/InternVL3-38B"
    assert script.judge.base_urls[0].startswith("http")
    assert training.use_vllm and script.prompt_style == "cot"


def test_ablations_differ_from_the_paper_only_where_they_should():
    from refine_rft.recipes import load_recipe

    paper = load_recipe(PAPER / "refine_rft.yaml")
    expected = {
        "rf.yaml": (["format"], [1.0]),
        "rf_rcls.yaml": (["format", "classification"], [0.5, 0.5]),
        "rfa_rcls.yaml": (["attribute_format", "classification"], [0.5, 0.5]),
        "weights_0.2_0.5_0.3.yaml": (paper["rewards"], [0.2, 0.5, 0.3]),
        "weights_0.2_0.3_0.5.yaml": (paper["rewards"], [0.2, 0.3, 0.5]),
    }
    for name, (rewards, weights) in expected.items():
        ablation = load_recipe(PAPER / "ablations" / name)
        assert (ablation["rewards"], ablation["reward_weights"]) == (rewards, weights), name
        changed = {k for k in paper.keys() | ablation.keys() if paper.get(k) != ablation.get(k)}
        assert changed <= {"rewards", "reward_weights", "output_dir"}, (name, changed)
    label_aware = load_recipe(PAPER / "ablations" / "judge_label_aware.yaml")
    assert paper["judge"]["prompt"] == "paper" and label_aware["judge"] == {**paper["judge"], "prompt": "label_aware"}
    changed = {k for k in paper.keys() | label_aware.keys() if paper.get(k) != label_aware.get(k)}
    assert changed == {"judge", "output_dir"}
    for recipe in ("refine_rft.yaml", "refine_rft_4gpu.yaml"):
        assert load_recipe(PAPER / recipe)["judge"]["prompt"] == "paper", recipe
    sft = load_recipe(PAPER / "sft.yaml")
    assert sft["model_name_or_path"] == paper["model_name_or_path"] and sft["lora_r"] == paper["lora_r"]
    assert sft["train_file"] == paper["train_file"] and sft["sft_target"] == "answer"


def test_include_merges_and_detects_cycles(tmp_path):
    from refine_rft.recipes import load_recipe

    (tmp_path / "a.yaml").write_text("include: b.yaml\nx: 1\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(ValueError, match="include cycle"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("include: missing.yaml\n")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_recipe(tmp_path / "c.yaml")


def test_unknown_recipe_key_fails_naming_it(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"include: {TINY / 'refine_rft.yaml'}\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"r.yaml: unknown key 'learning_rat' \(did you mean 'learning_rate'\?\)"):
        _parse(recipe)


def test_command_line_overrides_recipe():
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    script, training, _ = parse_recipe(grpo._dataclass_types(), [
        "--config", str(TINY / "refine_rft.yaml"), "--train_file", "q.jsonl", "--learning_rate", "0.5",
        "--judge", '{"backend": "attributes", "concurrency": 2}', "--rewards", "format", "length"])
    assert training.learning_rate == 0.5
    assert script.judge == JudgeConfig(backend="attributes", concurrency=2)
    assert script.rewards == ["format", "length"]
    # --judge changes the named judge settings and keeps the recipe's others
    script, _, _ = parse_recipe(grpo._dataclass_types(), [
        "--config", str(PAPER / "refine_rft.yaml"), "--bf16", "false", "--use_cpu", "true",
        "--judge", '{"base_urls": ["http://10.0.0.7:8000/v1"]}'])
    assert script.judge.base_urls == ["http://10.0.0.7:8000/v1"]
    assert script.judge.model == "OpenGVLab/InternVL3-38B"


def test_train_file_is_required_and_nothing_is_drawn_for_a_run(tmp_path, capsys):
    """No default data: a recipe without ``train_file`` stops at parsing, naming it; the training
    arguments hold no synthetic-data settings."""
    from dataclasses import MISSING, fields

    from refine_rft.train.config import DataArguments

    train_file = next(f for f in fields(DataArguments) if f.name == "train_file")
    assert train_file.default is MISSING and train_file.default_factory is MISSING
    assert [f.name for f in fields(DataArguments) if "synthetic" in f.name] == []
    with pytest.raises(SystemExit) as stop:
        _parse(TINY / "refine_rft.yaml", {"model_name_or_path": "m"})
    assert stop.value.code == 2 and "--train_file" in capsys.readouterr().err


def test_saved_config_has_no_secrets():
    from refine_rft.train.config import resolved_config, scrub_secrets

    script, training, model = _parse(TINY / "refine_rft.yaml",
                                     {**TINY_RUN, "judge": {"backend": "attributes"}, "hub_token": "hf_x"})
    text = json.dumps(resolved_config(script, training, model))
    assert "hf_x" not in text and '"backend": "attributes"' in text
    # The judge's key is never configured, only its variable's name: a key in the recipe fails.
    with pytest.raises(ValueError, match="api_key_env"):
        _parse(TINY / "refine_rft.yaml", {**TINY_RUN, "judge": {"backend": "attributes", "api_key": "sk-secret"}})
    assert scrub_secrets([{"api_key": 1, "k": 2}]) == [{"k": 2}]


def test_reward_table():
    from refine_rft.rewards import REWARD_NAMES, get_reward_funcs

    assert REWARD_NAMES == ("format", "attribute_format", "classification", "reasoning", "length",
                            "open_classification", "open_verifier")
    with pytest.raises(ValueError, match="valid rewards: format, attribute_format, classification, reasoning"):
        get_reward_funcs(["format", "cot"])
    with pytest.raises(ValueError, match="listed twice"):
        get_reward_funcs(["format", "format"])
    with pytest.raises(ValueError, match="needs judge settings"):
        get_reward_funcs(["reasoning"])
    rule_and_attribute_judge = [name for name in REWARD_NAMES if name != "open_verifier"]  # it needs a text LLM
    names = [f.__name__ for f in get_reward_funcs(rule_and_attribute_judge, judge=JudgeConfig(backend="attributes"))]
    assert names == ["format_reward", "attribute_format_reward", "classification_reward", "reasoning_reward",
                     "length_reward", "open_classification_reward"]


def test_length_reward_counts_policy_tokens(tiny_model_path):
    from transformers import AutoTokenizer

    from refine_rft.rewards.length import make_length_reward

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    think = "crimson wings and a hooked beak"
    n = len(tokenizer.encode(think, add_special_tokens=False))
    completion = [{"role": "assistant", "content": f"<think>{think}</think><answer>A</answer>"}]
    assert make_length_reward(n, tokenizer)([completion]) == [1.0]
    assert make_length_reward(n - 1, tokenizer)([completion])[0] < 1.0
    with pytest.raises(ValueError, match="positive"):
        make_length_reward(0)


def test_grpo_rows_pass_record_fields_to_rewards(tmp_path):
    from refine_rft_workshop.synthetic import synthetic_questions
    from refine_rft.files import write_jsonl_atomic
    from refine_rft.train.data import grpo_rows, load_records, to_dataset

    rows = synthetic_questions(tmp_path, "train", per_class=1, num_classes=4)
    for row in rows:  # relative image paths resolve against the JSONL's folder
        row["image"] = str(Path(row["image"]).relative_to(tmp_path))
    path = write_jsonl_atomic(tmp_path / "train.jsonl", rows)
    dataset = to_dataset(grpo_rows(load_records(path), "cot"))
    example = dataset[0]
    assert example["prompt"][0]["role"] == "user" and "<think>" in example["prompt"][0]["content"]
    assert example["image"].size == (112, 112)  # decoded lazily from the file
    for key in ("id", "options", "answer", "attributes", "option_attributes"):
        assert example[key] == rows[0][key], key

    rows[1]["image"] = "images/train/nope.png"
    write_jsonl_atomic(path, rows)
    with pytest.raises(ValueError, match=r"1 of 4 rows cannot be used: synthetic/train/\S+ \(.*train.jsonl:2\): image not found: .*nope.png"):
        load_records(path)
    with pytest.raises(ValueError, match="unknown prompt_style"):
        grpo_rows(rows, "verbose")
