"""The teacher judge against a real HTTP server speaking the chat-completions protocol.

Every test goes through the real ``openai`` client over 127.0.0.1; the server's behaviour is
scripted per request (scores, prose, garbage, errors, hangs, dropped connections).
"""

from __future__ import annotations

import asyncio
import base64
import io
import time

import pytest
from PIL import Image

from refine_rft.judge import JudgeConfig, JudgeConfigError, make_judge
from refine_rft_workshop.testing.scripted_server import DROP, HANG, ScriptedJudgeServer, Status, student_text

OPTIONS = ["Common Finch", "Crimson-winged Finch", "Hook-billed Finch", "Crested Finch"]
RESPONSE = "<think>The wings are crimson.</think><attribute>crimson wings</attribute><answer>B</answer>"


def config_for(*servers, **overrides) -> JudgeConfig:
    """Fast settings: short timeouts and backoffs, so failure paths take milliseconds."""
    values = dict(backend="openai", base_urls=[s.url for s in servers], model="teacher", timeout=2.0,
                  max_retries=2, backoff_base=0.01, backoff_max=0.5)
    return JudgeConfig(**(values | overrides))


def sample(response: str = RESPONSE, image=None, **extra) -> dict:
    image = image if image is not None else Image.new("RGB", (64, 48), (200, 30, 40))
    return {"id": "q1", "image": image, "options": OPTIONS, "answer": 1, "noun": "birds", "response": response,
            **extra}


def score_all(config: JudgeConfig, samples: list[dict]):
    judge = make_judge(config)

    async def run():
        try:
            return await asyncio.gather(*(judge.reasoning_score(s) for s in samples))
        finally:
            await judge.aclose()

    return asyncio.run(run()), judge.stats.snapshot()


@pytest.mark.parametrize("reply, expected", [
    ("85", 85.0),
    ("The reasoning correctly notes the crimson wings. Score: 72", 72.0),
    ('```json\n{"score": 40}\n```', 40.0),
])
def test_scores_are_read_from_plain_prose_and_json_replies(reply, expected):
    with ScriptedJudgeServer(reply=reply) as server:
        scores, stats = score_all(config_for(server), [sample()])
    assert scores == [expected]
    assert server.count == 1 and stats["judge/failures"] == 0


def test_garbage_gets_one_reminder_then_none():
    with ScriptedJudgeServer(reply="I cannot grade this.") as server:
        scores, stats = score_all(config_for(server), [sample()])
    assert scores == [None]
    assert server.count == 2  # the question, then the reminder
    assert "integer from 0 to 100" in server.requests[1]["messages"][-1]["content"]
    assert stats["judge/failures"] == 1 and stats["judge/reminders"] == 1


def test_out_of_range_then_valid_after_the_reminder():
    with ScriptedJudgeServer(script=["150"], reply="90") as server:
        scores, stats = score_all(config_for(server), [sample()])
    assert scores == [90.0]
    assert server.requests[1]["messages"][-2] == {"role": "assistant", "content": "150"}
    assert stats["judge/reminders"] == 1 and stats["judge/failures"] == 0


def test_429_waits_at_least_retry_after():
    with ScriptedJudgeServer(script=[Status(429, retry_after=0.3)], reply="60") as server:
        started = time.perf_counter()
        scores, stats = score_all(config_for(server), [sample()])
        elapsed = time.perf_counter() - started
    assert scores == [60.0]
    assert elapsed >= 0.3
    assert server.count == 2 and stats["judge/retries"] == 1


def test_500s_are_retried_and_a_persistent_outage_gives_none_without_raising():
    with ScriptedJudgeServer(script=[Status(500), Status(503)], reply="70") as server:
        scores, stats = score_all(config_for(server), [sample()])
    assert scores == [70.0] and stats["judge/retries"] == 2
    with ScriptedJudgeServer(reply=Status(500)) as server:
        scores, stats = score_all(config_for(server, max_retries=2), [sample()])
    assert scores == [None]
    assert server.count == 3  # first try + 2 retries
    assert stats["judge/failures"] == 1


def test_a_hanging_request_times_out_and_is_retried():
    with ScriptedJudgeServer(script=[HANG], reply="55") as server:
        started = time.perf_counter()
        scores, stats = score_all(config_for(server, timeout=0.3), [sample()])
        elapsed = time.perf_counter() - started
    assert scores == [55.0] and stats["judge/retries"] == 1
    assert 0.3 <= elapsed < 10.0  # waited for the timeout, not for the hang (generous: a busy CI is slow)


def test_a_dropped_connection_is_retried():
    with ScriptedJudgeServer(script=[DROP], reply="65") as server:
        scores, stats = score_all(config_for(server), [sample()])
    assert scores == [65.0] and server.count == 2 and stats["judge/retries"] == 1


def test_wrong_model_or_key_fails_fast():
    with ScriptedJudgeServer(reply=Status(404, message="model 'teacher' does not exist")) as server:
        with pytest.raises(JudgeConfigError, match="judge.model='teacher'"):
            score_all(config_for(server), [sample()])
    assert server.count == 1


def test_concurrency_is_bounded_and_one_question_stays_on_one_replica():
    samples = [sample(response=RESPONSE.replace("crimson.", f"crimson {i}.")) for i in range(24)]
    with ScriptedJudgeServer(reply="80", latency=0.05) as one, ScriptedJudgeServer(reply="80", latency=0.05) as two:
        scores, _ = score_all(config_for(one, two, concurrency=6), samples)
        assert scores == [80.0] * 24
        assert one.max_in_flight + two.max_in_flight <= 6
        # One image: one question, on its home replica, 6 in flight being far below its capacity (24:0).
        assert sorted([one.count, two.count]) == [0, 24]
        # The earlier per-request rule (routing: request) passes requests on once the home has
        # ceil(1.25 x 6 / 2) = 4 in flight: about a third reach the other replica.
        scores, _ = score_all(config_for(one, two, concurrency=6, routing="request"), samples)
    assert scores == [80.0] * 24
    assert one.count + two.count == 48 and min(one.count, two.count) >= 6


def test_a_large_data_url_is_spliced_into_the_body_exactly_and_a_forged_stand_in_stays_text():
    """Data URLs are JSON-encoded once and spliced into each body (:mod:`refine_rft.judge.wire`): the
    server gets the very picture, and a response that imitates the stand-in is judged as written."""
    import json
    import random

    from refine_rft.judge.wire import LONG_URL, BodyEncoder

    rng = random.Random(0)
    noisy = Image.frombytes("RGB", (300, 200), bytes(rng.randrange(256) for _ in range(300 * 200 * 3)))
    forged = RESPONSE.replace("crimson.", 'crimson "refine-rft-image-0-0" {"url": "refine-rft-image-x-0"} \u00e9.')
    with ScriptedJudgeServer(reply="75") as server:
        score_all(config_for(server, prompt="paper"), [sample(response=forged, image=noisy)] * 2)
    for request in server.requests:
        url = request["messages"][1]["content"][1]["image_url"]["url"]
        assert len(url) > LONG_URL  # long enough to be spliced
        assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (300, 200)
        assert student_text(request) == forged
    body = {"model": "m", "messages": server.requests[0]["messages"], "max_tokens": 16}
    encoder = BodyEncoder()
    assert encoder.encode(body) == encoder.encode(body) == json.dumps(body).encode() and encoder.hits == 1


@pytest.mark.parametrize("prompt, image_part, judged", [
    ("paper", 1, RESPONSE),  # both: instructions, then the image, then the response
    ("label_aware", 1, "<think>The wings are crimson.</think>\n<attribute>crimson wings</attribute>"),
])
def test_the_image_is_sent_downscaled_and_the_student_text_fenced(prompt, image_part, judged):
    big = Image.new("RGB", (1000, 500), (40, 110, 220))
    with ScriptedJudgeServer(reply="75") as server:
        score_all(config_for(server, max_image_side=128, prompt=prompt), [sample(image=big)])
    request = server.requests[0]
    assert request["temperature"] == 0 and request["max_tokens"] == 16
    url = request["messages"][1]["content"][image_part]["image_url"]["url"]
    header, data = url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (128, 64)
    assert student_text(request) == judged


def test_the_paper_prompt_shows_neither_options_nor_answer_and_has_its_own_cache_version(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    with ScriptedJudgeServer(reply="75") as server:
        score_all(config_for(server, prompt="paper", cache_path=cache), [sample()])
        text = "\n".join(part.get("text", "") for message in server.requests[0]["messages"]
                         for part in (message["content"] if isinstance(message["content"], list)
                                      else [{"text": message["content"]}]))
        assert not any(option in text for option in OPTIONS) and "correct answer" not in text
        score_all(config_for(server, prompt="label_aware", cache_path=cache), [sample()])  # another prompt: asked
        score_all(config_for(server, prompt="paper", cache_path=cache), [sample()])  # cached
    assert server.count == 2
    assert "Crimson-winged Finch" in str(server.requests[1]["messages"])  # the label-aware prompt shows the options


def test_cache_hits_skip_requests_files_keyed_by_their_bytes_pictures_by_their_pixels(tmp_path):
    picture = Image.new("RGB", (64, 48), (200, 30, 40))
    picture.save(tmp_path / "bird.png")
    (tmp_path / "copy.png").write_bytes((tmp_path / "bird.png").read_bytes())
    config_kw = dict(cache_path=str(tmp_path / "judge.sqlite"))
    with ScriptedJudgeServer(reply="85") as server:
        first, _ = score_all(config_for(server, **config_kw), [sample(image=str(tmp_path / "bird.png"))])
        copy, stats = score_all(config_for(server, **config_kw), [sample(image=str(tmp_path / "copy.png"))])
        assert stats["judge/cache_hits"] == 1 and server.count == 1  # the same bytes at another path
        decoded, _ = score_all(config_for(server, **config_kw), [sample(image=picture)])  # asked: by pixels
        again, stats = score_all(config_for(server, **config_kw), [sample(image=picture.copy())])
        assert stats["judge/cache_hits"] == 1
        other, _ = score_all(config_for(server, **config_kw), [sample(response=RESPONSE.replace("crimson", "black"))])
    assert first == copy == decoded == again == other == [85.0]
    assert server.count == 3  # the file, the decoded picture and the different text; no cached one


def test_a_file_that_fits_is_sent_as_its_own_bytes_and_others_are_decoded(tmp_path):
    """A JPEG or PNG within ``max_image_side``, upright and opaque, goes as the file itself (hashed by
    its bytes, never decoded); a larger, rotated or transparent one is decoded and re-encoded."""
    fits = tmp_path / "fits.png"
    Image.effect_noise((60, 40), 60).convert("RGB").save(fits)
    rotated, large, clear = tmp_path / "rotated.jpg", tmp_path / "large.jpg", tmp_path / "clear.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    Image.new("RGB", (60, 40), (10, 200, 10)).save(rotated, exif=exif)
    Image.new("RGB", (300, 200), (10, 10, 200)).save(large)
    Image.new("RGBA", (60, 40), (0, 0, 0, 0)).save(clear)
    with ScriptedJudgeServer(reply="85") as server:
        score_all(config_for(server, max_image_side=128),
                  [sample(image=str(path), response=RESPONSE.replace("crimson.", f"crimson {path.stem}."))
                   for path in (fits, rotated, large, clear)])
    sent = {}
    for request in server.requests:
        part = next(p for p in request["messages"][1]["content"] if p["type"] == "image_url")
        header, data = part["image_url"]["url"].split(",", 1)
        name = next(p.stem for p in (fits, rotated, large, clear) if f"crimson {p.stem}." in student_text(request))
        sent[name] = (header, base64.b64decode(data))
    assert sent["fits"] == ("data:image/png;base64", fits.read_bytes())
    assert sent["rotated"][0] == "data:image/jpeg;base64"
    assert Image.open(io.BytesIO(sent["rotated"][1])).size == (40, 60)  # turned upright
    assert Image.open(io.BytesIO(sent["large"][1])).size == (128, 85)
    assert min(Image.open(io.BytesIO(sent["clear"][1])).getpixel((0, 0))) > 245  # on white (JPEG-rounded)


def test_failures_are_not_cached(tmp_path):
    config_kw = dict(cache_path=str(tmp_path / "judge.sqlite"), max_retries=0)
    with ScriptedJudgeServer(script=[Status(500)], reply="85") as server:
        assert score_all(config_for(server, **config_kw), [sample()])[0] == [None]
        assert score_all(config_for(server, **config_kw), [sample()])[0] == [85.0]
    assert server.count == 2


def test_rsc_json_is_parsed_with_feedback():
    reply = ('Here is my grading:\n```json\n{"RSC_A": 100, "RSC_A_feedback": "Correct choice.", "RSC_U": 70, '
             '"RSC_U_feedback": "Mostly right.", "RSC_O": 90, "RSC_O_feedback": "Good format."}\n```')
    with ScriptedJudgeServer(reply=reply) as server:
        judge = make_judge(config_for(server))
        result = asyncio.run(judge.rsc(sample(style="cot")))
    assert result["RSC_A"] == 100.0 and result["RSC_U"] == 70.0 and result["RSC_O"] == 90.0
    assert result["RSC_U_feedback"] == "Mostly right."
    assert "Ground-truth answer: B. Crimson-winged Finch" in server.requests[0]["messages"][1]["content"][0]["text"]


def test_the_api_key_is_read_from_the_environment_and_never_saved(monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret-123")
    config = JudgeConfig(base_urls=["http://127.0.0.1:9/v1"], model="m", api_key_env="MY_JUDGE_KEY")
    assert config.api_key() == "sk-secret-123"
    assert "sk-secret-123" not in repr(config) and "sk-secret-123" not in str(config.to_dict())


def test_config_fails_fast_naming_the_field():
    with pytest.raises(ValueError, match="unknown key 'concurency'"):
        JudgeConfig.from_dict({"concurency": 4})
    with pytest.raises(ValueError, match="model"):
        JudgeConfig.from_dict({"backend": "openai", "base_urls": ["http://x/v1"]})
    with pytest.raises(ValueError, match="backend"):
        JudgeConfig.from_dict({"backend": "gpt"})


def test_32_requests_are_in_flight_at_once():
    samples = [sample(response=RESPONSE.replace("crimson.", f"crimson {i}.")) for i in range(64)]
    with ScriptedJudgeServer(reply="80", latency=0.25) as server:
        started = time.perf_counter()
        scores, _ = score_all(config_for(server, concurrency=32), samples)
        elapsed = time.perf_counter() - started
    assert scores == [80.0] * 64
    assert server.max_in_flight == 32
    assert elapsed < 64 * 0.25 / 2  # far from sequential (16 s); two waves of 0.25 s in the ideal case


def test_the_cache_is_shared_safely_by_threads_and_connections(tmp_path):
    import threading

    from refine_rft.judge.cache import JudgeCache

    path = tmp_path / "judge.sqlite"

    def writer(worker: int) -> None:
        cache = JudgeCache(path)  # one connection per writer, as separate processes would have
        for i in range(50):
            cache.put(f"{worker}-{i}", {"score": float(i)})
        cache.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cache = JudgeCache(path)
    assert len(cache) == 200 and cache.get("3-49") == {"score": 49.0}


def test_the_scripted_server_lists_its_model_to_the_openai_client():
    import openai

    with ScriptedJudgeServer(model="teacher-38b") as server:
        client = openai.OpenAI(base_url=server.url, api_key="EMPTY", max_retries=0)
        assert [model.id for model in client.models.list()] == ["teacher-38b"]
        client.close()


def test_a_rejected_request_is_not_retried():
    with ScriptedJudgeServer(reply=Status(400, message="prompt too long")) as server:
        scores, stats = score_all(config_for(server), [sample()])
    assert scores == [None] and server.count == 1
    assert stats["judge/failures"] == 1 and stats["judge/retries"] == 0


@pytest.mark.parametrize("content, expected", [
    ([{"type": "text", "text": "Score: "}, {"type": "text", "text": "85"}], 0.85),  # parts: text joined
    (85, None), (None, None), ([{"type": "image_url", "image_url": {"url": "x"}}], None), ({"score": 85}, None),
])
def test_reply_content_that_is_not_a_string_is_read_or_a_failed_judgement(content, expected):
    """Through the R_cot reward as TRL calls it: never a crash; a failure is counted and quoted."""
    from refine_rft.rewards.reasoning import make_reasoning_reward
    from refine_rft_workshop.testing.scripted_server import Content

    with ScriptedJudgeServer(reply=Content(content)) as server:
        reward = make_reasoning_reward(config_for(server, max_failure_rate=1.0))
        scores = asyncio.run(reward([[{"role": "assistant", "content": RESPONSE}]], image=[sample()["image"]]))
    assert scores == [expected] and server.count == 1  # no reminder: a reply without text is not retried
    stats = reward.stats.read_and_reset()
    assert stats["judge/failures"] == (expected is None)
    if expected is None:
        assert reward.judge.latest_failure().startswith(f"a reply without text from {server.url}: content ")


def test_refine_rft_judge_counts_replies_without_text_as_failed_rows(tmp_path, capsys):
    import json

    from refine_rft.cli import main as refine_rft
    from refine_rft_workshop.testing.scripted_server import Content

    Image.new("RGB", (32, 24), (200, 30, 40)).save(tmp_path / "bird.png")
    rows = [{"id": f"q{i}", "style": "cot", "dataset": "birds", "image": "bird.png", "label": "Finch",
             "options": ["Tit", "Finch"], "answer": 1, "noun": "birds", "response": RESPONSE} for i in range(3)]
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    rsc = '{"RSC_A": 100, "RSC_A_feedback": "ok", "RSC_U": 90, "RSC_U_feedback": "ok", "RSC_O": 100, "RSC_O_feedback": "ok"}'
    with ScriptedJudgeServer(script=[rsc, Content(7), Content([{"type": "text", "text": rsc}])],
                             reply=Content(None)) as server:
        code = refine_rft(["judge", str(tmp_path / "predictions.jsonl"), "--endpoint", server.url, "--model", "teacher",
                           "--out", str(tmp_path / "scores.jsonl"), "--concurrency", "1"])
    assert code == 1  # rows failed, no traceback
    assert "2 of 3 responses could not be judged" in capsys.readouterr().err
    assert len((tmp_path / "scores.jsonl").read_text().splitlines()) == 1
