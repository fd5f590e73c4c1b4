"""Questions/s of batched ``hf`` generation vs one question at a time, on the embedded tiny model.

Both arms answer the same synthetic questions under the same prompt with exactly the same number
of new tokens (``min_new_tokens == max_new_tokens``), so the only difference is batching::

    python benchmarks/eval_throughput.py --questions 64 --batch-size 16 --new-tokens 32 --style cot

Each arm runs ``--repeats`` times, interleaved, and its best run counts. Prints one line per arm
and the speed-up; ``--json`` writes the figures to a file.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time

import torch

from refine_rft_workshop.synthetic import synthetic_questions
from refine_rft.evaluate.generate import HFGenerator, plan_batches
from refine_rft_workshop.models import resolve_model_path


def questions_per_second(generator: HFGenerator, records: list[dict], style: str, batch_size: int,
                         new_tokens: int) -> float:
    """Wall-clock questions/s of answering ``records`` in batches of ``batch_size``."""
    batches = [batch for _, batch in plan_batches(records, [style], batch_size)]
    # Exactly ``new_tokens`` per answer: transformers' own min_new_tokens, set on the generator's model.
    generator.model.generate = functools.partial(type(generator.model).generate, generator.model,
                                                 min_new_tokens=new_tokens)
    generator.generate(batches[0][:1], style, new_tokens)  # warm-up (allocations, caches)
    start = time.perf_counter()
    for batch in batches:
        generator.generate(batch, style, new_tokens)
    return len(records) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny:qwen2_vl")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--style", default="cot")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions; the best of each arm counts")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        # 8 species so that there are enough questions per class for any --questions.
        per_class = -(-args.questions // 8)
        records = synthetic_questions(folder, "test", per_class=per_class, num_classes=8)[: args.questions]
        generator = HFGenerator(resolve_model_path(args.model), trust_remote_code=True)  # the tiny processor file
        # Interleaved and best-of-N: on a shared machine a neighbour's burst slows whichever arm runs
        # at that moment; the best run of each arm is the one least disturbed.
        single, batched = 0.0, 0.0
        for _ in range(args.repeats):
            single = max(single, questions_per_second(generator, records, args.style, 1, args.new_tokens))
            batched = max(batched, questions_per_second(generator, records, args.style, args.batch_size,
                                                        args.new_tokens))
    figures = {"model": args.model, "device": generator.device, "threads": torch.get_num_threads(),
               "questions": len(records), "new_tokens": args.new_tokens, "style": args.style,
               "one_at_a_time_qps": round(single, 2), f"batch_{args.batch_size}_qps": round(batched, 2),
               "speedup": round(batched / single, 2), "repeats": args.repeats}
    print(f"one at a time : {single:8.2f} questions/s")
    print(f"batch of {args.batch_size:<5}: {batched:8.2f} questions/s")
    print(f"speed-up      : {batched / single:8.2f}x  ({len(records)} questions, {args.new_tokens} new tokens each, "
          f"{args.style} prompt, {torch.get_num_threads()} threads, {generator.device})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
