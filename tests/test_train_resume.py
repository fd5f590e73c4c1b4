"""Real resume: a GRPO run killed (SIGKILL) after a checkpoint continues where the checkpoint left off;
a rerun of the same command resumes by itself, a finished run reruns as a no-op, changed settings
refuse, a corrupt newest checkpoint is skipped, a missing RNG state is a warning (train and sft).

The proof is the per-step question ids each run logs (``sample_ids.rank0.jsonl``): the resumed run
must start at the checkpoint's step and, step by step, train on exactly the questions an
uninterrupted run trains on (no sample repeated or skipped, the data position restored). And since
weights, optimizer, scheduler and RNG (hence the sampled completions) are restored, the final adapter
is the uninterrupted run's, to the bit (one CPU thread is deterministic). The policy is the format-warmed
tiny model with rewards that vary within a group, so that the adapter really moves.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from refine_rft.cli import main as refine_rft_main
from refine_rft_workshop import RECIPES as TINY_RECIPES
from refine_rft_workshop.testing.commands import run_in_process
from refine_rft_workshop import tiny_instruct_path


RECIPE = TINY_RECIPES / "refine_rft.yaml"
MAX_STEPS = 8


def _command(model: Path, train_file: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "refine_rft.cli", "train", "--config", str(RECIPE), "--model_name_or_path", str(model),
            "--train_file", str(train_file), "--output_dir", str(out),
            "--rewards", "attribute_format", "classification", "length", "--reward_weights", "1", "1", "1",
            "--length_budget", "8", "--max_steps", str(MAX_STEPS), "--save_steps", "2", "--max_completion_length", "16",
            "--report_to", "none", "--disable_tqdm", "true", *extra]


def _run(command: list[str], cwd: Path) -> None:
    """The command in this process (the one that is killed runs in a process of its own)."""
    assert command[:3] == [sys.executable, "-m", "refine_rft.cli"], command
    result = run_in_process(refine_rft_main, command[3:], cwd=cwd)
    assert result.returncode == 0, result.stderr[-4000:]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.end_to_end
def test_end_to_end_killed_run_resumes_at_the_next_step_with_the_same_samples(tmp_path, cot_warm_model, synthetic_train_jsonl):
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

    _run(_command(cot_warm_model, synthetic_train_jsonl, cut, "--resume_from_checkpoint", "last"), tmp_path)

    # The steps after the checkpoint, logged before the kill, were trained again: each is listed once.
    assert [row["step"] for row in _rows(cut / "sample_ids.rank0.jsonl")] == list(range(MAX_STEPS))
    assert last < MAX_STEPS
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

    from refine_rft.train.resume import choose_start

    def args(value):
        return SimpleNamespace(resume_from_checkpoint=value, output_dir=str(tmp_path), process_index=0, world_size=1,
                               save_only_model=True)

    with pytest.raises(FileNotFoundError, match="no complete checkpoint-"):
        choose_start(args("last"), "train")
    assert choose_start(args(None), "train").checkpoint is None
    for step in (3, 12, 20):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (3, 12):  # checkpoint-20 was being written when the run died: no trainer_state.json
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        save_file({"w": torch.zeros(2)}, tmp_path / f"checkpoint-{step}" / "adapter_model.safetensors")
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint: no trainer_state.json"):
        choose_start(args(str(tmp_path / "checkpoint-20")), "train")
    start = choose_start(args("true"), "train")
    assert start.checkpoint.endswith("checkpoint-12") and start.step == 12
    assert (tmp_path / "corrupt-checkpoint-20").is_dir() and not (tmp_path / "checkpoint-20").exists()


# --- A rerun of the same command: resume, no-op, refuse, start afresh (through the real CLI) ------------------

STEPS = 4


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    """``refine-rft ARGS`` through its entry point, in this process."""
    return run_in_process(refine_rft_main, args, cwd=cwd)


@functools.cache
def _train_file() -> Path:
    """One training file for every run of this module (copied runs must see the same data)."""
    from refine_rft_workshop.synthetic_cli import prepare_synthetic

    return prepare_synthetic(tempfile.mkdtemp(prefix="resume-data-"), num_classes=4, shots=2, test_per_class=1)["train"]


def train(out: Path, *extra, command: str = "train", recipe: Path = RECIPE) -> subprocess.CompletedProcess:
    """The tiny recipe on the tiny base, 4 steps, a checkpoint every 2 (checkpoint-2 and checkpoint-4),
    on 4 synthetic species x 2 images (one file for the module)."""
    return cli(*train_argv(out, *extra, command=command, recipe=recipe), cwd=out.parent)


def train_argv(out: Path, *extra, command: str = "train", recipe: Path = RECIPE) -> list[str]:
    """The arguments of :func:`train`'s command line."""
    return [str(arg) for arg in (
        command, "--config", recipe, "--model_name_or_path", tiny_instruct_path(), "--train_file", _train_file(),
        "--output_dir", out, "--max_steps", STEPS, "--save_steps", 2, "--report_to", "none", "--disable_tqdm",
        "true", *(("--num_generations", 2, "--max_completion_length", 8) if command == "train" else ()), *extra)]


def crash_after(out: Path, step: int) -> None:
    """Make ``out`` look like a run killed after its checkpoint ``step``: the later checkpoints and the
    final state (written last) are gone, the question log holds every step it trained."""
    (out / "trainer_state.json").unlink()
    for folder in out.glob("checkpoint-*"):
        if int(folder.name.split("-")[1]) > step:
            shutil.rmtree(folder)


def steps_logged(out: Path) -> list[int]:
    return [row["step"] for row in _rows(out / "sample_ids.rank0.jsonl")]


def messages(result: subprocess.CompletedProcess, command: str = "train") -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith(f"refine-rft {command}: ")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    result = train(out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def copy_of(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


def test_rerun_after_a_crash_resumes_and_a_finished_run_is_a_no_op(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    crash_after(out, 2)
    kept = {path.name: path.read_bytes() for path in (out / "checkpoint-2").iterdir()}
    result = train(out)  # the same command, no --resume_from_checkpoint
    assert result.returncode == 0, result.stderr[-3000:]
    assert any("resuming from" in line and "checkpoint-2 (step 2)" in line for line in messages(result)), result.stderr
    assert steps_logged(out) == list(range(STEPS)) == steps_logged(finished)  # each step once, no restart at 0
    assert read_ids(out) == read_ids(finished)
    assert {path.name: path.read_bytes() for path in (out / "checkpoint-2").iterdir()} == kept
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == STEPS

    state = (out / "trainer_state.json").read_bytes()
    for extra in ((), ("--resume_from_checkpoint", "last")):
        again = train(out, *extra)
        assert again.returncode == 0, again.stderr[-3000:]
        assert any("holds a finished run" in line for line in messages(again)), again.stderr
        assert (out / "trainer_state.json").read_bytes() == state  # no step past max_steps, nothing rewritten
        assert steps_logged(out) == list(range(STEPS))


# Runs `refine-rft ARGS` in a fresh interpreter, then says which heavy libraries it imported.
IMPORTS_PROBE = """
import sys
from refine_rft.cli import main
status = main(sys.argv[1:])
print(sorted(name for name in ("torch", "transformers", "peft", "trl") if name in sys.modules))
sys.exit(status)
"""


def test_a_finished_run_asked_again_is_recognised_before_trl_and_changes_still_refuse(finished, tmp_path):
    """Once the guard accepted a request's settings, the same request finds the run finished from the digest
    recorded with them, in a fresh interpreter that imports neither TRL nor torch (refine_rft.train.request);
    other content of the training file, or other settings, still refuse as the full guard does."""
    out = copy_of(finished, tmp_path)
    data = tmp_path / "train.jsonl"
    shutil.copy(_train_file(), data)
    argv = train_argv(out, "--train_file", data)
    state = (out / "trainer_state.json").read_bytes()
    first = cli(*argv, cwd=out.parent)  # a new request (another output_dir): the full path, which records it
    assert first.returncode == 0 and any("holds a finished run" in line for line in messages(first)), first.stderr
    recorded = json.loads((out / "run_settings.json").read_text())["request_sha256"]

    probe = subprocess.run([sys.executable, "-c", IMPORTS_PROBE, *argv], cwd=out.parent, capture_output=True,
                           text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert [f"refine-rft train: {out} holds a finished run (trainer_state.json); nothing to do (--overwrite trains "
            "it afresh)"] == messages(probe), probe.stderr
    assert probe.stdout.splitlines()[-1] == "[]", probe.stdout  # nothing built, nothing heavy imported
    assert json.loads((out / "run_settings.json").read_text())["request_sha256"] == recorded
    assert (out / "trainer_state.json").read_bytes() == state

    data.write_text(data.read_text() + data.read_text().splitlines()[0] + "\n")  # the same request, other data
    assert f"train_file {data} has other content" in one_line_error(cli(*argv, cwd=out.parent), "train")
    shutil.copy(_train_file(), data)
    changed = cli(*argv, "--learning_rate", "1e-3", cwd=out.parent)
    assert "learning_rate 0.0001 -> 0.001" in one_line_error(changed, "train")
    assert (out / "trainer_state.json").read_bytes() == state


def test_the_request_digest_leaves_out_what_the_guard_leaves_out(tmp_path, monkeypatch):
    """A request's digest changes with what defines the run (recipe values, included files, flags, the command,
    the working folder, refine-rft's source), not with where it logs or where the teacher is served."""
    from refine_rft.train.request import Request

    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text("learning_rate: 0.0001\n")
    (tmp_path / "run.yaml").write_text("include: base.yaml\noutput_dir: runs/x\njudge: {model: m, base_urls: [http://a/v1]}\n")
    request = Request.read("train", ["--config", "run.yaml"])
    assert (request.output_dir, request.train_file, request.overwrite) == ("runs/x", None, False)
    same = {"judge": {"base_urls": ["http://b/v1"]}, "logging_steps": 5, "report_to": ["none"]}
    assert Request.read("train", ["--config", "run.yaml"], overrides=same).digest == request.digest
    for other in ({"learning_rate": 0.001}, {"judge": {"model": "n"}}, {"train_file": "q.jsonl"}):
        assert Request.read("train", ["--config", "run.yaml"], overrides=other).digest != request.digest, other
    assert Request.read("sft", ["--config", "run.yaml"]).digest != request.digest
    assert Request.read("train", ["--config", "run.yaml", "--max_steps", "4"]).digest != request.digest
    assert Request.read("train", ["--config", "run.yaml", "--overwrite"]).overwrite
    (tmp_path / "base.yaml").write_text("learning_rate: 0.001\n")
    assert Request.read("train", ["--config", "run.yaml"]).digest != request.digest
    (tmp_path / "base.yaml").write_text("learning_rate: 0.0001\n")
    # refine-rft's own source: a default edited in a checkout (no new version) takes the full path.
    import refine_rft.train.request as module

    monkeypatch.setattr(module, "source_digest", lambda: "0" * 64)
    assert Request.read("train", ["--config", "run.yaml"]).digest != request.digest
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path.parent)
    assert Request.read("train", ["--config", tmp_path / "run.yaml"]).digest != request.digest


def read_ids(out: Path) -> dict:
    from refine_rft.train.monitor import read_sample_ids

    return read_sample_ids(out / "sample_ids.rank0.jsonl")


def test_changed_settings_refuse_naming_each_change_and_overwrite_starts_afresh(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    crash_after(out, 2)
    saved = (out / "refine_rft_config.yaml").read_text()
    result = train(out, "--learning_rate", "1e-3", "--rewards", "attribute_format", "classification",
                   "--reward_weights", "0.5", "0.5")
    line = one_line_error(result, "train")
    for change in ("learning_rate 0.0001 -> 0.001", "rewards [", "reward_weights [", "--overwrite"):
        assert change in line, line
    assert (out / "refine_rft_config.yaml").read_text() == saved  # what steps 1-2 used is still on record
    assert (out / "checkpoint-2").is_dir()

    result = train(out, "--learning_rate", "1e-3", "--overwrite", "true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not any("resuming" in line for line in messages(result)), result.stderr
    assert steps_logged(out) == list(range(STEPS))
    assert json.loads((out / "run_settings.json").read_text())["learning_rate"] == 0.001
    assert "learning_rate: 0.001" in (out / "refine_rft_config.yaml").read_text()


def one_line_error(result: subprocess.CompletedProcess, command: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"refine-rft {command}: error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return lines[0]


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # as a full disk or a kill leaves it


def test_corrupt_newest_checkpoint_is_skipped_and_missing_rng_state_is_a_warning(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    crash_after(out, 4)
    cut_short(out / "checkpoint-4" / "optimizer.pt")
    (out / "checkpoint-2" / "rng_state.pth").unlink()
    result = train(out)
    assert result.returncode == 0, result.stderr[-3000:]
    said = messages(result)
    assert any("checkpoint-4 cannot be resumed from: optimizer.pt is truncated" in line for line in said), said
    assert any("resuming from" in line and "checkpoint-2 (step 2)" in line for line in said), said
    warning = [line for line in said if "warning:" in line]
    assert len(warning) == 1 and "rng_state.pth" in warning[0] and "differ" in warning[0], said
    assert (out / "corrupt-checkpoint-4" / "optimizer.pt").is_file()  # kept for inspection, never trained into
    assert steps_logged(out) == list(range(STEPS))
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == STEPS


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"])
def test_each_truncated_checkpoint_file_is_named(finished, tmp_path, name):
    from types import SimpleNamespace

    from refine_rft.train.resume import choose_start

    out = copy_of(finished, tmp_path)
    crash_after(out, 4)
    cut_short(out / "checkpoint-4" / name)
    args = SimpleNamespace(resume_from_checkpoint=None, output_dir=str(out), process_index=0, world_size=1,
                           save_only_model=False)
    assert choose_start(args, "train").checkpoint == str(out / "checkpoint-2")
    assert (out / "corrupt-checkpoint-4" / name).is_file()
    explicit = SimpleNamespace(**{**vars(args), "resume_from_checkpoint": str(out / "corrupt-checkpoint-4")})
    with pytest.raises(FileNotFoundError, match=f"not a complete checkpoint: .*{name}"):
        choose_start(explicit, "train")


@pytest.mark.slow
def test_sft_reruns_resume_and_finish_the_same_way(tmp_path):
    out = tmp_path / "sft"
    recipe = TINY_RECIPES / "sft.yaml"
    first = train(out, command="sft", recipe=recipe)
    assert first.returncode == 0, first.stderr[-3000:]
    crash_after(out, 2)
    resumed = train(out, command="sft", recipe=recipe)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert any("resuming from" in line and "checkpoint-2 (step 2)" in line for line in messages(resumed, "sft"))
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == STEPS
    again = train(out, command="sft", recipe=recipe)
    assert again.returncode == 0 and any("holds a finished run" in line for line in messages(again, "sft"))
    changed = train(out, "--learning_rate", "1e-3", command="sft", recipe=recipe)
    assert "learning_rate 0.0001 -> 0.001" in one_line_error(changed, "sft")


def test_a_new_spelling_of_the_training_file_is_the_same_run(finished, tmp_path):
    """The guard compares what a setting means: the same training file given relative to another folder
    (or through a link) finds the run finished; the settings recorded with the first spelling still hold."""
    link = tmp_path / "train-link.jsonl"
    link.symlink_to(_train_file())
    for spelling in (os.path.relpath(_train_file(), finished.parent), link):
        result = cli("train", "--config", RECIPE, "--model_name_or_path", tiny_instruct_path(), "--train_file",
                     spelling, "--output_dir", finished, "--max_steps", STEPS, "--save_steps", 2, "--report_to",
                     "none", "--disable_tqdm", "true", "--num_generations", 2, "--max_completion_length", 8,
                     cwd=finished.parent)
        assert result.returncode == 0, result.stderr[-3000:]
        assert any("holds a finished run" in line for line in messages(result)), result.stderr


def test_the_guard_compares_file_settings_by_path_and_content(tmp_path, monkeypatch):
    from refine_rft.errors import SettingsChanged
    from refine_rft.files import guard_settings
    from refine_rft.train.resume import run_settings

    data = tmp_path / "data" / "train.jsonl"
    data.parent.mkdir()
    data.write_text('{"id": "a"}\n')
    config = {"script": {"rewards": ["classification"]}, "training": {"learning_rate": 1e-5}, "model": {}}
    record = tmp_path / "run" / "run_settings.json"
    guard_settings(record, run_settings({**config, "script": {**config["script"], "train_file": "data/train.jsonl"}},
                                        data), [])
    monkeypatch.chdir(data.parent)  # the same file from another folder, spelled otherwise
    guard_settings(record, run_settings({**config, "script": {**config["script"], "train_file": "train.jsonl"}},
                                        "train.jsonl"), [])
    data.write_text('{"id": "a"}\n{"id": "b"}\n')  # the same path, new content
    with pytest.raises(SettingsChanged, match=f"train_file {data} has other content"):
        guard_settings(record, run_settings({**config, "script": {**config["script"], "train_file": "train.jsonl"}},
                                            "train.jsonl"), [])
