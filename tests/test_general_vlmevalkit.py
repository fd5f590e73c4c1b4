"""Table 4 with the paper's harness: VLMEvalKit's config and command, and its score files (a fixture
in VLMEvalKit's layout: <work-dir>/<model>/T<date>_G<commit>/<model>_<dataset>_acc.csv) read into Table 4."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from refine_rft.evaluate import general
from refine_rft.evaluate.vlmevalkit import parse_vlmevalkit_results, vlmevalkit_command
from refine_rft.report.runs import load_run
from refine_rft.report.tables import general_table

FIXTURE = Path(__file__).parent / "golden" / "vlmevalkit_run"


@pytest.fixture
def run_dir(tmp_path):
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    work = run / "general_eval" / "vlmevalkit" / "refine_rft"
    # VLMEvalKit's newest evaluation wins: give the folders the times they were written at.
    for age, folder in ((2000, "T20250501_G1a2b3c4d"), (1000, "T20250601_G5e6f7a8b")):
        for path in (work / folder).iterdir():
            os.utime(path, (path.stat().st_atime - age, path.stat().st_mtime - age))
    return run


def test_score_files_become_table_4(run_dir):
    scores = parse_vlmevalkit_results(run_dir / "general_eval" / "vlmevalkit")
    # MCQ 'Overall' fractions (MMMU: the validation row, not dev) and TextVQA's percentage
    assert scores == pytest.approx({"MMStar": 59.93, "MMMU_DEV_VAL": 54.33, "TextVQA_VAL": 84.22}, abs=0.01)
    run = load_run(run_dir)
    assert run.general == scores
    table = general_table([run])
    assert table.title == "General VQA (VLMEvalKit, %)"
    assert table.to_markdown().splitlines()[-1] == "| ReFine-RFT (VLMEvalKit) | 59.9 | 54.3 | 84.2 |"


def test_both_harnesses_in_one_table_stay_apart(run_dir):
    lmms = Path(__file__).parent / "golden" / "runs" / "refine"
    table = general_table([load_run(lmms), load_run(run_dir)])
    assert table.title == "General VQA (lmms-eval, VLMEvalKit, %)"
    assert [c for c in table.columns[1:]] == [("lmms-eval", "MMStar"), ("lmms-eval", "MMMU"), ("lmms-eval", "TextVQA"),
                                              ("VLMEvalKit", "MMStar"), ("VLMEvalKit", "MMMU"),
                                              ("VLMEvalKit", "TextVQA")]


def test_a_score_file_without_the_headline_fails_naming_it(tmp_path):
    work = tmp_path / "refine_rft" / "T20250601_G0"
    work.mkdir(parents=True)
    (work / "refine_rft_MMMU_DEV_VAL_acc.csv").write_text("split,Overall\ndev,0.5\n")
    with pytest.raises(ValueError, match=r"refine_rft_MMMU_DEV_VAL_acc.csv: no 'Overall' score in a split='validation' row"):
        parse_vlmevalkit_results(tmp_path)


def test_dry_run_prints_config_with_the_training_resolution(tmp_path, capsys):
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "refine_rft_config.yaml").write_text(yaml.safe_dump(
        {"script": {"min_pixels": 200704, "max_pixels": 1003520}}))
    code = general.main(["--harness", "vlmevalkit", "--model", str(merged), "--out", str(tmp_path / "run"),
                         "--vlmevalkit-dir", str(tmp_path / "VLMEvalKit"), "--num-processes", "4",
                         "--dry-run", "--resolution", "training"])
    assert code == 0
    out = capsys.readouterr().out
    config = json.loads(out[: out.rindex("}") + 1])
    assert config["model"]["refine_rft"] == {"class": "Qwen2VLChat", "model_path": str(merged.resolve()),
                                             "min_pixels": 200704, "max_pixels": 1003520}
    assert list(config["data"]) == ["MMStar", "MMMU_DEV_VAL", "TextVQA_VAL"]
    work = (tmp_path / "run" / "general_eval" / "vlmevalkit").resolve()
    assert out.splitlines()[-1].endswith(
        f"-m torch.distributed.run --nproc-per-node=4 {(tmp_path / 'VLMEvalKit').resolve()}/run.py "
        f"--config {work}/config.json --work-dir {work} --judge exact_matching")


def test_lmms_eval_gets_the_training_resolution_too(tmp_path, capsys):
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "refine_rft_config.yaml").write_text(yaml.safe_dump({"script": {"max_pixels": 1003520}}))
    assert general.main(["--model", str(merged), "--out", str(tmp_path / "run"), "--tasks", "mmstar",
                         "--dry-run"]) == 0
    assert f"--model_args pretrained={merged},max_pixels=1003520 --tasks mmstar" in capsys.readouterr().out


def test_missing_checkout_is_a_clear_error(tmp_path, capsys):
    code = general.main(["--harness", "vlmevalkit", "--model", "m", "--out", str(tmp_path),
                         "--vlmevalkit-dir", str(tmp_path / "nowhere")])
    assert code == 2 and "no VLMEvalKit checkout" in capsys.readouterr().err


def test_command_runs_run_py_with_one_process():
    assert vlmevalkit_command("kit", "c.json", "w")[1:] == ["kit/run.py", "--config", "c.json", "--work-dir", "w",
                                                           "--judge", "exact_matching"]


@pytest.mark.parametrize("model_type, chat_class, bounds", [
    ("qwen2_vl", "Qwen2VLChat", {"min_pixels": 1280 * 28 * 28, "max_pixels": 16384 * 28 * 28}),
    ("qwen2_5_vl", "Qwen2VLChat", {"min_pixels": 1280 * 28 * 28, "max_pixels": 16384 * 28 * 28}),
    ("qwen3_vl", "Qwen3VLChat", {})])
def test_vlmevalkit_defaults_to_its_registered_resolution(tmp_path, capsys, model_type, chat_class, bounds):
    """VLMEvalKit's vlmeval/config.py entries: Qwen2-VL / Qwen2.5-VL-7B-Instruct pass 1280-16384 tokens of
    28 x 28; Qwen3-VL (Qwen3VLChat) none. The training resolution saved with the model is not used."""
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "config.json").write_text(json.dumps({"model_type": model_type}))
    (merged / "refine_rft_config.yaml").write_text(yaml.safe_dump({"script": {"min_pixels": 200704,
                                                                              "max_pixels": 1003520}}))
    assert general.main(["--harness", "vlmevalkit", "--model", str(merged), "--out", str(tmp_path / "run"),
                         "--dry-run"]) == 0
    out = capsys.readouterr().out
    config = json.loads(out[: out.rindex("}") + 1])
    expected = {"class": chat_class, "model_path": str(merged.resolve()), **bounds}
    assert config["model"]["refine_rft"] == expected


def test_lmms_eval_refuses_the_vlmevalkit_resolution_flag(tmp_path):
    with pytest.raises(SystemExit):
        general.main(["--model", "m", "--resolution", "registered", "--dry-run"])


def test_table_4_says_which_resolution_vlmevalkit_used(run_dir):
    from refine_rft.evaluate.vlmevalkit import write_resolution_note
    from refine_rft.resolution import ImageResolution

    write_resolution_note(run_dir / "general_eval" / "vlmevalkit", "registered",
                          ImageResolution(1280 * 28 * 28, 16384 * 28 * 28))
    table = general_table([load_run(run_dir)])
    assert table.columns[-1] == ("", "Image resolution")
    assert table.to_markdown().splitlines()[-1] == (
        "| ReFine-RFT (VLMEvalKit) | 59.9 | 54.3 | 84.2 | registered (1003520-12845056 px) |")
