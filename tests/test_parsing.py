import pytest

from refine_rft.parsing import (MAX_ANSWER_WORDS, answer_block, both_choice, cot_choice, extract_choice, normalize_name,
                                parse_response, read_answer, stated_options)

BIRDS = ["Laysan_Albatross", "Sooty_Albatross", "Black_footed_Albatross", "Least_Auklet"]
CARS = ["Ford Focus Sedan 2007", "Focus Sedan 2007", "Mercedes-Benz C-Class Sedan 2012", "Audi S4 Sedan 2012"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("B", 1), ("b", 1), ("(B)", 1), ("B.", 1), ("B)", 1), ("Option B", 1), ("option (b)", 1),
        ("The answer is B", 1), ("The answer is B.", 1), ("Answer: C", 2),
        ("B. Sooty_Albatross", 1), ("b. sooty albatross", 1),
        ("Sooty_Albatross", 1), ("sooty albatross", 1), ("SOOTY-ALBATROSS", 1),
        ("black-footed albatross", 2), ("Black footed Albatross", 2),
        ("The bird is a Least Auklet.", 3),
        ("Laysan", 0),
    ],
)
def test_extract_choice_accepts(text, expected):
    assert extract_choice(text, BIRDS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", None,
        "A or B", "A or B or C", "B, C", "A and B", "(A) or (B)",
        "Sooty_Albatross or Least_Auklet",
        "B. Laysan_Albatross",  # letter contradicts the name
        "Albatross",  # fragment shared by three options
        "I cannot tell.", "E",
        "The answer is a bird",
    ],
)
def test_extract_choice_rejects(text):
    assert extract_choice(text, BIRDS) is None


def test_exact_full_name_wins_over_containment():
    assert extract_choice("Ford Focus Sedan 2007", CARS) == 0
    assert extract_choice("Focus Sedan 2007", CARS) == 1
    assert extract_choice("D. Audi S4 Sedan 2012", CARS) == 3


def test_letters_inside_names_are_not_option_letters():
    # "C" of "C-Class" is part of the name, not a letter C.
    assert extract_choice("Mercedes-Benz C-Class Sedan 2012", CARS) == 2
    assert extract_choice("A. Mercedes-Benz C-Class Sedan 2012", CARS) is None


def test_letters_limited_to_number_of_options():
    assert extract_choice("C", ["x", "y"]) is None


@pytest.mark.parametrize(
    "text, expected",
    [("C", 2), ("C. because the beak is long", 2), ("(d)", 3), ("A", 0), ("A.", 0),
     ("A bird with a dark back", None), ("An auklet", None), ("Least Auklet", 3)],
)
def test_the_choice_style_reads_a_leading_letter(text, expected):
    assert extract_choice(text, BIRDS) == expected


def test_parse_response():
    parsed = parse_response("<think> long wings </think>\n<attribute>dark back</attribute><answer>B</answer>")
    assert (parsed.think, parsed.attribute, parsed.answer) == ("long wings", "dark back", "B")
    assert parse_response("no tags").answer is None


def test_normalize_name():
    assert normalize_name("  Chuck_will's-Widow ") == "chuck will s widow"


# --- The one answer grammar: classes of hedges, negations and second options (B is true). ---

FIRSTS = ["B", "b", "(B)", "Option B", "Sooty_Albatross", "sooty albatross", "B. Sooty_Albatross"]
SECONDS = ["C", "c", "(c)", "option C", "Least_Auklet", "least auklet", "Least", "Auklet", "Black footed"]
SEPARATORS = [" or ", ", ", " / ", "/", " and ", "; ", " | ", " & ", " vs ", ", then ", "\n", " or maybe ",
              ", if not then ", " OR ", ", no wait, "]


@pytest.mark.parametrize("first", FIRSTS)
def test_every_first_form_alone_names_b(first):
    assert extract_choice(first, BIRDS) == 1


def test_a_second_option_with_any_separator_is_unparseable():
    """The whole product: every first form, separator and second form, in both orders (1,890 texts)."""
    texts = [text for first in FIRSTS for separator in SEPARATORS for second in SECONDS
             for text in (first + separator + second, second + separator + first)]
    assert len(texts) == 2 * len(FIRSTS) * len(SEPARATORS) * len(SECONDS) == 1890
    parsed = {text: extract_choice(text, BIRDS) for text in texts}
    assert [text for text, choice in parsed.items() if choice is not None] == []


@pytest.mark.parametrize("template", [
    "not {}", "Not {}", "definitely not {}", "{} is not it", "it isn't {}", "it is not {}", "{}? No.", "never {}",
    "It can't be {}", "It doesn't look like {}", "NOT {}", "neither {}", "none of them, {}", "{}, except the bill",
    "unlike {}", "it is no {}", "it isn’t {}",
])
@pytest.mark.parametrize("option", ["B", "Sooty_Albatross", "B. Sooty_Albatross"])
def test_any_negation_is_unparseable(template, option):
    assert extract_choice(template.format(option), BIRDS) is None


@pytest.mark.parametrize("template", [
    "maybe {}", "{} maybe", "perhaps {}", "probably {}", "possibly {}", "{} or", "either {}", "{}, I guess",
    "most likely {}", "{} if anything", "it might be {}", "{}, wait", "unsure: {}", "MAYBE {}",
])
@pytest.mark.parametrize("option", ["B", "Sooty_Albatross", "B. Sooty_Albatross"])
def test_any_hedge_is_unparseable(template, option):
    assert extract_choice(template.format(option), BIRDS) is None


@pytest.mark.parametrize("text", [  # the reports
    "B or c", "option b, c", "answer: b, d", "B or A maybe", "B or Auklet", "Sooty_Albatross or Least",
    "Not Sooty_Albatross", "definitely not B", "B, if not then c", "B, no wait, C", "not B", "B or C",
])
def test_reported_hedges_earn_nothing(text):
    assert extract_choice(text, BIRDS) is None
    assert both_choice(text, BIRDS) is None
    assert cot_choice(f"<answer>{text}</answer>", BIRDS) is None


@pytest.mark.parametrize("text, expected", [
    ("\uff22", 1),                      # full-width B
    ("B\u200b", 1),                      # a zero-width space hides nothing
    ("no\u200bt B", None),               # ... nor splits a negation out of sight
    ("B\u200b or C", None),
    ("The bird is a Least Auklet.", 3),  # "a" before a name is an article
    ("a", 0), ("b or a", None),          # ... but "a" alone, or listed, is a letter
    ("It has a D-shaped bill: B", 1),    # a letter hyphenated into a word is that word's
    ("I'd say B", 1),
    ("B. Sooty Albatross, with a black bill", 1),  # prose that mentions an option word is no list item
    ("B. Sooty Albatross, Laysan", None),          # a list item made of another option's words is
    ("Sooty Auklet", None),                        # words of two options mixed
    ("B. albatross", 1),                           # a shared word that includes B contradicts nothing
])
def test_grammar_edges(text, expected):
    assert extract_choice(text, BIRDS) == expected


def test_words_inside_an_option_name_are_not_negations_or_hedges():
    flowers = ["Forget-me-not", "Bird of paradise", "Love in the mist", "Orange dahlia"]
    assert extract_choice("A. Forget-me-not", flowers) == 0
    assert extract_choice("Forget me not", flowers) == 0
    assert extract_choice("A, not Forget-me-not", flowers) is None


@pytest.mark.parametrize("text, choice, both, cot", [
    # The three closed-world rules differ: Choice takes the whole text under the shared grammar,
    # Both needs the letter and the name in agreement, CoT takes only the one <answer> block.
    ("B", 1, None, None),
    ("Sooty_Albatross", 1, None, None),
    ("B. Sooty_Albatross", 1, 1, None),
    ("<answer>B. Sooty_Albatross</answer>", 1, 1, 1),
    ("<think>C?</think><answer>B</answer>", None, None, 1),   # the thought names C: only CoT ignores it
    ("<answer>B</answer> or C", None, None, None),
    ("B or C", None, None, None),
    ("A bird", None, None, None),
])
def test_the_choice_both_and_cot_rules(text, choice, both, cot):
    assert (extract_choice(text, BIRDS), both_choice(text, BIRDS), cot_choice(text, BIRDS)) == (choice, both, cot)


def test_an_answer_longer_than_the_word_limit_is_unparseable():
    assert extract_choice("B " * MAX_ANSWER_WORDS, BIRDS) == 1
    assert extract_choice("B " * (MAX_ANSWER_WORDS + 1), BIRDS) is None


@pytest.mark.parametrize("text, expected", [
    ("<think>x</think><attribute>y</attribute><answer>B</answer>", "B"),
    ("<answer> B. Sooty </answer>\n  ", "B. Sooty"),
    ("<ANSWER>B</ANSWER>", None),                      # tags are lower case: this is text, not a block
    ("<Answer>B</Answer>", None),
    ("<answer>B</answer> Actually it is A", None),     # text after the block
    ("<answer>B</answer><answer>C</answer>", None),    # a second block
    ("<answer>B</answer><answer>B</answer>", None),
    ("<answer>B</answer><ANSWER>C</ANSWER>", None),    # ... and text after the block, whatever its case
    ("<answer>B</ANSWER>", None),
    ("<answer><answer>B</answer></answer>", None),     # nested
    ("<answer>B <think>C</think></answer>", None),     # another block inside
    ("<think><answer>B</answer></think>", None),       # inside another block
    ("</answer>B<answer>", None), ("<answer>B", None), ("B</answer>", None), ("B", None), ("", None), (None, None),
])
def test_answer_block(text, expected):
    assert answer_block(text) == expected


# --- Linear time: a megabyte of adversarial input through every parser. ---

MEGABYTE = 1 << 20
LINEAR_BUDGET_S = 10.0
ADVERSARIAL = {
    "spaces": " " * MEGABYTE, "newlines": "\n" * MEGABYTE, "tabs and spaces": " \t" * (MEGABYTE // 2),
    "letters": "B " * (MEGABYTE // 2), "letter run": "B" * MEGABYTE, "or or or": "or " * (MEGABYTE // 3),
    "open tags": "<answer>" * (MEGABYTE // 8), "unclosed with letters": "<answer>B " * (MEGABYTE // 10),
    "close tags": "</answer>" * (MEGABYTE // 9), "angle brackets": "<" * MEGABYTE,
    "names": "Sooty Albatross " * (MEGABYTE // 16), "articles": "a " * (MEGABYTE // 2),
    "negations": "isn't " * (MEGABYTE // 6), "separators": ", / " * (MEGABYTE // 4),
    "zero width": "\u200b" * MEGABYTE, "full width": "\uff22 " * (MEGABYTE // 2),
    "whitespace then answer": " " * MEGABYTE + "<answer>B</answer>",
    "braces": "{" * MEGABYTE, "json-ish": '{"score": ' * (MEGABYTE // 10),
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_every_parser_is_linear_on_a_megabyte(name):
    import time

    from refine_rft.evaluate.score import parsed_choice
    from refine_rft.openworld import ClassVocabulary
    from refine_rft.rewards.open import make_open_classification_reward
    from refine_rft.rewards.rules import attribute_format_reward, classification_reward, format_reward

    text = ADVERSARIAL[name]
    vocabulary = {"cub": ClassVocabulary.build(BIRDS, {BIRDS[1]: ["Sooty Gooney"]})}
    open_reward = make_open_classification_reward(vocabulary)
    parsers = [
        lambda: extract_choice(text, BIRDS), lambda: both_choice(text, BIRDS), lambda: cot_choice(text, BIRDS),
        lambda: stated_options(text, BIRDS), lambda: read_answer(text, BIRDS), lambda: parse_response(text),
        lambda: answer_block(text), lambda: normalize_name(text),
        lambda: classification_reward([text], options=[BIRDS], answer=[1]),
        lambda: format_reward([text]), lambda: attribute_format_reward([text]),
        *(lambda style=style: parsed_choice(style, text, BIRDS) for style in ("choice", "both", "cot", "open",
                                                                             "open_cot")),
        lambda: vocabulary["cub"].named(text), lambda: vocabulary["cub"].exact(text),
        lambda: open_reward([text], label=[BIRDS[1]], dataset=["cub"]),
    ]
    for parse in parsers:
        started = time.perf_counter()
        parse()
        # A budget no busy machine misses: linear parsing takes milliseconds on 1 MB, a quadratic
        # parser (seconds on 16 kB) hours. The times themselves: benchmarks/parsing_linear.py.
        assert time.perf_counter() - started < LINEAR_BUDGET_S, (name, parse)


def test_every_format_character_is_invisible_to_the_parser():
    import sys
    import unicodedata

    from refine_rft.parsing import visible_text

    format_characters = "".join(chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf")
    assert visible_text(f"B{format_characters}C") == "BC"
