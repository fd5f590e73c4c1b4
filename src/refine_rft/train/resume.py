"""Where a training run starts, decided from its ``output_dir`` the way ``eval`` and ``judge`` decide
(``refine-rft train`` and ``refine-rft sft`` alike):

- a folder without checkpoints starts afresh;
- a folder with checkpoints **resumes** from the newest valid one, whether or not
  ``--resume_from_checkpoint`` is given: rerunning the command that crashed is the natural thing to
  do after a crash, and starting again from step 0 would overwrite the checkpoints it left;
- a finished run (its final ``trainer_state.json`` is written last) reruns as a no-op; a rerun of the
  same request says so before TRL is imported (:mod:`refine_rft.train.request`);
- the settings that define the run (:func:`run_settings`: rewards, weights, learning rate, model,
  data and its digest, ...) are recorded in ``run_settings.json`` by the project's one settings
  guard (:func:`refine_rft.files.guard_settings`); a rerun with other settings refuses, naming each
  change, and ``--overwrite`` starts the folder afresh (its checkpoints, logs and final model removed);
- a checkpoint that cannot be resumed (cut short: no ``trainer_state.json``, or a truncated adapter,
  optimizer, scheduler or state file) is named, moved aside to ``corrupt-checkpoint-N`` (the
  trainer would otherwise save into it again) and the previous one is used;
- a checkpoint without its RNG state resumes with a warning: sampling after it differs from an
  uninterrupted run's;
- the per-step question log (``sample_ids.rank<N>.jsonl``) keeps only the steps before the one the
  run starts at, so no step is ever listed twice.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from refine_rft.data.records import SETTINGS_FILE
from refine_rft.errors import MissingFile
from refine_rft.files import file_digest, file_setting, guard_settings, refuse_output_over_input, write_jsonl_atomic

CORRUPT_PREFIX = "corrupt-"
# Settings that do not change what a run computes (where it logs, how often it saves, where the
# teacher is served, how patiently it is asked): a resume may change them.
OPERATIONAL = frozenset({
    "output_dir", "resume_from_checkpoint", "overwrite", "report_to", "disable_tqdm", "run_name", "project",
    "logging_steps", "logging_strategy", "logging_first_step", "logging_nan_inf_filter", "log_level",
    "log_level_replica", "log_on_each_node", "log_completions", "log_completions_hub_repo", "log_multimodal",
    "log_unique_prompts", "num_completions_to_print", "log_sample_ids", "save_steps", "save_strategy",
    "save_total_limit", "save_on_each_node", "push_to_hub", "hub_always_push", "hub_model_id",
    "hub_private_repo", "hub_revision", "hub_strategy", "hub_token", "trackio_bucket_id", "trackio_space_id",
    "trackio_static_space_id",
    "skip_memory_metrics", "dataloader_num_workers", "dataloader_persistent_workers", "dataloader_pin_memory",
    "dataloader_prefetch_factor", "dataloader_multiprocessing_context", "ddp_timeout", "local_rank",
    "vllm_server_base_url", "vllm_server_host", "vllm_server_port", "vllm_server_timeout",
    "vllm_gpu_memory_utilization", "vllm_enable_sleep_mode",
    "judge.base_urls", "judge.api_key_env", "judge.timeout", "judge.max_retries", "judge.backoff_base",
    "judge.backoff_max", "judge.concurrency", "judge.cache_path", "judge.max_failure_rate",
    "judge.failure_window",
})
# What a run leaves in its output_dir; removed by --overwrite.
RUN_OUTPUTS = ("checkpoint-*", f"{CORRUPT_PREFIX}checkpoint-*", "sample_ids.rank*.jsonl",
               "trainer_state.json",
               "adapter_model.safetensors", "adapter_config.json", "model*.safetensors",
               "model.safetensors.index.json", "training_args.bin", "refine_rft_config.yaml", "README.md")


@dataclass(frozen=True)
class Start:
    """Where a run starts: ``checkpoint`` to resume from (``None``: step 0), or ``finished``."""

    checkpoint: str | None = None
    step: int = 0
    finished: bool = False


def run_settings(config: dict, train_file: str | os.PathLike | None) -> dict:
    """The settings that define a run, flat (``judge.model``), from its resolved configuration
    (:func:`refine_rft.train.config.resolved_config`) less :data:`OPERATIONAL`, with the digest of
    the training file when one is given.

    >>> run_settings({"script": {"rewards": ["a"], "judge": {"model": "m", "timeout": 5}},
    ...               "training": {"learning_rate": 1e-5, "report_to": ["none"]}, "model": {}}, None)
    {'rewards': ['a'], 'judge.model': 'm', 'learning_rate': 1e-05}
    """
    flat: dict = {}
    for part in ("script", "training", "model"):
        for name, value in config[part].items():
            if isinstance(value, dict) and name == "judge":
                flat.update({f"judge.{key}": inner for key, inner in value.items()})
            else:
                flat[name] = value
    settings = {name: value for name, value in flat.items() if name not in OPERATIONAL}
    if train_file is not None and Path(train_file).is_file():
        # Compared by what it is (resolved path, content), not by how it was spelled: the same file given
        # from another folder resumes; the same path with new content refuses, naming it.
        settings["train_file"] = file_setting(train_file)
        settings["train_file_sha256"] = file_digest(train_file)  # as runs before file settings recorded it
    return json.loads(json.dumps(settings, default=str))  # as recorded: JSON types only


def checkpoint_problem(folder: Path, process_index: int = 0, save_only_model: bool = False) -> str | None:
    """Why the checkpoint ``folder`` cannot be resumed from, or ``None``. Files are checked by their
    structure, which a truncation breaks (safetensors' header covers the whole file; a ``torch.save``
    file is a zip whose directory is at its end), without loading their tensors."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (the run stopped while saving it)"
    try:
        json.loads(state.read_text(encoding="utf-8"))["global_step"]
    except (ValueError, KeyError, TypeError) as error:
        return f"trainer_state.json is unreadable ({type(error).__name__}: {error})"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return "no model or adapter weights (*.safetensors)"
    from safetensors import safe_open

    for path in weights:
        try:
            with safe_open(str(path), "pt") as handle:
                handle.keys()
        except Exception as error:  # noqa: BLE001 - safetensors raises its own SafetensorError, OSError, ...
            return f"{path.name} is unreadable ({error})"
    saved = [folder / "optimizer.pt", folder / "scheduler.pt", *sorted(folder.glob("global_step*/*.pt"))]
    deepspeed = any(folder.glob("global_step*"))  # DeepSpeed keeps the optimizer in global_step*/
    for path in saved:
        if not path.is_file():
            if save_only_model or (deepspeed and path.name == "optimizer.pt"):
                continue
            return f"no {path.name}"
        if not zipfile.is_zipfile(path):
            return f"{path.name} is truncated or not a torch.save file"
    return None


def rng_state_name(process_index: int, world_size: int) -> str:
    """The RNG state file the trainer saves for a process (``rng_state.pth`` when it runs alone)."""
    return "rng_state.pth" if world_size <= 1 else f"rng_state_{process_index}.pth"


def checkpoints(output_dir: Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders of ``output_dir``, newest first."""
    found = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def choose_start(training_args, command: str) -> Start:
    """The :class:`Start` of a run (see the module docstring); messages go to stderr."""
    output_dir = Path(training_args.output_dir)
    if (output_dir / "trainer_state.json").is_file():
        return Start(finished=True)
    value = training_args.resume_from_checkpoint
    given = value is not None and str(value).lower() not in ("", "false", "none", "last", "true")
    if given:
        problem = checkpoint_problem(Path(value), training_args.process_index, training_args.save_only_model)
        if problem is not None:
            if not Path(value).is_dir():
                raise MissingFile(f"resume_from_checkpoint: no such checkpoint folder {value}")
            raise MissingFile(f"resume_from_checkpoint: {value} is not a complete checkpoint: {problem}")
        chosen = Path(value)
    else:
        chosen = None
        for folder in checkpoints(output_dir):
            problem = checkpoint_problem(folder, training_args.process_index, training_args.save_only_model)
            if problem is None:
                chosen = folder
                break
            _say(command, f"{folder} cannot be resumed from: {problem}; moved aside to {_move_aside(folder)}",
                 training_args)
        if chosen is None:
            if str(value).lower() in ("last", "true"):
                raise MissingFile(f"resume_from_checkpoint={value}: no complete checkpoint-* folder in "
                                  f"{output_dir}")
            if any(output_dir.glob(f"{CORRUPT_PREFIX}checkpoint-*")):
                _say(command, f"no checkpoint of {output_dir} can be resumed from; starting at step 0",
                     training_args)
            return Start()
    step = json.loads((chosen / "trainer_state.json").read_text(encoding="utf-8"))["global_step"]
    rng = rng_state_name(training_args.process_index, training_args.world_size)
    if not (chosen / rng).is_file():
        _say(command, f"warning: {chosen} has no {rng}; resuming with fresh random states, so the "
                      "completions sampled from here on differ from those of an uninterrupted run",
             training_args, every=True)
    _say(command, f"resuming from {chosen} (step {step}); --overwrite starts {output_dir} afresh",
         training_args)
    return Start(str(chosen), step)


def refuse_overwriting_inputs(script_args, training_args, model_args) -> None:
    """Keep a training run's ``output_dir`` off what it reads (:func:`~refine_rft.files.refuse_output_over_input`):
    it is not the training file nor inside the model folder, and the base model or training file is not one
    of the run's own outputs that ``--overwrite`` removes (a checkpoint, the final adapter). Training data
    inside ``output_dir`` is fine: the workshop keeps its drawn images in ``output_dir/data``."""
    output_dir = Path(training_args.output_dir)
    owned = [p for pattern in RUN_OUTPUTS for p in output_dir.glob(pattern)]
    refuse_output_over_input([("train_file", script_args.train_file),
                              ("model_name_or_path", model_args.model_name_or_path)],
                             [("output_dir", output_dir), ("the output", output_dir / SETTINGS_FILE)],
                             replaced=[("the output", path) for path in owned])


def prepare_output_dir(script_args, training_args, model_args, train_file, command: str,
                       request=None) -> Start:
    """Guard the run's settings (refuse changes, or start afresh with ``--overwrite``), recording the
    ``request`` (a :class:`~refine_rft.train.request.Request`, ``None``: none to record) they were
    resolved from, then choose where it starts and trim the question log to the steps before it. Run on
    every process; the main process goes first (it alone moves corrupt checkpoints aside)."""
    from refine_rft.train.config import resolved_config

    output_dir = Path(training_args.output_dir)
    with training_args.main_process_first(desc="output_dir"):
        settings = run_settings(resolved_config(script_args, training_args, model_args), train_file)
        outputs = [p for pattern in RUN_OUTPUTS for p in output_dir.glob(pattern)]
        if training_args.process_index == 0 or not script_args.overwrite:
            guard_settings(output_dir / SETTINGS_FILE, settings, outputs, overwrite=script_args.overwrite,
                           notes=request.notes() if request is not None else None)
        start = choose_start(training_args, command)
        if not start.finished:
            trim_sample_log(output_dir / f"sample_ids.rank{training_args.process_index}.jsonl", start.step)
    return start


def say_finished(command: str, output_dir: Path) -> None:
    """The line a rerun of a finished run says (before it returns, doing nothing)."""
    print(f"refine-rft {command}: {output_dir} holds a finished run (trainer_state.json); nothing to do "
          "(--overwrite trains it afresh)", file=sys.stderr)


def trim_sample_log(path: Path, step: int) -> None:
    """Keep only the rows of a question log (:class:`~refine_rft.train.monitor.SampleIdLog`) for steps
    before ``step``: the steps from it on are trained (and logged) again."""
    from refine_rft.files import iter_jsonl_tolerant

    if not path.is_file():
        return
    rows = list(iter_jsonl_tolerant(path))
    kept = [row for row in rows if row.get("step", step) < step]
    if len(kept) != len(rows) or path.read_bytes()[-1:] not in (b"", b"\n"):
        if kept:
            write_jsonl_atomic(path, kept)
        else:
            path.unlink()


def _move_aside(folder: Path) -> Path:
    target = folder.with_name(CORRUPT_PREFIX + folder.name)
    number = 1
    while target.exists():
        target = folder.with_name(f"{CORRUPT_PREFIX}{folder.name}.{number}")
        number += 1
    folder.rename(target)
    return target


def _say(command: str, message: str, training_args, every: bool = False) -> None:
    """A line on stderr, from the main process only unless ``every``."""
    if every or training_args.process_index == 0:
        print(f"refine-rft {command}: {message}", file=sys.stderr, flush=True)
