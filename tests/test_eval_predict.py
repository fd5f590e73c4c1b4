"""``refine-rft predict`` on the tiny model, and how a response is rendered."""

from __future__ import annotations

import pytest
from rich.console import Console

from refine_rft_workshop.synthetic import draw_bird, make_species
from refine_rft.evaluate.predict import main, parse_options, render
from refine_rft_workshop.models import resolve_model_path as tiny

OPTIONS = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]


def test_render_shows_blocks_and_marks_the_answer():
    console = Console(record=True, width=100)
    response = "<think>dark back</think><attribute>sooty plumage</attribute><answer>B. Sooty_Albatross</answer>"
    assert render(console, OPTIONS, response, "cot", answer=2) == 1
    text = console.export_text()
    assert "Reasoning" in text and "dark back" in text and "sooty plumage" in text
    assert "B. Sooty_Albatross" in text and "wrong: C. Least_Auklet" in text


def test_render_without_answer_block_is_no_answer():
    console = Console(record=True, width=100)
    assert render(console, OPTIONS, "B. Sooty_Albatross", "cot", answer=None) is None
    assert "none that the cot rule accepts" in console.export_text()


def test_parse_options_rejects_bad_lists():
    with pytest.raises(ValueError, match="2 to 4 distinct names"):
        parse_options("a;a")


def test_predict_on_tiny_model(tmp_path, tiny_model_path, capsys):
    image = tmp_path / "bird.png"
    draw_bird(make_species(4)[0], 112).save(image)
    assert main(["--trust-remote-code", "--model", str(tiny_model_path), "--image", str(image), "--options", ";".join(OPTIONS),
                 "--max-new-tokens", "12"]) == 0
    out = capsys.readouterr().out
    assert "Which of these birds is shown in the image?" in out and "Answer:" in out


def test_predict_needs_options_or_dataset(tmp_path):
    image = tmp_path / "x.png"
    draw_bird(make_species(4)[0], 56).save(image)
    with pytest.raises(SystemExit):
        main(["--model", tiny("tiny:qwen2_vl"), "--image", str(image)])
