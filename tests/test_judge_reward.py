"""R_cot as TRL sees it: an async reward called with dataset columns as keyword lists."""

from __future__ import annotations

import asyncio

from PIL import Image
from trl.trainer.utils import get_callable_name, is_async_callable, start_event_loop_in_daemon

from refine_rft.judge import JudgeConfig
from refine_rft.rewards.reasoning import make_reasoning_reward
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status, student_text

OPTIONS = ["Common Finch", "Crimson-winged Finch", "Hook-billed Finch", "Crested Finch"]
GOOD = [{"role": "assistant", "content": "<think>Crimson wings.</think><attribute>crimson wings</attribute>"
                                         "<answer>B</answer>"}]
NO_THINK = [{"role": "assistant", "content": "<answer>B</answer>"}]


def columns(n: int) -> dict:
    """What TRL passes besides completions: every dataset column, plus its own extras."""
    return dict(prompts=[[{"role": "user", "content": "q"}]] * n, completion_ids=[[1]] * n, options=[OPTIONS] * n,
                answer=[1] * n, noun=["birds"] * n, id=[f"q{i}" for i in range(n)], trainer_state=None)


def judge_config(server, **overrides) -> JudgeConfig:
    return JudgeConfig(base_urls=[server.url], model="teacher", timeout=2.0, max_retries=1,
                       backoff_base=0.01, backoff_max=0.1, **overrides)


def test_trl_sees_an_async_reward_named_reasoning_reward():
    reward = make_reasoning_reward(JudgeConfig(backend="attributes"))
    assert is_async_callable(reward)
    assert get_callable_name(reward) == "reasoning_reward"


def test_scores_scaled_and_none_on_failure(tmp_path):
    picture = Image.new("RGB", (32, 32), (200, 30, 40))
    picture.save(tmp_path / "bird.png")
    with ScriptedJudgeServer(reply="80", script=[Status(500), Status(500)]) as server:
        reward = make_reasoning_reward(judge_config(server, max_failure_rate=1.0))  # a failed step goes on
        assert asyncio.run(reward([GOOD], image=[picture], **columns(1))) == [None]  # two 500s: max_retries=1
        assert asyncio.run(reward([GOOD], images=[[str(tmp_path / "bird.png")]], **columns(1))) == [0.8]
    stats = reward.stats.read_and_reset()
    assert stats["judge/failures"] == 1 and stats["judge/retries"] == 1
    assert server.count == 3


TRUNCATED = [{"role": "assistant", "content": "<think>Crimson wings and a short be"}]  # cut at max length


def test_eq_2_every_completion_is_judged_untagged_and_truncated_ones_too():
    with ScriptedJudgeServer(reply="80") as server:
        reward = make_reasoning_reward(judge_config(server))
        scores = asyncio.run(reward([GOOD, NO_THINK, TRUNCATED], image=[Image.new("RGB", (32, 32))] * 3,
                                    **columns(3)))
    assert scores == [0.8, 0.8, 0.8] and server.count == 3
    assert sorted(student_text(request) for request in server.requests) == sorted(
        completion[0]["content"] for completion in (GOOD, NO_THINK, TRUNCATED))
    assert reward.stats.read_and_reset()["judge/no_think"] == 0


def test_skip_untagged_scores_them_zero_without_a_call_and_counts_them():
    with ScriptedJudgeServer(reply="80") as server:
        reward = make_reasoning_reward(judge_config(server, skip_untagged=True))
        scores = asyncio.run(reward([GOOD, NO_THINK, TRUNCATED], image=[Image.new("RGB", (32, 32))] * 3,
                                    **columns(3)))
    assert scores == [0.8, 0.0, 0.0] and server.count == 1
    assert reward.stats.read_and_reset()["judge/no_think"] == 2


def test_judge_counters_go_to_trls_log_metric_hook():
    logged = {}
    with ScriptedJudgeServer(reply="50", latency=0.02) as server:
        reward = make_reasoning_reward(judge_config(server))
        image = Image.new("RGB", (32, 32))
        asyncio.run(reward([GOOD] * 3, image=[image] * 3, log_metric=logged.__setitem__, **columns(3)))
    assert logged["judge/requests"] == 3.0 and logged["judge/failures"] == 0.0
    assert logged["judge/mean_latency_s"] >= 0.02
    assert reward.stats.snapshot()["judge/requests"] == 0  # read and reset by the hook


def test_runs_on_trls_daemon_event_loop_across_steps():
    """TRL runs async rewards with ``run_coroutine_threadsafe`` on one loop in a daemon thread."""
    thread, loop, ready = start_event_loop_in_daemon(name="reward-loop")
    ready.wait()
    image = Image.new("RGB", (32, 32))
    with ScriptedJudgeServer(latency=0.05) as server:
        reward = make_reasoning_reward(judge_config(server, concurrency=8))
        for step in range(2):
            completions = [[{"role": "assistant", "content": f"<think>step {step} sample {i}</think>"}]
                           for i in range(16)]
            future = asyncio.run_coroutine_threadsafe(reward(completions, image=[image] * 16, **columns(16)), loop)
            scores = future.result(timeout=30)
            assert len(scores) == 16 and all(0.0 <= s <= 1.0 for s in scores)
            assert len(set(scores)) > 1  # the scripted judge's scores vary with the text
        asyncio.run_coroutine_threadsafe(reward.aclose(), loop).result(timeout=30)  # as training ends
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()
    assert server.max_in_flight == 8


def test_failed_judgements_take_their_groups_mean_or_are_skipped():
    """Two GRPO groups of 3 (TRL passes a group's completions side by side). The real judge server
    answers 500 for the 'unlucky' samples: in q0 one of three fails and gets the mean of the other two;
    in q1 all fail and stay None (the same 0 for the whole group under TRL's nansum: no R_cot signal)."""
    from refine_rft_workshop.testing.scripted_server import student_text

    def reply(request):
        text = student_text(request)
        return Status(500) if "unlucky" in text else ("90" if "crimson" in text else "30")

    def completion(text):
        return [{"role": "assistant", "content": f"<think>{text}</think><attribute>x</attribute><answer>B</answer>"}]

    completions = [completion(t) for t in ("crimson wings", "dull wings", "unlucky 1",
                                           "unlucky 2", "unlucky 3", "unlucky 4")]
    logged = {}
    with ScriptedJudgeServer(reply=reply) as server:
        reward = make_reasoning_reward(judge_config(server, max_failure_rate=1.0))  # 4 of 6 failed: go on
        kwargs = {**columns(6), "id": ["q0"] * 3 + ["q1"] * 3}
        scores = asyncio.run(reward(completions, image=[Image.new("RGB", (32, 32))] * 6,
                                    log_metric=logged.__setitem__, **kwargs))
    assert scores == [0.9, 0.3, 0.6, None, None, None]
    assert logged["judge/failures"] == 4.0  # the teacher's failures, as before
    assert logged["judge/failures_imputed"] == 1.0 and logged["judge/failures_unscored"] == 3.0
    assert server.count == 2 + 4 * 2  # each failure was retried once (max_retries=1)


def test_a_filled_failure_leaves_the_groups_advantages_as_without_it():
    """What the fill buys, under TRL's aggregation (weighted nansum, then group normalisation): the
    completion whose judgement failed is neither penalised (None -> 0) nor rewarded."""
    import torch

    from refine_rft.rewards.reasoning import fill_failed_scores

    rule = torch.tensor([1.0, 1.0, 1.0])  # R_fa + R_cls, equal across the group
    cot, _, _ = fill_failed_scores([0.9, 0.3, None], ["q"] * 3)

    def advantages(r_cot):
        rewards = torch.stack([rule, torch.tensor([torch.nan if c is None else c for c in r_cot])], 1)
        total = (rewards * torch.tensor([2 / 3, 1 / 3])).nansum(1)
        return (total - total.mean()) / (total.std() + 1e-4)

    assert abs(float(advantages(cot)[2])) < 1e-5  # the failed completion sits at its group's mean
    bare = advantages([0.9, 0.3, None])  # TRL's treatment of a bare None: R_cot = 0, the worst of the group
    assert bare[2] < -0.5 and int(bare.argmin()) == 2
