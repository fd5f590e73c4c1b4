"""``refine-rft-workshop build-base``: build the tiny instruct base (``tiny:instruct``) from scratch.

    refine-rft-workshop build-base --out DIR [--force] [--steps N] [--threads 2] [--init BASE --learning-rate LR]

The demo needs a policy that starts where the paper's does: an instruct MLLM that answers Choice
questions well, but follows the CoT format only part of the time and reasons imperfectly (see
:mod:`refine_rft_workshop.base.instruct_data`). This command trains one: the embedded tiny Qwen2-VL at its
``base`` size, from random weights, on instruction examples drawn from a pool of synthetic bird
images. The whole recipe is :class:`BaseRecipe`; the result is shipped with the package
(:mod:`refine_rft_workshop.instruct`), so the demo never trains it.

What the recipe does, and why:

- **Every task in every step.** Each optimizer step holds a fixed number of examples of each
  task (Choice, Both, identify, describe, the text-only letter look-up, CoT). A skill trained in
  a phase of its own is forgotten when the next phase starts. Each task is its own micro-batch
  (its own padding length), and the gradients of a step add up over them.
- **Fresh option orders.** Every example reshuffles its question's options, so one image
  teaches every letter and the letter cannot be memorised per image.
- **Pool images only.** The pool is drawn with image seed :attr:`BaseRecipe.pool_image_seed`
  (1000): never a seed the demo or the tests draw their images with (0, 1, 2, ... and the
  profile's 7), so the base has not seen any test image.
- **Build-time aids** (:mod:`refine_rft_workshop.base.build_aids`): one token per option line and per
  species name of the catalogue, a vision probe on the image tokens and attention hints at the
  answer position. They shape training only; the saved model is a plain Qwen2-VL.
- **Plain loop.** AdamW, linear warm-up and cosine decay, per-sequence assistant-only loss (a
  one-letter answer weighs as much as a long CoT target). Checkpointed every
  :attr:`BaseRecipe.checkpoint_every` steps next to ``DIR``; rerunning the same command resumes.
  A checkpoint of another recipe is refused, naming the change (the guard every command uses,
  :func:`~refine_rft.files.guard_settings`); ``--force`` starts afresh.

``--init BASE`` continues from an earlier built base instead of random weights (its weights'
digest is part of the recipe): a change of instruction data then costs a fraction of a build from
scratch, and the skills the earlier base learnt (the option look-up above all, which sat at chance
for 700-1,700 steps in the builds from scratch) are kept while the new data reshapes the rest.

``DIR`` is written atomically (a temporary sibling renamed at the end), with the model in fp16
safetensors, the tokenizer and processor, ``build.json`` (recipe, loss curve, seconds, code
revision) and a ``README.md`` card with the loss curve ``loss.png``.

>>> BaseRecipe().mix.counts()["choice"]
12
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from refine_rft_workshop.base.build_aids import add_catalogue_tokens
from refine_rft_workshop.base.instruct_data import InstructMix, draw_example, shuffle_record
from refine_rft.errors import OutputExists, SettingsChanged, UserError
from refine_rft.files import atomic_directory, guard_settings
from refine_rft.prompts import answer_text


@dataclass(frozen=True)
class BaseRecipe:
    """Everything that determines the instruct base."""

    arch: str = "qwen2_vl"
    size: str = "base"
    model_seed: int = 0
    seed: int = 0
    classes: int = 24
    pool_per_class: int = 300
    # Option sets as `prepare synthetic --seed 0`; images with a seed no demo or test uses.
    pool_seed: int = 0
    pool_image_seed: int = 1000
    steps: int = 3000
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    final_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    checkpoint_every: int = 100
    # The training aids of :mod:`refine_rft_workshop.base.build_aids` (none is used after the build):
    # one token per option line and per name of the catalogue, with factorised starting embeddings;
    catalogue_tokens: bool = True
    # the weight of the vision probe's loss (species and attributes from the image tokens);
    vision_probe: float = 1.0
    # the weight of the attention hints on Choice, Both and CoT answers (0: eager attention not needed).
    attention_hints: float = 1.0
    mix: InstructMix = field(default_factory=InstructMix)
    # The model.safetensors digest (checksums.json) of an earlier base to continue from; None: random weights.
    init: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# The tasks whose answers pick an option: the option hints apply at their answer.
HINTED_TASKS = ("choice", "both", "cot")


def learning_rate(step: int, recipe: BaseRecipe) -> float:
    """Linear warm-up, then cosine decay to ``final_lr_ratio`` of the peak.

    >>> r = BaseRecipe(steps=1000, warmup_steps=100, learning_rate=1.0, final_lr_ratio=0.0)
    >>> learning_rate(49, r), learning_rate(100, r), round(learning_rate(999, r), 4)
    (0.5, 1.0, 0.0)
    """
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - 1 - recipe.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return recipe.learning_rate * (recipe.final_lr_ratio + (1 - recipe.final_lr_ratio) * cosine)


def draw_pool(recipe: BaseRecipe, folder: Path) -> tuple[list[dict], dict]:
    """The pool's question rows and their images (PIL, loaded once), drawn into ``folder``."""
    from PIL import Image

    from refine_rft_workshop.synthetic import synthetic_questions

    rows = synthetic_questions(folder, "pool", recipe.pool_per_class, num_classes=recipe.classes,
                               seed=recipe.pool_seed, image_seed=recipe.pool_image_seed)
    images = {}
    for row in rows:
        with Image.open(row["image"]) as image:
            images[row["image"]] = image.convert("RGB")
    return rows, images


def step_batches(rows: list[dict], images: dict, rng: random.Random, mix: InstructMix) -> dict[str, tuple]:
    """One step's ``(conversations, records)``, per task: ``mix.counts()`` examples of each, options
    reshuffled (for a ``mix.lookup_any`` share of look-ups: replaced by species drawn from all of
    ``rows``)."""
    labels = sorted({row["label"] for row in rows})
    batches = {}
    for task, count in mix.counts().items():
        batch, records = [], []
        for _ in range(count):
            row = shuffle_record(rng.choice(rows), rng)
            records.append(row)
            if task == "lookup" and len(labels) >= len(row["options"]) and rng.random() < mix.lookup_any:
                row = dict(row, options=rng.sample(labels, len(row["options"])))
            example = draw_example(row, rng, mix, task)
            content = [dict(part, image=images[row["image"]]) if part["type"] == "image" else part
                       for part in example["messages"][0]["content"]]
            batch.append([{"role": "user", "content": content},
                          {"role": "assistant", "content": [{"type": "text", "text": example["target"]}]}])
        if batch:
            batches[task] = (batch, records)
    return batches


def sequence_losses(logits, input_ids, assistant_mask):
    """Per-sequence cross-entropy on the assistant's tokens (the ``{% generation %}`` span,
    ``<|im_end|>`` included), from a forward pass's ``logits``."""
    import torch

    mask = assistant_mask[:, 1:].float()
    token_loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), input_ids[:, 1:],
                                                   reduction="none")
    return (token_loss * mask).sum(1) / mask.sum(1).clamp(min=1)


def _checkpoint_path(out: Path) -> Path:
    return out.parent / f".{out.name}.checkpoint.pt"


def _checkpoint_settings(out: Path) -> Path:
    return out.parent / f".{out.name}.checkpoint.settings.json"


def _save_checkpoint(path: Path, state: dict) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_base(model, processor, rows: list[dict], images: dict, recipe: BaseRecipe, checkpoint: Path | None,
               progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` in place; return the loss curve per task (``{"all": [...], "choice": [...]}``,
    plus the training aids': ``probe``, ``pool``, ``flag``, ``heads`` and ``flag_accuracy``).

    With ``checkpoint``, the state is saved there every ``recipe.checkpoint_every`` steps and a
    saved state is resumed from; one saved by another recipe is refused
    (:class:`~refine_rft.errors.SettingsChanged`), never silently trained over.
    """
    import torch
    from tqdm.auto import tqdm

    from refine_rft_workshop.base.build_aids import OPTION_LETTERS, OptionHints, VisionProbe, catalogue_token_texts
    from refine_rft.train.sft import AnswerTokens

    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    tokenizer = processor.tokenizer
    names = sorted({row["label"] for row in rows})
    if recipe.catalogue_tokens:
        add_catalogue_tokens(model, tokenizer, names, seed=recipe.seed)
    # Eager attention returns the attention weights the hints need; the model is given back with
    # the implementation it came with.
    attention = model.config._attn_implementation
    if recipe.attention_hints > 0:
        model.set_attn_implementation("eager")
    probe = VisionProbe(model, names)
    # A CoT answer's letter is "B" after a tag or " B" in prose ("The answer is B.").
    letters = [tokenizer.tokenize(text) for letter in OPTION_LETTERS for text in (letter, " " + letter)]
    letters = [tokens[0] for tokens in letters if len(tokens) == 1]
    hints = OptionHints(model, [tokenizer.convert_tokens_to_ids(t) for t in catalogue_token_texts(names)
                                if not t.startswith(" ")], tokenizer.convert_tokens_to_ids(letters),
                        tokenizer.convert_tokens_to_ids("<|image_pad|>"))
    parameters = list(model.parameters()) + (list(probe.parameters()) if recipe.vision_probe else []) \
        + (list(hints.parameters()) if recipe.attention_hints else [])
    optimizer = torch.optim.AdamW(parameters, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    losses: dict[str, list[float]] = {"all": []}
    start = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        if state["recipe"] != recipe.as_dict():
            changed = [name for name, value in recipe.as_dict().items() if state["recipe"].get(name) != value]
            raise SettingsChanged(f"{checkpoint} was saved by another recipe ({', '.join(changed)}); rerun with "
                                  f"--force to start afresh, or build elsewhere")
        model.load_state_dict(state["model"])
        probe.heads.load_state_dict(state["probe"])
        hints.flag.load_state_dict(state["hints"])
        optimizer.load_state_dict(state["optimizer"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        losses, start = state["losses"], state["step"]
        print(f"resuming the build from step {start} ({checkpoint})", flush=True)
    answer_tokens = AnswerTokens(processor.tokenizer)
    model.train()
    total = sum(recipe.mix.counts().values())
    bar = tqdm(range(start, recipe.steps), desc="building the instruct base", disable=not progress, unit="step",
               initial=start, total=recipe.steps, mininterval=5)
    for step in bar:
        step_loss, aids = 0.0, {"probe": [], "pool": [], "flag": [], "heads": [], "flag_accuracy": []}
        for task, (batch, records) in step_batches(rows, images, rng, recipe.mix).items():
            inputs = processor.apply_chat_template(batch, tokenize=True, return_dict=True, return_tensors="pt",
                                                   processor_kwargs={"padding": True})
            # The answer's tokens found by their tokens: transformers before 5.18 marks none of them
            # (return_assistant_tokens_mask) when the question has an image.
            assistant_mask = answer_tokens.mask(inputs["input_ids"]).long()
            hinted = recipe.attention_hints > 0 and recipe.catalogue_tokens and task in HINTED_TASKS
            output = model(**inputs, output_attentions=hinted, output_hidden_states=hinted)
            per_sequence = sequence_losses(output.logits, inputs["input_ids"], assistant_mask)
            loss = per_sequence.sum() / total
            if recipe.vision_probe and "pixel_values" in inputs:
                probe_loss = probe.loss(records)
                loss = loss + recipe.vision_probe * probe_loss * len(records) / total
                aids["probe"].append(probe_loss.item())
            if hinted:
                lines = [tokenizer.convert_tokens_to_ids(answer_text(r["options"], r["answer"]))
                         for r in records]
                hint = hints.loss(output, inputs["input_ids"], assistant_mask, lines)
                loss = loss + recipe.attention_hints * (hint["pool"] + hint["flag"] + hint["heads"]) \
                    * len(records) / total
                for name, value in hint.items():
                    aids[name].append(value if isinstance(value, float) else value.item())
            loss.backward()
            losses.setdefault(task, []).append(round(per_sequence.mean().item(), 4))
            step_loss += per_sequence.sum().item() / total
        torch.nn.utils.clip_grad_norm_(parameters, recipe.max_grad_norm)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, recipe)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses["all"].append(round(step_loss, 4))
        for name, values in aids.items():
            if values:
                losses.setdefault(name, []).append(round(sum(values) / len(values), 4))
        if step % 10 == 0:
            recent = {t: sum(v[-10:]) / len(v[-10:]) for t, v in losses.items()}
            bar.set_postfix_str(" ".join(f"{t}={v:.3f}" for t, v in recent.items()))
        if checkpoint is not None and (step + 1) % recipe.checkpoint_every == 0 and step + 1 < recipe.steps:
            _save_checkpoint(checkpoint, {"recipe": recipe.as_dict(), "step": step + 1, "model": model.state_dict(),
                                          "probe": probe.heads.state_dict(), "hints": hints.flag.state_dict(),
                                          "optimizer": optimizer.state_dict(),
                                          "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
                                          "losses": losses})
    probe.detach()
    model.set_attn_implementation(attention)
    model.eval()
    return losses


def code_revision() -> str:
    """The git commit the code runs from (``+dirty`` when the work tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "src", "workshop"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def init_digest(folder: str | os.PathLike) -> str:
    """The weights digest of a built base (checked against its ``checksums.json`` first)."""
    from refine_rft_workshop.instruct import CHECKSUMS, verify_instruct_base

    folder = verify_instruct_base(Path(folder))
    return json.loads((folder / CHECKSUMS).read_text())["model.safetensors"]


def build_base(out: str | os.PathLike, recipe: BaseRecipe | None = None, force: bool = False,
               profile_per_class: int = 10, progress: bool = True, init: str | os.PathLike | None = None) -> Path:
    """Build the instruct base into ``out`` (refused when it exists, unless ``force``). An interrupted
    build with the same recipe resumes from its checkpoint; one with another recipe is refused
    unless ``force``, which starts afresh.

    With ``profile_per_class`` > 0, the finished model's starting profile is measured on that
    many fresh questions per species (:func:`~refine_rft_workshop.base.base_profile.measure_profile`) and
    goes into ``profile.json`` and the card. ``init``: the folder of the base ``recipe.init`` names.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from refine_rft_workshop.base.base_card import write_card
    from refine_rft_workshop.base.base_profile import measure_profile
    from refine_rft_workshop.instruct import write_checksums
    from refine_rft_workshop.tiny import build_tiny_model

    recipe = recipe or BaseRecipe()
    out = Path(out)
    if (init is None) != (recipe.init is None) or (init is not None and init_digest(init) != recipe.init):
        raise UserError(f"build-base: the recipe continues from weights {recipe.init}, but --init is "
                        f"{init or 'not given'}{' (other weights)' if init else ''}")
    if out.exists() and not force:
        raise OutputExists(f"{out} exists; pass --force to replace it")
    checkpoint = _checkpoint_path(out)
    # As recorded (JSON types), so that a tuple in the recipe compares equal to the list read back.
    guard_settings(_checkpoint_settings(out), json.loads(json.dumps(recipe.as_dict())), [checkpoint],
                   overwrite=force, flag="--force")
    started, revision = time.time(), code_revision()
    with tempfile.TemporaryDirectory(prefix="refine-rft-base-") as scratch:
        scratch = Path(scratch)
        initial = Path(init) if init is not None else \
            build_tiny_model(scratch / "initial", arch=recipe.arch, seed=recipe.model_seed, size=recipe.size)
        rows, images = draw_pool(recipe, scratch / "pool")
        torch.manual_seed(recipe.seed)
        model = AutoModelForImageTextToText.from_pretrained(initial, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(initial, trust_remote_code=True)
        losses = train_base(model, processor, rows, images, recipe, checkpoint, progress=progress)
        summary = {"recipe": recipe.as_dict(), "parameters": sum(p.numel() for p in model.parameters()),
                   "revision": revision, "seconds": round(time.time() - started, 1),
                   "torch_threads": torch.get_num_threads(), "pool_rows": len(rows), "losses": losses}
        with atomic_directory(out) as work:
            model.to(torch.float16).save_pretrained(work)
            processor.save_pretrained(work)
            # The processor's remote code and auto_map travel with the weights, as in the initial folder.
            for name in ("image_only_processor.py", "processor_config.json", "tokenizer_config.json",
                         "preprocessor_config.json"):
                if (initial / name).exists():
                    shutil.copy(initial / name, work / name)
            (work / "build.json").write_text(json.dumps(summary, indent=1) + "\n")
            profile = None
            if profile_per_class > 0:
                profile = measure_profile(str(work), scratch / "profile", per_class=profile_per_class,
                                          classes=recipe.classes)
                (work / "profile.json").write_text(json.dumps(profile, indent=1) + "\n")
            write_card(work, summary, profile)
            write_checksums(work)
    checkpoint.unlink(missing_ok=True)
    _checkpoint_settings(out).unlink(missing_ok=True)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft-workshop build-base", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write the base into")
    parser.add_argument("--force", action="store_true",
                        help="replace --out if it exists, and start afresh instead of resuming a checkpoint")
    default = BaseRecipe()
    parser.add_argument("--steps", type=int, default=default.steps, help="optimizer steps (default: %(default)s)")
    parser.add_argument("--pool-per-class", type=int, default=default.pool_per_class,
                        help="pool images per species (default: %(default)s)")
    parser.add_argument("--profile-per-class", type=int, default=10,
                        help="fresh questions per species to measure the profile on; 0: skip (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--init", default=None,
                        help="continue from this built base's weights instead of random ones (e.g. the previous "
                             "build, to change the instruction data at a fraction of the cost)")
    parser.add_argument("--learning-rate", type=float, default=default.learning_rate,
                        help="peak learning rate (default: %(default)s; lower it with --init)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps < 1 or args.pool_per_class < 1 or args.profile_per_class < 0:
        print("refine-rft-workshop build-base: --steps and --pool-per-class must be >= 1, --profile-per-class >= 0",
              file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        recipe = replace(BaseRecipe(), steps=args.steps, pool_per_class=args.pool_per_class,
                         warmup_steps=min(BaseRecipe.warmup_steps, max(1, args.steps // 10)),
                         learning_rate=args.learning_rate, init=init_digest(args.init) if args.init else None)
        out = build_base(args.out, recipe, force=args.force, profile_per_class=args.profile_per_class,
                         init=args.init)
    except UserError as error:
        print(f"refine-rft-workshop build-base: {error}", file=sys.stderr)
        return 2
    print(f"instruct base written to {out}")
    return 0
