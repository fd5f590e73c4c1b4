"""Snapshots of the exact prompt texts: a prompt change must show up as a deliberate diff here.

To accept a deliberate change, delete the snapshot file and rerun (it is rewritten), then commit it.
"""

from pathlib import Path

import pytest

from refine_rft.prompts import STYLES, answer_text, question_messages, question_text

SNAPSHOTS = Path(__file__).parent / "snapshots"
OPTIONS = ["Laysan_Albatross", "Sooty_Albatross", "Black_footed_Albatross", "Least_Auklet"]


@pytest.mark.parametrize("style", STYLES)
def test_prompt_snapshot(style):
    text = question_text("birds", OPTIONS, style)
    snapshot = SNAPSHOTS / f"prompt_{style}.txt"
    if not snapshot.exists():
        snapshot.write_text(text)
        pytest.fail(f"snapshot {snapshot.name} was missing and has been written; review and commit it")
    assert text == snapshot.read_text()


@pytest.mark.parametrize("style", STYLES)
def test_aircraft_prompt_snapshot(style):
    """FOCI / Finedefics ask "Which of these aircrafts ..." (their plural), and so does `prepare aircraft`."""
    from refine_rft.dataset_specs import DATASETS

    text = question_text(DATASETS["aircraft"].noun, ["707-320", "727-200", "737-200", "737-300"], style)
    snapshot = SNAPSHOTS / f"prompt_{style}_aircraft.txt"
    if not snapshot.exists():
        snapshot.write_text(text)
        pytest.fail(f"snapshot {snapshot.name} was missing and has been written; review and commit it")
    assert text == snapshot.read_text()


def test_question_format_is_foci():
    text = question_text("aircrafts", ["707-320", "727-200", "737-200", "737-300"], "choice")
    assert text.startswith("Which of these aircrafts is shown in the image?\nChoices:\nA. 707-320\nB. 727-200\n")
    assert text.endswith("D. 737-300\nAnswer with the letter from the given choices directly.")
    assert question_text("birds", OPTIONS, "both").endswith("Answer the correct choice and its category name.")


def test_cot_asks_for_the_three_tags_in_order():
    text = question_text("birds", OPTIONS, "cot")
    positions = [text.index(tag) for tag in ("<think>", "<attribute>", "<answer>")]
    assert positions == sorted(positions)


def test_messages_put_the_image_first():
    messages = question_messages("birds", OPTIONS, "cot")
    assert [m["role"] for m in messages] == ["user"]
    assert [part["type"] for part in messages[0]["content"]] == ["image", "text"]


def test_unknown_style_lists_the_valid_ones():
    with pytest.raises(ValueError, match="choice, both, cot"):
        question_text("birds", OPTIONS, "letters")


def test_answer_text():
    assert answer_text(OPTIONS, 2) == "C. Black_footed_Albatross"


@pytest.mark.parametrize("style", ["open", "open_cot"])
def test_open_styles_show_no_options(style):
    text = question_text("birds", OPTIONS, style)
    assert text.startswith("What species is this bird?")
    assert not any(option in text for option in OPTIONS) and "Choices" not in text


def test_open_cot_keeps_the_three_tags_and_asks_for_the_name_only():
    text = question_text("dogs", OPTIONS, "open_cot")
    positions = [text.index(tag) for tag in ("<think>", "<attribute>", "<answer>")]
    assert positions == sorted(positions) and "letter" not in text and "only the category name" in text


def test_the_open_question_is_the_one_the_shipped_base_was_taught():
    """The demo's open style asks what the tiny instruct base learnt to answer ("It is a <species>.")."""
    from refine_rft_workshop.base.instruct_data import IDENTIFY_PROMPT

    assert question_text("birds", OPTIONS, "open") == IDENTIFY_PROMPT
