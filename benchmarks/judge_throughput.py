"""Judge throughput: one paper-size GRPO step of R_cot judgements against a latency-bound judge.

384 judgements (64 prompts x 6 completions, each prompt with its own image) go through the real
reward function (``make_reasoning_reward``) and the real ``openai`` client to the scripted
OpenAI-compatible server on 127.0.0.1 (in its own process, as a real judge is on another machine),
which answers every request after a fixed latency::

    python benchmarks/judge_throughput.py --judgements 384 --latency 0.1 --concurrency 32

Prints the achieved time against the latency-bound ideal ceil(n / concurrency) x latency, against
sequential calls (concurrency 1, timed on ``--sequential-sample`` judgements and extrapolated to
n, as the printout says), and the time of a rerun that the sqlite cache answers. The client's CPU
time per judgement is printed too: the whole step can be no faster than n times it on one core.

More lines put that CPU time in context:

- **the transport alone**: the same number of request bodies, each Fig. 3's prompt with the
  step's images and a fenced response, JSON-encoded before the clock starts, posted bare through
  the judge's own transport (:class:`~refine_rft.judge.transport.Transport`, httpcore's keep-alive
  pools) at the same concurrency. This is the floor of the judge's transport; the difference is what the
  rest of this package adds: the step's pictures (each prepared once as the judge prepares it,
  timed apart on one thread), and prompts, routing, parsing and counters;
- **the openai client alone**: the same bodies posted bare through the official ``openai``
  client's ``post``, the transport the judge used before (for comparison; not used by the judge);
- **of it, pictures**: each picture prepared as the judge does. A file that fits what the judge
  sends (here: the synthetic PNGs, within ``max_image_side``) goes as its own bytes, hashed by
  them, never decoded; *pictures decoded* is what decoding, hashing the pixels and JPEG-encoding
  each picture would cost instead (what the judge does for a decoded PIL image);
- **group judging** (``judge.group_judging``, not the paper): one request per GRPO group, so the
  client CPU per judgement is shared by the group's G completions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from pathlib import Path

import openai

from refine_rft.judge import JudgeConfig
from refine_rft.judge.transport import Transport
from refine_rft.judge.images import image_data_url, image_hash, load_image
from refine_rft.judge.paper_prompt import paper_messages
from refine_rft.judge.teacher import TeacherJudge
from refine_rft.rewards.reasoning import make_reasoning_reward
from refine_rft_workshop.synthetic import synthetic_questions
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeProcess


def step_batch(records: list[dict], group: int) -> tuple[list, dict]:
    """Completions and TRL-style keyword columns for one GRPO step: ``group`` completions per prompt."""
    completions, columns = [], {"image": [], "options": [], "answer": [], "noun": [], "id": []}
    for record in records:
        for k in range(group):
            text = f"<think>Sample {k}: the wings and the beak of {record['id']}.</think><attribute>wings</attribute>"
            completions.append([{"role": "assistant", "content": text}])
            for name in columns:
                columns[name].append(record[name])
    return completions, columns


def timed_steps(config: dict, batches: list[tuple[list, dict]]) -> list[tuple[float, float, dict]]:
    """Run one reward function over ``batches`` on one event loop, as TRL does (its reward loop and
    judge connections live for the whole run); per batch: wall seconds, this process' CPU seconds
    and the judge's counters."""
    reward = make_reasoning_reward(JudgeConfig.from_dict(config))
    loop = asyncio.new_event_loop()
    results = []
    try:
        for completions, columns in batches:
            wall, cpu = time.perf_counter(), time.process_time()
            scores = loop.run_until_complete(reward(completions, **columns))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            stats = reward.stats.read_and_reset()
            if stats["judge/failures"] or any(score is None for score in scores):
                raise RuntimeError(f"judgements failed during the benchmark: {stats}")
            results.append((wall, cpu, stats))
        loop.run_until_complete(reward.judge.aclose())
    finally:
        loop.close()
    return results


def head(batch: tuple[list, dict], k: int) -> tuple[list, dict]:
    completions, columns = batch
    return completions[:k], {name: values[:k] for name, values in columns.items()}


def prepared_pictures(paths: list[str], config: JudgeConfig) -> tuple[float, dict[str, str]]:
    """Each distinct picture prepared once as the judge prepares it (its own code: the file's bytes
    hashed and sent as they are when they fit, else decoded and re-encoded): the CPU seconds it took
    on this thread, and the data URL of each path."""
    judge = TeacherJudge(config)
    cpu, urls = time.process_time(), {}
    for path in dict.fromkeys(paths):
        urls[path] = judge._prepare(path, with_url=True)[1]
    return time.process_time() - cpu, urls


def decoded_pictures(paths: list[str], max_side: int) -> float:
    """CPU seconds to prepare each distinct picture by decoding it, hashing its pixels and
    JPEG-encoding it (the judge's path for a decoded PIL image, and for every image before files
    were sent as they are)."""
    cpu = time.process_time()
    for path in dict.fromkeys(paths):
        picture = load_image(path)
        image_hash(picture)
        image_data_url(picture, max_side)
    return time.process_time() - cpu


def bare_posts(config: JudgeConfig, batch: tuple[list, dict], data_urls: dict[str, str],
               through_openai: bool = False) -> float:
    """This process' CPU seconds to post ``batch``'s judge requests bare (``config.concurrency`` in
    flight, as the judge sends them), the bodies JSON-encoded beforehand: through the judge's own
    transport, its floor, or through the official ``openai`` client's ``post``."""
    completions, columns = batch
    bodies = [json.dumps({"model": "scripted", "temperature": 0, "max_tokens": 16,
                          "messages": paper_messages(data_urls[path], completion[0]["content"])}).encode()
              for completion, path in zip(completions, columns["image"])]
    url = config.base_urls[0]

    async def post_all() -> float:
        if through_openai:
            client = openai.AsyncOpenAI(base_url=url, api_key="-", max_retries=0)

            async def send(body: bytes) -> str:
                return await client.post("/chat/completions", cast_to=str, content=body)
        else:
            client, endpoint = Transport(config), url.rstrip("/") + "/chat/completions"

            async def send(body: bytes) -> str:
                status, _, reply = await client.post(url, endpoint, [body])
                if status != 200:
                    raise RuntimeError(f"HTTP {status} from {endpoint}")
                return reply.decode()

        slots = asyncio.Semaphore(config.concurrency)

        async def post(body: bytes) -> str:
            async with slots:
                return await send(body)

        await post(bodies[0])  # connections and lazy imports, as the judge's warm-up step
        cpu = time.process_time()
        await asyncio.gather(*(post(body) for body in bodies))
        cpu = time.process_time() - cpu
        await (client.close() if through_openai else client.aclose())
        return cpu

    return asyncio.run(post_all())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgements", type=int, default=384)
    parser.add_argument("--group", type=int, default=6, help="completions per prompt (GRPO num_generations)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request at the server")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--sequential-sample", type=int, default=24,
                        help="judgements timed at concurrency 1 (extrapolated to --judgements)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    prompts = math.ceil(args.judgements / args.group)
    with tempfile.TemporaryDirectory() as folder, ScriptedJudgeProcess(latency=args.latency) as server:
        records = synthetic_questions(folder, "bench", per_class=math.ceil(prompts / 8), num_classes=8,
                                      image_size=args.image_size)[:prompts]
        step = head(step_batch(records, args.group), args.judgements)
        n = len(step[0])
        base = {"base_urls": [server.url], "model": "scripted", "timeout": 30.0}
        # Each arm starts with a one-judgement warm-up step: the first request imports the openai
        # client's lazily loaded modules and opens connections, once per training run.
        warmup = head(step, 1)
        (_, _, _), (concurrent, cpu, stats) = timed_steps({**base, "concurrency": args.concurrency},
                                                          [warmup, step])
        config = JudgeConfig.from_dict({**base, "concurrency": args.concurrency})
        pictures, data_urls = prepared_pictures(step[1]["image"], config)
        decoded = decoded_pictures(step[1]["image"], config.max_image_side)
        floor = bare_posts(config, step, data_urls)
        official = bare_posts(config, step, data_urls, through_openai=True)
        (_, _, _), (grouped, grouped_cpu, grouped_stats) = timed_steps(
            {**base, "concurrency": args.concurrency, "group_judging": True}, [head(step, args.group), step])
        sample = min(args.sequential_sample, n)
        (_, _, _), (one_by_one, _, _) = timed_steps({**base, "concurrency": 1}, [warmup, head(step, sample)])
        sequential = one_by_one * n / sample
        cache = {**base, "concurrency": args.concurrency, "cache_path": str(Path(folder) / "judge.sqlite")}
        timed_steps(cache, [step])  # fills the cache
        # The rerun is a fresh judge (a new process would be): every judgement is a cache hit.
        [(cached, _, cached_stats)] = timed_steps(cache, [step])
    peak = server.max_in_flight

    ideal = math.ceil(n / args.concurrency) * args.latency
    figures = {"judgements": n, "latency_s": args.latency, "concurrency": args.concurrency,
               "image_size": args.image_size, "concurrent_s": round(concurrent, 3), "ideal_s": round(ideal, 3),
               "efficiency_vs_ideal": round(ideal / concurrent, 3), "sequential_s_extrapolated": round(sequential, 2),
               "sequential_sample": sample, "speedup_vs_sequential": round(sequential / concurrent, 1),
               "cached_rerun_s": round(cached, 3), "cache_hits": cached_stats["judge/cache_hits"],
               "peak_in_flight": peak, "mean_latency_s": round(stats["judge/mean_latency_s"], 4),
               "client_cpu_ms_per_judgement": round(1000 * cpu / n, 2),
               "transport_alone_cpu_ms_per_request": round(1000 * floor / n, 2),
               "openai_client_alone_cpu_ms_per_request": round(1000 * official / n, 2),
               "pictures_cpu_ms_per_judgement": round(1000 * pictures / n, 2),
               "pictures_decoded_cpu_ms_per_judgement": round(1000 * decoded / n, 2),
               "pictures_sent_as_files": sum(not url.startswith("data:image/jpeg") for url in data_urls.values()),
               "group_judging_cpu_ms_per_judgement": round(1000 * grouped_cpu / n, 2),
               "group_judging_requests": grouped_stats["judge/requests"], "group_judging_s": round(grouped, 3)}
    print(f"{n} judgements, {args.latency * 1000:.0f} ms per request, concurrency {args.concurrency}")
    print(f"concurrent      : {concurrent:7.3f} s  (ideal ceil(n/c) x latency = {ideal:.3f} s; "
          f"efficiency {ideal / concurrent:.2f}; peak in flight {peak})")
    print(f"client CPU      : {cpu:7.3f} s  ({1000 * cpu / n:.2f} ms per judgement: the floor on a single core "
          f"is n x that = {cpu:.3f} s)")
    print(f"transport alone : {floor:7.3f} s  ({1000 * floor / n:.2f} ms per request: the same number of Fig. 3 "
          f"bodies, encoded beforehand, posted bare through the judge's transport; the rest of this package "
          f"adds {1000 * (cpu - floor) / n:.2f} ms per judgement)")
    print(f"openai alone    : {official:7.3f} s  ({1000 * official / n:.2f} ms per request: the same bodies posted "
          f"bare through the official openai client, for comparison)")
    print(f"of it, pictures : {pictures:7.3f} s  ({1000 * pictures / n:.2f} ms per judgement: each of the step's "
          f"{len(data_urls)} pictures prepared once as the judge does, on one thread; "
          f"{figures['pictures_sent_as_files']} sent as their own file bytes, never decoded)")
    print(f"pictures decoded: {decoded:7.3f} s  ({1000 * decoded / n:.2f} ms per judgement: the same pictures "
          f"decoded, hashed by their pixels and JPEG-encoded instead)")
    print(f"group judging   : {grouped_cpu:7.3f} s  ({1000 * grouped_cpu / n:.2f} ms per judgement, "
          f"{grouped_stats['judge/requests']} requests of {args.group} responses in {grouped:.3f} s; not the paper)")
    print(f"sequential      : {sequential:7.3f} s  (timed on {sample} judgements at concurrency 1, "
          f"extrapolated to {n}; speed-up {sequential / concurrent:.1f}x)")
    print(f"cached rerun    : {cached:7.3f} s  ({cached_stats['judge/cache_hits']} cache hits, no requests)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
