import pytest

from refine_rft.rewards.rules import attribute_format_reward, classification_reward, format_reward

OPTIONS = ["Laysan_Albatross", "Sooty_Albatross", "Black_footed_Albatross", "Least_Auklet"]
GOOD_FA = "<think>dark body</think>\n<attribute>dark back</attribute>\n<answer>B. Sooty_Albatross</answer>"


# R_f (the paper's "traditional" format: a <think> block, then an <answer> block, nothing after it;
# other text and tags allowed inside and between) against R_fa (exactly the three-tag sequence).
FORMAT_CASES = {
    # where they differ
    "think, answer": ("<think>a</think><answer>B</answer>", 1.0, 0.0),
    "think, answer, whitespace around": ("  <think>a</think>\n\n<answer>B</answer>\n", 1.0, 0.0),
    "text between the blocks": ("<think>a</think> so: <answer>B</answer>", 1.0, 0.0),
    "attribute inside think": ("<think>a <attribute>x</attribute></think><answer>B</answer>", 1.0, 0.0),
    "two attribute blocks": ("<think>a</think><attribute>x</attribute><attribute>y</attribute><answer>B</answer>",
                             1.0, 0.0),
    "unclosed attribute": ("<think>a</think><attribute>x<answer>B</answer>", 1.0, 0.0),
    "blank attribute": ("<think>a</think><attribute> </attribute><answer>B</answer>", 1.0, 0.0),
    "text between three blocks": ("<think>a</think> hence <attribute>x</attribute><answer>B</answer>", 1.0, 0.0),
    # where they agree: both 1
    "three blocks": (GOOD_FA, 1.0, 1.0),
    # where they agree: both 0
    "text after the answer": ("<think>a</think><answer>B</answer> trailing", 0.0, 0.0),
    "attribute after the answer": ("<think>a</think><answer>B</answer><attribute>x</attribute>", 0.0, 0.0),
    "text before think": ("lead <think>a</think><answer>B</answer>", 0.0, 0.0),
    "attribute before think": ("<attribute>x</attribute><think>a</think><answer>B</answer>", 0.0, 0.0),
    "blank think": ("<think> </think><answer>B</answer>", 0.0, 0.0),
    "blank answer": ("<think>a</think><answer></answer>", 0.0, 0.0),
    "think twice": ("<think>a</think><think>b</think><answer>B</answer>", 0.0, 0.0),
    "answer before think": ("<answer>B</answer><think>a</think>", 0.0, 0.0),
    "two answers": ("<think>a</think><answer>B</answer><answer>C</answer>", 0.0, 0.0),
    "answer nested in think": ("<think>a<answer>B</answer></think>", 0.0, 0.0),
    "think never closed": ("<think>a<answer>B</answer>", 0.0, 0.0),
    "no think": ("<attribute>x</attribute><answer>B</answer>", 0.0, 0.0),
    "no tags": ("B", 0.0, 0.0),
    "upper-case tags": ("<THINK>a</THINK><ANSWER>B</ANSWER>", 0.0, 0.0),
}


@pytest.mark.parametrize("text, r_f, r_fa", FORMAT_CASES.values(), ids=FORMAT_CASES.keys())
def test_format_rewards(text, r_f, r_fa):
    assert format_reward([text]) == [r_f]
    assert attribute_format_reward([text]) == [r_fa]


def test_format_cases_cover_both_kinds():
    """The table holds cases where R_f and R_fa differ and cases where they agree (on 1 and on 0)."""
    pairs = [(r_f, r_fa) for _, r_f, r_fa in FORMAT_CASES.values()]
    assert (1.0, 0.0) in pairs and (1.0, 1.0) in pairs and (0.0, 0.0) in pairs
    assert (0.0, 1.0) not in pairs  # R_fa = 1 implies R_f = 1


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
