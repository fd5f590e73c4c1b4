"""Answer-only generation: one response per (question, prompt style), appended to ``predictions.jsonl``.

Generation and scoring are kept apart: this module only writes what the model said (plus the
question's fields, so that the file is self-contained), and :mod:`refine_rft.evaluate.score`
scores the file afterwards.

Decoding is greedy. Images are shown at one resolution (``max_pixels`` / ``min_pixels``, see
:mod:`refine_rft.resolution`): the processor is loaded with it and each image is resized to
its grid before either backend sees it. Two backends give the same rows:

- ``hf``: transformers' batched ``generate`` with left padding, fp32 on CPU and bf16 on GPU, with
  an optional peft LoRA adapter;
- ``vllm``: vLLM's offline ``LLM`` engine (GPU), with the adapter as a ``LoRARequest``.

Resuming: questions are cut into batches *before* anything is skipped, per style and in file
order, and a batch is generated again as a whole if any of its rows is missing. So a resumed run
pads and computes every batch exactly as an uninterrupted run would, and the final file holds the
same rows (in a different order, and with different timing fields). The settings that define the
predictions (model, adapter, backend, token budgets, data files and their digests) are recorded
in ``run_settings.json``; a rerun with other settings refuses unless ``overwrite``.

Bad rows: a question that cannot be used (a missing field, an ``answer`` outside the options, a
missing, truncated or unreadable image, an image the model's processor refuses) is left out and
listed in ``rejects.jsonl`` (``id, file, line, reason``) beside the predictions; every other
question is generated. Image files are checked to exist up front and decoded just before their
batch; a rejected question leaves its batch one row shorter, identically on every rerun.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from refine_rft.chat import generation_prefix, restore_prefix
from refine_rft.data.images import image_problem, open_image
from refine_rft.data.records import (
    PREDICTIONS_FILE,
    QUESTION_COLUMNS,
    REJECTS_FILE,
    SCORES_FILE,
    SETTINGS_FILE,
    prediction_key,
    read_rows,
    reject_bad_images,
    rejection,
    require_all,
    validate_record,
)
from refine_rft.errors import ConfigError, MissingDependency
from refine_rft.files import LOCK_NAME, JsonlAppender, file_setting, refuse_output_over_input, resumable_output
from refine_rft.openworld import CLASSES_FILE, gather_class_lists, write_class_lists
from refine_rft.resolution import ImageResolution
from refine_rft.prompts import PROMPT_STYLES, STYLES, question_messages

# Greedy budgets per style (the prompt styles' table).
DEFAULT_MAX_NEW_TOKENS = {name: style.max_new_tokens for name, style in PROMPT_STYLES.items()}
# Fields that differ between two runs of the same model on the same data.
TIMING_FIELDS = ("gen_seconds",)
BACKENDS = ("hf", "vllm")


def load_questions(data_files: Sequence[str | Path]) -> list[dict]:
    """Read and validate question records from JSONL files under the one rule of
    :func:`~refine_rft.data.records.read_rows` (relative image paths are relative to each file's
    folder; ids unique across files); any unusable row fails, naming it."""
    return require_all(read_rows(data_files, validate_record))


def plan_batches(records: Sequence[dict], styles: Sequence[str], batch_size: int) -> list[tuple[str, list[dict]]]:
    """``(style, records)`` batches, grouped by style, in file order; independent of what is done.

    >>> [(s, [r["id"] for r in b]) for s, b in plan_batches([{"id": "a"}, {"id": "b"}, {"id": "c"}], ["choice"], 2)]
    [('choice', ['a', 'b']), ('choice', ['c'])]
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    return [(style, list(records[i : i + batch_size])) for style in styles for i in range(0, len(records), batch_size)]


def check_styles(styles: Sequence[str]) -> list[str]:
    """Validate prompt style names, naming the valid ones on error."""
    unknown = [s for s in styles if s not in STYLES]
    if unknown or not styles:
        raise ConfigError(f"unknown prompt style(s) {unknown or styles}; valid styles: {', '.join(STYLES)}")
    return list(styles)


def _open_image(record: dict, resolution: ImageResolution | None = None):
    """The record's image as every stage opens it (:func:`~refine_rft.data.images.open_image`), fitted
    to ``resolution``'s grid."""
    if resolution is None:
        return open_image(record["image"])
    return resolution.fit(open_image(record["image"], resolution.max_pixels))


class HFGenerator:
    """Batched greedy generation with transformers (left padding), optionally through a LoRA adapter.

    Example (a model folder or hub id):
        >>> gen = HFGenerator("Qwen/Qwen2-VL-7B-Instruct")  # doctest: +SKIP
        >>> gen.generate(records, "choice", max_new_tokens=4)       # doctest: +SKIP
        ['B', ...]
    """

    def __init__(self, model_path: str, adapter: str | None = None, device: str | None = None,
                 resolution: ImageResolution | None = None, trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForImageTextToText

        from refine_rft.trust import trust_for

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # bf16 only on GPUs: on CPUs it is slow or unsupported, fp32 is exact.
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        resolution = resolution or ImageResolution()
        self.processor = resolution.load_processor(model_path, trust_remote_code)
        self.resolution = resolution.for_processor(self.processor)
        # What the chat template writes of the answer itself (<think> for a thinking template) goes back
        # in front of the response, so that the parsers see the whole answer (refine_rft.chat).
        self.template_prefix = generation_prefix(self.processor)
        self.processor.tokenizer.padding_side = "left"  # generation continues at the right edge
        trust = trust_for(model_path, trust_remote_code)
        model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype, trust_remote_code=trust)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.to(self.device).eval()

    def prompts(self, records: Sequence[dict], style: str) -> list[str]:
        """The chat-formatted prompt text of each record (image placeholder expanded by the processor)."""
        return [
            self.processor.apply_chat_template(
                question_messages(r["noun"], r["options"], style), add_generation_prompt=True, tokenize=False
            )
            for r in records
        ]

    def inputs(self, records: Sequence[dict], style: str):
        """The model inputs of a batch: token ids (image tokens expanded), pixels and ``image_grid_thw``."""
        return self.processor(
            text=self.prompts(records, style), images=[[_open_image(r, self.resolution)] for r in records],
            padding=True, return_tensors="pt",
        ).to(self.device)

    def generate(self, records: Sequence[dict], style: str, max_new_tokens: int) -> list[str]:
        """Greedy responses to ``records`` under ``style``, in order."""
        import torch

        inputs = self.inputs(records, style)
        tokenizer = self.processor.tokenizer
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, do_sample=False, max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [restore_prefix(self.template_prefix, text.strip()) for text in texts]


def vllm_requests(processor, records: Sequence[dict], style: str,
                  resolution: ImageResolution | None = None) -> list[dict]:
    """vLLM prompt dicts: the chat-formatted text plus the image (fitted to ``resolution``) as ``multi_modal_data``.

    >>> class P:  # any processor with apply_chat_template
    ...     def apply_chat_template(self, messages, **kw): return "<prompt>"
    >>> vllm_requests(P(), [], "cot")
    []
    """
    return [
        {
            "prompt": processor.apply_chat_template(
                question_messages(r["noun"], r["options"], style), add_generation_prompt=True, tokenize=False
            ),
            "multi_modal_data": {"image": _open_image(r, resolution)},
        }
        for r in records
    ]


def _import_vllm():
    try:
        import vllm
    except ImportError:
        raise MissingDependency(
            "the 'vllm' backend needs vLLM, which is not installed; on a GPU machine run "
            "pip install -e '.[vllm]', or use --backend hf"
        ) from None
    return vllm


class VLLMGenerator:
    """Greedy generation with vLLM's offline engine (GPU); a LoRA adapter goes in as a ``LoRARequest``.

    vLLM batches internally (continuous batching), so it receives each planned batch whole.
    """

    def __init__(self, model_path: str, adapter: str | None = None, max_model_len: int = 4096,
                 gpu_memory_utilization: float = 0.85, resolution: ImageResolution | None = None,
                 trust_remote_code: bool = False):
        from refine_rft.trust import trust_for

        vllm = _import_vllm()
        self._vllm = vllm
        resolution = resolution or ImageResolution()
        trust = trust_for(model_path, trust_remote_code)
        self.processor = resolution.load_processor(model_path, trust)
        self.resolution = resolution.for_processor(self.processor)
        # What the chat template writes of the answer itself (<think> for a thinking template) goes back
        # in front of the response, so that the parsers see the whole answer (refine_rft.chat).
        self.template_prefix = generation_prefix(self.processor)
        kwargs = {}
        if resolution.is_set:
            # vLLM builds its own processor from the model folder: give it the same bounds.
            kwargs["mm_processor_kwargs"] = resolution.processor_kwargs()
        self.lora_request = None
        if adapter:
            from vllm.lora.request import LoRARequest

            rank = json.loads((Path(adapter) / "adapter_config.json").read_text())["r"]
            kwargs.update(enable_lora=True, max_lora_rank=max(8, rank))
            self.lora_request = LoRARequest("adapter", 1, str(adapter))
        self.llm = vllm.LLM(
            model=model_path, limit_mm_per_prompt={"image": 1}, max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization, trust_remote_code=trust, **kwargs,
        )

    def generate(self, records: Sequence[dict], style: str, max_new_tokens: int) -> list[str]:
        params = self._vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        outputs = self.llm.generate(vllm_requests(self.processor, records, style, self.resolution), params,
                                    lora_request=self.lora_request, use_tqdm=False)
        return [restore_prefix(self.template_prefix, out.outputs[0].text.strip()) for out in outputs]


def make_generator(backend: str, model_path: str, adapter: str | None = None,
                   resolution: ImageResolution | None = None, trust_remote_code: bool = False):
    """The generator of ``backend`` (``hf`` or ``vllm``), showing images at ``resolution``; code in
    the model folder runs only as :mod:`refine_rft.trust` decides."""
    if backend == "hf":
        return HFGenerator(model_path, adapter, resolution=resolution, trust_remote_code=trust_remote_code)
    if backend == "vllm":
        return VLLMGenerator(model_path, adapter, resolution=resolution, trust_remote_code=trust_remote_code)
    raise ConfigError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")


def max_tokens_for(styles: Sequence[str], overrides: dict[str, int] | None = None) -> dict[str, int]:
    """Per-style ``max_new_tokens``: the defaults, updated by ``overrides``.

    >>> max_tokens_for(["choice", "cot"], {"cot": 64})
    {'choice': 8, 'cot': 64}
    """
    overrides = overrides or {}
    unknown = set(overrides) - set(STYLES)
    if unknown:
        raise ConfigError(f"max new tokens given for unknown style(s) {sorted(unknown)}; valid: {', '.join(STYLES)}")
    return {s: int(overrides.get(s, DEFAULT_MAX_NEW_TOKENS[s])) for s in styles}


@dataclass(frozen=True)
class EvalSettings:
    """How ``refine-rft eval`` generates: the model, how it is run, and the budgets.

    ``resolution`` has no default: the caller decides it once (``refine-rft eval`` with
    :func:`~refine_rft.resolution.choose_resolution`: the flags, else the training run's, else the
    processor's), and every image of the run is shown at it.

    >>> from refine_rft.resolution import ImageResolution
    >>> settings = EvalSettings("Qwen/Qwen2-VL-7B-Instruct", ImageResolution(), max_new_tokens={"cot": 64})
    >>> settings.budgets(["choice", "cot"]), settings.batch_size
    ({'choice': 8, 'cot': 64}, 16)
    """

    model: str  # a model folder or hub id
    resolution: ImageResolution
    adapter: str | None = None  # a peft LoRA adapter folder
    backend: str = "hf"  # one of BACKENDS
    batch_size: int = 16  # questions per generate call
    max_new_tokens: dict[str, int] = field(default_factory=dict)  # per-style overrides of the styles' budgets
    limit: int | None = None  # only the first ``limit`` usable questions (smoke runs)
    overwrite: bool = False  # start the predictions afresh (else a rerun must have the same settings)
    trust_remote_code: bool = False  # run code the model folder ships (refine_rft.trust)
    # Reject questions whose prompt is longer (besides those longer than the model's context less the
    # style's budget; refine_rft.data.prompt_length).
    max_prompt_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; valid backends: {', '.join(BACKENDS)}")

    def budgets(self, styles: Sequence[str]) -> dict[str, int]:
        """Per-style ``max_new_tokens`` (:func:`max_tokens_for`)."""
        return max_tokens_for(styles, self.max_new_tokens)

    def record(self, data_files: Sequence[str | Path], styles: Sequence[str]) -> dict:
        """The settings that define a predictions file: a rerun into the same folder must share them."""
        return {"model": self.model, "adapter": self.adapter, "backend": self.backend,
                "min_pixels": self.resolution.min_pixels, "max_pixels": self.resolution.max_pixels,
                "data": [file_setting(f) for f in data_files if Path(f).is_file()],
                **{f"max_new_tokens/{style}": budget for style, budget in self.budgets(styles).items()}}


def eval_inputs(data_files: Sequence[str | Path], model: str | None, adapter: str | None) -> list[tuple[str, object]]:
    """What ``eval`` reads, named for :func:`~refine_rft.files.refuse_output_over_input`: the question
    files, and the model and adapter folders (a hub id is no local path and is passed over)."""
    return [*(("--data", path) for path in data_files), ("--model", model), ("--adapter", adapter)]


def eval_outputs(out_dir: str | Path) -> list[tuple[str, Path]]:
    """What ``eval`` writes: the run folder and each file in it."""
    out_dir = Path(out_dir)
    names = (PREDICTIONS_FILE, "scores.json", SETTINGS_FILE, REJECTS_FILE, CLASSES_FILE, LOCK_NAME)
    return [("--out", out_dir), *(("the output", out_dir / name) for name in names)]


def generate_predictions(data_files: Sequence[str | Path], styles: Sequence[str], out_dir: str | Path,
                         settings: EvalSettings) -> Path:
    """Generate the missing rows of ``out_dir/predictions.jsonl`` (one per question and style in
    ``styles``) from the question files ``data_files``, as ``settings`` say; return its path.

    Rows already in ``predictions.jsonl`` are kept and skipped; the model is loaded
    (:func:`make_generator`) only when a batch still has work.

    Returns:
        The path of ``predictions.jsonl`` (absent if no question was usable). Rejected questions
        are listed in ``out_dir/rejects.jsonl`` (removed when there are none).

    Raises:
        OutputLocked: another process is writing ``out_dir``.
    """
    styles = check_styles(styles)
    budgets = settings.budgets(styles)
    refuse_output_over_input(eval_inputs(data_files, settings.model, settings.adapter), eval_outputs(out_dir))
    questions = reject_bad_images(read_rows(data_files, validate_record), decode=False)
    out_dir = Path(out_dir)
    unusable: dict[str, str] = {}  # question id -> why (found before or while generating)

    def rejects() -> list[dict]:
        return questions.rejects + [rejection(qid, *questions.sources[qid], why) for qid, why in unusable.items()]

    with resumable_output(out_dir / PREDICTIONS_FILE, prediction_key, out_dir / SETTINGS_FILE,
                          settings.record(data_files, styles), [out_dir / SCORES_FILE], out_dir / REJECTS_FILE,
                          rejects, settings.overwrite, lock=out_dir, what="eval") as out:
        records = questions.rows[:settings.limit]
        # Before any generation: a prompt the model cannot take is rejected, not run.
        unusable.update(_too_long(records, budgets, settings))
        _generate_missing(records, styles, budgets, out, unusable, settings)
        # Open-world answers are scored against every class of a dataset, not the ones these files show.
        class_lists = gather_class_lists(data_files)
        if class_lists:
            write_class_lists(out_dir, class_lists, keep=False)
        else:
            (out_dir / CLASSES_FILE).unlink(missing_ok=True)
    return out_dir / PREDICTIONS_FILE


def _generate_missing(records: list[dict], styles: Sequence[str], budgets: dict[str, int], out: JsonlAppender,
                      unusable: dict[str, str], settings: EvalSettings) -> None:
    """Generate every planned row not yet in ``out``; the generator is made when the first batch
    needs it (a finished run never loads the model)."""
    plan = plan_batches(records, styles, settings.batch_size)
    pending = sum((r["id"], s) not in out.done for s, batch in plan for r in batch)
    fields = {"model": settings.model, "adapter": settings.adapter, "backend": settings.backend}
    generator = None
    with tqdm(total=pending, unit="q", desc="eval", dynamic_ncols=True, disable=not pending) as bar:
        for style, batch in plan:
            batch = _usable(batch, style, out.done, unusable, settings.resolution.max_pixels)
            if not batch:
                continue
            if generator is None:
                generator = make_generator(settings.backend, settings.model, settings.adapter, settings.resolution,
                                           settings.trust_remote_code)
            bar.set_postfix_str(style)
            for record, response, seconds in _generate_isolated(generator, batch, style, budgets[style], unusable):
                row = {k: record[k] for k in QUESTION_COLUMNS if k in record}
                row.update(style=style, response=response, **fields, max_new_tokens=budgets[style],
                           gen_seconds=round(seconds, 4))
                bar.update(int(out.write(row)))
            bar.update(sum((r["id"], style) not in out.done for r in batch))  # rejected now


def _too_long(records: list[dict], budgets: dict[str, int], settings: EvalSettings) -> dict[str, str]:
    """Question id -> why, for the questions whose prompt in some style is too long for the model."""
    from transformers import AutoTokenizer

    from refine_rft.data.prompt_length import context_length, prompt_problem, prompt_token_cap

    context = context_length(settings.model)
    tokenizer = AutoTokenizer.from_pretrained(settings.model)
    resolution, max_prompt_tokens = settings.resolution, settings.max_prompt_tokens
    image_tokens = resolution.max_tokens() if resolution.is_set else 0
    problems: dict[str, str] = {}
    for style, budget in budgets.items():
        cap = prompt_token_cap(context, budget, max_prompt_tokens)
        for record in records:
            if record["id"] not in problems:
                if (problem := prompt_problem(tokenizer, record, style, cap, image_tokens)) is not None:
                    problems[record["id"]] = problem
    return problems


def _usable(batch: list[dict], style: str, done: set, unusable: dict[str, str],
            max_pixels: int | None = None) -> list[dict]:
    """The rows of ``batch`` whose image decodes, or ``[]`` when none of them is missing; images
    are decoded only for batches that still have work."""
    if all((r["id"], style) in done or r["id"] in unusable for r in batch):
        return []
    for record in batch:
        if record["id"] in unusable:
            continue
        if (problem := image_problem(record["image"], True, max_pixels)) is not None:
            unusable[record["id"]] = problem
    batch = [r for r in batch if r["id"] not in unusable]
    return batch if any((r["id"], style) not in done for r in batch) else []


def _generate_isolated(generator, batch: list[dict], style: str, budget: int, unusable: dict[str, str]):
    """``(record, response, seconds per row)`` for ``batch``. If the processor refuses the batch
    (``ValueError``, e.g. an image too small for its patch size), each row is generated alone and the
    rows it still refuses are marked ``unusable``; other errors are bugs or faults and propagate."""
    start = time.perf_counter()
    try:
        responses = generator.generate(batch, style, budget)
    except ValueError as error:
        if len(batch) == 1:
            unusable[batch[0]["id"]] = f"the model's processor refused it ({error})"
            return []
        return [item for record in batch
                for item in _generate_isolated(generator, [record], style, budget, unusable)]
    seconds = (time.perf_counter() - start) / len(batch)
    return [(record, response, seconds) for record, response in zip(batch, responses)]

