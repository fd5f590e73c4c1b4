"""GPU smoke benchmark: a GRPO recipe's per-device shapes on a random-weight Qwen-VL (Qwen2-VL-7B), offline.

Memory and time do not depend on the weights' values, so a model with the published dimensions
and random weights (:mod:`refine_rft_workshop.published`, built in a second, initialised directly on
the GPU) measures them exactly. Everything else is the project's own code path:

- training: ``refine_rft.train.grpo.build_trainer`` on the model's ReFine-RFT recipe (:data:`RECIPES`:
  ``recipes/qwen2vl7b/refine_rft.yaml`` for Qwen2-VL, ``recipes/qwen3vl8b/refine_rft.yaml`` ...; TRL's
  ``GRPOTrainer``, LoRA r=64 alpha=128 on the language model, bf16, activation checkpointing, G=6,
  micro-batch 12 x 4 accumulation, 512-token completions), with generation by ``transformers``
  instead of vLLM, and R_fa + R_cls + R_cot, the judge reached over HTTP at a local
  ``ScriptedJudgeServer`` answering after ``--latency`` seconds;
- evaluation: batched ``hf`` generation (``refine_rft.evaluate.generate.generate_predictions``) of
  CoT answers on real-size images.

Generation is forced to exactly ``--completion-tokens`` new tokens (``min_new_tokens``): a random
model rarely stops by itself, and a forced length makes runs comparable. A random model never writes
``<think>``, for which R_cot would score 0 without asking the judge; so the benchmark puts each
completion's text inside ``<think>``/``<attribute>`` tags before R_cot sees it, and every completion
costs one judge request, as a trained policy's does. (R_fa and R_cls see the raw text.)

A step is timed from the end of the previous one (a TrainerCallback) and split, by wrappers around
the reward functions, into *generation* (until the first reward is called: data, image processing,
``generate``), *rewards* (first reward call to last reward return, the judge included: TRL awaits
R_cot's requests concurrently) and *optimizer* (the rest: log-probabilities, forward and backward of
every micro-batch, the update). The first step is a warm-up and not counted.

It prints these figures, peak GPU memory per phase, generated tokens per second, and what they imply
for the paper's 4 x 48 GB and the recipe's 8 x 80 GB (how the estimate is made is printed with it)::

    python benchmarks/gpu_smoke.py                      # on one GPU (about 80 GB for the 7B recipe)
    python benchmarks/gpu_smoke.py --model qwen3-vl-8b  # any of refine_rft_workshop.published.published_names()
    python benchmarks/gpu_smoke.py --model qwen2-vl-2b  # smaller GPUs
    OMP_NUM_THREADS=1 python benchmarks/gpu_smoke.py --tiny   # the same code on CPU, embedded tiny model, fp32
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "qwen2vl7b" / "refine_rft.yaml"
# Each published model's ReFine-RFT recipe (its LoRA targets, resolution in its own terms); the 2B/3B/4B
# sizes use their family's one-GPU recipe, whose shapes this benchmark overrides with its own.
RECIPES = {
    "qwen2-vl-2b": RECIPE, "qwen2-vl-7b": RECIPE,
    "qwen2.5-vl-3b": REPO / "recipes" / "qwen2_5vl3b" / "refine_rft.yaml",
    "qwen2.5-vl-7b": REPO / "recipes" / "qwen2_5vl7b" / "refine_rft.yaml",
    "qwen3-vl-2b": REPO / "recipes" / "qwen3vl4b" / "refine_rft.yaml",
    "qwen3-vl-4b": REPO / "recipes" / "qwen3vl4b" / "refine_rft.yaml",
    "qwen3-vl-8b": REPO / "recipes" / "qwen3vl8b" / "refine_rft.yaml",
}
GIB = 2**30
# Memory of the target cards as nvidia-smi reports it, less ~0.5 GiB that the CUDA context and
# NCCL take outside PyTorch's allocator (which is what torch's peak figures count).
TARGETS = {  # name: (GPUs, usable GiB per GPU)
    "4 x 48 GB (paper: RTX A6000)": (4, 49140 / 1024 - 0.5),
    "8 x 80 GB (recipe: A100/H100)": (8, 81559 / 1024 - 0.5),
}
QUESTIONS_PER_STEP = 64  # the paper's batch: 64 questions x G=6 = 384 completions per optimizer step
TRAIN_QUESTIONS = 3775  # 5-shot over the six datasets (755 classes x 5)
VLLM_OVERHEAD_GIB = 2.0  # vLLM's CUDA graphs, sampler and profiling activations: an assumption, not measured


class PhaseClock:
    """Times each optimizer step and splits it into generation / rewards / optimizer; also peak
    memory per phase (CUDA when on a GPU) and the completion tokens generated."""

    def __init__(self, cuda: bool):
        import torch

        self.torch, self.cuda = torch, cuda
        self.steps: list[dict] = []
        self._new_step(time.perf_counter())

    def _new_step(self, now: float) -> None:
        self._start, self._first_reward, self._last_reward = now, None, None
        self._tokens = self._completions = 0
        self._peak_generation = 0.0
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def _sync(self) -> None:
        if self.cuda:  # kernels run asynchronously: wait for them so that each phase gets its own time
            self.torch.cuda.synchronize()

    def _peak(self) -> tuple[float, float]:
        if not self.cuda:
            return 0.0, 0.0
        return self.torch.cuda.max_memory_allocated() / GIB, self.torch.cuda.max_memory_reserved() / GIB

    def reward_started(self, completion_ids) -> None:
        if self._first_reward is None:  # the first reward of the step: generation is over
            self._sync()
            self._first_reward = time.perf_counter()
            self._tokens = sum(len(ids) for ids in completion_ids or [])
            self._completions = len(completion_ids or [])
            self._peak_generation = self._peak()
            if self.cuda:
                self.torch.cuda.reset_peak_memory_stats()

    def reward_finished(self) -> None:
        self._last_reward = time.perf_counter()

    def step_ended(self) -> None:
        self._sync()
        now = time.perf_counter()
        if self._first_reward is not None:  # a step that generated (one generation per optimizer step)
            self.steps.append({
                "total_s": now - self._start, "generation_s": self._first_reward - self._start,
                "rewards_s": self._last_reward - self._first_reward, "optimizer_s": now - self._last_reward,
                "completion_tokens": self._tokens, "completions": self._completions,
                "peak_generation_gib": self._peak_generation, "peak_training_gib": self._peak(),
            })
        self._new_step(now)


def step_callback(clock: PhaseClock):
    from transformers import TrainerCallback

    class StepEnd(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock._new_step(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            clock.step_ended()

    return StepEnd()


def timed(func, clock: PhaseClock, as_cot: bool = False):
    """``func`` reporting its start and end to ``clock``; with ``as_cot`` it sees each completion's
    text inside ``<think>``/``<attribute>`` tags (see the module docstring). Keeps TRL's name and
    the sync/async kind."""
    from trl.trainer.utils import get_callable_name, is_async_callable

    from refine_rft.rewards.rules import completion_text

    def arguments(completions, kwargs):
        clock.reward_started(kwargs.get("completion_ids"))
        if as_cot:
            completions = [f"<think>{completion_text(c)}</think>\n<attribute>{completion_text(c)}</attribute>"
                           for c in completions]
        return completions

    if is_async_callable(func):
        async def wrapper(completions, **kwargs):
            try:
                return await func(arguments(completions, kwargs), **kwargs)
            finally:
                clock.reward_finished()
    else:
        def wrapper(completions, **kwargs):
            try:
                return func(arguments(completions, kwargs), **kwargs)
            finally:
                clock.reward_finished()
    wrapper.__name__ = wrapper.__qualname__ = get_callable_name(func)
    return wrapper


def build_model(args, work: Path) -> str:
    """The model folder: the published dimensions with random weights, or the embedded tiny model."""
    if args.tiny:
        from refine_rft_workshop.models import resolve_model_path

        return resolve_model_path("tiny:qwen2_vl")
    from refine_rft_workshop.published import build_published_model

    return str(build_published_model(work / args.model, args.model))


def overrides(args, model: str, train_file: Path, out: Path, judge_url: str) -> dict:
    """The recipe's settings this benchmark changes: the model, data, step count, shapes, transformers
    generation of an exact length, no checkpoints or logs, the judge at the local server."""
    values = {
        "model_name_or_path": model, "trust_remote_code": True, "train_file": str(train_file),
        "output_dir": str(out), "max_steps": args.steps, "per_device_train_batch_size": args.batch,
        "gradient_accumulation_steps": args.grad_accum, "num_generations": args.generations,
        "processes": None, "questions_per_step": None,  # one GPU with the benchmark's own shapes
        "max_completion_length": args.completion_tokens,
        "generation_kwargs": {"min_new_tokens": args.completion_tokens},
        "use_vllm": False, "save_strategy": "no", "report_to": [], "log_completions": False,
        "logging_steps": 1, "log_sample_ids": False, "disable_tqdm": True,
        "judge": {"base_urls": [judge_url], "model": "scripted-judge", "timeout": 60},
    }
    if args.tiny:  # bf16 matmuls are slow or unsupported on CPUs
        values.update(use_cpu=True, bf16=False, dtype="float32", attn_implementation="sdpa")
    return values


def train_steps(args, model: str, train_file: Path, work: Path, judge_url: str, cuda: bool) -> tuple[list[dict], dict]:
    """Run the GRPO steps; return the timed steps (warm-up dropped) and facts about the model."""
    from transformers import PrinterCallback

    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    parsed = parse_recipe(grpo._dataclass_types(), recipe=RECIPE if args.tiny else RECIPES[args.model],
                          overrides=overrides(args, model, train_file, work / "train", judge_url))
    trainer = grpo.build_trainer(*parsed)
    clock = PhaseClock(cuda)
    trainer.reward_funcs = [timed(f, clock, as_cot=getattr(f, "__name__", "") == "reasoning_reward")
                            for f in trainer.reward_funcs]
    trainer.add_callback(step_callback(clock))
    trainer.remove_callback(PrinterCallback)  # TRL's per-step log dicts; the figures are printed at the end
    trainer.train()
    facts = model_facts(trainer)
    tokens_seen = [row["num_tokens"] for row in trainer.state.log_history if "num_tokens" in row]
    for step, (before, after) in zip(clock.steps, zip([0, *tokens_seen], tokens_seen)):
        step["prompt_tokens"] = after - before - step["completion_tokens"]
    del trainer
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()
    return clock.steps[1:], facts


def model_facts(trainer) -> dict:
    """Parameter counts and bytes of the policy, and the KV-cache bytes per token (all layers)."""
    model = trainer.model
    params = list(model.parameters())
    frozen = [p for p in params if not p.requires_grad]
    text = model.config.get_text_config()
    # Qwen3-VL states its head size (128), which is not hidden / heads (the 4B: 2560 / 32 = 80).
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    dtype_bytes = frozen[0].element_size() if frozen else 4
    return {
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "weights_gib": sum(p.numel() * p.element_size() for p in frozen) / GIB,
        "kv_bytes_per_token": 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * dtype_bytes,
    }


def evaluate(args, model: str, test_file: Path, work: Path, cuda: bool) -> dict:
    """Batched ``hf`` CoT generation of exactly ``--eval-tokens`` tokens per question; its figures."""
    import torch

    import refine_rft.evaluate.generate as generate
    from refine_rft.evaluate.generate import EvalSettings, HFGenerator, generate_predictions
    from refine_rft.resolution import ImageResolution

    # Under a device context transformers creates (and, for the weightless folder, initialises) the
    # weights on the GPU directly.
    with torch.device("cuda" if cuda else "cpu"):
        generator = HFGenerator(model, trust_remote_code=True)  # the tiny models ship a processor file
    # Exactly --eval-tokens per answer (transformers' min_new_tokens), with the model loaded above:
    # the one seam generate_predictions makes its generator through.
    generator.model.generate = functools.partial(type(generator.model).generate, generator.model,
                                                 min_new_tokens=args.eval_tokens)
    generate.make_generator = lambda *args, **kwargs: generator
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    generate_predictions([test_file], ["cot"], work / "eval",
                         EvalSettings(model, ImageResolution(), batch_size=args.eval_batch,
                                      max_new_tokens={"cot": args.eval_tokens}, limit=args.eval_questions,
                                      trust_remote_code=True))
    seconds = time.perf_counter() - start
    tokens = args.eval_questions * args.eval_tokens
    return {"questions": args.eval_questions, "batch": args.eval_batch, "new_tokens": args.eval_tokens,
            "seconds": seconds, "tokens_per_s": tokens / seconds,
            "peak_gib": torch.cuda.max_memory_allocated() / GIB if cuda else None}


def summarise(steps: list[dict]) -> dict:
    """Medians over the timed steps; peaks are maxima."""
    median = {k: statistics.median(s[k] for s in steps) for k in
              ("total_s", "generation_s", "rewards_s", "optimizer_s", "completion_tokens", "completions",
               "prompt_tokens")}
    median["generated_tokens_per_s"] = median["completion_tokens"] / median["generation_s"]
    for phase in ("peak_generation_gib", "peak_training_gib"):
        median[phase] = [max(s[phase][0] for s in steps), max(s[phase][1] for s in steps)]
    return median


def implications(step: dict, facts: dict, args) -> list[str]:
    """What the measured per-device figures imply for each target layout (see the printed notes)."""
    lines = []
    sequence = step["prompt_tokens"] / step["completions"] + args.completion_tokens
    run_batch = step["completions"]
    for name, (gpus, usable) in TARGETS.items():
        per_device = QUESTIONS_PER_STEP * args.generations // gpus  # completions per GPU per step
        accumulation = per_device // args.batch
        extra_kv = (per_device - run_batch) * sequence * facts["kv_bytes_per_token"] / GIB
        generation = step["peak_generation_gib"][1] + max(0.0, extra_kv)
        training = step["peak_training_gib"][1]
        need = max(generation, training)
        verdict = "fits" if need <= usable else "does NOT fit"
        vllm = facts["weights_gib"] + per_device * sequence * facts["kv_bytes_per_token"] / GIB + VLLM_OVERHEAD_GIB
        left = usable - training
        steps_per_epoch = TRAIN_QUESTIONS // QUESTIONS_PER_STEP  # 58: TRL drops the last partial chunk
        scale = accumulation / args.grad_accum
        seconds = step["generation_s"] * max(1.0, scale) + step["rewards_s"] * max(1.0, scale) \
            + step["optimizer_s"] * scale
        lines += [
            f"{name}: {args.batch} completions x {accumulation} accumulation per GPU "
            f"({per_device} generated at once)",
            f"  transformers generation: peak {need:.1f} GiB of {usable:.1f} -> {verdict} "
            f"(margin {usable - need:+.1f} GiB)",
            f"  vLLM colocate needs {vllm:.1f} GiB (gpu_memory_utilization >= {vllm / (usable + 0.5):.2f}); "
            f"{left:.1f} GiB left beside the training peak -> {'fits' if vllm <= left else 'does NOT fit'}",
            f"  step ~{seconds:.0f} s (upper bound), {steps_per_epoch} steps per epoch ~{steps_per_epoch * seconds / 3600:.1f} h",
        ]
    return lines


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def report(args, device: str, step: dict, facts: dict, evaluation: dict) -> list[str]:
    """The printed summary."""
    share = {k: step[k] / step["total_s"] for k in ("generation_s", "rewards_s", "optimizer_s")}
    lines = [
        f"model {args.model if not args.tiny else 'embedded tiny qwen2_vl'} on {device}: "
        f"{facts['parameters']:,} parameters ({facts['trainable_parameters']:,} trainable: LoRA), "
        f"weights {facts['weights_gib']:.2f} GiB",
        f"shapes: micro-batch {args.batch} completions x {args.grad_accum} accumulation, G={args.generations}, "
        f"{step['completions']:.0f} completions of {args.completion_tokens} tokens per step, "
        f"~{step['prompt_tokens'] / step['completions']:.0f} prompt tokens each ({args.image_size} px images), "
        f"judge latency {args.latency * 1000:.0f} ms",
        f"seconds per optimizer step (median of {args.steps - 1}): {step['total_s']:.2f} = "
        f"generation {step['generation_s']:.2f} ({share['generation_s']:.0%}) + "
        f"rewards incl. judge {step['rewards_s']:.2f} ({share['rewards_s']:.0%}) + "
        f"optimizer {step['optimizer_s']:.2f} ({share['optimizer_s']:.0%})",
        f"generated tokens per second (training generation): {step['generated_tokens_per_s']:.1f}",
        f"evaluation (hf backend, batch {evaluation['batch']}, {evaluation['questions']} CoT questions x "
        f"{evaluation['new_tokens']} tokens): {evaluation['seconds']:.2f} s, {evaluation['tokens_per_s']:.1f} tokens/s",
    ]
    if step["peak_training_gib"][1] > 0:
        lines.append(
            f"peak GPU memory (allocated / reserved GiB): generation {step['peak_generation_gib'][0]:.1f} / "
            f"{step['peak_generation_gib'][1]:.1f}, rewards + optimizer {step['peak_training_gib'][0]:.1f} / "
            f"{step['peak_training_gib'][1]:.1f}, evaluation {evaluation['peak_gib']:.1f} allocated")
    else:
        lines.append(f"peak memory: {peak_rss_gib():.2f} GiB RSS (CPU run: no GPU figures; "
                     "the implications below only exercise the arithmetic)")
    lines += ["implications (per GPU; the paper's 64 questions x G=6 per step split over the GPUs):"]
    lines += implications(step, facts, args)
    lines += [
        "how: the generation peak grows by the KV cache of the extra sequences generated at once "
        "(per token: 2 x layers x kv-heads x head-dim values of the weights' dtype); the rewards + optimizer peak does not "
        "depend on the accumulation; vLLM colocate holds a second bf16 copy of the weights, the KV cache "
        f"of the per-GPU generation batch and ~{VLLM_OVERHEAD_GIB:.0f} GiB of its own (assumed), beside the "
        "training peak; step time scales generation and rewards by at most, the optimizer by exactly, the "
        "accumulation ratio",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2-vl-7b", choices=sorted(RECIPES),
                        help="published dimensions (refine_rft_workshop.published); default %(default)s")
    parser.add_argument("--tiny", action="store_true", help="CPU, fp32, the embedded tiny model, small shapes")
    parser.add_argument("--steps", type=int, help="optimizer steps; the first is not timed (default 4, tiny 3)")
    parser.add_argument("--batch", type=int, help="per_device_train_batch_size (default: the recipe's 12; tiny 6)")
    parser.add_argument("--grad-accum", type=int, help="gradient_accumulation_steps (default 4 as the recipe; tiny 2)")
    parser.add_argument("--generations", type=int, default=6, help="G, completions per question (the paper's 6)")
    parser.add_argument("--completion-tokens", type=int, help="new tokens per completion (default 512; tiny 32)")
    parser.add_argument("--image-size", type=int, help="side of the square images in px (default 448; tiny 112)")
    parser.add_argument("--latency", type=float, default=0.1, help="judge reply latency in seconds")
    parser.add_argument("--eval-questions", type=int, help="evaluation questions (default 32; tiny 4)")
    parser.add_argument("--eval-batch", type=int, help="evaluation batch size (default 16; tiny 4)")
    parser.add_argument("--eval-tokens", type=int, help="new tokens per evaluation answer (default 512; tiny 32)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    defaults = (dict(steps=3, batch=6, grad_accum=2, completion_tokens=32, image_size=112, eval_questions=4,
                     eval_batch=4, eval_tokens=32) if args.tiny else
                dict(steps=4, batch=12, grad_accum=4, completion_tokens=512, image_size=448, eval_questions=32,
                     eval_batch=16, eval_tokens=512))
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the first step is a warm-up)")
    if (args.batch * args.grad_accum) % args.generations:
        parser.error("--batch x --grad-accum must be a multiple of --generations")

    import torch
    from transformers.utils import logging as hf_logging

    from refine_rft.files import write_jsonl_atomic
    from refine_rft_workshop.synthetic import synthetic_questions
    from refine_rft.judge.health import PROBE_TEXT
    from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, request_text

    cuda = not args.tiny
    if cuda and not torch.cuda.is_available():
        parser.error("no GPU: run with --tiny on a CPU")
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' renames, called from TRL
    hf_logging.set_verbosity_error()  # the weightless model's load report lists every weight as missing
    device = torch.cuda.get_device_name() if cuda else "CPU"
    work = Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
    questions = args.steps * args.batch * args.grad_accum // args.generations
    data = work / "data"
    train_file = write_jsonl_atomic(data / "train.jsonl", synthetic_questions(
        data, "train", per_class=-(-questions // 24), num_classes=24, image_size=args.image_size))
    test_file = write_jsonl_atomic(data / "test.jsonl", synthetic_questions(
        data, "test", per_class=-(-args.eval_questions // 24), num_classes=24, image_size=args.image_size))
    model = build_model(args, work)

    with ScriptedJudgeServer(latency=args.latency) as server:
        steps, facts = train_steps(args, model, train_file, work, server.url, cuda)
        # Judgements only: the trainer's start-up health check is one more request, not a judgement.
        judge_requests = sum(PROBE_TEXT not in request_text(request) for request in server.requests)
    step = summarise(steps)
    evaluation = evaluate(args, model, test_file, work, cuda)
    lines = report(args, device, step, facts, evaluation)
    lines.insert(2, f"judge requests: {judge_requests} in {args.steps} steps")
    print("\n".join(lines))
    if args.json:
        figures = {"device": device, "model": "tiny" if args.tiny else args.model, "args": vars(args),
                   "step": step, "steps": steps, "model_facts": facts, "evaluation": evaluation,
                   "judge_requests": judge_requests, "peak_rss_gib": peak_rss_gib(), "report": lines}
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
