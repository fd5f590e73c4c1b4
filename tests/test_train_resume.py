"""Real resume: a GRPO run killed (SIGKILL) after a checkpoint continues where the checkpoint left off.

The proof is the per-step question ids each run logs (``sample_ids.rank0.jsonl``): the resumed run
must start at the checkpoint's step and, step by step, train on exactly the questions an
uninterrupted run trains on (no sample repeated or skipped, the data position restored). And since
weights, optimizer, scheduler and RNG (hence the sampled completions) are restored, the final adapter
is the uninterrupted run's, to the bit (one CPU thread is deterministic). The policy is the format-warmed
tiny model with rewards that vary within a group, so that the adapter really moves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from refine_rft_workshop import RECIPES as TINY_RECIPES

RECIPE = TINY_RECIPES / "refine_rft.yaml"
MAX_STEPS = 8


def _command(model: Path, train_file: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "refine_rft.cli", "train", "--config", str(RECIPE), "--model_name_or_path", str(model),
            "--train_file", str(train_file), "--output_dir", str(out),
            "--rewards", "attribute_format", "classification", "length", "--reward_weights", "1", "1", "1",
            "--length_budget", "8", "--max_steps", str(MAX_STEPS), "--save_steps", "2", "--max_completion_length", "16",
            "--report_to", "none", "--disable_tqdm", "true", *extra]


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stderr[-4000:]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_killed_run_resumes_at_the_next_step_with_the_same_samples(tmp_path, cot_warm_model, synthetic_train_jsonl):
    from safetensors.torch import load_file

    from refine_rft.train.monitor import read_sample_ids

    full, cut = tmp_path / "full", tmp_path / "cut"
    _run(_command(cot_warm_model, synthetic_train_jsonl, full), tmp_path)

    # Kill the second run for real as soon as its second checkpoint is complete (trainer_state.json is
    # written last), then resume it from the newest checkpoint.
    process = subprocess.Popen(_command(cot_warm_model, synthetic_train_jsonl, cut), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (cut / "checkpoint-4" / "trainer_state.json").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint-4 after 300 s"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (cut / "trainer_state.json").exists(), "the run finished before the kill"
    last = max(int(p.name.split("-")[1]) for p in cut.glob("checkpoint-*") if (p / "trainer_state.json").exists())

    logged_before = len(_rows(cut / "sample_ids.rank0.jsonl"))
    _run(_command(cot_warm_model, synthetic_train_jsonl, cut, "--resume_from_checkpoint", "last"), tmp_path)

    resumed = _rows(cut / "sample_ids.rank0.jsonl")[logged_before:]
    assert [row["step"] for row in resumed] == list(range(last, MAX_STEPS))
    expected = read_sample_ids(full / "sample_ids.rank0.jsonl")
    assert sorted(expected) == list(range(MAX_STEPS))
    assert read_sample_ids(cut / "sample_ids.rank0.jsonl") == expected
    state = json.loads((cut / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS

    uninterrupted, resumed_adapter = (load_file(d / "adapter_model.safetensors") for d in (full, cut))
    assert sum(float(t.norm()) for name, t in uninterrupted.items() if "lora_B" in name) > 0
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, resumed_adapter[name]), name


def test_resume_without_checkpoint_fails_fast(tmp_path):
    from types import SimpleNamespace

    from refine_rft.train.model import resume_checkpoint

    def args(value):
        return SimpleNamespace(resume_from_checkpoint=value, output_dir=str(tmp_path))

    with pytest.raises(FileNotFoundError, match="no complete checkpoint-"):
        resume_checkpoint(args("last"))
    assert resume_checkpoint(args(None)) is None
    for step in (3, 12, 20):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (3, 12):  # checkpoint-20 was being written when the run died: no trainer_state.json
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert resume_checkpoint(args("true")).endswith("checkpoint-12")
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        resume_checkpoint(args(str(tmp_path / "checkpoint-20")))
