"""GRPO on the tiny model: every reward is computed and logged, the judge is really reached, LoRA moves.

The policy is the tiny model after the CoT format warm-up (fixture ``cot_warm_model``): a random
model never writes a ``<think>`` block, so the judge would never be asked anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from refine_rft_workshop import RECIPES as TINY_RECIPES
from refine_rft_workshop import tiny_instruct_path
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
RECIPE = TINY_RECIPES / "refine_rft.yaml"
ALL_REWARDS = ["attribute_format", "classification", "reasoning", "length"]


def _overrides(tmp_path, model, train_file, **extra) -> dict:
    return {"model_name_or_path": str(model), "train_file": str(train_file), "output_dir": str(tmp_path / "run"),
            "max_steps": 3, "num_generations": 2, "per_device_train_batch_size": 4, "max_completion_length": 48,
            "save_strategy": "no", "report_to": [], "disable_tqdm": True, "rewards": ALL_REWARDS,
            "reward_weights": [0.25, 0.25, 0.25, 0.25], "length_budget": 16, **extra}


def _log_history(out: Path) -> list[dict]:
    return [row for row in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in row]


def _lora_b_norm(out: Path) -> float:
    # peft initialises every lora_B to zero: a non-zero one is proof that training moved the adapter.
    weights = load_file(out / "adapter_model.safetensors")
    return sum(float(t.norm()) for name, t in weights.items() if "lora_B" in name)


def _check_run(out: Path) -> list[dict]:
    history = _log_history(out)
    assert len(history) == 3
    for row in history:
        for name in ("attribute_format_reward", "classification_reward", "reasoning_reward", "length_reward"):
            assert f"rewards/{name}/mean" in row, (name, sorted(row))
        for key in ("completions/mean_length", "format/think_attribute_answer", "judge/failures", "judge/retries",
                    "judge/mean_latency_s"):
            assert key in row, key
    assert _lora_b_norm(out) > 0
    saved = (out / "refine_rft_config.yaml").read_text()
    assert "reasoning" in saved and "sk-test-secret" not in saved
    return history


@pytest.mark.slow
def test_grpo_with_judge_over_http(tmp_path, cot_warm_model, synthetic_train_jsonl, monkeypatch):
    from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer
    from refine_rft.train.grpo import train_grpo

    monkeypatch.setenv("TEST_JUDGE_KEY", "sk-test-secret")
    with ScriptedJudgeServer(latency=0.01) as server:
        judge = {"backend": "openai", "base_urls": [server.url], "model": "scripted-judge", "timeout": 10,
                 "max_retries": 1, "api_key_env": "TEST_JUDGE_KEY"}
        out = train_grpo(RECIPE, _overrides(tmp_path, cot_warm_model, synthetic_train_jsonl, judge=judge))
    history = _check_run(out)
    assert server.count > 0, "no completion reached the judge"
    assert sum(row["judge/requests"] for row in history) > 0
    assert any(row["rewards/reasoning_reward/mean"] > 0 for row in history)


@pytest.mark.slow
def test_grpo_with_attribute_judge(tmp_path, cot_warm_model, synthetic_train_jsonl):
    from refine_rft.train.grpo import train_grpo

    out = train_grpo(RECIPE, _overrides(tmp_path, cot_warm_model, synthetic_train_jsonl,
                                        judge={"backend": "attributes"}))
    history = _check_run(out)
    assert sum(row["judge/judgements"] for row in history) > 0


@pytest.mark.slow
@pytest.mark.end_to_end
def test_end_to_end_accelerate_two_cpu_processes(tmp_path, tiny_model_path, synthetic_train_jsonl):
    """The distributed path is real: two gloo processes each generate, score and step.

    ``accelerate launch --cpu --num_processes 2`` would start a single process (accelerate's CPU
    launcher needs an MPI host file for more); the shipped config starts two through torchrun.
    """
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "configs" / "accelerate" / "cpu_ddp.yaml"), "--num_processes", "2",
               "-m", "refine_rft.cli", "train", "--config", str(RECIPE),
               "--model_name_or_path", str(tiny_instruct_path()), "--train_file", str(synthetic_train_jsonl), "--output_dir", str(out), "--max_steps", "2",
               "--per_device_train_batch_size", "2", "--num_generations", "2", "--max_completion_length", "8",
               "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (out / "adapter_model.safetensors").is_file()
    steps = {}
    for rank in (0, 1):
        for line in (out / f"sample_ids.rank{rank}.jsonl").read_text().splitlines():
            row = json.loads(line)
            steps.setdefault(row["step"], []).extend(row["ids"])
    assert sorted(steps) == [0, 1]
    for ids in steps.values():
        # 2 processes x 2 completions = 2 questions per step, each sampled num_generations=2 times.
        assert len(ids) == 4 and all(ids.count(i) == 2 for i in ids)
    assert len(_log_history(out)) == 2


def test_reward_weights_must_match_rewards(tmp_path, tiny_model_path, synthetic_train_jsonl):
    from refine_rft.train.grpo import train_grpo

    with pytest.raises(ValueError, match="reward_weights has 2 values but rewards names 3"):
        train_grpo(RECIPE, {"model_name_or_path": str(tiny_model_path), "train_file": str(synthetic_train_jsonl),
                            "output_dir": str(tmp_path / "w"),
                            "reward_weights": [0.5, 0.5], "report_to": []})


def test_unknown_reward_fails_fast(tmp_path, tiny_model_path, synthetic_train_jsonl):
    from refine_rft.train.grpo import train_grpo

    with pytest.raises(ValueError, match="unknown reward 'accuracy'; valid rewards: format, attribute_format"):
        train_grpo(RECIPE, {"model_name_or_path": str(tiny_model_path), "train_file": str(synthetic_train_jsonl),
                            "output_dir": str(tmp_path / "u"),
                            "rewards": ["format", "accuracy"], "reward_weights": [1, 1], "report_to": []})


def test_lora_is_initialised_at_zero():
    """The LoRA-moved check above relies on peft starting lora_B at zero."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(torch.nn.Sequential(torch.nn.Linear(4, 4)), LoraConfig(r=2, target_modules=["0"]))
    assert all(float(p.abs().sum()) == 0 for n, p in model.named_parameters() if "lora_B" in n)


@pytest.mark.slow
def test_judge_outage_is_counted_not_fatal(tmp_path, cot_warm_model, synthetic_train_jsonl):
    """The judge passes the health check, then every request fails with HTTP 500: with
    judge.max_failure_rate 1.0 (never stop), training goes on with the other rewards and logs the failures."""
    from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status
    from refine_rft.train.grpo import train_grpo

    with ScriptedJudgeServer(script=["100"], reply=lambda request: Status(500)) as server:
        judge = {"backend": "openai", "base_urls": [server.url], "model": "scripted-judge", "timeout": 5,
                 "max_retries": 1, "backoff_base": 0.0, "max_failure_rate": 1.0}
        out = train_grpo(RECIPE, _overrides(tmp_path, cot_warm_model, synthetic_train_jsonl, judge=judge,
                                            max_steps=2))
    history = _log_history(out)
    assert len(history) == 2 and server.count > 1
    assert sum(row["judge/failures"] for row in history) > 0
    assert sum(row["judge/retries"] for row in history) > 0
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_a_judge_stopped_after_step_2_stops_the_run(tmp_path, cot_warm_model, synthetic_train_jsonl):
    """The judge server goes away after step 2; the run judges few completions per step, so the 64-judgement
    window never fills: step 3's failed judgements stop the run anyway, quoting the failure."""
    from transformers import TrainerCallback

    from refine_rft.errors import JudgeUnavailable
    from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe
    from refine_rft.train.monitor import close_rewards

    class StopJudgeAfterStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                server.stop()

    with ScriptedJudgeServer() as server:
        judge = {"backend": "openai", "base_urls": [server.url], "model": "scripted-judge", "timeout": 5,
                 "max_retries": 1, "backoff_base": 0.0, "cooldown_s": 0.1}
        trainer = grpo.build_trainer(*parse_recipe(grpo._dataclass_types(), recipe=RECIPE, overrides=_overrides(
            tmp_path, cot_warm_model, synthetic_train_jsonl, judge=judge, max_steps=30, logging_steps=1)))
        trainer.add_callback(StopJudgeAfterStep2())
        with pytest.raises(JudgeUnavailable, match=r"judge: (\d+) of the \1 judgements of this training step failed "
                                                   r"\(more than judge.max_failure_rate=50%; latest: APIConnectionError"):
            trainer.train()
        close_rewards(trainer)  # as refine-rft train does when a run stops on an error
    assert trainer.state.global_step == 2
    assert any(row.get("judge/requests") for row in trainer.state.log_history)  # steps 1-2 were judged


@pytest.mark.slow
def test_too_many_failed_judgements_stop_the_run(tmp_path, cot_warm_model, synthetic_train_jsonl):
    """Past judge.max_failure_rate over judge.failure_window, training stops instead of going on without R_cot."""
    from refine_rft.errors import JudgeUnavailable
    from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status
    from refine_rft.train.grpo import train_grpo

    with ScriptedJudgeServer(script=["100"], reply=lambda request: Status(500)) as server:
        judge = {"backend": "openai", "base_urls": [server.url], "model": "scripted-judge", "timeout": 5,
                 "max_retries": 0, "failure_window": 2}
        with pytest.raises(JudgeUnavailable, match="judge: 2 of the last 2 judgements failed"):
            train_grpo(RECIPE, _overrides(tmp_path, cot_warm_model, synthetic_train_jsonl, judge=judge, max_steps=2))
    assert not (tmp_path / "run" / "adapter_model.safetensors").exists()
