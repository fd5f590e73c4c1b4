"""What GRPO and SFT runs share around TRL's trainers: the processor, model loading arguments,
where a run starts (:mod:`refine_rft.train.resume`), and the saved resolved configuration (their training
questions
come from :mod:`refine_rft.train.data`)."""

from __future__ import annotations

from pathlib import Path

from refine_rft.errors import ConfigError, MissingFile


def model_path(model_args) -> str:
    """The model to load: a hub id or a folder."""
    if not model_args.model_name_or_path:
        raise ConfigError("the recipe needs 'model_name_or_path' (a hub id or a folder)")
    return model_args.model_name_or_path


def load_processor(model_args, training_args, resolution=None):
    """The policy's processor with left padding (generation pads prompts on the left), tokenising
    images at ``resolution`` (an :class:`~refine_rft.resolution.ImageResolution`; the trainers
    save this processor, and with it the resolution, beside the adapter).

    Code in the model folder runs only with ``trust_remote_code`` (see :mod:`refine_rft.trust`).
    """
    from refine_rft.resolution import ImageResolution

    processor = (resolution or ImageResolution()).load_processor(
        model_path(model_args), training_args.trust_remote_code, revision=model_args.model_revision)
    processor.tokenizer.padding_side = "left"
    return processor


def model_init_kwargs(model_args) -> dict:
    """``from_pretrained`` arguments TRL's trainers load the model with (``args.model_init_kwargs``)."""
    kwargs = {"revision": model_args.model_revision, "dtype": model_args.dtype or "auto"}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    return kwargs


def save_run_config(trainer, script_args, training_args, model_args) -> None:
    """Save the resolved configuration (without secrets) beside the checkpoints, from the main process."""
    from refine_rft.train.config import resolved_config, save_resolved_config

    if trainer.accelerator.is_main_process:
        save_resolved_config(resolved_config(script_args, training_args, model_args), training_args.output_dir)


def check_questions_per_step(questions: int | None, processes: int, per_device: int, accumulation: int,
                             generations: int = 1) -> None:
    """Refuse a launch whose optimizer step does not hold exactly ``questions`` questions of
    ``generations`` completions each (``None``: no check).

    TRL's ``per_device_train_batch_size`` counts completions, so a step holds ``processes x
    per_device x accumulation`` completions; the same recipe on fewer GPUs would silently train on
    fewer questions per step.

    >>> check_questions_per_step(64, 4, 6, 16, generations=6)
    >>> check_questions_per_step(64, 4, 12, 4, generations=6)
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: questions_per_step is 64 (x 6 generations = 384 completions per optimizer step), but 4 processes x per_device_train_batch_size 12 x gradient_accumulation_steps 4 = 192 completions (32 questions); set gradient_accumulation_steps to 8
    """
    if questions is None:
        return
    want, have = questions * generations, processes * per_device * accumulation
    if want == have:
        return
    hint = "change per_device_train_batch_size or the number of processes"
    if want % (processes * per_device) == 0:
        hint = f"set gradient_accumulation_steps to {want // (processes * per_device)}"
    raise ConfigError(
        f"questions_per_step is {questions} (x {generations} generations = {want} completions per optimizer "
        f"step), but {processes} processes x per_device_train_batch_size {per_device} x "
        f"gradient_accumulation_steps {accumulation} = {have} completions ({have / generations:g} questions); {hint}"
    )


# A GPU sold as N GB reports a little less (an 80 GB H100: 79.6 GiB; a 48 GB A6000: 47.5 GiB).
_GPU_SIZE_SLACK = 0.9


def check_gpu_memory(required_gb: int | None, device_bytes: int | None, settings: dict) -> None:
    """Refuse a launch on GPUs smaller than the ``required_gb`` a recipe's memory settings are sized for
    (``None``: no requirement; ``device_bytes`` ``None``: no GPU, nothing to check). ``settings`` are
    the memory settings to name: what a user changes to run on the smaller card.

    >>> check_gpu_memory(80, 80 * 2**30, {"vllm_gpu_memory_utilization": 0.35})
    >>> check_gpu_memory(80, 48 * 2**30, {"vllm_gpu_memory_utilization": 0.35})
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: this recipe is sized for GPUs of 80 GB (gpu_memory_gb: 80), but this GPU has 48.0 GiB: vllm_gpu_memory_utilization 0.35 of it would not hold what the recipe puts there; use a recipe for this card (docs/recipes.md) or lower these settings and set gpu_memory_gb to this card's size
    """
    if required_gb is None or device_bytes is None:
        return
    if device_bytes >= required_gb * 2**30 * _GPU_SIZE_SLACK:
        return
    named = ", ".join(f"{key} {value}" for key, value in settings.items() if value is not None)
    raise ConfigError(
        f"this recipe is sized for GPUs of {required_gb} GB (gpu_memory_gb: {required_gb}), but this GPU has "
        f"{device_bytes / 2**30:.1f} GiB: {named} of it would not hold what the recipe puts there; use a "
        f"recipe for this card (docs/recipes.md) or lower these settings and set gpu_memory_gb to this "
        f"card's size"
    )


def device_memory_bytes(training_args) -> int | None:
    """Total memory of the GPU this process trains on; ``None`` on a CPU run."""
    import torch

    if getattr(training_args, "use_cpu", False) or not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(max(training_args.local_process_index, 0)).total_memory)


def memory_settings(training_args) -> dict:
    """The settings that decide a run's memory per GPU, by name (those the training config has)."""
    names = ("vllm_gpu_memory_utilization", "per_device_train_batch_size", "max_completion_length",
             "max_length")
    settings = {name: getattr(training_args, name, None) for name in names}
    if not getattr(training_args, "use_vllm", False) or getattr(training_args, "vllm_mode", "") != "colocate":
        settings.pop("vllm_gpu_memory_utilization")
    return settings


def run_training(command: str, build_trainer, script_args, training_args, model_args, generations: int = 1,
                 request=None) -> Path:
    """The end every trainer shares (``refine-rft train`` and ``sft``): refuse an ``output_dir`` over the
    run's inputs, then :func:`train_and_save` behind one writer's lock on ``output_dir`` (held by the
    main process for the whole run, so another run into the same folder refuses, naming this one);
    return the folder. ``request`` (:class:`~refine_rft.train.request.Request`) is what the settings
    were parsed from, recorded with them."""
    from contextlib import nullcontext

    from refine_rft.files import honour_umask, output_lock
    from refine_rft.train.resume import refuse_overwriting_inputs

    refuse_overwriting_inputs(script_args, training_args, model_args)
    lock = output_lock(training_args.output_dir, folder=True, what="train")
    with lock if training_args.process_index == 0 else nullcontext():
        out = train_and_save(build_trainer, script_args, training_args, model_args, generations, command, request)
        if training_args.process_index == 0:
            honour_umask(out)  # the final adapter, saved after the last checkpoint (safetensors: 0600)
    return out


def train_and_save(build_trainer, script_args, training_args, model_args, generations: int = 1,
                   command: str = "train", request=None) -> Path:
    """Check the questions per step (``generations`` completions each: GRPO's G, 1 for SFT) and the
    GPU's memory against the recipe's ``gpu_memory_gb``, decide where the run starts from its
    ``output_dir`` (:mod:`refine_rft.train.resume`: refuse changed settings, resume from the newest
    valid checkpoint, or do nothing for a finished run), build the trainer, train, and save the final
    adapter (or model), processor, model card and log history in ``output_dir``; return that folder."""
    from refine_rft.train.monitor import close_rewards
    from refine_rft.train.resume import prepare_output_dir, say_finished

    check_questions_per_step(script_args.questions_per_step, training_args.world_size,
                             training_args.per_device_train_batch_size, training_args.gradient_accumulation_steps,
                             generations)
    check_gpu_memory(script_args.gpu_memory_gb, device_memory_bytes(training_args),
                     memory_settings(training_args))
    output_dir = Path(training_args.output_dir)
    train_file = Path(script_args.train_file)
    start = prepare_output_dir(script_args, training_args, model_args, train_file, command, request)
    if start.finished:
        if training_args.process_index == 0:
            say_finished(command, output_dir)
        return output_dir
    from refine_rft.train.config import upstream_deprecations_quiet

    with upstream_deprecations_quiet():  # one per step otherwise
        trainer = build_trainer(script_args, training_args, model_args)
        save_run_config(trainer, script_args, training_args, model_args)
        try:
            trainer.train(resume_from_checkpoint=start.checkpoint)
        finally:  # a run stopped by an error too: the judge's connections are closed
            close_rewards(trainer)
    trainer.save_model(training_args.output_dir)
    # TRL's model card (README.md: base model, trainer, versions, how to load), as TRL's own scripts and
    # open-r1 write it; GRPO also refreshes it at each checkpoint.
    trainer.create_model_card(model_name=output_dir.name, tags=["refine-rft", command])
    trainer.save_state()  # trainer_state.json: the per-step log history, beside the final model; written last
    return output_dir
