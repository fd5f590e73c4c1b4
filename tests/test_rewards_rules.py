import pytest

from refine_rft.rewards.rules import attribute_format_reward, classification_reward, format_reward

OPTIONS = ["Laysan_Albatross", "Sooty_Albatross", "Black_footed_Albatross", "Least_Auklet"]
GOOD_FA = "<think>dark body</think>\n<attribute>dark back</attribute>\n<answer>B. Sooty_Albatross</answer>"


@pytest.mark.parametrize(
    "text, r_f, r_fa",
    [
        ("<think>a</think><answer>B</answer>", 1.0, 0.0),
        ("  <think>a</think>\n\n<answer>B</answer>\n", 1.0, 0.0),
        (GOOD_FA, 0.0, 1.0),
        ("<think>a</think><answer>B</answer> trailing", 0.0, 0.0),
        ("lead <think>a</think><answer>B</answer>", 0.0, 0.0),
        ("<think> </think><answer>B</answer>", 0.0, 0.0),  # blank think
        ("<think>a</think><answer></answer>", 0.0, 0.0),  # blank answer
        ("<think>a</think><think>b</think><answer>B</answer>", 0.0, 0.0),  # tag twice
        ("<answer>B</answer><think>a</think>", 0.0, 0.0),  # wrong order
        ("<think>a</think><answer>B</answer><answer>C</answer>", 0.0, 0.0),
        ("<attribute>x</attribute><think>a</think><answer>B</answer>", 0.0, 0.0),
        ("<think>a<answer>B</answer></think>", 0.0, 0.0),  # nested
        ("B", 0.0, 0.0),
    ],
)
def test_format_rewards(text, r_f, r_fa):
    assert format_reward([text]) == [r_f]
    assert attribute_format_reward([text]) == [r_fa]


def test_conversational_completions():
    conv = [[{"role": "assistant", "content": GOOD_FA}]]
    assert attribute_format_reward(conv) == [1.0]
    assert classification_reward(conv, options=[OPTIONS], answer=[1]) == [1.0]


@pytest.mark.parametrize(
    "text, reward",
    [
        (GOOD_FA, 1.0),
        ("<answer>B</answer>", 1.0),
        ("<answer>Sooty albatross</answer>", 1.0),
        ("<answer>A</answer>", 0.0),
        ("<answer>A or B</answer>", 0.0),
        ("<answer>A or B or C</answer>", 0.0),
        ("<answer></answer>", 0.0),
        ("<answer>B</answer><answer>B</answer>", 0.0),
        ("B. Sooty_Albatross", 0.0),  # no answer block
        ("<answer>B. Laysan_Albatross</answer>", 0.0),  # contradiction
    ],
)
def test_classification_reward(text, reward):
    assert classification_reward([text], options=[OPTIONS], answer=[1]) == [reward]


def test_rewards_are_per_sample():
    texts = ["<answer>A</answer>", "<answer>D</answer>"]
    assert classification_reward(texts, options=[OPTIONS, OPTIONS], answer=[0, 0]) == [1.0, 0.0]


def test_readme_lists_every_reward_of_the_table():
    """The documented reward table follows :data:`refine_rft.rewards.REWARDS` (names and paper symbols)."""
    from pathlib import Path

    from refine_rft.rewards import REWARDS

    page = (Path(__file__).resolve().parents[1] / "docs" / "recipes.md").read_text(encoding="utf-8")
    paragraph = page[page.index("| name | reward |"):].split("\n\n")[0]
    for name, reward in REWARDS.items():
        assert f"`{name}`" in paragraph, name
        assert reward.paper == "—" or f"({reward.paper})" in paragraph or f"{reward.paper}," in paragraph, name
