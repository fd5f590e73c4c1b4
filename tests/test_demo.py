"""``refine-rft-workshop demo --quick``: every stage runs end to end and the report holds the four runs.

The quick demo's budgets are far too small for meaningful numbers, so nothing here asserts a
number; the full demo's numbers are in ``benchmarks/demo_seeds.py``.

The demo runs each stage's command through the command's entry point in its own process (as
``refine-rft-workshop demo`` does), so the stages do not each pay the torch/transformers/TRL import.
Commands in fresh interpreters are the ``end_to_end`` tests' subject.
"""

from __future__ import annotations

import json

import pytest

from refine_rft_workshop import tiny_instruct_path
from refine_rft_workshop.demo import RUNS, main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "seed0"  # demo_seeds' layout (teacher_quality reuses it)
    assert main(["--quick", "--out", str(out)]) == 0
    return out


def test_every_stage_is_a_command_a_user_runs(demo_out):
    """The demo is a driver: it wrote a run recipe per training run (a tiny recipe plus the demo's
    settings) and the judge settings, the files the printed ``refine-rft`` commands read."""
    import yaml

    recipes = demo_out / "recipes"
    assert sorted(p.name for p in recipes.iterdir()) == ["grpo_rf_rcls.yaml", "judge.yaml", "refine_rft.yaml",
                                                         "sft.yaml"]
    run = yaml.safe_load((recipes / "refine_rft.yaml").read_text())
    assert run["model_name_or_path"] == str(tiny_instruct_path())
    assert run["train_file"] == str(demo_out / "data" / "train.jsonl")
    assert yaml.safe_load((recipes / "judge.yaml").read_text())["backend"] == "attributes"
    # R_cot from the toy teacher (the real teacher client, Fig. 3's prompt), RSC from the attribute judge.
    assert (run["judge"]["backend"], run["judge"]["model"], run["judge"]["prompt"]) == ("openai", "toy-teacher", "paper")


def test_teacher_and_rsc_judge_are_recorded_apart(demo_out):
    """Each evaluated run records the teacher that gave its R_cot (ReFine-RFT only) apart from the
    judge that scored its RSC, in run.json and in its stage settings."""
    for folder, _, _ in RUNS:
        for name in ("run.json", "demo_settings.json"):
            record = json.loads((demo_out / "eval" / folder / name).read_text())
            assert record["rsc_judge"]["backend"] == "attributes"
            if folder == "refine_rft":
                assert record["teacher"]["model"] == "toy-teacher" and record["teacher"]["misread"] == 0.2
            else:
                assert record["teacher"] is None


def test_report_files_and_tables_hold_the_four_runs(demo_out, capsys):
    report = demo_out / "report"
    for name in ("report.html", "tables.md", "accuracy.png"):
        assert (report / name).is_file(), name
    tables = (report / "tables.md").read_text()
    html = (report / "report.html").read_text()
    for _, name, _ in RUNS:
        assert name in tables and name in html
    assert "Answer-only" in tables and "RSC_U" in tables and "Ablation" in tables


def test_every_run_has_choice_both_cot_and_open_predictions_and_judge_scores(demo_out):
    for folder, name, _ in RUNS:
        run = demo_out / "eval" / folder
        rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
        assert {row["style"] for row in rows} == {"choice", "both", "cot", "open"}
        scores = json.loads((run / "scores.json").read_text())["styles"]["open"]
        assert "exact_average" in scores and scores["similarity"]["stand_in"] is True
        assert {row["model"] for row in rows} == {str(tiny_instruct_path())}
        judged = [json.loads(line) for line in (run / "judge_scores.jsonl").read_text().splitlines()]
        assert len(judged) == sum(row["style"] == "cot" for row in rows)
        assert json.loads((run / "run.json").read_text())["name"] == name


def _outputs(demo_out):
    """Every file a stage's work wrote (data, adapters, predictions, judge scores), with its mtime."""
    files = [*demo_out.glob("data/*.jsonl"), *demo_out.glob("train/*/adapter_model.safetensors"),
             *demo_out.glob("eval/*/predictions.jsonl"), *demo_out.glob("eval/*/judge_scores.jsonl")]
    return {str(p.relative_to(demo_out)): p.stat().st_mtime_ns for p in files}


def test_a_second_run_redoes_no_work(demo_out, capsys):
    """The demo keeps no stage marker: it runs every command again and each finds its work done."""
    before = _outputs(demo_out)
    assert len(before) == 2 + 3 + 4 + 4
    assert main(["--quick", "--out", str(demo_out)]) == 0
    printed = capsys.readouterr()
    assert "tiny instruct base: " in printed.out and "nothing to pre-train" in printed.out
    assert "already drawn with these settings" in printed.out
    assert printed.err.count("holds a finished run (trainer_state.json); nothing to do") == 3
    assert _outputs(demo_out) == before  # nothing drawn, trained, generated or judged again


def test_ablation_adds_grpo_rfa_rcls_over_a_finished_demo(demo_out, capsys):
    """``--ablation`` (what benchmarks/demo_seeds.py runs): the finished stages are kept, only the
    R_fa + R_cls arm is trained and evaluated, with the same budget as ReFine-RFT and no judge."""
    import yaml

    from refine_rft_workshop.demo import demo_runs

    before = _outputs(demo_out)
    assert main(["--quick", "--out", str(demo_out), "--ablation"]) == 0
    assert capsys.readouterr().err.count("holds a finished run (trainer_state.json); nothing to do") == 3
    after = _outputs(demo_out)
    assert {name: after[name] for name in before} == before  # the finished stages are kept
    assert sorted(set(after) - set(before)) == ["eval/grpo_rfa_rcls/judge_scores.jsonl",
                                                "eval/grpo_rfa_rcls/predictions.jsonl",
                                                "train/grpo_rfa_rcls/adapter_model.safetensors"]
    arm = yaml.safe_load((demo_out / "recipes" / "grpo_rfa_rcls.yaml").read_text())
    full = yaml.safe_load((demo_out / "recipes" / "refine_rft.yaml").read_text())
    assert arm["rewards"] == ["attribute_format", "classification"]
    assert {k: v for k, v in arm.items() if k not in ("rewards", "reward_weights", "output_dir")} == \
        {k: v for k, v in full.items() if k not in ("rewards", "reward_weights", "output_dir", "judge")}
    tables = (demo_out / "report" / "tables.md").read_text()
    assert all(name in tables for _, name, _ in demo_runs(ablation=True)) and "GRPO (R_fa+R_cls)" in tables


def test_teacher_quality_reuses_the_demos_runs_and_trains_only_the_other_rates(demo_out, tmp_path, capsys,
                                                                            load_benchmark):
    """``benchmarks/teacher_quality.py --quick`` over a finished quick demo (as seed 0 of demo_seeds'
    folder): R_fa + R_cls and ReFine-RFT at the demo's rate 0.2 are the demo's trainings and
    evaluations; only ReFine-RFT at 0.4 is trained, and evaluated under the CoT prompt alone."""
    benchmark = load_benchmark("teacher_quality")
    assert main(["--quick", "--out", str(demo_out), "--ablation"]) == 0  # as demo_seeds leaves it (done: nothing redone)
    capsys.readouterr()
    out = demo_out.parent
    md = tmp_path / "teacher_quality.md"
    demo_files = _outputs(demo_out)
    assert benchmark.main(["--quick", "--seeds", "0", "--rates", "0.2", "0.4", "--out", str(out), "--md", str(md)]) == 0
    printed = capsys.readouterr()
    # The two trainings the demo made are finished runs (their commands do nothing); its evaluations are reused.
    assert printed.err.count("holds a finished run (trainer_state.json); nothing to do") == 2
    assert printed.out.count("the demo's evaluation") == 2
    assert [line.split()[1:3] for line in printed.out.splitlines() if "$ refine-rft" in line] == [
        ["refine-rft-workshop", "synthetic"]] + [["refine-rft", "train"]] * 3 + [["refine-rft", "eval"],
                                                                               ["refine-rft", "judge"]]
    assert {name: stamp for name, stamp in _outputs(demo_out).items() if name in demo_files} == demo_files
    trained = json.loads((demo_out / "train" / "refine_rft_misread0.4" / "demo_settings.json").read_text())
    assert trained["overrides"]["judge"]["misread"] == 0.4
    rows = [json.loads(line) for line in
            (demo_out / "teacher_quality" / "eval" / "refine_rft_misread0.4" / "predictions.jsonl").read_text().splitlines()]
    assert {row["style"] for row in rows} == {"cot"}
    summary = json.loads((out / "teacher_quality.json").read_text())
    assert [row["misread"] for row in summary["rows"]] == [0.2, 0.4]
    assert md.with_name("teacher_quality.png").is_file() and "| ReFine-RFT | 40% |" in md.read_text()
    # A rerun trains, generates and judges nothing: every command finds its work done.
    made = _outputs(demo_out) | {str(p): p.stat().st_mtime_ns for p in (demo_out / "teacher_quality").rglob("*.jsonl")}
    assert benchmark.main(["--quick", "--seeds", "0", "--rates", "0.2", "0.4", "--out", str(out), "--md", str(md)]) == 0
    assert capsys.readouterr().err.count("holds a finished run (trainer_state.json); nothing to do") == 3
    assert made == _outputs(demo_out) | {str(p): p.stat().st_mtime_ns
                                         for p in (demo_out / "teacher_quality").rglob("*.jsonl")}


def test_demo_seeds_counts_refused_and_mismatched_cot_answers(tmp_path, load_benchmark):
    """The shares `benchmarks/demo_seeds.md` explains the CoT accuracy with."""
    import json

    seeds = load_benchmark("demo_seeds")
    options = ["Common Finch", "Crested Finch", "Striped Finch", "Fork-tailed Finch"]
    responses = [
        "<think>crest</think>\n<answer>B. Crested Finch</answer>",  # accepted, right
        "<think>stripes</think>\n<answer>C. Striped Finch</answer>",  # accepted, wrong
        "<think>crest</think>\n<answer>C. Crested Finch</answer>",  # letter and name disagree
        "It has a crest. The answer is B.",  # untagged: refused, no mismatch
    ]
    rows = [{"id": str(i), "style": "cot", "response": r, "options": options, "answer": 1}
            for i, r in enumerate(responses)]
    rows.append({"id": "x", "style": "choice", "response": "C", "options": options, "answer": 1})
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert seeds.cot_answers(tmp_path) == {"refused": 50.0, "mismatched": 25.0, "correct_of_accepted": 50.0}


def test_demo_seeds_splits_usefulness_by_right_and_wrong_answers(tmp_path, load_benchmark):
    """The split `benchmarks/demo_seeds.md` explains the RSC_U of the GRPO arms with."""
    import json

    seeds = load_benchmark("demo_seeds")
    scores = [{"id": "a", "style": "cot", "RSC_A": 100.0, "RSC_U": 90.0},
              {"id": "b", "style": "cot", "RSC_A": 100.0, "RSC_U": 70.0},
              {"id": "c", "style": "cot", "RSC_A": 0.0, "RSC_U": 40.0},
              {"id": "d", "style": "cot", "RSC_A": 0.0, "RSC_U": None}]  # unscored: left out
    (tmp_path / "judge_scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scores))
    split = seeds.usefulness_by_answer(tmp_path)
    assert split == {"RSC_U right": 80.0, "RSC_U wrong": 40.0, "right": 2}
    other_seed = dict(split, **{"RSC_U right": 60.0})
    table = seeds.usefulness_markdown({0: {"Zero-shot": split}, 1: {"Zero-shot": other_seed}})
    assert "| Zero-shot | 70.0 | 40.0 | 4 |" in table


def test_demo_seeds_counts_false_and_distinguishing_claims(tmp_path, load_benchmark):
    """The shares `benchmarks/demo_seeds.md` explains RSC_U's two factors with."""
    import json

    seeds = load_benchmark("demo_seeds")
    truth = {"body_color": "golden", "wing_color": "black", "beak_shape": "short", "tail_shape": "fan",
             "crest": "crested", "breast_pattern": "plain"}
    options = [truth, dict(truth, crest="no crest"), dict(truth, beak_shape="hooked"), dict(truth, tail_shape="forked")]
    responses = [
        "<think>The bird has a crimson body and a crest.</think>\n<answer>A</answer>",  # false + distinguishing
        "<think>The bird has black wings.</think>\n<answer>A</answer>",  # true, rules nothing out
        "<think>A fine bird.</think>\n<answer>A</answer>",  # no claim
        "It has a short beak. The answer is A.",  # untagged: no reasoning read
    ]
    rows = [{"id": str(i), "style": "cot", "response": r, "options": ["a", "b", "c", "d"], "answer": 0,
             "attributes": truth, "option_attributes": options} for i, r in enumerate(responses)]
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert seeds.claim_kinds(tmp_path) == {"false claim": 25.0, "distinguishing claim": 25.0, "no claim": 50.0}
