"""Every connection the judge clients open is closed by their owner: the sockets of the process do
not grow with the number of judgements, health checks, training steps or ``refine-rft judge`` runs,
and nothing is left for the garbage collector to close (a ``ResourceWarning``). Real HTTP on
127.0.0.1; the scripted server runs in this process, so each open connection counts twice (both ends)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

from PIL import Image
from trl.trainer.utils import start_event_loop_in_daemon

from refine_rft.cli import main as refine_rft
from refine_rft.judge import JudgeConfig
from refine_rft.judge.health import check_endpoints
from refine_rft.openworld import ClassVocabulary
from refine_rft.rewards.reasoning import make_reasoning_reward
from refine_rft.rewards.verifier import make_open_verifier_reward
from refine_rft.train.monitor import close_rewards_callback
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer

OPTIONS = ["Common Finch", "Crimson-winged Finch"]


def descriptor_targets() -> list[str]:
    """What each file descriptor of this process points at ("socket:[...]", a file's path)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the descriptor listdir itself used, closed since
            pass
    return targets


def open_sockets() -> int:
    """How many file descriptors of this process are sockets."""
    return sum(target.startswith("socket:") for target in descriptor_targets())


def settled_sockets(at_most: int) -> int:
    """The socket count once the server's side of closed connections has closed too (its handler
    threads see the client's close a moment later): polled until ``at_most`` or 3 s."""
    deadline = time.monotonic() + 3.0
    while True:
        gc.collect()
        count = open_sockets()
        if count <= at_most or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def config_for(server, **overrides) -> JudgeConfig:
    return JudgeConfig(base_urls=[server.url], model="teacher", timeout=5.0, max_retries=1, concurrency=4,
                       **overrides)


def step(reward, n: int, tag: str):
    """One reward call as TRL makes it: ``n`` completions of one question."""
    completions = [[{"role": "assistant", "content": f"<think>{tag} sample {i}</think><answer>B</answer>"}]
                   for i in range(n)]
    return reward(completions, image=[Image.new("RGB", (32, 32))] * n, options=[OPTIONS] * n, answer=[1] * n,
                  noun=["birds"] * n, id=["q"] * n)


class NoResourceWarnings:
    """Fails when a ResourceWarning (an unclosed socket or transport) is raised inside the block."""

    def __enter__(self):
        gc.collect()  # what earlier tests left is not this block's
        self._catcher = warnings.catch_warnings(record=True)
        self.caught = self._catcher.__enter__()
        warnings.simplefilter("always", ResourceWarning)
        return self

    def __exit__(self, *exc):
        gc.collect()
        self._catcher.__exit__(*exc)
        unclosed = [str(w.message) for w in self.caught if issubclass(w.category, ResourceWarning)]
        assert not unclosed, unclosed


def test_a_reward_called_once_per_event_loop_holds_one_loops_connections():
    """Each ``asyncio.run`` is a new loop with new connections: the previous loop's are closed."""
    with ScriptedJudgeServer(latency=0.02) as server, NoResourceWarnings():
        reward = make_reasoning_reward(config_for(server))
        before = open_sockets()
        asyncio.run(step(reward, 4, "first"))
        after_one = settled_sockets(before)
        for n in range(6):
            asyncio.run(step(reward, 4, f"step {n}"))
        assert settled_sockets(after_one) <= after_one
        asyncio.run(reward.aclose())
    assert server.count == 7 * 4


def test_training_steps_reuse_connections_and_the_end_of_training_closes_them():
    """As TRL runs an async reward: every step on one daemon loop; the callback closes at the end."""
    thread, loop, ready = start_event_loop_in_daemon(name="reward-loop")
    ready.wait()
    with ScriptedJudgeServer(latency=0.02) as server, NoResourceWarnings():
        before = open_sockets()
        reward = make_reasoning_reward(config_for(server))
        callback = close_rewards_callback(SimpleNamespace(async_loop=loop), [reward])
        asyncio.run_coroutine_threadsafe(step(reward, 8, "warm-up"), loop).result(timeout=30)
        kept_alive = open_sockets()
        assert kept_alive > before  # keep-alive connections, reused by the next steps
        for n in range(10):
            asyncio.run_coroutine_threadsafe(step(reward, 8, f"step {n}"), loop).result(timeout=30)
        assert open_sockets() <= kept_alive
        callback.on_train_end(None, None, None)
        assert settled_sockets(before) == before
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def test_rewards_that_hold_nothing_need_no_closing_callback():
    assert close_rewards_callback(SimpleNamespace(), [lambda completions, **kwargs: [0.0]]) is None


def test_the_sample_id_log_is_closed_at_the_end_with_sync_rewards_only(tmp_path):
    """TRL makes no reward event loop when every reward is sync: the log (a file) is closed without one."""
    from refine_rft.train.monitor import SampleIdLog, monitor_rewards, read_sample_ids

    def open_descriptors(path: Path) -> int:
        return descriptor_targets().count(str(path))

    log = SampleIdLog(tmp_path / "sample_ids.rank0.jsonl")
    rewards = monitor_rewards([lambda completions, **kwargs: [0.0] * len(completions)], log)
    rewards[0]([[{"role": "assistant", "content": "B"}]], id=["q1"], trainer_state=SimpleNamespace(global_step=1))
    assert open_descriptors(log.path) == 1
    close_rewards_callback(SimpleNamespace(), [log]).on_train_end(None, None, None)
    assert open_descriptors(log.path) == 0
    assert read_sample_ids(log.path) == {1: ["q1"]}


def test_the_open_verifier_closes_its_connections_and_cache(tmp_path):
    vocab = {"flowers": ClassVocabulary.build(["garden phlox", "sunflower"])}
    with ScriptedJudgeServer(reply='{"same": true}') as server, NoResourceWarnings():
        before = open_sockets()
        config = config_for(server, cache_path=str(tmp_path / "verdicts.sqlite"))
        reward = make_open_verifier_reward(config, vocab)

        async def judged_then_closed(n: int):
            scores = await reward([f"<answer>Phlox {n}</answer>"], label=["garden phlox"],
                                  dataset=["flowers"], noun=["flowers"])
            await reward.aclose()
            return scores

        assert [asyncio.run(judged_then_closed(n)) for n in range(5)] == [[1.0]] * 5
        assert settled_sockets(before) == before


def test_health_checks_close_their_connections():
    with ScriptedJudgeServer() as server, NoResourceWarnings():
        check_endpoints(config_for(server))
        before = settled_sockets(open_sockets())
        for _ in range(5):
            check_endpoints(config_for(server))
        assert settled_sockets(before) == before


def test_the_judge_command_closes_its_connections(tmp_path):
    from refine_rft_workshop.synthetic import synthetic_questions

    rows = [{**row, "style": "cot", "response": "<think>A bird.</think><answer>A</answer>"}
            for row in synthetic_questions(tmp_path, "test", per_class=1, num_classes=4)]
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with ScriptedJudgeServer() as server, NoResourceWarnings():
        before = open_sockets()
        for n in range(3):
            assert refine_rft(["judge", str(predictions), "--endpoint", server.url, "--model", "teacher",
                               "--out", str(tmp_path / f"scores{n}.jsonl")]) == 0
        assert settled_sockets(before) == before
