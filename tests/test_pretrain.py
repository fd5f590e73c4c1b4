"""The tiny instruct base: its instruction data, its training loop and its cache."""

from __future__ import annotations

import json
import random

import pytest

from refine_rft.data.synthetic import synthetic_questions
from refine_rft.demo.instruct_data import TASKS, InstructMix, cot_target, describe_target, draw_example
from refine_rft.demo.pretrain import PretrainConfig, cache_key, cached_instruct_model
from refine_rft.judge.attributes import attribute_score
from refine_rft.parsing import extract_letter_answer
from refine_rft.rewards.rules import attribute_format_reward, classification_reward


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return synthetic_questions(tmp_path_factory.mktemp("pool"), "pool", per_class=2, num_classes=8)


def test_every_task_has_a_target_that_fits_its_prompt(records):
    rng = random.Random(0)
    for record in records:
        for task in TASKS:
            example = draw_example(record, rng, InstructMix(), task=task)
            assert example["task"] == task and example["target"]
            first = example["messages"][0]["content"][0]
            assert first == ({"type": "text", "text": first.get("text")} if task == "lookup" else {"type": "image"})
            if task in ("choice", "lookup"):
                named = record["answer"] if task == "choice" else record["options"].index(
                    first["text"].rsplit("Which letter is ", 1)[1].rstrip("?"))
                assert extract_letter_answer(example["target"], record["options"]) == named
            if task == "identify":
                assert record["label"] in example["target"]


def test_descriptions_are_what_the_attribute_judge_reads_as_true(records):
    record = records[0]
    scored = attribute_score(describe_target(record["attributes"]), record["attributes"],
                             record["option_attributes"], record["answer"])
    assert scored["accuracy"] == 1.0


def test_cot_targets_mix_formats_and_wrong_claims_as_configured(records):
    rng = random.Random(0)
    mix = InstructMix(cot_full=0.4, cot_think_answer=0.2, cot_prose=0.2, cot_broken=0.2, wrong_claim=0.3)
    targets = [(cot_target(r, rng, mix), r) for _ in range(40) for r in records]
    full = sum(attribute_format_reward([t for t, _ in targets])) / len(targets)
    assert 0.3 < full < 0.5
    # A wrong claim makes the judge's factual accuracy drop below 1 for roughly that share.
    wrong = [attribute_score(t, r["attributes"], r["option_attributes"], r["answer"])["accuracy"] < 1 for t, r in targets]
    assert 0.2 < sum(wrong) / len(wrong) < 0.4
    # Answers follow the claims: with no wrong claims every tagged answer is correct.
    clean = [(cot_target(r, rng, InstructMix(wrong_claim=0.0, cot_full=1, cot_think_answer=0, cot_prose=0,
                                             cot_broken=0)), r) for r in records]
    assert classification_reward([t for t, _ in clean], [r["options"] for _, r in clean],
                                 [r["answer"] for _, r in clean]) == [1.0] * len(clean)


def test_unknown_task_is_refused(records):
    with pytest.raises(ValueError, match="valid tasks"):
        draw_example(records[0], random.Random(0), InstructMix(), task="caption")


def test_pretraining_learns_is_cached_and_keyed_by_its_config(tmp_path, records, tiny_model_path):
    from refine_rft.files import write_jsonl_atomic

    pool = write_jsonl_atomic(tmp_path / "pool.jsonl", records)
    config = PretrainConfig(size="tiny", steps=12, describe_steps=4, warmup_steps=2, batch_size=4)
    path, cached = cached_instruct_model(pool, config, cache_dir=tmp_path / "cache", progress=False)
    assert not cached and (path / "model.safetensors").is_file()
    summary = json.loads((path / "pretrain.json").read_text())
    losses = summary["losses"]["all"]
    assert len(losses) == 12 and sum(losses[-3:]) < sum(losses[:3])  # it learns
    assert set(summary["losses"]) >= {"all", "describe"}

    again, cached = cached_instruct_model(pool, config, cache_dir=tmp_path / "cache", progress=False)
    assert cached and again == path
    other = PretrainConfig(size="tiny", steps=12, describe_steps=4, warmup_steps=2, batch_size=4, seed=1)
    from refine_rft.models.tiny import cached_tiny_model

    base = cached_tiny_model("qwen2_vl", seed=0, size="tiny")
    assert cache_key(base, pool, other) != cache_key(base, pool, config)


def test_pool_without_attributes_fails_naming_the_file(tmp_path, records):
    from refine_rft.demo.pretrain import pretrain_instruct
    from refine_rft.files import write_jsonl_atomic

    rows = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
    pool = write_jsonl_atomic(tmp_path / "plain.jsonl", rows)
    with pytest.raises(ValueError, match="plain.jsonl.*attributes"):
        pretrain_instruct(pool, tmp_path / "out", PretrainConfig(size="tiny", steps=1), progress=False)


def test_cache_key_follows_the_pool_content_not_its_folder(tmp_path, records):
    import shutil

    from refine_rft.files import write_jsonl_atomic
    from refine_rft.models.tiny import cached_tiny_model

    base = cached_tiny_model("qwen2_vl", seed=0, size="tiny")
    config = PretrainConfig(size="tiny")
    moved = []
    for row in records:
        target = tmp_path / "moved" / row["id"].replace("/", "_")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(row["image"], target)
        moved.append(dict(row, image=str(target)))
    here = write_jsonl_atomic(tmp_path / "a.jsonl", records)
    there = write_jsonl_atomic(tmp_path / "b.jsonl", moved)
    assert cache_key(base, here, config) == cache_key(base, there, config)
    changed = write_jsonl_atomic(tmp_path / "c.jsonl", [dict(moved[0], label="Other")] + moved[1:])
    assert cache_key(base, changed, config) != cache_key(base, here, config)
