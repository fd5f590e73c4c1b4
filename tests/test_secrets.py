"""Secrets never leave: a judge's API key, whatever a server sends back, is ``***`` in every message, log
line, stored reply, feedback field, settings file, cache and report.

The server is the scripted judge on 127.0.0.1 playing a careless gateway: it echoes the request's
``Authorization`` header in its error bodies, in its 200 replies (in the RSC feedback) and in a response
header. The commands run in-process through the real entry point and the real ``openai`` client.
"""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from refine_rft.cli import main as refine_rft
from refine_rft.prompts import answer_text
from refine_rft_workshop.synthetic import attribute_phrase, synthetic_questions
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, Status, hashed_reply, student_text

KEY = "sk-live-3f9a1c77e0b24d5e9c0d"
ENV = "REFINE_RFT_TEST_JUDGE_KEY"


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A run folder with cot predictions, and the key in the environment."""
    monkeypatch.setenv(ENV, KEY)
    folder = tmp_path / "run"
    rows = []
    for row in synthetic_questions(tmp_path / "data", "test", per_class=1, num_classes=2):
        traits = ", ".join(attribute_phrase(a, v) for a, v in row["attributes"].items())
        rows.append({**row, "style": "cot", "response": f"<think>The bird has {traits}.</think><attribute>"
                     f"{traits}</attribute><answer>{answer_text(row['options'], row['answer'])}</answer>"})
    folder.mkdir()
    (folder / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def judge(run, server, *extra) -> int:
    return refine_rft(["judge", str(run / "predictions.jsonl"), "--endpoint", server.url, "--model", "teacher",
                       "--api-key-env", ENV, "--out", str(run / "judge_scores.jsonl"), *map(str, extra)])


def no_key_anywhere(run, capsys, caplog, *more: str) -> str:
    """Assert the key is in no file under ``run``, no output and no log record; return stderr."""
    out = capsys.readouterr()
    texts = [out.out, out.err, caplog.text, *(record.getMessage() for record in caplog.records), *more]
    texts += [path.read_bytes().decode(errors="replace") for path in run.rglob("*") if path.is_file()]
    assert not any(KEY in text for text in texts)
    return out.err


def test_a_401_that_echoes_the_key_is_masked(run, capsys, caplog):
    with ScriptedJudgeServer(script=[Status(401, message="invalid credentials: {authorization}")],
                             echo_authorization=True) as server:
        assert judge(run, server, "--max-retries", "0") == 2
    err = no_key_anywhere(run, capsys, caplog)
    assert "invalid credentials: Bearer ***" in err and f"${ENV} (set)" in err


def test_replies_and_errors_that_quote_the_key_are_stored_and_logged_masked(run, tmp_path, capsys, caplog):
    second = json.loads((run / "predictions.jsonl").read_text().splitlines()[1])["response"]

    def careless(request: dict):
        """A valid RSC reply whose feedback quotes the key; for the second row a 500 that does too."""
        reply = hashed_reply(request)
        if "RSC_A" not in reply:
            return reply
        if student_text(request) == second:
            return Status(500, message="upstream refused {authorization}")
        scores = json.loads(reply)
        scores["RSC_A_feedback"] = "Your key is {authorization}; the answer is right."
        return json.dumps(scores)

    cache = tmp_path / "cache.sqlite"
    caplog.set_level(logging.DEBUG)
    with ScriptedJudgeServer(reply=careless, echo_authorization=True) as server:
        # The health check's judgement, the first row, then a 500 for the second row (no retries).
        assert judge(run, server, "--max-retries", "0", "--cache", cache) == 1
    with sqlite3.connect(cache) as db:
        stored = "\n".join(str(row) for row in db.execute("SELECT * FROM judgements"))
    err = no_key_anywhere(run, capsys, caplog, stored)
    rows = [json.loads(line) for line in (run / "judge_scores.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["RSC_A_feedback"] == "Your key is Bearer ***; the answer is right."
    assert "Bearer ***" in stored
    assert "upstream refused Bearer ***" in caplog.text and "1 of 2 responses could not be judged" in err
    # The report built from those scores: no key in the page either.
    assert refine_rft(["report", str(run), "--out", str(tmp_path / "report")]) in (0, 1)
    page = (tmp_path / "report" / "report.html").read_text()
    assert KEY not in page and "Bearer ***" in page
    no_key_anywhere(tmp_path / "report", capsys, caplog)


def test_short_placeholders_are_not_masked():
    from refine_rft.masking import mask, register_secret

    register_secret("EMPTY")
    assert mask("EMPTY replies") == "EMPTY replies"
