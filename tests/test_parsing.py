import pytest

from refine_rft.parsing import extract_choice, extract_letter_answer, normalize_name, parse_response

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
def test_extract_letter_answer(text, expected):
    assert extract_letter_answer(text, BIRDS) == expected


def test_parse_response():
    parsed = parse_response("<think> long wings </think>\n<attribute>dark back</attribute><answer>B</answer>")
    assert (parsed.think, parsed.attribute, parsed.answer) == ("long wings", "dark back", "B")
    assert parse_response("no tags").answer is None


def test_normalize_name():
    assert normalize_name("  Chuck_will's-Widow ") == "chuck will s widow"
