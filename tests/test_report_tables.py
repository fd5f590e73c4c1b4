"""Golden-file tests of the report tables, from the fixed fake run folders in tests/golden/runs.

To accept an intended change of the tables: REFINE_RFT_UPDATE_GOLDEN=1 pytest tests/test_report_tables.py,
then review the diff of tests/golden/tables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from refine_rft.evaluate.general import lmms_eval_command, parse_lmms_results
from refine_rft.report.cli import build_report
from refine_rft.report.plots import curve_keys
from refine_rft.report.runs import load_run
from refine_rft.report.tables import all_tables

GOLDEN = Path(__file__).parent / "golden"
RUNS = [GOLDEN / "runs" / name for name in ("baseline", "refine", "no_rcot")]
KEYS = ("table2_answer_only", "table3_reasoning", "table4_general", "table5_ablation")


def test_tables_match_golden_files():
    tables = all_tables([load_run(path) for path in RUNS])
    assert [t.key for t in tables] == list(KEYS)
    update = os.environ.get("REFINE_RFT_UPDATE_GOLDEN") == "1"
    for table in tables:
        for ext, text in (("md", table.to_markdown() + "\n"), ("csv", table.to_csv()), ("tex", table.to_latex())):
            golden = GOLDEN / "tables" / f"{table.key}.{ext}"
            if update:
                golden.parent.mkdir(exist_ok=True)
                golden.write_text(text, encoding="utf-8")
            assert text == golden.read_text(encoding="utf-8"), f"{golden.name} differs"


def test_numbers_follow_the_scoring_rules():
    baseline, refine, no_rcot = (load_run(path) for path in RUNS)
    # Baseline: CH. 1/2 right on each dataset; CoT: one <answer> right on cub, none on dogs.
    assert baseline.accuracy("choice") == 50.0 and baseline.accuracy("cot", "dogs") == 0.0
    assert baseline.accuracy("cot") == 25.0
    # A failed judgement is left out of the mean, and counted.
    rsc = baseline.rsc()
    assert rsc["per_dataset"]["dogs"] == {"RSC_A": 50.0, "RSC_U": 50.0, "RSC_O": 50.0} and rsc["failed"] == 1
    assert refine.general == pytest.approx({"mmstar": 60.75, "mmmu_val": 52.11, "textvqa_val": 84.12})
    assert no_rcot.ablation == {"R_fa": True, "R_cls": True, "R_cot": False}
    assert len(no_rcot.log_history) == 5  # the latest checkpoint's trainer_state.json, not checkpoint-2's


def test_report_writes_every_format(tmp_path):
    html = build_report(RUNS, tmp_path, samples=4)  # every question, so every judge note
    for key in KEYS:
        for ext in ("md", "csv", "tex"):
            assert (tmp_path / f"{key}.{ext}").read_text() == (GOLDEN / "tables" / f"{key}.{ext}").read_text()
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "training_w_o_R_cot.png").is_file()
    text = html.read_text()
    assert text.count("data:image/png;base64,") >= 2 and "Correct species." in text


def test_duplicate_run_names_fail(tmp_path):
    with pytest.raises(ValueError, match="several runs are named"):
        build_report([RUNS[0], RUNS[0]], tmp_path)


def test_empty_run_folder_fails_naming_it(tmp_path):
    with pytest.raises(ValueError, match="no predictions.jsonl"):
        load_run(tmp_path)


def test_curve_keys_pick_rewards_length_and_judge_failures():
    history = json.loads((RUNS[2] / "train/checkpoint-5/trainer_state.json").read_text())["log_history"]
    assert curve_keys(history) == ["reward", "rewards/format_reward/mean", "rewards/classification_reward/mean",
                                   "completions/mean_length", "judge/failures"]


def test_lmms_eval_command_and_results(tmp_path):
    command = lmms_eval_command("runs/x/merged", "runs/x/general_eval", num_processes=8)
    assert command[1:5] == ["-m", "accelerate.commands.launch", "--num_processes=8", "-m"]
    assert command[5:] == ["lmms_eval", "--model", "qwen2_vl", "--model_args", "pretrained=runs/x/merged", "--tasks",
                           "mmstar,mmmu_val,textvqa_val", "--batch_size", "1", "--output_path", "runs/x/general_eval"]
    bad = tmp_path / "x_results.json"
    bad.write_text(json.dumps({"results": {"mmstar": {"alias": "mmstar"}}}))
    with pytest.raises(ValueError, match="no metric 'average'"):
        parse_lmms_results(bad)
