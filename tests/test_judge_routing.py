"""Routing by question over judge replicas (whole questions, bounded by what a replica holds,
health-aware), and the per-step failure rule.

Replicas are real scripted HTTP servers on 127.0.0.1 reached through the real ``openai`` client;
R_cot is asked as TRL asks it (the async reward, one call per step's batch, G completions per image).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
import time

import pytest
from PIL import Image

from refine_rft.errors import JudgeUnavailable
from refine_rft.judge import JudgeConfig
from refine_rft.judge.images import image_hash
from refine_rft.judge.routing import Router, rendezvous_order
from refine_rft.rewards.reasoning import make_reasoning_reward
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status, student_text

G = 6


def pictures(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (48, 32), ((20 + 9 * i) % 256, (200 - 7 * i) % 256, (40 * i) % 256)) for i in range(n)]


def step(images: list[Image.Image], tag: str = "") -> tuple[list, dict]:
    """One step's batch as TRL passes it: G completions per question, side by side, each a fresh copy
    of the question's image (TRL fetches each repeated row anew)."""
    completions, columns = [], {"image": [], "id": [], "options": [], "answer": [], "noun": []}
    for q, picture in enumerate(images):
        for k in range(G):
            completions.append([{"role": "assistant",
                                 "content": f"<think>question {q} sample {k}{tag}: the wings.</think><answer>A</answer>"}])
            columns["image"].append(picture.copy())
            columns["id"].append(f"q{q}")
            columns["options"].append(["Tit", "Finch"])
            columns["answer"].append(0)
            columns["noun"].append("birds")
    return completions, columns


def question_of(request: dict) -> int:
    return int(re.search(r"question (\d+)", student_text(request)).group(1))


def homes(servers, requests_by_server=None, tag: str = "") -> dict[int, set[str]]:
    """For each question, the replicas that received its requests (those whose text has ``tag``)."""
    found: dict[int, set[str]] = {}
    for server in servers:
        for request in (requests_by_server or {}).get(server.url, server.requests):
            if tag in student_text(request):
                found.setdefault(question_of(request), set()).add(server.url)
    return found


def run_step(servers, images, tag: str, **settings) -> tuple[list, dict]:
    """One step's R_cot through the real reward; (scores, counters)."""
    reward = make_reasoning_reward(config_for(servers, **settings))
    completions, columns = step(images, tag)
    scores = asyncio.run(reward(completions, **columns))
    return scores, reward.stats.read_and_reset()


def config_for(servers, **overrides) -> JudgeConfig:
    values = dict(backend="openai", base_urls=[s.url for s in servers], model="teacher", timeout=2.0,
                  max_retries=2, backoff_base=0.01, backoff_max=0.2, concurrency=16)
    return JudgeConfig(**(values | overrides))


def test_rendezvous_order_is_the_documented_hash():
    urls = [f"http://10.0.0.{i}:8000/v1" for i in range(4)]
    key = image_hash(pictures(1)[0])
    weights = {url: int(hashlib.sha256(f"{url}\n{key}".encode()).hexdigest(), 16) for url in urls}
    assert rendezvous_order(key, urls) == sorted(urls, key=lambda url: (-weights[url], url))
    # Losing a replica moves only the keys that lived on it.
    keys = [f"digest-{i}" for i in range(200)]
    before = {k: rendezvous_order(k, urls)[0] for k in keys}
    after = {k: rendezvous_order(k, urls[1:])[0] for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != urls[0])
    assert {after[k] for k in keys if before[k] == urls[0]} <= set(urls[1:])
    assert 30 <= sum(before[k] == urls[0] for k in keys) <= 70  # about a quarter each


def test_the_earlier_per_request_rule_spills_to_the_next_replica_and_returns():
    urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
    router = Router(urls, concurrency=6, load_factor=1.25, max_failures=3, cooldown_s=10.0, rule="request")
    order = rendezvous_order("k", urls)
    taken = [router.acquire("k") for _ in range(6)]
    # bound = max(ceil(1.25 * (m + 1) / 3), ceil(6 / 3)): the home takes 2, then 3 once m >= 5.
    assert taken[:2] == [order[0]] * 2 and taken[2] == order[1]
    assert max(taken.count(url) for url in urls) <= 3
    for url in taken:
        router.release(url, ok=True)
    assert router.acquire("k") == order[0]


def test_an_open_question_stays_put_and_new_ones_spill_past_a_full_replica():
    urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
    now = [0.0]
    router = Router(urls, concurrency=64, load_factor=1.25, max_failures=3, cooldown_s=5.0, capacity=4,
                    clock=lambda: now[0])
    keys = [f"digest-{i}" for i in range(40)]
    home = rendezvous_order(keys[0], urls)[0]
    same_home = [k for k in keys if rendezvous_order(k, urls)[0] == home][:2]
    with contextlib.ExitStack() as held:
        for _ in range(G):
            held.enter_context(router.question(same_home[0]))
        first = [router.acquire(same_home[0]) for _ in range(G)]  # past the capacity of 4: still whole
        assert first == [home] * G
        with router.question(same_home[1]):  # a new question whose home is full goes to its next replica
            assert router.acquire(same_home[1]) == rendezvous_order(same_home[1], urls)[1]
        router.release(home, ok=False, refused=True)  # its replica is taken out: the question moves whole
        moved = [router.acquire(same_home[0]) for _ in range(3)]
        assert len(set(moved)) == 1 and moved[0] != home
        now[0] = 6.0  # the cool-down is over, but an open question does not move back mid-flight
        assert router.acquire(same_home[0]) == moved[0]
    assert router.open == {}


def test_cooldown_then_one_probe_at_a_time_then_healthy():
    now = [0.0]
    urls = ["http://a/v1", "http://b/v1"]
    router = Router(urls, concurrency=8, load_factor=1.25, max_failures=3, cooldown_s=5.0, clock=lambda: now[0])
    home, other = rendezvous_order("k", urls)
    for _ in range(2):  # 5xx / timeouts: out only after 3 in a row
        router.release(router.acquire("k"), ok=False)
    assert router.acquire("k") == home and router.cooling() == []
    router.release(home, ok=False)
    assert router.cooling() == [home] and router.cooldowns == 1
    assert router.acquire("k") == other  # its questions move to the next in their order
    now[0] = 5.0
    probe = router.acquire("k")
    assert probe == home and router.acquire("k") == other  # one request at a time while re-probed
    router.release(probe, ok=False)  # the probe failed: another cool-down
    assert router.cooling() == [home] and router.cooldowns == 2
    now[0] = 10.0
    router.release(router.acquire("k"), ok=True)
    assert router.cooling() == [] and [router.acquire("k") for _ in range(2)] == [home, home]
    router.release(other, ok=False, refused=True)  # a refused connection: out at once
    assert router.cooling() == [other]


@pytest.fixture(scope="module")
def four_replicas():
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(ScriptedJudgeServer()) for _ in range(4)]


@pytest.mark.parametrize("in_flight", [8, 32, 128])
@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_every_question_stays_whole_on_its_replica_at_any_load(four_replicas, replicas, in_flight):
    """A paper-like step (G=6) at 8, 32 and 128 requests in flight: each question's requests all
    reach one replica. Below the capacity (64 in flight per replica), that replica is its home."""
    servers = four_replicas[:replicas]
    images = pictures(in_flight // G + 1)  # enough requests to fill the window
    for server in servers:
        server.latency = in_flight * 0.0015  # the window fills before the first replies return
    tag = f" at {replicas}x{in_flight}"
    # A generous timeout: on a busy machine 128 requests in flight can take seconds, and a retry
    # would count twice (what is tested is where the requests go, not how fast).
    scores, stats = run_step(servers, images, tag, concurrency=in_flight, timeout=30.0)
    assert None not in scores and stats["judge/requests"] == len(images) * G
    found = homes(servers, tag=tag)
    assert sorted(found) == list(range(len(images)))
    assert all(len(replica) == 1 for replica in found.values()), found
    if in_flight <= 64:
        urls = [server.url for server in servers]
        assert all(found[q] == {rendezvous_order(image_hash(p), urls)[0]} for q, p in enumerate(images))


def test_the_earlier_per_request_rule_splits_questions_even_at_8_in_flight(four_replicas):
    """What routing by question fixes: the per-request bounded-load rule scatters a question as soon as
    its home has a fair share of the window in flight."""
    servers = four_replicas[:2]
    for server in servers:
        server.latency = 0.02
    scores, _ = run_step(servers, pictures(4), " split", concurrency=8, routing="request")
    assert None not in scores
    assert any(len(replica) > 1 for replica in homes(servers, tag=" split").values())


def test_new_questions_spill_past_a_replica_at_capacity_and_stay_whole(four_replicas):
    servers = four_replicas[:2]
    for server in servers:
        server.latency = 0.1  # 32 requests (5 questions or more) in flight before the first reply
    images = pictures(8)
    scores, _ = run_step(servers, images, " capacity", concurrency=32, replica_capacity=G)
    found = homes(servers, tag=" capacity")
    urls = [server.url for server in servers]
    assert None not in scores and all(len(replica) == 1 for replica in found.values())
    assert any(found[q] != {rendezvous_order(image_hash(p), urls)[0]} for q, p in enumerate(images))


def test_a_replica_stopped_mid_run_moves_its_questions_and_the_run_goes_on():
    images = pictures(12)
    with ScriptedJudgeServer() as a, ScriptedJudgeServer() as b, ScriptedJudgeServer() as c:
        servers, urls = [a, b, c], [a.url, b.url, c.url]
        home_of = {q: rendezvous_order(image_hash(p), urls)[0] for q, p in enumerate(images)}
        doomed = next(s for s in servers if s.url in home_of.values())
        moved = [q for q, url in home_of.items() if url == doomed.url]
        # Room to spare: no replica saturated, so every request goes to its home while it is up.
        reward = make_reasoning_reward(config_for(servers, concurrency=256, cooldown_s=60.0))
        loop = asyncio.new_event_loop()
        try:
            first = loop.run_until_complete(reward(*step(images, " step 1")[:1], **step(images, " step 1")[1]))
            reward.stats.read_and_reset()
            seen = {s.url: len(s.requests) for s in servers}
            # Stop one replica while the second step's requests are in flight: they are dropped, and
            # new connections to it refused.
            for server in servers:
                server.latency = 0.3
            stopper = threading.Timer(0.15, doomed.stop)
            stopper.start()
            second = loop.run_until_complete(reward(*step(images, " step 2")[:1], **step(images, " step 2")[1]))
            stopper.join()
            stats = reward.stats.read_and_reset()
            for server in servers:
                server.latency = 0.0
            third = loop.run_until_complete(reward(*step(images, " step 3")[:1], **step(images, " step 3")[1]))
            stats3 = reward.stats.read_and_reset()
            loop.run_until_complete(reward.judge.aclose())
        finally:
            loop.close()
    assert moved and None not in first + second + third  # no judgement failed
    assert stats["judge/failures"] == 0 and stats["judge/cooldowns"] == 1
    # The bound: each request of the stopped replica's questions failed once and was retried once
    # elsewhere; no other request was touched.
    assert 0 < stats["judge/request_failures"] == stats["judge/retries"] <= G * len(moved)
    assert stats["judge/requests"] == len(first) + stats["judge/retries"]
    # Its questions moved whole: each one's retries all went to one surviving replica.
    during = homes([s for s in servers if s is not doomed], tag=" step 2")
    assert set(moved) <= set(during) and all(len(replica) == 1 for replica in during.values()), during
    later = {s.url: [r for r in s.requests[seen[s.url]:] if "step 3" in student_text(r)] for s in servers}
    assert later[doomed.url] == []
    survivors = [u for u in urls if u != doomed.url]
    found = homes([s for s in servers if s is not doomed], later)
    for q in range(len(images)):  # its questions now live on the next replica of their order; others stay
        assert found[q] == {rendezvous_order(image_hash(images[q]), survivors)[0]}, q
    assert stats3["judge/requests"] == len(third) and stats3["judge/request_failures"] == 0


def test_a_recovered_replica_gets_its_questions_back_after_the_cooldown():
    images = pictures(8)
    with ScriptedJudgeServer() as a, ScriptedJudgeServer() as b:
        urls = [a.url, b.url]
        home_of = {q: rendezvous_order(image_hash(p), urls)[0] for q, p in enumerate(images)}
        on_b = [q for q, url in home_of.items() if url == b.url]
        assert on_b and len(on_b) < len(images)
        # A cool-down longer than a step takes on a busy machine, and a generous timeout: a step that
        # outlasts the cool-down would re-probe the stopped replica while it is still down.
        reward = make_reasoning_reward(config_for([a, b], cooldown_s=3.0, concurrency=256, timeout=30.0))
        loop = asyncio.new_event_loop()
        try:
            b.stop()
            down = loop.run_until_complete(reward(*step(images, " down")[:1], **step(images, " down")[1]))
            assert reward.stats.read_and_reset()["judge/cooldowns"] == 1
            assert {question_of(r) for r in a.requests} == set(range(len(images)))  # all on a meanwhile
            with ScriptedJudgeServer(port=b.port) as b_again:
                time.sleep(3.1)  # past the cool-down: the next request to b re-probes it
                up = loop.run_until_complete(reward(*step(images, " up")[:1], **step(images, " up")[1]))
                home = loop.run_until_complete(reward(*step(images, " home")[:1], **step(images, " home")[1]))
            stats = reward.stats.read_and_reset()
            loop.run_until_complete(reward.judge.aclose())
        finally:
            loop.close()
    assert None not in down + up + home and stats["judge/request_failures"] == 0
    assert any(" up" in student_text(r) for r in b_again.requests)  # the re-probe
    back = {question_of(r) for r in b_again.requests if " home" in student_text(r)}
    assert back == set(on_b)  # healthy again: its questions are home
    assert not any(" home" in student_text(r) and question_of(r) in on_b for r in a.requests)


def test_a_step_whose_judgements_mostly_fail_stops_the_run_before_the_window_fills():
    """The judge goes down after step 2: step 3 stops the run (the 64-judgement window never fills)."""
    images = pictures(2)
    server = ScriptedJudgeServer()
    with server:
        reward = make_reasoning_reward(config_for([server], max_retries=1, concurrency=4))
        loop = asyncio.new_event_loop()
        try:
            for number in (1, 2):
                assert None not in loop.run_until_complete(reward(*step(images[:1])[:1], **step(images[:1])[1]))
            server.stop()
            with pytest.raises(JudgeUnavailable, match=r"judge: 6 of the 6 judgements of this training step failed "
                                                       r"\(more than judge.max_failure_rate=50%; latest: "
                                                       r"APIConnectionError"):
                loop.run_until_complete(reward(*step(images[:1])[:1], **step(images[:1])[1]))
            loop.run_until_complete(reward.judge.aclose())
        finally:
            loop.close()


def test_a_step_with_few_failures_goes_on():
    def reply(request):
        return Status(503, message="overloaded") if "sample 0" in student_text(request) else "70"

    with ScriptedJudgeServer(reply=reply) as server:
        reward = make_reasoning_reward(config_for([server], max_retries=0))
        scores = asyncio.run(reward(*step(pictures(2))[:1], **step(pictures(2))[1]))
    assert scores.count(0.7) == 12  # 2 of 12 failed and took their group's mean
