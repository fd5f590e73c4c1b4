"""Recipes: YAML files parsed by TRL's ``TrlParser`` into script arguments + a TRL config + ``ModelConfig``.

Recipes are read by :func:`refine_rft.recipes.load_recipe`: a recipe may start from other recipes
with ``include`` (the including file's keys win; mappings such as ``judge`` merge key by key).
This is how each ablation is a few lines over a shared base::

    # recipes/qwen2vl7b/ablations/rf_rcls.yaml
    include: ../base.yaml
    rewards: [format, classification]
    reward_weights: [0.5, 0.5]
    output_dir: runs/qwen2vl7b/rf_rcls

Command-line flags override the recipe (``refine-rft train --config r.yaml --learning_rate 1e-5``).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from refine_rft.errors import ConfigError
from refine_rft.judge.config import JudgeConfig
from refine_rft.resolution import SAVED_CONFIG_NAME
from refine_rft.rewards import REWARD_NAMES, check_reward_names

# Keys whose values are secrets: never written into a run's saved config.
SECRET_KEYS = frozenset({"api_key", "hub_token", "push_to_hub_token", "report_to_token"})


@dataclass
class DataArguments:
    """Where the training questions come from."""

    train_file: str = field(
        metadata={"help": "Prepared question JSONL (see `refine-rft prepare`); required."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N questions (for quick runs)."}
    )
    max_pixels: int | None = field(
        default=None,
        metadata={"help": "Largest image area in pixels (Qwen2-VL: 28 x 28 per image token, e.g. 1280*28*28 = "
                  "1003520); images are resized to fit, in training and in evaluation. None: the processor's default."},
    )
    min_pixels: int | None = field(
        default=None, metadata={"help": "Smallest image area in pixels (e.g. 256*28*28 = 200704); None: the "
                                "processor's default."},
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Start output_dir afresh: remove its checkpoints, question logs, final model "
                  "and recorded settings. Without it a rerun resumes from the newest valid checkpoint, or "
                  "refuses changed settings."},
    )
    max_prompt_tokens: int | None = field(
        default=None,
        metadata={"help": "Refuse to start when a question's prompt (text and image tokens) is longer; the "
                  "model's context less the answer's tokens always applies. None: that context only."},
    )
    questions_per_step: int | None = field(
        default=None,
        metadata={"help": "Questions per optimizer step the run must train on: start-up fails unless processes x "
                  "per_device_train_batch_size x gradient_accumulation_steps = questions_per_step x "
                  "num_generations (1 for SFT). None: no check."},
    )
    processes: int | None = field(
        default=None,
        metadata={"help": "Training processes (GPUs) the recipe's batch is laid out for; documents the "
                  "layout that questions_per_step is checked against at start-up (the launch's own count "
                  "is what is checked)."},
    )
    gpu_memory_gb: int | None = field(
        default=None,
        metadata={"help": "Memory per GPU in GB the recipe's memory settings (vllm_gpu_memory_utilization, "
                  "per-device batch) are sized for; start-up refuses a GPU with less, naming those settings. "
                  "None: no check."},
    )


@dataclass
class GRPOScriptArguments(DataArguments):
    """ReFine-RFT specifics of a GRPO run; the optimisation itself is TRL's ``GRPOConfig``."""

    prompt_style: str = field(
        default="cot", metadata={"help": "Question instruction: choice, both or cot (the ReFine-RFT prompt)."}
    )
    rewards: list[str] = field(
        default_factory=lambda: ["attribute_format", "classification", "reasoning"],
        metadata={"help": f"Reward names: {', '.join(REWARD_NAMES)}, or a function of your own by import path "
                  "(mypkg.rewards:my_reward, signature f(completions, **kwargs) -> list[float | None]). "
                  "Weights go in `reward_weights` (GRPOConfig), in the same order."},
    )
    judge: dict | str | None = field(
        default=None,
        metadata={"help": "Judge settings for the 'reasoning' reward (a mapping, or JSON on the command line), "
                  "e.g. {backend: openai, base_urls: [http://teacher:8000/v1], model: OpenGVLab/InternVL3-38B}; "
                  "parsed into a JudgeConfig."},
    )
    rsc_judge: dict | str | None = field(
        default=None,
        metadata={"help": "The Reasoning-Answer (RSC) judge that `refine-rft judge --config RECIPE` uses "
                  "after training; not used by training. The paper's: {backend: openai, base_urls: "
                  "[https://api.openai.com/v1], model: gpt-4.1-mini, api_key_env: OPENAI_API_KEY}, a "
                  "different model from the R_cot teacher in 'judge'."},
    )
    length_budget: int = field(
        default=256, metadata={"help": "Thinking tokens the 'length' reward allows without penalty."}
    )
    log_sample_ids: bool = field(
        default=True,
        metadata={"help": "Append the question ids of every step to <output_dir>/sample_ids.rank<N>.jsonl."},
    )

    def __post_init__(self):
        if isinstance(self.judge, str):
            try:
                self.judge = json.loads(self.judge)
            except json.JSONDecodeError as error:
                raise ConfigError(f"'judge' must be a mapping or a JSON object, got {self.judge!r} ({error.msg})") from None
        # Parsed here, once: everything downstream (rewards, judge) receives a JudgeConfig.
        if isinstance(self.judge, dict):
            self.judge = JudgeConfig.from_dict(self.judge)
        if isinstance(self.rsc_judge, str):
            self.rsc_judge = json.loads(self.rsc_judge)
        if isinstance(self.rsc_judge, dict):
            self.rsc_judge = JudgeConfig.from_dict(self.rsc_judge)  # checked at start-up, used after training
        if isinstance(self.rewards, str):
            self.rewards = [name.strip() for name in self.rewards.split(",") if name.strip()]
        check_reward_names(self.rewards)  # at load: a reward that cannot be built fails before the model loads


@dataclass
class SFTScriptArguments(DataArguments):
    """The SFT baseline's data settings; the optimisation itself is TRL's ``SFTConfig``."""

    prompt_style: str = field(
        default="both",
        metadata={"help": "Question instruction. 'both' asks for the letter and the name, which is exactly "
                  "the SFT target ('B. Laysan_Albatross')."},
    )
    sft_target: str = field(
        default="answer",
        metadata={"help": "'answer': the letter and name (the SFT baseline); 'cot': a full <think>/<attribute>/"
                  "<answer> response built from the rows' ground-truth attributes (a format warm-up)."},
    )


def parse_recipe(dataclass_types, argv: list[str] | None = None, recipe: str | os.PathLike | dict | None = None,
                 overrides: dict | None = None, prog: str = "refine-rft train") -> tuple:
    """Parse ``--config RECIPE`` (with includes) and command-line flags into ``dataclass_types``
    (:mod:`refine_rft.settings`, the one settings path of every command).

    ``recipe`` and ``overrides`` serve callers without a command line: the recipe (a path or a
    mapping) is read first, then ``overrides`` are merged over it, then ``argv`` flags win.
    Unknown recipe keys fail fast, naming them; the other commands' sections of an experiment
    file (``eval:``, ``rsc_judge:``, ...) are theirs.
    """
    from refine_rft.settings import parse

    with upstream_deprecations_quiet():  # TRL's configs default gradient_checkpointing=True
        return parse(prog, dataclass_types, argv or [], config=recipe, overrides=overrides)


# Deprecations raised inside TRL and transformers that a run cannot act on: TRL's configs default
# ``gradient_checkpointing=True`` and its trainers read ``model.is_gradient_checkpointing`` every step,
# names transformers renamed to ``activation_checkpointing`` after 5.17, the version vLLM pins (so a
# recipe cannot use the new name yet). Shown, the second fills the log with one warning per step.
UPSTREAM_DEPRECATIONS = (r"`(is_)?gradient_checkpointing(_kwargs)?` is deprecated",)


@contextlib.contextmanager
def upstream_deprecations_quiet():
    """Within it, :data:`UPSTREAM_DEPRECATIONS` are not shown; every other warning is, as before.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as shown:
    ...     warnings.simplefilter("always")
    ...     with upstream_deprecations_quiet():
    ...         warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
    ...         warnings.warn("something else", FutureWarning)
    >>> [str(w.message) for w in shown]
    ['something else']
    """
    with warnings.catch_warnings():
        for pattern in UPSTREAM_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=pattern, category=FutureWarning)
        yield


def scrub_secrets(value):
    """A copy of ``value`` without secret entries (API keys, hub tokens).

    >>> scrub_secrets({"judge": {"api_key": "sk-1", "api_key_env": "JUDGE_KEY"}, "hub_token": "hf_x"})
    {'judge': {'api_key_env': 'JUDGE_KEY'}}
    """
    if isinstance(value, dict):
        return {k: scrub_secrets(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(v) for v in value]
    return value


def resolved_config(script_args, training_args, model_args) -> dict:
    """The full resolved configuration of a run as plain data, secrets removed."""
    return scrub_secrets({
        "script": asdict(script_args),
        "training": training_args.to_dict(),
        "model": asdict(model_args),
    })


def save_resolved_config(config: dict, output_dir: str | os.PathLike) -> Path:
    """Write ``config`` to ``<output_dir>/refine_rft_config.yaml`` atomically."""
    from refine_rft.files import write_text_atomic

    text = yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True)
    return write_text_atomic(Path(output_dir) / SAVED_CONFIG_NAME, text)


def _plain(value):
    """Enums and other objects as strings, so the YAML is readable by ``yaml.safe_load``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(getattr(value, "value", value))
