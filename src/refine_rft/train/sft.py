"""``refine-rft sft``: the SFT baseline, TRL's ``SFTTrainer`` on the same training questions.

The target is the letter and the category name (``"B. Laysan_Albatross"``), the answer a model
gives to the ``both`` prompt; it is what the fine-grained labels alone can teach, with no
reasoning to imitate (the datasets have none). The loss covers the assistant turn only
(``assistant_only_loss: true``, through the ``{% generation %}`` markers of the chat template), so
the model is not trained to reproduce the question and the options.

Usage::

    refine-rft sft --config recipes/qwen2vl7b/sft.yaml

Python::

    from refine_rft.train.sft import train_sft
    out = train_sft("recipes/qwen2vl7b/sft.yaml", {"max_steps": 4, "output_dir": "runs/try-sft"})
"""

from __future__ import annotations

import os
from pathlib import Path

from refine_rft.train.config import SFTScriptArguments, parse_recipe


def _dataclass_types():
    from trl import ModelConfig, SFTConfig

    return SFTScriptArguments, SFTConfig, ModelConfig


def build_trainer(script_args, training_args, model_args):
    """A ready ``SFTTrainer`` for the run the three argument objects describe."""
    from trl import SFTTrainer, get_peft_config

    from refine_rft.train.data import load_training_inputs, sft_rows, to_dataset
    from refine_rft.train.model import model_init_kwargs, model_path
    from refine_rft.train.monitor import umask_callback

    processor, records, resolution = load_training_inputs(script_args, training_args, model_args)
    dataset = to_dataset(sft_rows(records, script_args.prompt_style, script_args.sft_target), resolution)

    training_args.model_init_kwargs = {**model_init_kwargs(model_args), **(training_args.model_init_kwargs or {})}
    return SFTTrainer(
        model=model_path(model_args),
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
        callbacks=[umask_callback()],
    )


def run(script_args, training_args, model_args) -> Path:
    """Train; save the final adapter (or model), processor, model card and log history in ``output_dir``;
    return it."""
    from refine_rft.train.model import run_training

    return run_training("sft", build_trainer, script_args, training_args, model_args)


def train_sft(recipe: str | os.PathLike | dict, overrides: dict | None = None) -> Path:
    """Run an SFT recipe (a YAML path or a mapping) with ``overrides`` merged over it; return the output folder."""
    return run(*parse_recipe(_dataclass_types(), recipe=recipe, overrides=overrides))


def main(argv: list[str] | None = None) -> int:
    """``refine-rft sft --config RECIPE.yaml [--flag value ...]``."""
    run(*parse_recipe(_dataclass_types(), argv, prog="refine-rft sft"))
    return 0
