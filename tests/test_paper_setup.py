"""The paper recipes as resolved (includes followed, through the project's recipe loader): Eq. 5's
loss, one image resolution, 64 questions per optimizer step on 8 or 4 GPUs, and the start-up and
SLURM checks that guarantee or refuse it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "recipes" / "qwen2vl7b"
CPU = {"bf16": False, "use_cpu": True}
GRPO_RECIPES = sorted(p for p in PAPER.rglob("*.yaml") if p.name not in ("base.yaml", "model.yaml")
                      and not p.name.startswith("sft"))


def _parse(recipe: Path, overrides: dict | None = None, argv: list[str] | None = None):
    from refine_rft.train import grpo, sft
    from refine_rft.train.config import parse_recipe

    types = sft._dataclass_types() if recipe.name.startswith("sft") else grpo._dataclass_types()
    return parse_recipe(types, argv, recipe=recipe, overrides={**CPU, **(overrides or {})})


@pytest.mark.parametrize("recipe", GRPO_RECIPES, ids=lambda p: str(p.relative_to(PAPER)))
def test_every_paper_grpo_recipe_runs_eq5(recipe):
    script, training, _ = _parse(recipe)
    assert training.loss_type == "grpo"  # per-sequence mean over the G responses, not TRL's dapo default
    assert training.vllm_importance_sampling_correction is False
    assert training.beta == 0.0 and training.num_generations == 6 and training.scale_rewards == "group"
    assert (script.min_pixels, script.max_pixels) == (256 * 28 * 28, 1280 * 28 * 28)
    assert script.questions_per_step == 64


@pytest.mark.parametrize("name, processes", [("refine_rft.yaml", 8), ("refine_rft_4gpu.yaml", 4),
                                             ("sft.yaml", 8), ("sft_4gpu.yaml", 4)])
def test_paper_recipes_hold_64_questions_per_step(name, processes):
    from refine_rft.train.model import check_questions_per_step

    script, training, _ = _parse(PAPER / name)
    generations = 1 if name.startswith("sft") else training.num_generations
    completions = processes * training.per_device_train_batch_size * training.gradient_accumulation_steps
    assert completions == 64 * generations
    check_questions_per_step(script.questions_per_step, processes, training.per_device_train_batch_size,
                             training.gradient_accumulation_steps, generations)


def test_4gpu_recipe_fits_the_paper_hardware():
    _, training, _ = _parse(PAPER / "refine_rft_4gpu.yaml")
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps) == (6, 16)
    assert training.use_vllm and training.vllm_mode == "colocate" and training.vllm_enable_sleep_mode
    # vLLM's share of 48 GB holds its bf16 copy of the 7B weights (16.6 GB: 8.29 B parameters) with room
    # for a KV cache, and leaves the trainer its own copy and ~6 GB
    assert 16.6 + 2 < training.vllm_gpu_memory_utilization * 48 < 48 - 16.6 - 6
    assert training.vllm_max_model_length >= 1280 + 150 + training.max_completion_length


@pytest.mark.parametrize("processes, per_device, accumulation, ok", [
    (8, 12, 4, True), (4, 6, 16, True), (4, 12, 8, True), (1, 6, 64, True),
    (4, 12, 4, False),   # the 8-GPU recipe on 4 GPUs: 32 questions per step
    (16, 12, 4, False),  # on 2 nodes without lowering the accumulation: 128
    (3, 12, 4, False), (8, 12, 3, False),
])
def test_questions_per_step_check(processes, per_device, accumulation, ok):
    from refine_rft.train.model import check_questions_per_step

    if ok:
        check_questions_per_step(64, processes, per_device, accumulation, generations=6)
        return
    with pytest.raises(ValueError) as error:
        check_questions_per_step(64, processes, per_device, accumulation, generations=6)
    message = str(error.value)
    assert f"{processes} processes" in message and f"per_device_train_batch_size {per_device}" in message
    assert f"gradient_accumulation_steps {accumulation}" in message and "384 completions" in message


def test_check_suggests_the_accumulation_that_works():
    from refine_rft.train.model import check_questions_per_step

    with pytest.raises(ValueError, match="set gradient_accumulation_steps to 8$"):
        check_questions_per_step(64, 4, 12, 4, generations=6)
    with pytest.raises(ValueError, match="change per_device_train_batch_size or the number of processes"):
        check_questions_per_step(64, 5, 12, 4, generations=6)
    check_questions_per_step(None, 3, 7, 1, generations=6)  # no setting: no check


def test_training_refuses_to_start_with_the_wrong_batch(tmp_path, synthetic_train_jsonl):
    """Through the real entry point: the check runs before the model is loaded."""
    from refine_rft.train.grpo import train_grpo

    from refine_rft_workshop import RECIPES, tiny_instruct_path

    with pytest.raises(ValueError, match=r"1 processes x per_device_train_batch_size 4 x gradient_accumulation_steps 1"):
        train_grpo(RECIPES / "refine_rft.yaml", {"model_name_or_path": str(tiny_instruct_path()),
                                                 "output_dir": str(tmp_path / "run"),
                                                 "train_file": str(synthetic_train_jsonl),
                            "questions_per_step": 2, "report_to": []})
    assert not (tmp_path / "run").exists()


def _sbatch(tmp_path: Path, nodes: int, **env) -> subprocess.CompletedProcess:
    """Run the SLURM script with ``srun`` and ``scontrol`` replaced by scripts that print their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool, body in (("srun", 'shift; echo "$@"'), ("scontrol", "echo node-0")):
        (bin_dir / tool).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_NNODES": str(nodes),
                   "SLURM_JOB_NODELIST": "node-[0-9]", "JUDGE_URL": "http://teacher:8000/v1", **env}
    return subprocess.run(["bash", str(REPO / "configs/slurm/train_multinode.sbatch")], cwd=REPO,
                          env=environment, capture_output=True, text=True)


@pytest.mark.parametrize("nodes, accumulation", [(1, 4), (2, 2), (4, 1)])
def test_slurm_script_keeps_384_completions(tmp_path, nodes, accumulation):
    result = _sbatch(tmp_path, nodes)
    assert result.returncode == 0, result.stderr
    assert f"{nodes} nodes x 8 processes x 12 x accumulation {accumulation} = 384 completions" in result.stdout


@pytest.mark.parametrize("nodes", [3, 5, 8])
def test_slurm_script_refuses_node_counts_that_do_not_divide(tmp_path, nodes):
    result = _sbatch(tmp_path, nodes)
    assert result.returncode == 2
    assert f"cannot be split over {nodes} nodes x 8 processes x per-device batch 12" in result.stderr


def test_slurm_script_three_nodes_with_another_per_device_batch(tmp_path):
    result = _sbatch(tmp_path, 3, PER_DEVICE="16")
    assert result.returncode == 0 and "3 nodes x 8 processes x 16 x accumulation 1 = 384" in result.stdout
