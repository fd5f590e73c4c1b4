"""``refine-rft report`` says under Table 3 which judge scored RSC and which teacher gave R_cot, read
from the runs' files, and warns in the caption when they are the same model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from refine_rft.cli import main as refine_rft

GOLDEN = Path(__file__).parent / "golden" / "runs"
TEACHER = "OpenGVLab/InternVL3-38B"


def _run(tmp_path: Path, name: str, rsc_judge: dict, teacher: dict | None, rewards: list[str]) -> Path:
    """A run folder as the stages leave it: predictions whose run_settings.json names the adapter
    folder (its saved recipe names the R_cot teacher), and judge scores with their settings file."""
    run = tmp_path / name
    shutil.copytree(GOLDEN / "refine", run)
    adapter = tmp_path / f"{name}-adapter"
    adapter.mkdir()
    script = {"rewards": rewards, **({"judge": teacher} if teacher else {})}
    (adapter / "refine_rft_config.yaml").write_text(yaml.safe_dump({"script": script}))
    (run / "run_settings.json").write_text(json.dumps({"model": "Qwen/Qwen2-VL-7B-Instruct", "adapter": str(adapter)}))
    (run / "judge_scores.settings.json").write_text(json.dumps(
        {"predictions": str(run / "predictions.jsonl"), "reject_injections": True, **rsc_judge}))
    (run / "run.json").write_text(json.dumps({"name": name}))
    return run


@pytest.mark.parametrize("rsc_model, warned", [(TEACHER, True), ("gpt-4.1-mini", False)])
def test_table_3_names_the_rsc_judge_and_the_teacher(tmp_path, capsys, rsc_model, warned):
    openai = {"backend": "openai", "base_urls": ["http://teacher:8000/v1"]}
    ours = _run(tmp_path, "Ours", {"backend": "openai", "model": rsc_model},
                {**openai, "model": TEACHER}, ["attribute_format", "classification", "reasoning"])
    ablation = _run(tmp_path, "No R_cot", {"backend": "openai", "model": rsc_model},
                    {**openai, "model": TEACHER}, ["attribute_format", "classification"])
    assert refine_rft(["report", str(ours), str(ablation), "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    table3 = (tmp_path / "report" / "table3_reasoning.md").read_text()
    assert f"RSC judged by: {rsc_model} (every run)." in table3
    # The ablation's recipe names a teacher, but without the reasoning reward it gave no R_cot.
    assert f"R_cot given by: {TEACHER} (Ours); no R_cot teacher recorded (No R_cot)." in table3
    warning = f"Warning: Ours was scored by {TEACHER}, the teacher that gave its R_cot in training"
    assert (warning in table3) is warned and (warning in printed) is warned
    assert "Warning: No R_cot" not in table3
    html = (tmp_path / "report" / "report.html").read_text()
    assert f"<p class='caption'>RSC judged by: {rsc_model} (every run).</p>" in html


def test_attribute_judges_count_as_one(tmp_path):
    """A run trained with the attribute judge's R_cot and scored by the attribute judge is warned
    about, as the CPU demo's was before it had a teacher of its own."""
    from refine_rft.report.runs import load_run
    from refine_rft.report.tables import reasoning_table

    run = _run(tmp_path, "Toy", {"backend": "attributes"}, {"backend": "attributes"},
               ["attribute_format", "classification", "reasoning"])
    caption = reasoning_table([load_run(run)]).caption
    assert caption[:2] == ["RSC judged by: attribute judge (every run).", "R_cot given by: attribute judge (every run)."]
    assert caption[2].startswith("Warning: Toy was scored by attribute judge")
