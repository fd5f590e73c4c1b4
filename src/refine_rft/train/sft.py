"""``refine-rft sft``: the SFT baseline, TRL's ``SFTTrainer`` on the same training questions.

The target is the letter and the category name (``"B. Laysan_Albatross"``), the answer a model
gives to the ``both`` prompt; it is what the fine-grained labels alone can teach, with no
reasoning to imitate (the datasets have none). The loss covers the assistant turn only
(``assistant_only_loss: true``: :class:`AssistantOnlyLabels` finds the answer's tokens), so the model
is not trained to reproduce the question and the options.

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
from refine_rft.train.request import Request


def _dataclass_types():
    from trl import ModelConfig, SFTConfig

    return SFTScriptArguments, SFTConfig, ModelConfig


class AssistantOnlyLabels:
    """Wrap TRL's vision collator so that the labels cover the answer alone, found by its tokens.

    TRL's own ``assistant_only_loss`` keeps the tokens transformers marks in ``assistant_masks``, which
    transformers before 5.18 computes from character offsets into the text *before* each image
    placeholder is expanded, so with an image in the question the mask misses the answer (TRL 1.16
    refuses it there; 5.17 is what a vLLM 0.31 install brings). The rows here are one question and one
    answer, so the answer is found directly, the same on every version: the tokens after the last
    assistant header (``<|im_start|>assistant\\n``, every Qwen-VL template's), up to and including the
    end of that turn (``<|im_end|>``). A sequence cut short before its answer (``max_length``) trains on
    nothing.

    >>> import torch
    >>> from types import SimpleNamespace
    >>> tokenizer = SimpleNamespace(encode=lambda text, add_special_tokens: [7, 8],
    ...                             convert_tokens_to_ids=lambda token: 9)
    >>> collator = lambda examples: {"input_ids": torch.tensor([[1, 7, 8, 5, 6, 9, 2, 0]]),
    ...                              "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0]]),
    ...                              "labels": torch.full((1, 8), -100)}
    >>> AssistantOnlyLabels(collator, tokenizer)([{}])["labels"].tolist()
    [[-100, -100, -100, 5, 6, 9, -100, -100]]
    """

    def __init__(self, collator, tokenizer):
        self.collator = collator
        self.answer = AnswerTokens(tokenizer)

    def __call__(self, examples):
        batch = self.collator(examples)
        ids = batch["input_ids"]
        keep = self.answer.mask(ids) & (batch["attention_mask"] == 1)
        batch["labels"] = ids.masked_fill(~keep, -100)
        return batch


class AnswerTokens:
    """Which tokens of a one-question conversation are the answer: those after the last assistant
    header (``<|im_start|>assistant\\n``, every Qwen-VL template's), up to and including the end of
    that turn (``<|im_end|>``), what the templates' ``{% generation %}`` block marks. Found by the
    tokens, so the same on every transformers (see :class:`AssistantOnlyLabels` for why).

    >>> import torch
    >>> from types import SimpleNamespace
    >>> tokenizer = SimpleNamespace(encode=lambda text, add_special_tokens: [7, 8],
    ...                             convert_tokens_to_ids=lambda token: 9)
    >>> AnswerTokens(tokenizer).mask(torch.tensor([[1, 7, 8, 5, 6, 9, 2, 0], [7, 8, 7, 8, 3, 3, 3, 3]])).int().tolist()
    [[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]]
    """

    def __init__(self, tokenizer, header: str = "<|im_start|>assistant\n", end: str = "<|im_end|>"):
        self.header = list(tokenizer.encode(header, add_special_tokens=False))
        self.end = tokenizer.convert_tokens_to_ids(end)

    def mask(self, input_ids):
        """A boolean tensor shaped like ``input_ids`` (batch x length): True on the answer's tokens."""
        import torch

        mask = torch.zeros(input_ids.shape, dtype=torch.bool)
        width = len(self.header)
        for row, tokens in enumerate(input_ids.tolist()):
            starts = [i + width for i in range(len(tokens) - width + 1) if tokens[i:i + width] == self.header]
            if not starts:
                continue  # cut short before its answer: no answer tokens
            start = starts[-1]
            stop = next((i + 1 for i in range(start, len(tokens)) if tokens[i] == self.end), len(tokens))
            mask[row, start:stop] = True
        return mask


def build_trainer(script_args, training_args, model_args):
    """A ready ``SFTTrainer`` for the run the three argument objects describe."""
    from trl import SFTTrainer, get_peft_config

    from refine_rft.train.data import load_training_inputs, sft_rows, to_dataset
    from refine_rft.train.model import model_init_kwargs, model_path
    from refine_rft.train.monitor import umask_callback

    processor, records, resolution = load_training_inputs(script_args, training_args, model_args)
    dataset = to_dataset(sft_rows(records, script_args.prompt_style, script_args.sft_target), resolution)

    training_args.model_init_kwargs = {**model_init_kwargs(model_args), **(training_args.model_init_kwargs or {})}
    # The answer's labels are the project's (AssistantOnlyLabels), the same on every transformers: TRL's
    # collator is built to label every token, the wrapper keeps the answer's. The setting itself stays as
    # the recipe says (it is recorded with the run).
    answer_only = training_args.assistant_only_loss
    training_args.assistant_only_loss = False
    try:
        trainer = SFTTrainer(
            model=model_path(model_args),
            args=training_args,
            train_dataset=dataset,
            processing_class=processor,
            peft_config=get_peft_config(model_args),
            callbacks=[umask_callback()],
        )
    finally:
        training_args.assistant_only_loss = answer_only
    if answer_only:
        trainer.data_collator = AssistantOnlyLabels(trainer.data_collator, processor.tokenizer)
    return trainer


def run(script_args, training_args, model_args, request: Request | None = None) -> Path:
    """Train; save the final adapter (or model), processor, model card and log history in ``output_dir``;
    return it. ``request``: what the settings were parsed from (recorded with them)."""
    from refine_rft.train.model import run_training

    return run_training("sft", build_trainer, script_args, training_args, model_args, request=request)


def train_sft(recipe: str | os.PathLike | dict, overrides: dict | None = None) -> Path:
    """Run an SFT recipe (a YAML path or a mapping) with ``overrides`` merged over it; return the output folder."""
    request = Request.read("sft", recipe=recipe, overrides=overrides)
    return request.finished_run() or run(*parse_recipe(_dataclass_types(), recipe=recipe, overrides=overrides),
                                         request=request)


def main(argv: list[str] | None = None) -> int:
    """``refine-rft sft --config RECIPE.yaml [--flag value ...]``."""
    request = Request.read("sft", argv)
    if request.finished_run() is None:  # before TRL is imported (see refine_rft.train.request)
        run(*parse_recipe(_dataclass_types(), argv, prog="refine-rft sft"), request=request)
    return 0
