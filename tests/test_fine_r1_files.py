"""Fine-R1's released evaluation files as a benchmark (``prepare fine-r1``), and the report's audit of
its closed-world protocol: released order + its substring rule, released + strict, shuffled + strict."""

from __future__ import annotations

import json

import pytest

import refine_rft.evaluate.generate as generate
from refine_rft.cli import main as cli_main
from refine_rft.data.records import read_questions
from refine_rft.evaluate import EvalSettings, generate_predictions, score_predictions
from refine_rft.openworld import read_class_lists
from refine_rft.report.runs import load_run
from refine_rft.report.tables import all_tables
from refine_rft.resolution import ImageResolution
from refine_rft_workshop.models import resolve_model_path as tiny
from refine_rft_workshop.testing.fake_layouts import tiny_jpeg

GULLS = ["California Gull", "Herring Gull", "Ivory Gull", "Western Gull"]
# Lines in Fine-R1's format (eval/data/<stem>_<side>.jsonl), the true class first as in its files.
FILES = {
    "bird_seen": [("bird_200/images/059.California_Gull/a.jpg", "Do you know what bird this is?", GULLS),
                  ("bird_200/images/059.California_Gull/b.jpg", "What kind of bird is this?", GULLS),
                  ("bird_200/images/062.Herring_Gull/c.jpg", "What kind of bird is this?",
                   ["Herring Gull", "Ivory Gull", "California Gull", "Western Gull"])],
    "bird_unseen": [("bird_200/images/064.Ring_billed_Gull/d.jpg", "Can you identify the bird in this image?",
                     ["Ring Billed Gull", "California Gull", "Herring Gull", "Western Gull"]),
                    ("bird_200/images/064.Ring_billed_Gull/e.jpg", "What type of bird is shown in the image?",
                     ["Ring Billed Gull", "Slaty Backed Gull", "Herring Gull", "Ivory Gull"])],
    "car_seen": [("stanford-cars/cars_test/00002.jpg", "What is the name of the car in the photo?",
                  ["Ferrari 458 Italia Convertible 2012", "Ferrari FF Coupe 2012",
                   "Ferrari California Convertible 2012", "Ferrari 458 Italia Coupe 2012"])],
}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    root = tmp_path_factory.mktemp("fine-r1")
    for name, lines in FILES.items():
        with (root / f"{name}.jsonl").open("w") as f:
            for path, question, options in lines:
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(tiny_jpeg())
                f.write(json.dumps({"image_path": path, "question": question, "options": options,
                                    "ground_truth": options[0]}) + "\n")
    with (root / "car_seen.jsonl").open("a") as f:  # a broken line: rejected with its place, the rest kept
        f.write(json.dumps({"image_path": "stanford-cars/cars_test/00003.jpg", "question": "?",
                            "options": ["A", "B"], "ground_truth": "C"}) + "\n")
    return root


def _prepare(root, out, *extra):
    return cli_main(["prepare", "fine-r1", "--root", str(root), "--out", str(out), *extra])


def test_the_released_files_become_questions_in_the_released_order(released, tmp_path, capsys):
    assert _prepare(released, tmp_path / "out") == 1  # one line rejected
    err = capsys.readouterr().err
    assert "car_seen.jsonl:2" in err and "'C' is not among the options" in err
    seen = read_questions(tmp_path / "out" / "test_seen" / "cub.jsonl")
    unseen = read_questions(tmp_path / "out" / "test_unseen" / "cub.jsonl")
    cars = read_questions(tmp_path / "out" / "test_seen" / "cars.jsonl")
    assert [r["options"] for r in seen] == [lines[2] for lines in FILES["bird_seen"]]
    assert {r["answer"] for r in seen + unseen + cars} == {0}
    assert {r["option_order"] for r in seen + unseen} == {"released"}
    assert {r["class_split"] for r in unseen} == {"unseen"} and seen[0]["noun"] == "birds"
    assert seen[0]["image"] == str(released / FILES["bird_seen"][0][0])
    assert seen[0]["fine_r1_question"] == "Do you know what bird this is?"
    # Every class of the dataset, both sides, beside each side's files.
    for folder in ("test_seen", "test_unseen"):
        classes = read_class_lists(tmp_path / "out" / folder)["cub"]["classes"]
        assert {"Ring Billed Gull", "Slaty Backed Gull", "California Gull"} <= set(classes)
    split = json.loads((tmp_path / "out" / "split.json").read_text())["cub"]
    assert split["seen"] == ["California Gull", "Herring Gull"] and split["unseen"] == ["Ring Billed Gull"]


def test_a_shuffle_seed_reorders_the_options_and_nothing_else(released, tmp_path):
    _prepare(released, tmp_path / "a")
    _prepare(released, tmp_path / "b", "--shuffle-seed", "3")
    _prepare(released, tmp_path / "c", "--shuffle-seed", "3")
    first = read_questions(tmp_path / "a" / "test_seen" / "cub.jsonl")
    shuffled = read_questions(tmp_path / "b" / "test_seen" / "cub.jsonl")
    assert shuffled == read_questions(tmp_path / "c" / "test_seen" / "cub.jsonl")  # seeded
    assert [r["id"] for r in shuffled] == [r["id"] for r in first]
    assert all(sorted(a["options"]) == sorted(b["options"]) for a, b in zip(first, shuffled))
    assert any(r["answer"] != 0 for r in shuffled) and all(r["options"][r["answer"]] == r["label"] for r in shuffled)
    assert {r["option_order"] for r in shuffled} == {"shuffled (seed 3)"}


class Scripted:
    """A model that answers every question by the options it is shown: ``first`` picks the first one
    (a model that learnt "the answer is listed first"), ``hedge`` names all four."""

    def __init__(self, how):
        self.how = how

    def generate(self, records, style, max_new_tokens):
        pick = {"first": lambda o: o[0], "hedge": lambda o: " or ".join(o)}[self.how]
        return [f"<think>It looks like a gull.</think><answer>{pick(r['options'])}</answer>" for r in records]


def _eval(files, out, how, monkeypatch):
    monkeypatch.setattr(generate, "make_generator", lambda *args, **kwargs: Scripted(how))
    settings = EvalSettings(tiny("tiny:qwen2_vl"), ImageResolution(), batch_size=4, max_new_tokens={"cot": 16})
    path = generate_predictions(files, ["cot"], out, settings)
    score_predictions(path)
    (out / "run.json").write_text(json.dumps({"name": out.name}))
    return out


def test_the_report_reads_the_same_model_three_ways(released, tmp_path, monkeypatch, capsys):
    _prepare(released, tmp_path / "released")
    _prepare(released, tmp_path / "shuffled", "--shuffle-seed", "1")
    files = lambda folder: [tmp_path / folder / side / "cub.jsonl" for side in ("test_seen", "test_unseen")]
    runs = [_eval(files("released"), tmp_path / "first-released", "first", monkeypatch),
            _eval(files("shuffled"), tmp_path / "first-shuffled", "first", monkeypatch),
            _eval(files("released"), tmp_path / "hedge-released", "hedge", monkeypatch)]
    tables = {t.key: t for t in all_tables([load_run(r) for r in runs])}
    table = tables["table2d_fine_r1_protocol"]
    assert [label for _, label in table.columns] == ["Run", "Options", "Substring", "Strict"]
    rows = {row[0]: row[1:] for row in table.rows}
    # A model that always names the first option: perfect on the released order under either rule...
    assert rows["first-released"] == ["released", 100.0, 100.0]
    # ...and at chance once the options are shuffled.
    order, substring, strict = rows["first-shuffled"]
    assert order == "shuffled (seed 1)" and strict == substring < 100.0
    # A model that names every option: Fine-R1's substring rule counts it right, the strict rule never.
    assert rows["hedge-released"] == ["released", 100.0, 0.0]
    assert cli_main(["report", *map(str, runs), "--out", str(tmp_path / "report")]) == 0
    assert "Fine-R1's files" in capsys.readouterr().out


def test_open_world_on_fine_r1_files_uses_its_names_and_every_class(released, tmp_path, monkeypatch):
    _prepare(released, tmp_path / "data")

    class Open:
        def generate(self, records, style, max_new_tokens):
            return [f"{r['label']}, California Gull" if r["class_split"] == "unseen" else r["label"] for r in records]

    monkeypatch.setattr(generate, "make_generator", lambda *args, **kwargs: Open())
    settings = EvalSettings(tiny("tiny:qwen2_vl"), ImageResolution(), batch_size=4, max_new_tokens={"open": 8})
    path = generate_predictions([tmp_path / "data" / "test_unseen" / "cub.jsonl"], ["open"], tmp_path / "run",
                                settings)
    scores = score_predictions(path)["styles"]["open"]
    # California Gull is a seen class, absent from the unseen file: still a second name, still wrong.
    assert scores["average"] == 0.0 and scores["fine_r1_ti_average"] == 100.0
