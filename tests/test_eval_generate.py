"""Generation on the embedded tiny model: all three prompts, resume, kill -9 and resume, vLLM glue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from refine_rft_workshop.synthetic import synthetic_questions
import refine_rft.evaluate.generate as generate
from refine_rft.evaluate import EvalSettings, generate_predictions, score_predictions
from refine_rft.evaluate.generate import TIMING_FIELDS, HFGenerator, load_questions, vllm_requests
from refine_rft.resolution import ImageResolution
from refine_rft.files import iter_jsonl_tolerant, write_jsonl_atomic
from refine_rft.prompts import STYLES
from refine_rft_workshop.models import resolve_model_path as tiny

TOKENS = {"choice": 3, "both": 6, "cot": 10}


def settings(**values) -> EvalSettings:
    """The tiny model at the processor's resolution, with ``values`` over it."""
    return EvalSettings(tiny("tiny:qwen2_vl"), ImageResolution(), **{"trust_remote_code": True, **values})


def use_generator(monkeypatch, generator) -> None:
    """Make ``generate_predictions`` use ``generator`` (through its one seam, ``make_generator``)."""
    monkeypatch.setattr(generate, "make_generator", lambda *args, **kwargs: generator)


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval-data")
    rows = synthetic_questions(folder, "test", per_class=1, num_classes=6)
    return write_jsonl_atomic(folder / "test.jsonl", rows)


@pytest.fixture(scope="module")
def generator(tiny_model_path):
    return HFGenerator(str(tiny_model_path), trust_remote_code=True)


def _stable(path):
    """Rows without timing fields, sorted by key: what two equivalent runs must agree on."""
    rows = [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in iter_jsonl_tolerant(path)]
    return sorted(rows, key=lambda r: (r["id"], r["style"]))


def test_eval_all_styles_then_rerun_skips(questions, generator, tmp_path, monkeypatch):
    use_generator(monkeypatch, generator)
    path = generate_predictions([questions], STYLES, tmp_path, settings(batch_size=4, max_new_tokens=TOKENS))
    rows = list(iter_jsonl_tolerant(path))
    records = load_questions([questions])
    assert sorted((r["id"], r["style"]) for r in rows) == sorted((q["id"], s) for q in records for s in STYLES)
    for row in rows:
        record = next(q for q in records if q["id"] == row["id"])
        for field in ("dataset", "image", "label", "options", "answer", "noun", "attributes", "option_attributes"):
            assert row[field] == record[field]
        assert isinstance(row["response"], str) and row["model"] == tiny("tiny:qwen2_vl") and row["gen_seconds"] >= 0
    scores = score_predictions(path)
    assert set(scores["styles"]) == set(STYLES)
    assert all(s["n"] == len(records) for s in scores["styles"].values())
    before = path.read_bytes()

    class Refuses:  # a rerun with everything done must not generate at all
        def generate(self, *args, **kwargs):
            raise AssertionError("rerun generated again")

    use_generator(monkeypatch, Refuses())
    generate_predictions([questions], STYLES, tmp_path, settings(batch_size=4, max_new_tokens=TOKENS))
    assert path.read_bytes() == before


def test_batched_equals_one_at_a_time(questions, generator):
    records = load_questions([questions])[:4]
    batched = generator.generate(records, "cot", 8)
    single = [generator.generate([r], "cot", 8)[0] for r in records]
    assert batched == single


def test_partial_batch_is_regenerated_whole(questions, generator, tmp_path, monkeypatch):
    use_generator(monkeypatch, generator)
    full = generate_predictions([questions], ["choice"], tmp_path / "full", settings(batch_size=4, max_new_tokens=TOKENS))
    rows = _stable(full)
    # Keep only 2 rows of the first batch of 4: the resumed run regenerates that batch and adds the rest.
    write_jsonl_atomic(tmp_path / "part" / "predictions.jsonl", list(iter_jsonl_tolerant(full))[:2])
    calls = []

    class Spy:
        def generate(self, records, style, *args):
            calls.append(len(records))
            return generator.generate(records, style, *args)

    use_generator(monkeypatch, Spy())
    part = generate_predictions([questions], ["choice"], tmp_path / "part", settings(batch_size=4, max_new_tokens=TOKENS))
    assert calls == [4, 2] and _stable(part) == rows


def test_bad_inputs_fail_with_names(questions, tmp_path):
    with pytest.raises(ValueError, match="valid styles: choice, both, cot"):
        generate_predictions([questions], ["guess"], tmp_path, settings())
    with pytest.raises(ValueError, match="valid backends"):
        generate_predictions([questions], ["choice"], tmp_path, settings(backend="onnx"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "q", "dataset": "cub"}) + "\n")
    out = generate_predictions([bad], ["choice"], tmp_path / "bad", settings())  # rejected, not raised
    assert not out.exists()
    [reject] = [json.loads(line) for line in (tmp_path / "bad" / "rejects.jsonl").read_text().splitlines()]
    assert reject["id"] == "q" and reject["line"] == 1 and reject["reason"].startswith("missing field")


def test_vllm_backend_missing_is_a_clear_error(questions, tmp_path):
    pytest.importorskip("transformers")
    if __import__("importlib").util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    with pytest.raises(ImportError, match=r"needs vLLM.*pip install -e '\.\[vllm\]'"):
        generate_predictions([questions], ["choice"], tmp_path, settings(backend="vllm"))


def test_vllm_requests_carry_prompt_and_image(questions, generator):
    records = load_questions([questions])[:2]
    requests = vllm_requests(generator.processor, records, "cot")
    assert [r["prompt"] for r in requests] == generator.prompts(records, "cot")
    assert "<|vision_start|>" in requests[0]["prompt"] and "<answer>" in requests[0]["prompt"]
    assert requests[0]["multi_modal_data"]["image"].size == (112, 112)


@pytest.mark.slow
# SIGTERM's default action ends Python as SIGKILL does (no handler runs): the two cases cover it.
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=lambda s: s.name)
@pytest.mark.end_to_end
def test_end_to_end_kill_9_then_resume_equals_uninterrupted(questions, tmp_path, stop):
    """Stopped mid-run by a signal (kill -9, a scheduler's SIGTERM, Ctrl-C), then rerun: the same rows,
    byte for byte but for the timings, as an uninterrupted run."""
    args = ["--model", tiny("tiny:qwen2_vl"), "--data", str(questions), "--prompts", "choice,cot",
            "--batch-size", "1", "--max-new-tokens", "cot=48", "--trust-remote-code"]
    out = tmp_path / "killed" / "predictions.jsonl"
    command = [sys.executable, "-m", "refine_rft.cli", "eval", *args, "--out", str(out.parent)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 120
    while sum(1 for _ in iter_jsonl_tolerant(out)) < 3:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    process.send_signal(stop)
    assert process.wait() in (-stop, 128 + stop, 130)  # killed, or Ctrl-C's exit status
    done = sum(1 for _ in iter_jsonl_tolerant(out))
    assert 3 <= done < 12, "the kill did not land mid-run"
    from refine_rft.cli import main
    from refine_rft_workshop.testing.commands import run_in_process

    resumed = run_in_process(main, command[3:])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reference = generate_predictions([questions], ["choice", "cot"], tmp_path / "reference",
                                     settings(batch_size=1, max_new_tokens={"cot": 48}))
    assert [json.dumps(row) for row in _stable(out)] == [json.dumps(row) for row in _stable(reference)]
    assert len(_stable(out)) == 12
