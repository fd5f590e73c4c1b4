"""The teacher's bill for one paper-size GRPO step, measured through the real router and client.

    python benchmarks/teacher_cost.py                        # 64 questions x G=6; every row; the last line
    python benchmarks/teacher_cost.py --replicas 4 --in-flight 32

One step's R_cot requests (64 questions x G=6, each question with its own 500x375 photo) go through
the shipped reward function (``make_reasoning_reward``), its router and its client to scripted
OpenAI-compatible replicas on 127.0.0.1, at a stated number of requests in flight
(``judge.concurrency``: 8, 32, 128) over 1, 2, 4 and 8 replicas, with each routing rule:
``new`` (``judge.routing: question``, the default: a question's requests go to one replica) and
``old`` (``judge.routing: request``, the earlier per-request bounded-load rule, kept as an option for
this comparison). Each replica answers after 1.5 ms x the in-flight level, so that the client fills
its window; the latency paces the run and does not enter the bill.

Each replica's bill is read from the bodies **it** received, in the order it received them:

- **text tokens**: the body rendered by a real Qwen-style chat template and tokenized by a real
  tokenizer: the embedded tiny instruct model's (``refine_rft/models/tiny_instruct``; a byte-level
  BPE of 2,048 tokens trained on this project's words, so English outside them takes more tokens
  than Qwen's own 151k vocabulary would: the text counts are on the high side);
- **image tokens**: the teacher's own formula at the size the judge sends (``max_image_side``):
  InternVL3 (448 px tiles by InternVL's dynamic preprocessing, up to 12, plus a thumbnail when more
  than one, 256 tokens each) and Qwen2.5-VL (14 px patches merged 2x2: one token per 28x28 px
  after ``smart_resize``);
- **a vLLM-like prefix cache per replica**: 16-token blocks, each block's hash chained to the one
  before (image tokens carry the image's digest), only full blocks cached, LRU with
  ``--capacity-blocks`` blocks per replica (default 10,240 = 163,840 tokens: about 40 GiB of KV
  cache for InternVL3-38B's 64-layer, 8-KV-head LLM). A request finds the blocks of the requests
  its replica received before it (vLLM shares a prefix once it is computed: siblings in one
  scheduler step may each compute it, so "computed" is a lower bound).

``naive`` is every request prefilled in full (no cache). ``busiest replica`` is the prefill computed by
the replica that computed the most: the replicas work in parallel, so it bounds the step's teacher
time as the total bounds its GPU-seconds. The **strict physical minimum** is
:data:`STRICT_MINIMUM`. The last line is ``prefill computed / naive: R`` for the recommended setting
as routed (``new`` routing, per-response judging as Eq. 2 has it, 4 replicas, 32 in flight,
InternVL3-38B).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import io
import json
import math
import random
import re
from collections import OrderedDict

from PIL import Image

from refine_rft.judge import JudgeConfig
from refine_rft.judge.prompts import BEGIN, NONCE
from refine_rft.rewards.reasoning import make_reasoning_reward
from refine_rft_workshop.synthetic import ATTRIBUTES, attribute_phrase, make_species
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, request_text

BLOCK = 16
STRICT_MINIMUM = ("the tokens common to every request (the constant system message and Fig. 3's instructions) once "
                  "per replica in use, each question's own tokens up to its response (its image) once, and each "
                  "response (from its delimiter line to the end) once")
ROUTINGS = {"old": "request", "new": "question"}
_FENCE = re.compile(re.escape(BEGIN).replace(re.escape("{nonce}"), f"({NONCE.pattern})"))


# ---------------------------------------------------------------- image tokens, as each teacher counts them
def internvl_tiles(width: int, height: int, image_size: int = 448, min_num: int = 1, max_num: int = 12) -> int:
    """Tiles InternVL's ``dynamic_preprocess`` makes (the thumbnail included when there is more than one).

    >>> internvl_tiles(448, 448), internvl_tiles(500, 375), internvl_tiles(768, 512)
    (1, 13, 7)
    """
    aspect = width / height
    ratios = sorted({(i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                     if min_num <= i * j <= max_num}, key=lambda r: r[0] * r[1])
    best, best_diff = (1, 1), float("inf")
    for ratio in ratios:  # InternVL's find_closest_aspect_ratio, tie rule included
        diff = abs(aspect - ratio[0] / ratio[1])
        if diff < best_diff:
            best, best_diff = ratio, diff
        elif diff == best_diff and width * height > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
            best = ratio
    tiles = best[0] * best[1]
    return tiles + 1 if tiles > 1 else tiles


def internvl_tokens(width: int, height: int) -> int:
    """InternVL3: 256 tokens per 448 px tile (pixel-shuffled 32x32 patches of 14 px)."""
    return 256 * internvl_tiles(width, height)


def qwen25vl_tokens(width: int, height: int, factor: int = 28, min_pixels: int = 56 * 56,
                    max_pixels: int = 14 * 14 * 4 * 1280) -> int:
    """Qwen2.5-VL: ``smart_resize`` to multiples of 28 px, one token per 28x28 (14 px patches merged 2x2).

    >>> qwen25vl_tokens(500, 375)
    234
    """
    h, w = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = math.floor(height / beta / factor) * factor, math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return (h // factor) * (w // factor)


TEACHERS = {"InternVL3-38B": internvl_tokens, "Qwen2.5-VL-72B": qwen25vl_tokens}


# ---------------------------------------------------------------- one step's inputs
def step_inputs(questions: int, group: int, seed: int = 0) -> tuple[list, dict]:
    """Completions and TRL-style columns: CoT responses built from the synthetic attribute phrases,
    one 500x375 photo-like image per question (CUB's typical size)."""
    rng = random.Random(seed)
    species = make_species(24, seed=0)
    completions, columns = [], {"image": [], "options": [], "answer": [], "noun": [], "id": []}
    for q in range(questions):
        options = [s.name for s in rng.sample(species, 4)]
        answer = rng.randrange(4)
        image = Image.frombytes("RGB", (25, 19), rng.randbytes(25 * 19 * 3)).resize((500, 375), Image.BICUBIC)
        for k in range(group):
            chosen = species[rng.randrange(len(species))]
            phrases = [attribute_phrase(a, chosen.attributes[a]) for a in rng.sample(list(ATTRIBUTES), 4)]
            think = (f"The bird in the image shows a {phrases[0]} and a {phrases[1]}. Looking closer, the "
                     f"{phrases[2]} is visible, while the {phrases[3]} is harder to see. Comparing the options, "
                     f"{options[k % 4]} has these traits, and the others differ in the {phrases[0]}.")
            text = (f"<think>{think}</think>\n<attribute>{', '.join(phrases)}</attribute>\n"
                    f"<answer>{'ABCD'[k % 4]}. {options[k % 4]}</answer>")
            completions.append([{"role": "assistant", "content": text}])
            for name, value in (("image", image), ("options", options), ("answer", answer), ("noun", "birds"),
                                ("id", f"q{q}")):
                columns[name].append(value)
    return completions, columns


# ---------------------------------------------------------------- one step, routed
@contextlib.contextmanager
def replicas(count: int):
    """``count`` scripted replicas on 127.0.0.1."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(ScriptedJudgeServer()) for _ in range(count)]


def routed_step(servers, completions, columns, in_flight: int, routing: str,
                group_judging: bool = False) -> tuple[dict[str, list[dict]], int]:
    """One step's R_cot through the real reward, router and client over ``servers``: the bodies
    each replica received (arrival order) and the most requests one replica had in flight."""
    for server in servers:
        server.requests.clear()
        server.max_in_flight = 0
        server.latency = 0.0015 * in_flight
    reward = make_reasoning_reward(JudgeConfig(base_urls=[server.url for server in servers],
                                               model="OpenGVLab/InternVL3-38B", concurrency=in_flight,
                                               routing=routing, group_judging=group_judging, max_retries=0))
    scores = asyncio.run(reward(completions, **columns))
    if any(score is None for score in scores):
        raise RuntimeError("the scripted teacher failed a judgement")
    received = {server.url: list(server.requests) for server in servers}
    for server in servers:
        server.requests.clear()
    return received, max(server.max_in_flight for server in servers)


# ---------------------------------------------------------------- tokens and the prefix cache
class Costing:
    """Token sequences of request bodies: the chat template's text tokens, each image expanded to
    the teacher's count of tokens, negative ids unique to the image's digest. The template is
    rendered once per body with its delimiter codes replaced by stand-ins (the template copies text
    as it is), then the real codes are put back and the exact text is tokenized."""

    def __init__(self, image_tokens):
        from transformers import AutoTokenizer

        from refine_rft_workshop.instruct import INSTRUCT_DIR

        self.tokenizer = AutoTokenizer.from_pretrained(INSTRUCT_DIR)
        self.image_pad = self.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        self.image_tokens = image_tokens
        self._rendered: dict[str, str] = {}
        self._images: dict[str, tuple[int, int]] = {}  # url digest -> (first id, token count)

    def _image(self, url: str) -> tuple[str, int, int]:
        digest = hashlib.sha256(url.encode()).hexdigest()
        if digest not in self._images:
            with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as picture:
                count = self.image_tokens(*picture.size)
            self._images[digest] = (-(len(self._images) + 1) * 100_000, count)
        return (digest, *self._images[digest])

    def _text(self, request: dict) -> str:
        nonces = list(dict.fromkeys(_FENCE.findall(request_text(request))))
        messages = [{**message, "content": [{"type": "image_url", "image_url": {"url": "image"}}
                                            if part["type"] == "image_url" else part for part in message["content"]]}
                    if isinstance(message["content"], list) else message for message in request["messages"]]
        key = json.dumps(messages)
        for k, nonce in enumerate(nonces):
            key = key.replace(nonce, f"@@code{k}@@")
        if key not in self._rendered:
            self._rendered[key] = self.tokenizer.apply_chat_template(json.loads(key), tokenize=False,
                                                                     add_generation_prompt=True)
        text = self._rendered[key]
        for k, nonce in enumerate(nonces):
            text = text.replace(f"@@code{k}@@", nonce)
        return text

    def tokens(self, requests: list[dict]) -> list[tuple[list[int], str]]:
        """(token ids, the first image's digest) of each request."""
        ids_list = self.tokenizer([self._text(r) for r in requests], add_special_tokens=False)["input_ids"]
        out = []
        for request, ids in zip(requests, ids_list):
            images = [self._image(part["image_url"]["url"]) for message in request["messages"]
                      if isinstance(message["content"], list)
                      for part in message["content"] if part["type"] == "image_url"]
            tokens, start = [], 0
            for digest, first, count in images:
                pad = ids.index(self.image_pad, start)
                tokens += ids[start:pad]
                tokens += range(first, first - count, -1)
                start = pad + 1
            tokens += ids[start:]
            out.append((tokens, images[0][0]))
        return out


class PrefixCache:
    """A vLLM-like automatic prefix cache: chained block hashes, full blocks only, LRU of ``capacity`` blocks."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.blocks: OrderedDict[int, None] = OrderedDict()

    def serve(self, tokens: list[int]) -> tuple[int, int]:
        """Prefill the request; the tokens computed (not found in the cache), and how many of them
        are image tokens (whose tiles the vision encoder must encode)."""
        hashes, parent = [], 0
        for start in range(0, len(tokens) - len(tokens) % BLOCK, BLOCK):
            parent = hash((parent, *tokens[start:start + BLOCK]))
            hashes.append(parent)
        hits = 0
        while hits < len(hashes) and hashes[hits] in self.blocks:
            hits += 1
        computed = max(1, len(tokens) - hits * BLOCK)  # the last token is always computed
        image = sum(1 for token in tokens[len(tokens) - computed:] if token < 0)
        for block in hashes:
            self.blocks[block] = None
            self.blocks.move_to_end(block)
            if len(self.blocks) > self.capacity:
                self.blocks.popitem(last=False)
        return computed, image


def shared_prefix(sequences: list[list[int]]) -> int:
    """Length of the prefix all ``sequences`` share (the lexicographic min and max bound it)."""
    low, high = min(sequences), max(sequences)
    for index, (a, b) in enumerate(zip(low, high)):
        if a != b:
            return index
    return min(len(low), len(high))


def bill(received: dict[str, list[dict]], costing: Costing, capacity: int) -> dict:
    """What the replicas computed for the bodies each received, against naive and the strict minimum."""
    computed = image = naive = busiest = 0
    by_question: dict[str, list[list[int]]] = {}
    replicas_of: dict[str, set[str]] = {}
    used = 0
    for url, requests in received.items():
        if not requests:
            continue
        used += 1
        cache, on_replica = PrefixCache(capacity), 0
        for tokens, digest in costing.tokens(requests):
            done, done_image = cache.serve(tokens)
            computed, image, naive = computed + done, image + done_image, naive + len(tokens)
            on_replica += done
            by_question.setdefault(digest, []).append(tokens)
            replicas_of.setdefault(digest, set()).add(url)
        busiest = max(busiest, on_replica)
    common = shared_prefix([sequences[0] for sequences in by_question.values()])
    strict = common * used
    for sequences in by_question.values():
        own = shared_prefix(sequences)
        strict += (own - common) + sum(len(tokens) - own for tokens in sequences)
    whole = sum(len(urls) == 1 for urls in replicas_of.values())
    requests = sum(map(len, received.values()))
    return {"computed": computed, "image": image, "naive": naive, "strict": strict, "whole": whole,
            "questions": len(by_question), "requests": requests, "busiest": busiest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--group", type=int, default=6, help="completions per question (G)")
    parser.add_argument("--replicas", default="1,2,4,8", help="comma-separated replica counts")
    parser.add_argument("--in-flight", default="8,32,128", help="comma-separated judge.concurrency values")
    parser.add_argument("--capacity-blocks", type=int, default=10240, help="prefix-cache blocks per replica")
    args = parser.parse_args()
    counts = [int(n) for n in args.replicas.split(",")]
    levels = [int(n) for n in args.in_flight.split(",")]
    best_replicas = 4 if 4 in counts else max(counts)
    best_level = 32 if 32 in levels else max(levels)

    completions, columns = step_inputs(args.questions, args.group)
    costing = Costing(internvl_tokens)
    print(f"one step: {args.questions} questions x G={args.group} = {len(completions)} per-response requests "
          f"through the real reward, router and client to scripted replicas; text tokens from the embedded "
          f"tiny instruct tokenizer and its Qwen-style chat template; InternVL3-38B image tokens; prefix "
          f"cache of {args.capacity_blocks} blocks x {BLOCK} tokens per replica")
    print(f"strict physical minimum: {STRICT_MINIMUM}.")
    header = (f"{'routing':<8} {'replicas':>8} {'in flight':>9} {'peak/replica':>12} {'whole':>7} {'requests':>8} "
              f"{'naive':>10} {'computed':>10} {'of it image':>11} {'/ naive':>8} {'strict min':>10} {'/ strict':>8} "
              f"{'busiest replica':>15}")
    print(header)
    results = {}
    with replicas(max(counts)) as servers:
        for count in counts:
            for level in levels:
                for name, routing in ROUTINGS.items():
                    received, peak = routed_step(servers[:count], completions, columns, level, routing)
                    row = bill(received, costing, args.capacity_blocks)
                    results[name, count, level] = (row, received)
                    print(f"{name:<8} {count:>8} {level:>9} {peak:>12} {row['whole']:>3}/{row['questions']:<3} "
                          f"{row['requests']:>8} {row['naive']:>10,} {row['computed']:>10,} {row['image']:>11,} "
                          f"{row['computed'] / row['naive']:>8.3f} {row['strict']:>10,} "
                          f"{row['computed'] / row['strict']:>8.3f} {row['busiest']:>15,}", flush=True)
                    if (name, count, level) != ("new", best_replicas, best_level):
                        del results[name, count, level]
        grouped, _ = routed_step(servers[:best_replicas], completions, columns, best_level, "question",
                                 group_judging=True)
    row, received = results["new", best_replicas, best_level]
    group_row = bill(grouped, costing, args.capacity_blocks)
    qwen = bill(received, Costing(qwen25vl_tokens), args.capacity_blocks)
    print(f"\nnew routing + group judging, {best_replicas} replicas, {best_level} in flight: {group_row['requests']} "
          f"requests, {group_row['naive']:,} tokens sent, computed {group_row['computed']:,} "
          f"({group_row['computed'] / row['naive']:.3f} of per-response naive)")
    print(f"Qwen2.5-VL-72B as the teacher, same bodies: computed / naive {qwen['computed'] / qwen['naive']:.3f}")
    ratio = row["computed"] / row["strict"]
    print(f"recommended: new routing (judge.routing: question), per-response judging (Eq. 2), {best_replicas} "
          f"replicas, {best_level} in flight, InternVL3-38B: {row['whole']}/{row['questions']} questions whole, "
          f"computed / strict minimum {ratio:.3f} (goal <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
    print(f"prefill computed / naive: {row['computed'] / row['naive']:.3f}")


if __name__ == "__main__":
    main()
