"""Group judging (an option, not the paper): one request per GRPO group, same scores as per response."""

from __future__ import annotations

import asyncio
import time

import pytest
from PIL import Image

from refine_rft.judge import JudgeConfig
from refine_rft.judge.group import parse_group_scores
from refine_rft.rewards.reasoning import make_reasoning_reward
from refine_rft.judge.images import image_hash
from refine_rft.judge.routing import rendezvous_order
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status, hashed_reply, student_texts

OPTIONS = ["Common Finch", "Crimson-winged Finch", "Hook-billed Finch", "Crested Finch"]
G = 4


def batch() -> tuple[list, dict]:
    """Two questions x G completions, as TRL passes them: a group's completions side by side."""
    texts = ["<think>Crimson wings.</think><attribute>crimson wings</attribute><answer>B</answer>",
             "<think>A hooked beak.</think><answer>C</answer>", "<answer>B</answer>",  # untagged: judged too
             "<think>Cut off at the length li"]
    completions = [[{"role": "assistant", "content": f"{text} q{q}"}] for q in range(2) for text in texts]
    images = [Image.new("RGB", (48, 40), colour) for colour in ((200, 30, 40), (30, 40, 200)) for _ in range(G)]
    kwargs = dict(image=images, options=[OPTIONS] * 2 * G, answer=[1] * 2 * G, noun=["birds"] * 2 * G,
                  id=["q0"] * G + ["q1"] * G)
    return completions, kwargs


def scores_and_requests(reply=hashed_reply, **settings) -> tuple[list, list, dict]:
    completions, kwargs = batch()
    with ScriptedJudgeServer(reply=reply) as server:
        reward = make_reasoning_reward(JudgeConfig(base_urls=[server.url], model="teacher", max_retries=0,
                                                   **settings))
        scores = asyncio.run(reward(completions, **kwargs))
    return scores, server.requests, reward.stats.read_and_reset()


def test_group_and_per_response_judging_give_the_same_scores_in_fewer_requests():
    single, single_requests, _ = scores_and_requests()
    grouped, group_requests, stats = scores_and_requests(group_judging=True)
    assert grouped == single and len(set(single)) > 1
    assert len(single_requests) == 2 * G and len(group_requests) == 2
    assert [len(student_texts(request)) for request in group_requests] == [G, G]
    assert stats["judge/group_requests"] == 2 and stats["judge/group_fallbacks"] == 0
    # One image per group request, after the constant system message and the instructions.
    for request in group_requests:
        parts = request["messages"][1]["content"]
        assert [part["type"] for part in parts] == ["text", "image_url", "text"]
        assert len(set(student_texts(request))) == G and "Output exactly 4 lines" in parts[2]["text"]


@pytest.mark.parametrize("bad", ["Scores: 1: 10, 2: 20", "1: 10\n2: 20", "1: 10\n2: 20\n3: 30\n4: 300",
                                 "```\n1: 10\n2: 20\n3: 30\n4: 40\n```", "2: 10\n1: 20\n3: 30\n4: 40"])
def test_an_unusable_group_reply_falls_back_to_per_response_judging_and_is_counted(bad):
    def reply(request):
        return bad if len(student_texts(request)) > 1 else hashed_reply(request)

    single, _, _ = scores_and_requests()
    grouped, requests, stats = scores_and_requests(reply=reply, group_judging=True)
    assert grouped == single
    assert stats["judge/group_fallbacks"] == 2 and len(requests) == 2 + 2 * G


def test_a_group_request_failed_by_its_only_replica_is_not_re_sent_there_per_response():
    """The replica fails (HTTP 500): G more requests to it would fail too. The judgements fail,
    counted, and the failure rule decides (here set never to stop)."""
    completions, kwargs = batch()
    with ScriptedJudgeServer(reply=Status(500, message="upstream down")) as server:
        reward = make_reasoning_reward(JudgeConfig(base_urls=[server.url], model="teacher", max_retries=0,
                                                   group_judging=True, max_failure_rate=1.0))
        scores = asyncio.run(reward(completions, **kwargs))
    stats = reward.stats.read_and_reset()
    assert scores == [None] * 2 * G and server.count == 2  # the two group requests, nothing more
    assert stats["judge/group_fallbacks"] == 0 and stats["judge/failures"] == 2 * G


def test_a_group_fallback_goes_to_another_replica_than_the_failing_one():
    single, _, _ = scores_and_requests()
    completions, kwargs = batch()
    with ScriptedJudgeServer() as a, ScriptedJudgeServer() as b:
        urls = [a.url, b.url]
        failing = a if rendezvous_order(image_hash(kwargs["image"][0]), urls)[0] == a.url else b
        healthy = b if failing is a else a
        failing.reply = Status(500, message="upstream down")  # the home of the first question fails
        reward = make_reasoning_reward(JudgeConfig(base_urls=urls, model="teacher", max_retries=0,
                                                   group_judging=True))
        scores = asyncio.run(reward(completions, **kwargs))
    stats = reward.stats.read_and_reset()
    assert scores == single
    fell_back = stats["judge/group_fallbacks"]
    assert fell_back >= 1 and failing.count == fell_back  # one group request each, never a per-response one
    assert sum(len(student_texts(request)) == 1 for request in healthy.requests) == G * fell_back


def test_group_judging_needs_the_paper_prompt():
    from refine_rft.errors import ConfigError

    with pytest.raises(ConfigError, match="group_judging needs prompt 'paper'"):
        JudgeConfig(model="m", prompt="label_aware", group_judging=True)


def test_the_group_parser_is_strict_and_linear():
    assert parse_group_scores("1: 80\n 2:70 \n\n3) 0", 3) == [80.0, 70.0, 0.0]
    for reply in (None, "", "80\n70", "1: 80\n2: 70\n3: 60", "1: 80 2: 70", "1: -5\n2: 70", "1: 80\n2: seventy"):
        assert parse_group_scores(reply, 2) is None, reply
    started = time.perf_counter()
    for text in ("1: 1\n" * (1 << 18), "1" * (1 << 20), "\n" * (1 << 20)):
        assert parse_group_scores(text, 6) is None
    # A budget no busy machine misses (linear: milliseconds; quadratic: hours); the times themselves
    # are benchmarks/parsing_linear.py's.
    assert time.perf_counter() - started < 10.0


def test_the_options_are_off_in_the_paper_recipes_and_each_has_an_ablation():
    from pathlib import Path

    from refine_rft.recipes import load_recipe

    recipes = Path(__file__).parents[1] / "recipes" / "qwen2vl7b"
    paper = load_recipe(recipes / "refine_rft.yaml")
    for recipe in ("refine_rft.yaml", "refine_rft_4gpu.yaml"):
        settings = JudgeConfig.from_dict(load_recipe(recipes / recipe)["judge"])
        assert not settings.skip_untagged and not settings.group_judging, recipe
    for key in ("skip_untagged", "group_judging"):
        ablation = load_recipe(recipes / "ablations" / f"{key}.yaml")
        assert ablation["judge"] == {**paper["judge"], key: True}
        assert {k for k in paper.keys() | ablation.keys() if paper.get(k) != ablation.get(k)} == {"judge", "output_dir"}
