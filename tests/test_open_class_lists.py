"""One class list per dataset, used everywhere: a name of any class of the dataset other than the
label scores 0, whichever base-to-new file is scored or trained on."""

from __future__ import annotations

import json

import pytest

import refine_rft.evaluate.generate as generate
from refine_rft.cli import main as cli_main
from refine_rft.data.records import read_questions
from refine_rft.errors import DataError
from refine_rft.evaluate import EvalSettings, generate_predictions, score_predictions
from refine_rft.openworld import CLASSES_FILE, read_class_lists
from refine_rft.resolution import ImageResolution
from refine_rft.rewards.open import make_open_classification_reward
from refine_rft.rewards.verifier import decide_by_rule
from refine_rft.train.grpo import training_classes
from refine_rft_workshop.cli import main as workshop_main
from refine_rft_workshop.models import resolve_model_path as tiny


@pytest.fixture(scope="module")
def split_data(tmp_path_factory):
    """The synthetic birds under a base-to-new split, as the workshop command writes them."""
    out = tmp_path_factory.mktemp("b2n")
    assert workshop_main(["synthetic", "--out", str(out), "--classes", "12", "--shots", "1",
                          "--test-per-class", "1", "--base-to-new"]) == 0
    split = json.loads((out / "split.json").read_text())["synthetic"]
    return out, split["seen"], split["unseen"]


class TwoNames:
    """A generator that answers every question twice over: the label alone, or the label and a class
    of the other side of the split (which the scored file does not show)."""

    def __init__(self, other: str):
        self.other, self.answered = other, 0

    def generate(self, records, style, max_new_tokens):
        out = []
        for r in records:
            self.answered += 1
            out.append(r["label"] if self.answered % 2 else f"{r['label']}, {self.other}")
        return out


def _eval_alone(questions, other, out, monkeypatch):
    monkeypatch.setattr(generate, "make_generator", lambda *args, **kwargs: TwoNames(other))
    settings = EvalSettings(tiny("tiny:qwen2_vl"), ImageResolution(), batch_size=2, max_new_tokens={"open": 8})
    return generate_predictions([questions], ["open"], out, settings)


@pytest.mark.parametrize("side", ["unseen", "seen"])
def test_a_file_of_one_side_scored_alone_knows_the_other_sides_classes(split_data, side, tmp_path, monkeypatch):
    folder, seen, unseen = split_data
    other = seen[0] if side == "unseen" else unseen[0]
    path = _eval_alone(folder / f"test_{side}.jsonl", other, tmp_path / "run", monkeypatch)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["dataset"] for r in rows} == {"synthetic"} and other not in {o for r in rows for o in r["options"]}
    assert read_class_lists(tmp_path / "run")["synthetic"]["classes"] == \
        read_class_lists(folder)["synthetic"]["classes"]  # eval copied the list beside the predictions
    named_alone = sum(r["response"] == r["label"] for r in rows)
    assert 0 < named_alone < len(rows)
    scores = score_predictions(path)["styles"]["open"]
    assert scores["average"] == pytest.approx(100.0 * named_alone / len(rows))
    assert scores["per_class_split"][side]["accuracy"] == pytest.approx(100.0 * named_alone / len(rows))


def test_without_the_class_list_a_split_file_is_refused_not_scored_leniently(split_data, tmp_path, monkeypatch):
    folder, seen, _ = split_data
    path = _eval_alone(folder / "test_unseen.jsonl", seen[0], tmp_path / "run", monkeypatch)
    (tmp_path / "run" / CLASSES_FILE).unlink()
    with pytest.raises(DataError, match="classes.json"):
        score_predictions(path)


def test_training_rows_from_the_seen_split_reward_no_unseen_name_beside_the_label(split_data):
    folder, seen, unseen = split_data
    train_file = folder / "train.jsonl"
    records = read_questions(train_file)
    assert {o for r in records for o in r["options"]} <= set(seen)  # no training row shows an unseen class
    classes = training_classes(train_file, records)
    label = records[0]["label"]
    completions = [f"<answer>{label}</answer>", f"<answer>{label}, {unseen[0]}</answer>",
                   f"<answer>{unseen[0]}</answer>"]
    batch = {"label": [label] * 3, "dataset": ["synthetic"] * 3, "options": [records[0]["options"]] * 3}
    assert make_open_classification_reward(classes)(completions, **batch) == [1.0, 0.0, 0.0]
    # The rows alone would not know the unseen class: the two names would pass.
    assert make_open_classification_reward()(completions, **batch)[1] == 1.0
    # The verifier decides both by rule, without asking its LLM.
    vocab = classes["synthetic"]
    assert [decide_by_rule(c[8:-9], label, vocab) for c in completions] == [1.0, 0.0, 0.0]


def test_prepare_records_every_class_and_alias_of_a_benchmark_beside_its_files(tmp_path):
    from refine_rft_workshop.testing.fake_layouts import tiny_jpeg, write_layout

    classes = ["ATR-42", "A300B4", "A310", "A318", "ATR-72", "A320", "A321", "A340-200"]
    write_layout("aircraft", tmp_path, {"train": [(f"{100 + i:07d}.jpg", c) for i, c in enumerate(classes)],
                                        "test": [(f"{200 + i:07d}.jpg", c) for i, c in enumerate(classes)]},
                 classes, image=tiny_jpeg())
    assert cli_main(["prepare", "aircraft", "--root", str(tmp_path), "--split", "test", "--distractors", "random",
                     "--base-to-new", "--out", str(tmp_path / "out" / "test.jsonl")]) == 0
    recorded = read_class_lists(tmp_path / "out")["aircraft"]
    assert sorted(recorded["classes"]) == sorted(classes)
    unseen = read_questions(tmp_path / "out" / "test_unseen.jsonl")
    assert {r["label"] for r in unseen} < set(recorded["classes"])
