"""The HTML report renders in a real browser (headless Chromium): a screenshot of the right size, not blank.

Skipped when Chromium is absent, unless REFINE_RFT_REQUIRE_BROWSER=1 (CI sets it): then it fails.
"""

from __future__ import annotations

import json
import os

import pytest

from refine_rft_workshop.synthetic import synthetic_questions
from refine_rft.files import write_jsonl_atomic
from refine_rft.report.cli import build_report
from refine_rft_workshop.testing.browser import find_chromium, screenshot

WIDTH, HEIGHT = 1024, 1600


def _run_folder(folder, questions, name, right):
    """A run whose CoT answers are right for the first ``right`` questions, with judge rows."""
    rows, judged = [], []
    for i, q in enumerate(questions):
        letter = "ABCD"[q["answer"] if i < right else (q["answer"] + 1) % 4]
        for style, response in (("choice", letter), ("cot", f"<think>crest and wing colour</think>"
                                f"<attribute>{q['attributes']['wing_color']} wings</attribute><answer>{letter}</answer>")):
            rows.append({**q, "style": style, "response": response, "model": name, "gen_seconds": 0.1})
        judged.append({"id": q["id"], "style": "cot", "RSC_A": 90.0 - 10 * i, "RSC_U": 70.0, "RSC_O": 80.0,
                       "RSC_A_feedback": f"feedback {name} {i}"})
    write_jsonl_atomic(folder / "predictions.jsonl", rows)
    write_jsonl_atomic(folder / "judge_scores.jsonl", judged)
    (folder / "run.json").write_text(json.dumps({"name": name}))
    return folder


@pytest.mark.slow
def test_html_report_renders_in_chromium(tmp_path):
    if find_chromium() is None:
        if os.environ.get("REFINE_RFT_REQUIRE_BROWSER") == "1":
            pytest.fail("REFINE_RFT_REQUIRE_BROWSER=1 but no Chromium is installed (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed")
    from PIL import Image, ImageStat

    questions = synthetic_questions(tmp_path / "data", "test", per_class=1, num_classes=4)
    runs = [_run_folder(tmp_path / n, questions, n, right) for n, right in (("base", 1), ("refine", 3))]
    html = build_report(runs, tmp_path / "report", samples=3)
    text = html.read_text()
    assert "image not found" not in text and "feedback refine 0" in text
    png = screenshot(html, tmp_path / "shot.png", WIDTH, HEIGHT)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        assert image.size == (WIDTH, HEIGHT)
        stddev = ImageStat.Stat(image.convert("L")).stddev[0]
    assert stddev > 10, f"the screenshot looks blank (pixel stddev {stddev:.1f})"
