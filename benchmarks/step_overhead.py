"""Seconds per GRPO step of ReFine-RFT against vanilla GRPO on the embedded tiny model.

- vanilla:    R_f + R_cls (rule rewards only);
- refine_rft: R_fa + R_cls + R_cot, the judge reached over real HTTP at a local scripted server
  that waits ``--latency`` seconds (default 100 ms) before every reply. The server runs in a
  process of its own, as a real teacher runs on its own machine: its work (reading and parsing
  every request body) is not charged to the training step.

Both arms run the same recipe (``workshop/refine_rft_workshop/recipes/refine_rft.yaml``), batch, gradient accumulation
(4 micro-batches per optimizer step, as in the paper recipe; TRL generates and scores once per
optimizer step), group size and completion length; generation is forced to exactly ``--completion-tokens`` new tokens
(``min_new_tokens``) so that a policy that drifts differently under different rewards cannot
change the generation cost. The policy is the tiny model after the CoT format warm-up, so that
completions contain ``<think>`` and the judge is really asked (a random model's never are).

The arms alternate for ``--rounds`` rounds of ``--steps`` steps; the first step of each round is
a warm-up and not timed. Prints the median seconds per step of each arm, their ratio (goal:
<= 1.10), the judge requests per step, and the peak memory (RSS of this process; CUDA peak when a
GPU is used)::

    OMP_NUM_THREADS=1 python benchmarks/step_overhead.py --steps 8 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from refine_rft_workshop import RECIPES

RECIPE = RECIPES / "refine_rft.yaml"
WARMUP_RECIPE = RECIPES / "sft_cot_warmup.yaml"


class StepTimer(TrainerCallback):
    """Wall-clock seconds of every optimizer step (generation, rewards, loss, update)."""

    def __init__(self):
        self.durations: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.durations.append(time.perf_counter() - self._start)


def run_arm(arm: str, model: Path, train_file: Path, out: Path, judge_url: str, args) -> tuple[list[float], dict]:
    """Train ``args.steps`` steps of one arm; return the timed step durations and the last judge log."""
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    rewards = {"vanilla": (["format", "classification"], [0.5, 0.5]),
               "refine_rft": (["attribute_format", "classification", "reasoning"], [1 / 3] * 3)}[arm]
    overrides = {
        "model_name_or_path": str(model), "train_file": str(train_file), "output_dir": str(out),
        "rewards": rewards[0], "reward_weights": rewards[1], "max_steps": args.steps,
        "per_device_train_batch_size": args.batch, "num_generations": args.generations,
        "gradient_accumulation_steps": args.grad_accum, "logging_steps": args.steps,
        "max_completion_length": args.completion_tokens,
        "generation_kwargs": {"min_new_tokens": args.completion_tokens},
        "save_strategy": "no", "report_to": [], "log_sample_ids": False,
        "judge": {"backend": "openai", "base_urls": [judge_url], "model": "scripted-judge", "timeout": 30,
                  "concurrency": 64},
    }
    trainer = grpo.build_trainer(*parse_recipe(grpo._dataclass_types(), recipe=RECIPE, overrides=overrides))
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    judged = [row for row in trainer.state.log_history if "judge/requests" in row]
    return timer.durations[1:], (judged[-1] if judged else {})


def peak_memory() -> str:
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    text = f"peak RSS {rss:.0f} MiB"
    if torch.cuda.is_available():
        text += f", peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="steps per arm and round (the first is not timed)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both arms")
    parser.add_argument("--latency", type=float, default=0.1, help="judge reply latency in seconds")
    parser.add_argument("--batch", type=int, default=8, help="completions per micro-batch (per_device_train_batch_size)")
    parser.add_argument("--grad-accum", type=int, default=4,
                        help="micro-batches per optimizer step, as in the paper recipe (one generation and one "
                             "judge round per optimizer step: TRL's steps_per_generation defaults to it)")
    parser.add_argument("--generations", type=int, default=4, help="G, completions per question")
    parser.add_argument("--completion-tokens", type=int, default=96, help="new tokens per completion (exact)")
    parser.add_argument("--warmup-steps", type=int, default=60, help="steps of the CoT format warm-up SFT")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)

    from refine_rft_workshop.synthetic import synthetic_questions
    from refine_rft.files import write_jsonl_atomic
    from refine_rft_workshop.testing.scripted_server import ScriptedJudgeProcess
    from refine_rft.train.sft import train_sft

    work = Path(tempfile.mkdtemp(prefix="step-overhead-"))
    train_file = write_jsonl_atomic(work / "data" / "train.jsonl",
                                    synthetic_questions(work / "data", "train", per_class=4, num_classes=24))
    print(f"CoT format warm-up ({args.warmup_steps} SFT steps) ...", file=sys.stderr)
    from refine_rft_workshop.tiny import cached_tiny_model

    model = train_sft(WARMUP_RECIPE, {"output_dir": str(work / "warm"), "train_file": str(train_file),
                                      "model_name_or_path": str(cached_tiny_model("qwen2_vl")),
                                      "max_steps": args.warmup_steps, "report_to": [], "disable_tqdm": True})

    times: dict[str, list[float]] = {"vanilla": [], "refine_rft": []}
    judge_log: dict = {}
    with ScriptedJudgeProcess(latency=args.latency) as server:
        for round_index in range(args.rounds):
            for arm in times:
                out = work / f"{arm}-{round_index}"
                durations, last = run_arm(arm, model, train_file, out, server.url, args)
                times[arm] += durations
                judge_log = last or judge_log
                print(f"round {round_index} {arm}: {statistics.median(durations):.3f} s/step", file=sys.stderr)

    # Judgements only: each run's start-up health check is one more request, not a judgement.
    requests = server.judgements
    vanilla, refine = (statistics.median(times[a]) for a in ("vanilla", "refine_rft"))
    steps = args.rounds * args.steps
    figures = {
        "vanilla_s_per_step": vanilla, "refine_rft_s_per_step": refine, "ratio": refine / vanilla,
        "judge_requests_per_step": requests / steps, "judge_latency_s": args.latency,
        "judge_mean_latency_s": judge_log.get("judge/mean_latency_s"),
        "batch": args.batch, "grad_accum": args.grad_accum, "generations": args.generations, "completion_tokens": args.completion_tokens,
        "timed_steps_per_arm": len(times["vanilla"]), "memory": peak_memory(),
    }
    print(f"vanilla GRPO (R_f + R_cls):              {vanilla:.3f} s/step")
    print(f"ReFine-RFT (R_fa + R_cls + R_cot/HTTP):  {refine:.3f} s/step "
          f"({figures['judge_requests_per_step']:.1f} judge requests/step at {args.latency * 1000:.0f} ms)")
    print(f"ratio {figures['ratio']:.3f} (goal <= 1.10); {figures['memory']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
