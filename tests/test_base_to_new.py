"""Base-to-new splits: seen classes for training, unseen ones only in their own test set."""

from __future__ import annotations

import json

import pytest

from refine_rft.cli import main as cli_main
from refine_rft.data.base_to_new import class_split, half_split
from refine_rft.data.records import read_questions
from refine_rft.evaluate.score import score_rows
from refine_rft_workshop.cli import main as workshop_main
from refine_rft_workshop.testing.fake_layouts import tiny_jpeg, write_layout


def _prepare_synthetic(out, *extra):
    assert workshop_main(["synthetic", "--out", str(out), "--classes", "12", "--shots", "2",
                     "--test-per-class", "1", "--base-to-new", *extra]) == 0
    return {name: read_questions(out / f"{name}.jsonl") for name in ("train", "test_seen", "test_unseen")}


def _without_paths(rows):
    return [{k: v for k, v in r.items() if k != "image"} for r in rows]


def test_synthetic_split_keeps_unseen_classes_out_of_training(tmp_path):
    sets = _prepare_synthetic(tmp_path / "a")
    split = json.loads((tmp_path / "a" / "split.json").read_text())["synthetic"]
    seen, unseen = set(split["seen"]), set(split["unseen"])
    assert len(seen) == len(unseen) == 6 and not seen & unseen and "seeded half split" in split["source"]
    shown_in_training = {o for r in sets["train"] for o in r["options"]} | {r["label"] for r in sets["train"]}
    assert shown_in_training <= seen and not shown_in_training & unseen
    assert {r["label"] for r in sets["test_seen"]} == seen and {r["label"] for r in sets["test_unseen"]} == unseen
    assert {r["class_split"] for r in sets["test_unseen"]} == {"unseen"}
    assert {r["class_split"] for r in sets["train"] + sets["test_seen"]} == {"seen"}
    ids = [r["id"] for rows in sets.values() for r in rows]
    assert len(ids) == len(set(ids))


def test_the_split_is_deterministic_and_seeded(tmp_path):
    first, second = _prepare_synthetic(tmp_path / "a"), _prepare_synthetic(tmp_path / "b")
    assert all(_without_paths(first[k]) == _without_paths(second[k]) for k in first)
    other = _prepare_synthetic(tmp_path / "c", "--seed", "1")
    assert {r["label"] for r in other["test_unseen"]} != {r["label"] for r in first["test_unseen"]}
    assert half_split(list("abcdef"), 3) == half_split(list("fedcba"), 3)


def _aircraft(tmp_path, classes):
    train = [(f"{100 + i:07d}.jpg", c) for i, c in enumerate(classes)]
    test = [(f"{200 + i:07d}.jpg", c) for i, c in enumerate(classes)]
    write_layout("aircraft", tmp_path, {"train": train, "test": test}, classes, image=tiny_jpeg())


def test_a_benchmark_gets_fine_r1s_published_split(tmp_path, capsys):
    # FGVC names its variants "A300B4"; Fine-R1 writes "Airbus A300B4" (seen) and "Airbus A320" (unseen).
    classes = ["ATR-42", "A300B4", "A310", "A318", "ATR-72", "A320", "A321", "A340-200"]
    _aircraft(tmp_path, classes)
    common = ["--root", str(tmp_path), "--distractors", "random", "--base-to-new"]
    assert cli_main(["prepare", "aircraft", "--split", "train", "--shots", "1", "--out",
                     str(tmp_path / "out" / "train.jsonl"), *common]) == 0
    assert cli_main(["prepare", "aircraft", "--split", "test", "--out", str(tmp_path / "out" / "test.jsonl"),
                     *common]) == 0
    split = json.loads((tmp_path / "out" / "split.json").read_text())["aircraft"]
    assert split["seen"] == ["A300B4", "A310", "A318", "ATR-42"]
    assert split["unseen"] == ["A320", "A321", "A340-200", "ATR-72"]
    assert "Fine-R1" in split["source"] and "FineR1_ICLR2026" in split["source"]
    train = read_questions(tmp_path / "out" / "train.jsonl")
    assert {o for r in train for o in r["options"]} <= set(split["seen"])
    unseen = read_questions(tmp_path / "out" / "test_unseen.jsonl")
    assert {r["label"] for r in unseen} == set(split["unseen"])
    assert "Fine-R1" in capsys.readouterr().out


def test_a_benchmark_class_outside_fine_r1s_split_is_refused(tmp_path, capsys):
    _aircraft(tmp_path, ["ATR-42", "A300B4", "Sopwith Camel", "A320"])
    code = cli_main(["prepare", "aircraft", "--root", str(tmp_path), "--split", "train", "--shots", "1",
                     "--distractors", "random", "--base-to-new", "--out", str(tmp_path / "t.jsonl")])
    assert code == 2 and "Sopwith Camel" in capsys.readouterr().err


def test_custom_data_gets_a_seeded_half_split():
    split = class_split("my_fungi", ["a", "b", "c", "d"], seed=0)
    assert len(split.seen) == len(split.unseen) == 2 and "seeded" in split.source


def test_scores_show_seen_unseen_and_their_harmonic_mean():
    def rows(side, right, n):
        return [{"style": "open", "dataset": "synthetic", "label": "Crested Finch", "class_split": side,
                 "options": ["Crested Finch", "Common Finch"], "answer": 0,
                 "response": "Crested Finch" if i < right else "Common Finch"} for i in range(n)]
    scores = score_rows(rows("seen", 3, 4) + rows("unseen", 1, 4))["open"]["per_class_split"]
    assert scores["seen"]["accuracy"] == 75.0 and scores["unseen"]["accuracy"] == 25.0
    assert scores["harmonic"] == pytest.approx(37.5)


def test_prepare_paper_base_to_new_writes_both_sides_and_a_seen_only_training_set(tmp_path):
    from refine_rft.dataset_specs import DATASETS
    from refine_rft.data.paper import prepare_paper

    classes = ["ATR-42", "A300B4", "A310", "A318", "ATR-72", "A320", "A321", "A340-200"]
    _aircraft(tmp_path / "roots", classes)
    entries = {}
    for i, label in enumerate(classes):
        options = [label, *[c for c in classes if c != label][:3]]
        entries.setdefault(label, []).append({"image": f"images/{200 + i:07d}.jpg", "options": options,
                                              "groundtruth": label})
    (tmp_path / "choices").mkdir()
    (tmp_path / "choices" / DATASETS["aircraft"].choices).write_text(json.dumps(entries))
    paths = prepare_paper(tmp_path / "roots", tmp_path / "choices", tmp_path / "paper", shots=1, distractors="random",
                          datasets=("aircraft",), base_to_new=True)
    assert {"train", "test_seen/aircraft", "test_unseen/aircraft", "split", "summary", "classes"} == set(paths)
    for folder in ("", "test_seen", "test_unseen"):  # every class, beside every question file
        assert json.loads((tmp_path / "paper" / folder / "classes.json").read_text())["aircraft"]["classes"] \
            == ["A300B4", "A310", "A318", "ATR-42", "A320", "A321", "A340-200", "ATR-72"]  # seen, then unseen
    seen = read_questions(tmp_path / "paper" / "test_seen" / "aircraft.jsonl")
    unseen = read_questions(tmp_path / "paper" / "test_unseen" / "aircraft.jsonl")
    train = read_questions(tmp_path / "paper" / "train.jsonl")
    assert {r["label"] for r in seen} == {"A300B4", "A310", "A318", "ATR-42"}
    assert {r["label"] for r in unseen} == {"A320", "A321", "A340-200", "ATR-72"}
    assert not {o for r in train for o in r["options"]} & {r["label"] for r in unseen}
    assert {r["class_split"] for r in unseen} == {"unseen"} and {r["class_split"] for r in train} == {"seen"}
