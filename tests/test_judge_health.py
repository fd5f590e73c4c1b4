"""A judge that cannot judge says so: the health check, the failure rule, exit codes, gateways.

Every case runs the real ``refine-rft judge`` command (or the trainer) against a real HTTP server on
127.0.0.1 through the real ``openai`` client; the server answers as the LiteLLM gateway does where
that differs from ``vllm serve`` (400 for a wrong key or model, ``llm_provider-retry-after``).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

import pytest
from PIL import Image

from refine_rft.cli import main as refine_rft
from refine_rft.errors import JudgeUnavailable
from refine_rft.judge import JudgeConfig, JudgeConfigError, make_judge
from refine_rft.judge.health import PROBE_TEXT, check_endpoints
from refine_rft_workshop import RECIPES
from refine_rft_workshop.testing.scripted_server import (
    LITELLM_BAD_KEY,
    LITELLM_BAD_MODEL,
    RSC_REPLY,
    ScriptedJudgeServer,
    Status,
    request_text,
    upstream_rate_limit,
)

RESPONSE = "<think>The wings are crimson.</think><attribute>crimson wings</attribute><answer>B. Finch</answer>"


@pytest.fixture(scope="module")
def predictions(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("health")
    Image.new("RGB", (32, 24), (200, 30, 40)).save(folder / "bird.png")
    rows = [{"id": f"q{i}", "style": "cot", "dataset": "birds", "image": "bird.png", "label": "Finch",
             "options": ["Tit", "Finch"], "answer": 1, "noun": "birds",
             "response": RESPONSE.replace("crimson.", f"{i}.")}
            for i in range(6)]
    path = folder / "predictions.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def judge_args(predictions: Path, out: Path, url: str, *extra: str) -> list[str]:
    return ["judge", str(predictions), "--endpoint", url, "--model", "teacher", "--out", str(out),
            "--api-key-env", "TEST_JUDGE_KEY", "--max-retries", "1", *extra]


def unused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("refusal, hint", [
    (LITELLM_BAD_KEY, "the API key looks refused"),
    (LITELLM_BAD_MODEL, "the model name looks wrong"),
    (Status(401, message="Invalid API key"), "the API key looks refused"),
    (Status(404, message="The model `teacher` does not exist."), "the model name looks wrong"),
])
def test_a_refused_key_or_model_stops_before_the_first_judgement(refusal, hint, predictions, tmp_path, capsys):
    """Whatever code the gateway uses (LiteLLM: 400), one probe, no retry, exit 2, every setting named."""
    out = tmp_path / "scores.jsonl"
    with ScriptedJudgeServer(reply=refusal) as server:
        assert refine_rft(judge_args(predictions, out, server.url)) == 2
    err = capsys.readouterr().err
    assert server.count == 1 and PROBE_TEXT in request_text(server.requests[0])
    assert f"refine-rft judge: error: judge endpoint {server.url} refused the health check" in err
    assert hint in err and "judge.model='teacher'" in err and "$TEST_JUDGE_KEY (not set)" in err
    assert not out.exists() or out.read_text() == ""


def test_an_unreachable_url_stops_with_its_name(predictions, tmp_path, capsys):
    url = unused_url()
    started = time.perf_counter()
    assert refine_rft(judge_args(predictions, tmp_path / "scores.jsonl", url)) == 2
    assert time.perf_counter() - started < 5  # one retry, at most backoff_base = 1 s apart
    err = capsys.readouterr().err
    assert f"judge endpoint {url} did not answer the health check after 1 retries" in err
    assert "APIConnectionError" in err and "judge.model='teacher'" in err and "$TEST_JUDGE_KEY" in err


def test_a_persistent_500_stops_at_the_health_check(predictions, tmp_path, capsys):
    with ScriptedJudgeServer(reply=Status(500, message="upstream down")) as server:
        assert refine_rft(judge_args(predictions, tmp_path / "scores.jsonl", server.url)) == 2
    assert server.count == 2  # the probe and its one retry
    err = capsys.readouterr().err
    assert "did not answer the health check after 1 retries (HTTP 500" in err and "upstream down" in err


def test_every_replica_is_checked_and_each_bad_one_named(predictions, tmp_path, capsys):
    with ScriptedJudgeServer() as good, ScriptedJudgeServer(reply=LITELLM_BAD_MODEL) as bad:
        args = judge_args(predictions, tmp_path / "scores.jsonl", good.url, "--endpoint", bad.url)
        assert refine_rft(args) == 2
    err = capsys.readouterr().err
    assert good.count == 3 and bad.count == 1  # the good one: a judgement and two sight questions
    assert bad.url in err and f"judge endpoint {good.url}" not in err


def test_an_outage_after_the_check_trips_the_failure_rule(predictions, tmp_path, capsys):
    """More than half of the last 4 judgements failed: exit 2 with the rule's message, rows kept."""
    out = tmp_path / "scores.jsonl"
    script = [RSC_REPLY, RSC_REPLY]  # the health check's judgement, then one row
    with ScriptedJudgeServer(script=script, reply=Status(503, message="upstream down")) as server:
        args = judge_args(predictions, out, server.url, "--max-retries", "0", "--concurrency", "1",
                          "--failure-window", "4")
        assert refine_rft(args) == 2
    err = capsys.readouterr().err
    assert "judge: 3 of the last 4 judgements failed (more than judge.max_failure_rate=50%" in err
    assert "HTTP 503" in err and "upstream down" in err
    assert len(out.read_text().splitlines()) == 1  # the judgement that succeeded is kept for the rerun


def test_the_failure_rule_needs_a_full_window_and_can_be_turned_off():
    config = dict(backend="openai", base_urls=["http://127.0.0.1:9/v1"], model="teacher")
    judge = make_judge(JudgeConfig(**config, failure_window=3, max_failure_rate=1.0))
    for _ in range(10):
        judge._count(failed=True)  # 1.0 never stops
    judge = make_judge(JudgeConfig(**config, failure_window=3))
    judge._count(failed=True)
    judge._count(failed=True)  # the window is not full yet
    with pytest.raises(JudgeUnavailable, match="3 of the last 3"):
        judge._count(failed=True)


def test_llm_provider_retry_after_is_honoured():
    """LiteLLM passes the upstream's Retry-After on as ``llm_provider-retry-after``."""
    config = JudgeConfig(backend="openai", model="teacher", timeout=5, max_retries=1, backoff_base=0.0,
                         backoff_max=5.0)
    image = Image.new("RGB", (32, 24), (200, 30, 40))
    with ScriptedJudgeServer(script=[upstream_rate_limit(0.6)], reply="70") as server:
        config.base_urls = [server.url]
        judge = make_judge(config)

        async def score():
            try:
                return await judge.reasoning_score({"image": image, "options": ["Tit", "Finch"], "answer": 1,
                                                    "noun": "birds", "response": RESPONSE})
            finally:
                await judge.aclose()

        started = time.perf_counter()
        assert asyncio.run(score()) == 70.0
        assert time.perf_counter() - started >= 0.6
    assert server.count == 2 and judge.stats.snapshot()["judge/retries"] == 1


def test_a_400_mid_run_is_one_failed_row_not_a_stop(predictions, tmp_path, capsys):
    """After a passed health check, a 400 is this request's fault (e.g. too long): counted, exit 1."""
    out = tmp_path / "scores.jsonl"
    with ScriptedJudgeServer(script=[RSC_REPLY, Status(400, message="prompt too long")]) as server:
        assert refine_rft(judge_args(predictions, out, server.url, "--concurrency", "1")) == 1
    assert server.count == 3 + 6  # the health check (a judgement, two sight questions), the rows
    assert "1 of 6 responses could not be judged" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 5


def test_training_checks_the_judge_before_loading_the_model(tmp_path, monkeypatch):
    """The trainer stops on a refused model before it loads anything (the model path does not exist)."""
    from refine_rft.train.grpo import train_grpo

    monkeypatch.setenv("TEST_JUDGE_KEY", "sk-wrong")
    with ScriptedJudgeServer(reply=LITELLM_BAD_MODEL) as server:
        judge = {"backend": "openai", "base_urls": [server.url], "model": "teacher", "api_key_env": "TEST_JUDGE_KEY"}
        with pytest.raises(JudgeConfigError, match=r"model name looks wrong.*\$TEST_JUDGE_KEY \(set\)"):
            train_grpo(RECIPES / "refine_rft.yaml",
                       {"model_name_or_path": str(tmp_path / "no-model"), "output_dir": str(tmp_path / "run"),
                        "train_file": str(tmp_path / "no-data.jsonl"), "judge": judge, "report_to": []})
    assert server.count == 1


def test_refine_rft_train_exits_non_zero_naming_the_unreachable_judge(tmp_path, synthetic_train_jsonl):
    from refine_rft_workshop import RECIPES, tiny_instruct_path

    url = unused_url()
    from refine_rft.cli import main
    from refine_rft_workshop.testing.commands import run_in_process

    command = ["train", "--config", str(RECIPES / "refine_rft.yaml"),
               "--model_name_or_path", str(tiny_instruct_path()), "--train_file", str(synthetic_train_jsonl),
               "--output_dir", str(tmp_path / "run"), "--report_to", "none",
               "--judge", json.dumps({"backend": "openai", "base_urls": [url], "model": "teacher", "max_retries": 0})]
    result = run_in_process(main, command, cwd=tmp_path)
    assert result.returncode != 0
    assert f"judge endpoint {url} did not answer the health check" in result.stderr


def test_check_endpoints_reports_each_replica():
    with ScriptedJudgeServer(reply="100") as one, ScriptedJudgeServer(reply="100") as two:
        seconds = check_endpoints(JudgeConfig(backend="openai", base_urls=[one.url, two.url], model="teacher"))
    assert sorted(seconds) == sorted([one.url, two.url]) and one.count == two.count == 3
    assert check_endpoints(JudgeConfig(backend="attributes")) == {}


def test_the_training_check_needs_a_usable_score_from_the_configured_prompt():
    """An endpoint whose model answers, but never with a score, stops before the first judgement."""
    with ScriptedJudgeServer(reply="Ready when you are!") as server:
        with pytest.raises(JudgeUnavailable) as stopped:
            check_endpoints(JudgeConfig(backend="openai", base_urls=[server.url], model="teacher", max_tokens=12))
    assert server.count == 2  # the probe's judgement and its one reminder
    assert all(request["max_tokens"] == 12 and "RSC_A" not in request_text(request) for request in server.requests)
    message = str(stopped.value)
    assert f"judge endpoint {server.url} answered the health check's judgement without a usable score" in message
    assert "'paper' prompt" in message and "Ready when you are!" in message and "judge.max_tokens=12" in message


def test_refine_rft_judge_checks_the_reasoning_answer_prompt_it_will_use(predictions, tmp_path, capsys):
    """An endpoint that gives R_cot scores ("50") but never the Reasoning-Answer JSON passes a check
    of the R_cot prompt; `refine-rft judge` checks the prompt it will send, with its real reply budget,
    and stops in one line, exit 2, before any row."""
    out = tmp_path / "scores.jsonl"
    with ScriptedJudgeServer(reply="50") as server:
        check_endpoints(JudgeConfig(backend="openai", base_urls=[server.url], model="teacher"))  # R_cot: fine
        asked = server.count
        assert refine_rft(judge_args(predictions, out, server.url, "--no-sight-check")) == 2
    probes = server.requests[asked:]
    assert len(probes) == 2  # the judgement and its one reminder; no row judged
    assert all("RSC_A" in request_text(r) and PROBE_TEXT in request_text(r) for r in probes)
    assert all(r["max_tokens"] == 400 for r in probes)  # judge.rsc_max_tokens, not the R_cot budget of 16
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("refine-rft judge: error:")]
    assert len(errors) == 1
    assert f"judge endpoint {server.url} answered the health check's judgement without the Reasoning-Answer " \
           f"JSON (RSC_A, RSC_U, RSC_O)" in errors[0]
    assert "'50'" in errors[0] and "judge.rsc_max_tokens=400" in errors[0]
    assert not out.exists() or out.read_text() == ""


def test_the_sight_check_catches_an_endpoint_that_never_sees_the_image(predictions, tmp_path, capsys):
    """A text-only model answers 200 with a fine score and never sees the picture: stopped, and the
    message says how to relax the check for a small teacher."""
    with ScriptedJudgeServer(sees_images=False) as server:  # it answers every prompt with a score
        assert refine_rft(judge_args(predictions, tmp_path / "scores.jsonl", server.url)) == 2
        err = capsys.readouterr().err
        assert re.search(rf"judge endpoint {re.escape(server.url)} failed the sight check \(a plain red picture: "
                         r"'\d+'; a plain blue picture: '\d+'\)", err)
        assert "judge.sight_check: false" in err
        assert refine_rft(judge_args(predictions, tmp_path / "scores.jsonl", server.url, "--no-sight-check")) == 0
    colours = [request for request in server.requests if "What is the colour" in request_text(request)]
    assert len(colours) == 2 and all(PROBE_TEXT in request_text(request) for request in colours)


def test_the_sight_check_passes_a_teacher_that_names_the_colours():
    with ScriptedJudgeServer(reply="90") as server:
        check_endpoints(JudgeConfig(backend="openai", base_urls=[server.url], model="teacher"))
    answers = sorted(request_text(r) for r in server.requests if "What is the colour" in request_text(r))
    assert len(answers) == 2 and server.count == 3


@pytest.mark.parametrize("error, said", [
    (Status(400, body={"detail": "This model does not support image input"}), "This model does not support image"),
    (Status(400, body={"detail": [{"loc": ["body", "messages"], "msg": "field required", "type": "missing"}]}),
     "field required"),
    (Status(400, text="upstream proxy: request entity too large"), "upstream proxy: request entity too large"),
    (Status(400, body={"object": "error", "message": "maximum context length is 4096 tokens"}),
     "maximum context length is 4096 tokens"),
])
def test_errors_quote_the_servers_own_text_whatever_the_body(error, said, predictions, tmp_path, capsys):
    """At the health check (a refusal) and mid-run (one row's failure, quoted in the log and the rule)."""
    with ScriptedJudgeServer(reply=error) as server:
        assert refine_rft(judge_args(predictions, tmp_path / "a.jsonl", server.url)) == 2
    assert f"refused the health check (HTTP 400: {said}" in capsys.readouterr().err
    judge = make_judge(JudgeConfig(backend="openai", base_urls=[server.url], model="teacher", max_retries=0))
    with ScriptedJudgeServer(reply=error) as server:
        judge.config.base_urls = [server.url]
        judge = make_judge(judge.config)

        async def score():
            try:
                return await judge.reasoning_score({"image": Image.new("RGB", (8, 8)), "response": RESPONSE})
            finally:
                await judge.aclose()

        assert asyncio.run(score()) is None
    assert judge.latest_failure().startswith(f"HTTP 400: {said}") and judge.latest_failure().endswith(server.url)


def test_every_http_attempt_is_counted_with_its_latency():
    config = JudgeConfig(backend="openai", model="teacher", max_retries=2, backoff_base=0.0, timeout=5)
    with ScriptedJudgeServer(script=[Status(503), Status(500)], reply="70", latency=0.05) as server:
        config.base_urls = [server.url]
        judge = make_judge(config)

        async def score():
            try:
                return await judge.reasoning_score({"image": Image.new("RGB", (8, 8)), "response": RESPONSE})
            finally:
                await judge.aclose()

        assert asyncio.run(score()) == 70.0
    stats = judge.stats.snapshot()
    assert stats["judge/requests"] == 3 and stats["judge/request_failures"] == 2 and stats["judge/retries"] == 2
    assert stats["judge/mean_latency_s"] >= 0.05  # every attempt waited 50 ms at the server, failed or not
