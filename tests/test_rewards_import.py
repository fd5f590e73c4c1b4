"""Rewards by import path: a recipe names a function of its own module (``mypkg.rewards:brevity``) beside
the built-in rewards; its signature is checked when the recipe is read, and a bad entry is one line."""

from __future__ import annotations

import json
import textwrap

import pytest

from refine_rft.cli import main as refine_rft
from refine_rft_workshop import RECIPES as TINY

REWARDS_MODULE = '''
def brevity(completions, answer=None, **kwargs):
    """1.0 for a completion of at most 40 characters, else 0.0 (and how many calls saw the answers)."""
    calls.append(answer)
    return [1.0 if len(c[0]["content"]) <= 40 else 0.0 for c in completions]

calls = []

def no_kwargs(completions):
    return [0.0] * len(completions)

def prompts_first(prompts, completions, **kwargs):
    return [0.0] * len(completions)

def needs_teacher(completions, teacher, **kwargs):
    return [0.0] * len(completions)

NOT_A_FUNCTION = 3
'''


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``mypkg_<n>`` written as real files, importable from ``tmp_path``; its name."""
    name = f"mypkg_{tmp_path.name.replace('-', '_')}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "rewards.py").write_text(textwrap.dedent(REWARDS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_recipe_names_a_reward_by_import_path(package, tmp_path):
    from refine_rft.rewards import get_reward_funcs
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"include: {TINY / 'refine_rft.yaml'}\nrewards: [attribute_format, {package}.rewards:brevity]\n"
                      "reward_weights: [0.5, 0.5]\ntrain_file: q.jsonl\nmodel_name_or_path: m\n")
    script, training, _ = parse_recipe(grpo._dataclass_types(), ["--config", str(recipe), "--bf16", "false",
                                                                 "--use_cpu", "true"])
    assert script.rewards == ["attribute_format", f"{package}.rewards:brevity"]
    funcs = get_reward_funcs(script.rewards)
    assert [f.__name__ for f in funcs] == ["attribute_format_reward", "brevity"]
    completions = [[{"role": "assistant", "content": "<answer>B</answer>"}], [{"role": "assistant", "content": "x" * 41}]]
    # TRL's call: everything by keyword, the rows' columns included.
    assert funcs[1](prompts=["p", "p"], completions=completions, completion_ids=[[1], [2]], answer=[1, 1],
                    options=[["a", "b"]] * 2) == [1.0, 0.0]
    # TRL's dotted form names the same function.
    assert get_reward_funcs([f"{package}.rewards.brevity"])[0] is funcs[1]


def test_the_working_folder_is_on_the_import_path(tmp_path, monkeypatch):
    from refine_rft.rewards import load_reward

    (tmp_path / "local_rewards_for_test.py").write_text("def short(completions, **kwargs):\n    return [1.0]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    assert load_reward("local_rewards_for_test:short").__name__ == "short"


@pytest.mark.parametrize("entry, message", [
    ("{p}.rewards:no_kwargs", "reward '{p}.rewards:no_kwargs' must have TRL's signature f(completions, **kwargs) -> "
                              "list[float | None]; its signature is (completions)"),
    ("{p}.rewards:prompts_first", "reward '{p}.rewards:prompts_first' must have TRL's signature"),
    ("{p}.rewards:needs_teacher", "reward '{p}.rewards:needs_teacher' requires 'teacher', which TRL does not pass"),
    ("{p}.rewards:missing", "reward '{p}.rewards:missing': module '{p}.rewards' has no 'missing'"),
    ("{p}.rewards:NOT_A_FUNCTION", "reward '{p}.rewards:NOT_A_FUNCTION' is not a function (a int)"),
    ("{p}.nowhere:brevity", "reward '{p}.nowhere:brevity': cannot import '{p}.nowhere' (No module named "
                            "'{p}.nowhere'); install it, or run from the folder that holds it"),
    ("brevity", "unknown reward 'brevity'; valid rewards: format, attribute_format"),
])
def test_a_bad_reward_entry_is_one_line_at_load(package, tmp_path, capsys, entry, message):
    entry, message = entry.format(p=package), message.format(p=package)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"include: {TINY / 'refine_rft.yaml'}\nrewards: [format, '{entry}']\n"
                      "reward_weights: [0.5, 0.5]\n")
    # No model, data or output folder is needed: the recipe is refused while it is read.
    assert refine_rft(["train", "--config", str(recipe), "--train_file", "q.jsonl", "--model_name_or_path", "m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"refine-rft train: error: {message}") and err.count("\n") == 1, err


def test_trl_trains_with_an_imported_reward(package, tmp_path, tiny_model_path, synthetic_train_jsonl):
    """One GRPO step: TRL calls the imported reward with the rows' columns and logs it under its name."""
    import importlib

    from refine_rft.train.grpo import train_grpo

    out = train_grpo(TINY / "refine_rft.yaml", {
        "model_name_or_path": str(tiny_model_path), "train_file": str(synthetic_train_jsonl),
        "output_dir": str(tmp_path / "run"), "max_steps": 1, "num_generations": 2, "per_device_train_batch_size": 2,
        "max_completion_length": 16, "save_strategy": "no", "report_to": [], "disable_tqdm": True, "logging_steps": 1,
        "rewards": ["format", f"{package}.rewards:brevity"], "reward_weights": [0.5, 0.5], "bf16": False,
        "use_cpu": True})
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert "rewards/brevity/mean" in history[0]
    calls = importlib.import_module(f"{package}.rewards").calls
    assert calls and all(isinstance(answer, list) and answer for answer in calls)  # the rows' answers, by keyword
