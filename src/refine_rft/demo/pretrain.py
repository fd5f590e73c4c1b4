"""Supervised pre-training of the embedded tiny VLM into a tiny instruct base model (cached).

The demo needs a policy that starts where the paper's does: an instruct MLLM that answers Choice
questions reasonably but follows the CoT format only part of the time (see
:mod:`refine_rft.demo.instruct_data` for the data). A random-weight model cannot be that, so the demo
pre-trains the "small" tiny model on instruction examples drawn from a *pool* of synthetic images
(the same species as the demo's train and test sets, different images).

The loop is a plain one (AdamW, linear warm-up and decay, assistant-only loss through the chat
template's ``{% generation %}`` markers): the model and data are tiny, and a plain loop is
faster on a CPU than a trainer's machinery and easy to read. The result is cached under a key of
every input (base model, pool file, configuration and this code), written to a temporary folder
and renamed, so a second demo run skips it and an interrupted one leaves nothing half-written.

>>> PretrainConfig().steps > 0
True
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from refine_rft.demo.instruct_data import InstructMix, draw_example, draw_task
from refine_rft.errors import DataError
from refine_rft.files import atomic_directory


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines the pre-trained model (all of it goes into the cache key)."""

    arch: str = "qwen2_vl"
    size: str = "small"
    model_seed: int = 0
    seed: int = 0
    steps: int = 700
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    # The first steps train on "describe the bird" examples only: short sequences whose every
    # token depends on the image, so the vision tower learns to see before the language prior
    # of the long question prompts can make the model ignore the image.
    describe_steps: int = 150
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mix: InstructMix = field(default_factory=InstructMix)

    def as_dict(self) -> dict:
        return asdict(self)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_key(base_model: Path, pool_path: Path, config: PretrainConfig) -> str:
    """A short hash of every input: the base model's weights and config, the pool's rows and
    image bytes, the configuration and the source of this module and of the instruction data."""
    from refine_rft.demo import instruct_data

    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        digest.update(_file_digest(Path(base_model) / name).encode())
    # The pool by content, not by location: each row without its image path, and the image's
    # bytes, so the same data drawn into another folder reuses the model.
    from refine_rft.files import read_jsonl

    for row in read_jsonl(pool_path):
        digest.update(json.dumps({k: v for k, v in row.items() if k != "image"}, sort_keys=True).encode())
        digest.update(_file_digest(Path(row["image"])).encode())
    digest.update(json.dumps(config.as_dict(), sort_keys=True).encode())
    for module_file in (__file__, instruct_data.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()[:16]


def _batches(rows: list[dict], config: PretrainConfig):
    """Endless shuffled batches of instruction examples with their PIL images loaded, one task
    per batch (the first ``config.describe_steps`` batches: the describe task)."""
    from PIL import Image

    rng = random.Random(config.seed)
    images: dict[str, Image.Image] = {}
    order: list[int] = []
    for step in itertools.count():
        # One task per batch: the tasks' prompts differ a lot in length, and a mixed batch would
        # pad every short example to the longest CoT one.
        task = "describe" if step < config.describe_steps else draw_task(rng, config.mix)
        batch, tasks = [], []
        for _ in range(config.batch_size):
            if not order:
                order = list(range(len(rows)))
                rng.shuffle(order)
            row = rows[order.pop()]
            if row["image"] not in images:
                with Image.open(row["image"]) as image:
                    images[row["image"]] = image.convert("RGB")
            example = draw_example(row, rng, config.mix, task)
            user = example["messages"][0]
            content = [dict(part, image=images[row["image"]]) if part["type"] == "image" else part
                       for part in user["content"]]
            batch.append([{"role": "user", "content": content},
                          {"role": "assistant", "content": [{"type": "text", "text": example["target"]}]}])
            tasks.append(example["task"])
        yield batch, tasks


def _learning_rate(step: int, config: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _sequence_losses(model, inputs: dict):
    """Per-sequence cross-entropy on the assistant's tokens (the ``{% generation %}`` span,
    ``<|im_end|>`` included). Training averages these over the batch, so that a one-letter answer
    weighs as much as a long CoT target whose template tokens would otherwise drown it."""
    import torch

    mask = inputs.pop("assistant_masks")[:, 1:].float()
    logits = model(**inputs).logits[:, :-1]
    targets = inputs["input_ids"][:, 1:]
    token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return (token_loss * mask).sum(1) / mask.sum(1).clamp(min=1)


def train_instruct(model, processor, rows: list[dict], config: PretrainConfig,
                   progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` in place on instruction examples drawn from ``rows``.

    Returns the loss curve per task (``{"all": [...], "choice": [...], ...}``, one mean per
    step in which the task occurred), which ``pretrain.json`` keeps.
    """
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    losses: dict[str, list[float]] = {"all": []}
    batches = _batches(rows, config)
    bar = tqdm(range(config.steps), desc="pre-training", disable=not progress, unit="step")
    for step in bar:
        batch, tasks = next(batches)
        inputs = processor.apply_chat_template(batch, tokenize=True, return_dict=True, return_tensors="pt",
                                               return_assistant_tokens_mask=True, processor_kwargs={"padding": True})
        per_sequence = _sequence_losses(model, inputs)
        loss = per_sequence.mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, config)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses["all"].append(loss.item())
        for task in set(tasks):
            values = [v for v, t in zip(per_sequence.tolist(), tasks) if t == task]
            losses.setdefault(task, []).append(sum(values) / len(values))
        if step % 10 == 0:
            recent = losses["all"][-10:]
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
    model.eval()
    return losses


def pretrain_instruct(pool_path: str | os.PathLike, out: str | os.PathLike, config: PretrainConfig | None = None,
                      progress: bool = True) -> Path:
    """Pre-train the tiny ``config.size`` model on instruction data from ``pool_path`` into ``out``.

    ``out`` gets the model, its processor and ``pretrain.json`` (configuration, loss curve,
    seconds). Written to a temporary folder and renamed: ``out`` is complete or absent.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from refine_rft.data.records import read_questions
    from refine_rft.models.tiny import cached_tiny_model

    config = config or PretrainConfig()
    rows = read_questions(pool_path)
    missing = [r["id"] for r in rows if "attributes" not in r]
    if missing:
        raise DataError(f"{pool_path}: pre-training needs rows with 'attributes' (synthetic data); "
                         f"{len(missing)} rows lack it, e.g. {missing[0]}")
    base = cached_tiny_model(config.arch, seed=config.model_seed, size=config.size)
    torch.manual_seed(config.seed)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(base, trust_remote_code=True)

    start = time.time()
    losses = train_instruct(model, processor, rows, config, progress=progress)
    seconds = time.time() - start

    out = Path(out)
    with atomic_directory(out) as work:
        model.save_pretrained(work)
        processor.save_pretrained(work)
        # The processor's remote code must sit next to the weights, as in the base folder.
        shutil.copy(base / "image_only_processor.py", work / "image_only_processor.py")
        for name in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
            if (base / name).exists():
                shutil.copy(base / name, work / name)
        summary = {"config": config.as_dict(), "pool": str(pool_path), "pool_rows": len(rows),
                   "seconds": round(seconds, 1), "final_loss": {task: round(sum(v[-20:]) / len(v[-20:]), 4) for task, v in losses.items()},
                   "losses": {task: [round(x, 4) for x in v] for task, v in losses.items()}}
        (work / "pretrain.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out


def cached_instruct_model(pool_path: str | os.PathLike, config: PretrainConfig | None = None,
                          cache_dir: str | os.PathLike | None = None, progress: bool = True) -> tuple[Path, bool]:
    """The pre-trained instruct model for ``(pool_path, config)``: ``(path, was_cached)``.

    Kept under ``cache_dir`` (default: the tiny-model cache, ``$REFINE_RFT_CACHE``) in a folder
    named by :func:`cache_key`, so any change of input trains a new one.
    """
    from refine_rft.models.tiny import cached_tiny_model, tiny_model_cache_dir

    config = config or PretrainConfig()
    base = cached_tiny_model(config.arch, seed=config.model_seed, size=config.size)
    root = Path(cache_dir) if cache_dir is not None else tiny_model_cache_dir()
    path = root / f"instruct-{config.size}-{config.arch}-{cache_key(base, Path(pool_path), config)}"
    if (path / "pretrain.json").exists():
        return path, True
    return pretrain_instruct(pool_path, path, config, progress=progress), False
