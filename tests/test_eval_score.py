"""Scoring rules on hand-written predictions (no model)."""

from __future__ import annotations

import json

import pytest

from refine_rft.evaluate.score import parsed_choice, score_predictions
from refine_rft.files import write_jsonl_atomic
from refine_rft.parsing import both_choice

OPTIONS = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]


@pytest.mark.parametrize("response, expected", [
    ("B", 1), ("b", 1), ("(C)", 2), ("D. because the wings are rusty", 3), ("A bird with dark wings", None),
    ("Sooty Albatross", 1), ("", None), ("A or B", None),
])
def test_choice_rule(response, expected):
    assert parsed_choice("choice", response, OPTIONS) == expected


@pytest.mark.parametrize("response, expected", [
    ("B. Sooty_Albatross", 1),
    ("The answer is (C) Least Auklet.", 2),
    ("B", None),                         # letter only
    ("Sooty_Albatross", None),           # name only
    ("A. Sooty_Albatross", None),        # letter and name disagree
    ("B. Sooty_Albatross or C. Least_Auklet", None),
    ("Albatross", None),
])
def test_both_rule_needs_letter_and_name_agreeing(response, expected):
    assert both_choice(response, OPTIONS) == expected
    assert parsed_choice("both", response, OPTIONS) == expected


@pytest.mark.parametrize("response, expected", [
    ("<think>dark body</think><attribute>dark</attribute><answer>B. Sooty_Albatross</answer>", 1),
    ("<answer>C</answer>", 2),
    ("<think>it is B</think> B. Sooty_Albatross", None),     # no <answer> block: wrong whatever it says
    ("<answer></answer>", None),
    ("<answer>A or B</answer>", None),
])
def test_cot_rule_requires_answer_block(response, expected):
    assert parsed_choice("cot", response, OPTIONS) == expected


def test_unknown_style_fails():
    with pytest.raises(ValueError, match="unknown prompt style"):
        parsed_choice("guess", "B", OPTIONS)


def test_score_predictions_per_dataset_average_and_unparseable(tmp_path):
    def row(qid, dataset, style, response, answer=1):
        return {"id": qid, "dataset": dataset, "style": style, "options": OPTIONS, "answer": answer,
                "response": response, "image": f"{qid}.png", "noun": "birds"}

    rows = [
        row("c1", "cub", "choice", "B"), row("c2", "cub", "choice", "A"),           # cub 50%
        row("c3", "cub", "choice", "B"), row("c4", "cub", "choice", "dunno"),       # -> 2/4 right, 1 none
        row("d1", "dogs", "choice", "B"),                                          # dogs 100%
        row("c1", "cub", "cot", "<answer>B. Sooty_Albatross</answer>"),
        row("c2", "cub", "cot", "B. Sooty_Albatross"),
    ]
    path = write_jsonl_atomic(tmp_path / "predictions.jsonl", rows)
    scores = score_predictions(path)
    choice = scores["styles"]["choice"]
    assert choice["per_dataset"]["cub"] == {"n": 4, "accuracy": 50.0, "unparseable": 25.0}
    assert choice["per_dataset"]["dogs"]["accuracy"] == 100.0
    assert choice["average"] == 75.0                      # mean over datasets, not over questions
    assert choice["unparseable"] == pytest.approx(20.0)
    assert scores["styles"]["cot"]["average"] == 50.0
    assert json.loads((tmp_path / "scores.json").read_text()) == scores


def test_score_predictions_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no predictions file"):
        score_predictions(tmp_path / "predictions.jsonl")
