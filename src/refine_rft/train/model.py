"""What GRPO and SFT runs share around TRL's trainers: the processor, model loading arguments,
the checkpoint to resume from, and the saved resolved configuration (their training questions
come from :mod:`refine_rft.train.data`)."""

from __future__ import annotations

from pathlib import Path

from refine_rft.errors import ConfigError, MissingFile
from refine_rft.models import TINY_PREFIX, resolve_model_path


def model_path(model_args) -> str:
    """The model to load: a hub id, a folder, or the cached embedded tiny model for ``tiny:<arch>``."""
    if not model_args.model_name_or_path:
        raise ConfigError("the recipe needs 'model_name_or_path' (a hub id, a folder, or tiny:qwen2_vl)")
    return resolve_model_path(model_args.model_name_or_path)


def load_processor(model_args, training_args):
    """The policy's processor with left padding (generation pads prompts on the left).

    The embedded tiny model's processor is a project class, loaded with ``trust_remote_code``.
    """
    from transformers import AutoProcessor

    trust = training_args.trust_remote_code or model_args.model_name_or_path.startswith(TINY_PREFIX)
    processor = AutoProcessor.from_pretrained(model_path(model_args), revision=model_args.model_revision,
                                              trust_remote_code=trust)
    processor.tokenizer.padding_side = "left"
    return processor


def model_init_kwargs(model_args) -> dict:
    """``from_pretrained`` arguments TRL's trainers load the model with (``args.model_init_kwargs``)."""
    kwargs = {"revision": model_args.model_revision, "dtype": model_args.dtype or "auto"}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    return kwargs


def resume_checkpoint(training_args) -> str | None:
    """The checkpoint to resume from: ``resume_from_checkpoint`` as given, or, when it is ``last`` /
    ``true``, the newest *complete* ``checkpoint-*`` of ``output_dir``; ``None`` for a fresh run.

    A checkpoint is complete once its ``trainer_state.json`` exists (the trainer writes it after the
    weights, optimizer, scheduler and RNG states), so a run killed while saving resumes from the
    checkpoint before, not from a half-written one.
    """
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none"):
        return None
    if str(value).lower() in ("last", "true"):
        output_dir = Path(training_args.output_dir)
        candidates = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
        complete = [p for p in candidates if (p / "trainer_state.json").is_file()]
        if not complete:
            raise MissingFile(f"resume_from_checkpoint={value}: no complete checkpoint-* folder in {output_dir}")
        return str(max(complete, key=lambda p: int(p.name.split("-")[-1])))
    if not (Path(value) / "trainer_state.json").is_file():
        raise MissingFile(f"resume_from_checkpoint: {value} is not a complete checkpoint (no trainer_state.json)")
    return str(value)


def save_run_config(trainer, script_args, training_args, model_args) -> None:
    """Save the resolved configuration (without secrets) beside the checkpoints, from the main process."""
    from refine_rft.train.config import resolved_config, save_resolved_config

    if trainer.accelerator.is_main_process:
        save_resolved_config(resolved_config(script_args, training_args, model_args), training_args.output_dir)


def train_and_save(build_trainer, script_args, training_args, model_args) -> Path:
    """Build the trainer, resume from a checkpoint if asked, train, and save the final adapter (or
    model), processor and log history in ``output_dir``; return that folder."""
    checkpoint = resume_checkpoint(training_args)
    trainer = build_trainer(script_args, training_args, model_args)
    save_run_config(trainer, script_args, training_args, model_args)
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()  # trainer_state.json: the per-step log history, beside the final model
    return Path(training_args.output_dir)
