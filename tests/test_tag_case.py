"""One case rule for tags, shared by every reader of them: tags are matched exactly in lower case, as
the prompts show them; ``<ANSWER>`` is text, read by none of R_f, R_fa, R_cls, the judge or scoring."""

import pytest

from refine_rft.evaluate.score import parsed_choice, score_rows
from refine_rft.judge.base import answered_correctly
from refine_rft.parsing import parse_response
from refine_rft.rewards.open import make_open_classification_reward
from refine_rft.openworld import ClassVocabulary
from refine_rft.rewards.rules import attribute_format_reward, classification_reward, format_reward

OPTIONS = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]


def spelt(think: str, attribute: str, answer: str) -> str:
    return (f"<{think}>dark plumage</{think}><{attribute}>dark back</{attribute}>"
            f"<{answer}>B. Sooty_Albatross</{answer}>")


def scores(text: str) -> dict:
    """What every reader of tags makes of ``text`` (B is the true option)."""
    row = {"style": "cot", "dataset": "cub", "options": OPTIONS, "answer": 1, "response": text}
    vocabulary = {"cub": ClassVocabulary.build(OPTIONS)}
    return {
        "R_fa": attribute_format_reward([text])[0],
        "R_f": format_reward([text.replace("<attribute>dark back</attribute>", "")])[0],
        "R_cls": classification_reward([text], options=[OPTIONS], answer=[1])[0],
        "open R_cls": make_open_classification_reward(vocabulary)([text], label=[OPTIONS[1]], dataset=["cub"])[0],
        "CoT accuracy": score_rows([row])["cot"]["average"],
        "open CoT answer": parsed_choice("open_cot", text, OPTIONS),
        "judge's RSC_A": answered_correctly(row),
        "think block": parse_response(text).think,
    }


def test_lower_case_tags_are_read_by_every_reader():
    assert scores(spelt("think", "attribute", "answer")) == {
        "R_fa": 1.0, "R_f": 1.0, "R_cls": 1.0, "open R_cls": 1.0, "CoT accuracy": 100.0, "open CoT answer": 1,
        "judge's RSC_A": True, "think block": "dark plumage"}


@pytest.mark.parametrize("think, attribute, answer", [
    ("think", "attribute", "ANSWER"), ("think", "attribute", "Answer"), ("THINK", "ATTRIBUTE", "ANSWER"),
])
def test_other_cases_are_text_for_every_reader(think, attribute, answer):
    result = scores(spelt(think, attribute, answer))
    assert result == {"R_fa": 0.0, "R_f": 0.0, "R_cls": 0.0, "open R_cls": 0.0, "CoT accuracy": 0.0,
                      "open CoT answer": None, "judge's RSC_A": False,
                      "think block": "dark plumage" if think == "think" else None}


def test_an_upper_case_think_tag_breaks_the_format_but_not_the_answer():
    text = spelt("THINK", "attribute", "answer")
    result = scores(text)
    assert (result["R_fa"], result["R_f"], result["R_cls"], result["CoT accuracy"]) == (0.0, 0.0, 1.0, 100.0)
