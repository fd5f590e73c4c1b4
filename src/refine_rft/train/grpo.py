"""``refine-rft train``: ReFine-RFT, i.e. TRL's ``GRPOTrainer`` with this project's data and rewards.

Everything about the optimisation is TRL's (``GRPOConfig``: group size ``num_generations``,
``beta``, ``reward_weights``, ``multi_objective_aggregation``, ``use_vllm``/``vllm_mode``,
``log_completions``, checkpointing, ``report_to``); LoRA is peft's through ``ModelConfig``. This
script only maps prepared questions to TRL's conversational-image format, builds the named rewards,
adds per-step monitoring (format compliance, judge counters, sample ids) and saves the resolved
recipe beside the checkpoints. With R_cot from a teacher, every judge endpoint gets a health check
before anything is loaded (:mod:`refine_rft.judge.health`), and too many failed judgements during
the run stop it (``judge.max_failure_rate``).

Usage::

    refine-rft train --config recipes/qwen2vl7b/refine_rft.yaml [--max_steps 10 ...]
    accelerate launch --config_file configs/accelerate/zero2.yaml -m refine_rft.cli train \\
        --config recipes/qwen2vl7b/refine_rft.yaml

Python::

    from refine_rft.train.grpo import train_grpo
    out = train_grpo("recipes/qwen2vl7b/refine_rft.yaml", {"max_steps": 4, "output_dir": "runs/try"})
"""

from __future__ import annotations

import os
from pathlib import Path

from refine_rft.errors import ConfigError
from refine_rft.train.config import GRPOScriptArguments, parse_recipe
from refine_rft.train.request import Request


def _dataclass_types():
    from trl import GRPOConfig, ModelConfig

    return GRPOScriptArguments, GRPOConfig, ModelConfig


def training_classes(train_file: str | os.PathLike, records: list[dict]) -> dict:
    """``{dataset: ClassVocabulary}`` for the open-world rewards: every class of each dataset
    (``classes.json`` beside the training file), not only the seen ones the training rows show, so
    that an answer adding an unseen class to the true one names two classes and scores 0."""
    from refine_rft.openworld import dataset_vocabularies, gather_class_lists

    return dataset_vocabularies(records, gather_class_lists([train_file]), str(train_file))


def build_trainer(script_args, training_args, model_args):
    """A ready ``GRPOTrainer`` for the run the three argument objects describe."""
    from trl import GRPOTrainer, get_peft_config

    from refine_rft.rewards import get_reward_funcs
    from refine_rft.train.data import grpo_rows, load_training_inputs, to_dataset
    from refine_rft.train.model import model_init_kwargs, model_path
    from refine_rft.chat import generation_prefix
    from refine_rft.train.monitor import (SampleIdLog, close_rewards_callback, monitor_rewards, umask_callback,
                                          with_template_prefix)

    if {"reasoning", "open_verifier"} & set(script_args.rewards) and script_args.judge is not None:
        # Before the model loads: a refused key or model must not cost minutes of loading first.
        from refine_rft.judge.health import check_endpoints

        check_endpoints(script_args.judge)
    processor, records, resolution = load_training_inputs(script_args, training_args, model_args,
                                                          training_args.max_completion_length)
    dataset = to_dataset(grpo_rows(records, script_args.prompt_style), resolution)

    reward_funcs = get_reward_funcs(script_args.rewards, script_args.judge, script_args.length_budget,
                                    processor.tokenizer, classes=training_classes(script_args.train_file, records))
    weights = training_args.reward_weights
    if weights is not None and len(weights) != len(reward_funcs):
        raise ConfigError(f"reward_weights has {len(weights)} values but rewards names {len(reward_funcs)} "
                         f"({', '.join(script_args.rewards)}); give one weight per reward, in the same order")
    sample_log = None
    if script_args.log_sample_ids:
        sample_log = SampleIdLog(Path(training_args.output_dir) / f"sample_ids.rank{training_args.process_index}.jsonl")
    # What holds files and connections open (the wrappers below hold nothing): closed at the end.
    owned = reward_funcs + ([sample_log] if sample_log is not None else [])
    # A chat template that opens <think> itself (a Qwen3-VL -Thinking model): score what the model said
    # with what the template wrote before it, so that a correct three-tag answer keeps R_f / R_fa = 1.
    # Outermost, so that the monitor's format metrics see the restored completions too.
    reward_funcs = with_template_prefix(monitor_rewards(reward_funcs, sample_log), generation_prefix(processor))

    training_args.model_init_kwargs = {**model_init_kwargs(model_args), **(training_args.model_init_kwargs or {})}
    trainer = GRPOTrainer(
        model=model_path(model_args),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
        callbacks=[umask_callback()],
    )
    # The judge's connections belong to TRL's reward event loop: closed there when training ends.
    closing = close_rewards_callback(trainer, owned)
    if closing is not None:
        trainer.add_callback(closing)
    return trainer


def run(script_args, training_args, model_args, request: Request | None = None) -> Path:
    """Train; save the final adapter (or model), processor, model card and log history in ``output_dir``;
    return it. ``request``: what the settings were parsed from (recorded with them)."""
    from refine_rft.train.model import run_training

    return run_training("train", build_trainer, script_args, training_args, model_args,
                        generations=training_args.num_generations, request=request)


def train_grpo(recipe: str | os.PathLike | dict, overrides: dict | None = None) -> Path:
    """Run a GRPO recipe (a YAML path or a mapping) with ``overrides`` merged over it; return the
    output folder (final adapter, processor, checkpoints, ``refine_rft_config.yaml``)."""
    request = Request.read("train", recipe=recipe, overrides=overrides)
    return request.finished_run() or run(*parse_recipe(_dataclass_types(), recipe=recipe, overrides=overrides),
                                         request=request)


def main(argv: list[str] | None = None) -> int:
    """``refine-rft train --config RECIPE.yaml [--flag value ...]``."""
    request = Request.read("train", argv)
    if request.finished_run() is None:  # before TRL is imported (see refine_rft.train.request)
        run(*parse_recipe(_dataclass_types(), argv, prog="refine-rft train"), request=request)
    return 0
