"""The one RSC average, the paper's Table 3 "Avg": the mean of the per-dataset means, in the judge's
summary and in the report alike. Three rows of one dataset and one of another tell it from the mean
of rows (75 against 50)."""

from __future__ import annotations

import json

from refine_rft.cli import main as refine_rft
from refine_rft.prompts import answer_text
from refine_rft.report.runs import load_run
from refine_rft.report.tables import reasoning_table
from refine_rft_workshop.synthetic import attribute_phrase, synthetic_questions


def test_the_judge_summary_and_the_report_average_datasets_not_rows(tmp_path, capsys):
    rows = []
    for number, row in enumerate(synthetic_questions(tmp_path, "test", per_class=1, num_classes=4)):
        dataset, right = ("cub", True) if number < 3 else ("dogs", False)  # 3 right in cub, 1 wrong in dogs
        traits = ", ".join(attribute_phrase(a, v) for a, v in row["attributes"].items())
        named = row["answer"] if right else (row["answer"] + 1) % len(row["options"])
        response = (f"<think>The bird has {traits}.</think>\n<attribute>{traits}</attribute>\n"
                    f"<answer>{answer_text(row['options'], named)}</answer>")
        rows.append({**row, "dataset": dataset, "style": "cot", "response": response})
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "judge_scores.jsonl"
    assert refine_rft(["judge", str(predictions), "--backend", "attributes", "--out", str(out)]) == 0

    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert (summary["cub"]["n"], summary["cub"]["RSC_A"]) == (3, 100.0)
    assert (summary["dogs"]["n"], summary["dogs"]["RSC_A"]) == (1, 0.0)
    assert (summary["all"]["n"], summary["all"]["RSC_A"]) == (4, 50.0)  # the mean of rows would be 75
    for key in ("RSC_U", "RSC_O"):
        assert summary["all"][key] == round((summary["cub"][key] + summary["dogs"][key]) / 2, 2)
    printed = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert printed["all"][:2] == ["4", "50.00"]  # n, RSC_A

    run = load_run(tmp_path)
    rsc = run.rsc("cot")
    assert rsc["average"]["RSC_A"] == 50.0 and rsc["per_dataset"]["cub"]["RSC_A"] == 100.0
    assert {k: round(v, 2) for k, v in rsc["average"].items()} == {k: summary["all"][k] for k in rsc["average"]}
    table = reasoning_table([run])
    avg_rsc_a = table.columns.index(("Avg", "RSC_A"))
    assert table.rows[0][avg_rsc_a] == 50.0
