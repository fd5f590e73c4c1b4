"""Open-world recognition: the strict answer rule and R_cls reward over free-form class names.

The case table below is the contract of ``open_classification``: one true class, named in full
(name or alias) and nothing else, earns 1; everything else earns 0.
"""

from __future__ import annotations

import pytest

from refine_rft.openworld import ClassVocabulary, vocabularies
from refine_rft.rewards import get_reward_funcs
from refine_rft.rewards.open import make_open_classification_reward

DOGS = ["Japanese_spaniel", "Blenheim_spaniel", "Pug", "Boston_bull", "Yorkshire_terrier", "Border_terrier",
        "Scotch_terrier", "Maltese_dog", "Toy_terrier", "Pembroke", "Cardigan", "Saint_Bernard"]
DOG_ALIASES = {"Japanese_spaniel": ["Japanese Chin"], "Blenheim_spaniel": ["Cavalier King Charles Spaniel"],
               "Boston_bull": ["Boston Terrier"], "Scotch_terrier": ["Scottish Terrier", "Scottie"],
               "Maltese_dog": ["Maltese"], "Pembroke": ["Pembroke Welsh Corgi"], "Cardigan": ["Cardigan Welsh Corgi"],
               "Saint_Bernard": ["St. Bernard"], "Yorkshire_terrier": ["Yorkie"]}
FLOWERS = ["garden phlox", "sunflower", "english marigold", "marigold", "water lily", "lotus", "tiger lily"]
FLOWER_ALIASES = {"garden phlox": ["Phlox paniculata"], "english marigold": ["pot marigold", "Calendula officinalis"],
                  "water lily": ["Nymphaea"], "lotus": ["Nelumbo nucifera"]}
BIRDS = ["Crested Finch", "Common Finch", "Spotted Finch", "Fork-tailed Finch", "Crested Warbler", "Common Swallow"]
BIRD_ALIASES = {"Crested Finch": ["Tufted Finch"], "Fork-tailed Finch": ["Swallow-tailed Finch"],
                "Common Finch": ["Eurasian Finch"]}
VOCAB = {"dogs": ClassVocabulary.build(DOGS, DOG_ALIASES), "flowers": ClassVocabulary.build(FLOWERS, FLOWER_ALIASES),
         "synthetic": ClassVocabulary.build(BIRDS, BIRD_ALIASES)}
LONG = "It is a Pug. " + "The coat is fawn and the face is black. " * 200

# (dataset, true class, answer block, reward)
CASES = [
    # the name, under normalisation of case, _ - spaces, punctuation and a leading article
    ("dogs", "Japanese_spaniel", "Japanese_spaniel", 1),
    ("dogs", "Japanese_spaniel", "japanese spaniel", 1),
    ("dogs", "Japanese_spaniel", "JAPANESE-SPANIEL", 1),
    ("dogs", "Japanese_spaniel", "The Japanese spaniel.", 1),
    ("dogs", "Japanese_spaniel", "a japanese  spaniel!", 1),
    ("dogs", "Pug", "An pug", 1),
    ("dogs", "Pug", "Pug", 1),
    ("dogs", "Pug", "It is a Pug.", 1),
    ("dogs", "Yorkshire_terrier", "yorkshire_terrier", 1),
    ("synthetic", "Fork-tailed Finch", "fork tailed finch", 1),
    ("synthetic", "Fork-tailed Finch", "Fork_tailed_Finch", 1),
    ("flowers", "garden phlox", "Garden Phlox", 1),
    # synonyms from the alias table
    ("dogs", "Japanese_spaniel", "Japanese Chin", 1),
    ("dogs", "Japanese_spaniel", "the japanese chin", 1),
    ("dogs", "Blenheim_spaniel", "Cavalier King Charles Spaniel", 1),
    ("dogs", "Boston_bull", "Boston Terrier", 1),
    ("dogs", "Scotch_terrier", "Scottie", 1),
    ("dogs", "Saint_Bernard", "St. Bernard", 1),
    ("dogs", "Saint_Bernard", "st bernard", 1),
    ("dogs", "Pembroke", "Pembroke Welsh Corgi", 1),
    ("flowers", "garden phlox", "Phlox paniculata", 1),
    ("flowers", "english marigold", "pot marigold", 1),
    ("synthetic", "Crested Finch", "Tufted Finch", 1),
    ("synthetic", "Fork-tailed Finch", "Swallow-tailed Finch", 1),
    ("dogs", "Japanese_spaniel", "Japanese Chin (Japanese spaniel)", 1),  # name and alias of one class
    ("dogs", "Pug", "It's a Pug", 1),
    ("dogs", "Pug", "**Pug**", 1),
    ("dogs", "Pug", "Pug Pug", 1),
    ("dogs", "Pug", "Answer: the pug", 1),
    ("synthetic", "Crested Finch", "Crested\u00a0Finch", 1),  # a no-break space is a space
    # a synonym of another class, or another class
    ("dogs", "Japanese_spaniel", "Cavalier King Charles Spaniel", 0),
    ("dogs", "Japanese_spaniel", "Pug", 0),
    ("dogs", "Pembroke", "Cardigan Welsh Corgi", 0),
    ("flowers", "english marigold", "marigold", 0),
    ("flowers", "marigold", "pot marigold", 0),
    ("flowers", "water lily", "tiger lily", 0),
    ("synthetic", "Crested Finch", "Crested Warbler", 0),
    ("synthetic", "Crested Finch", "Eurasian Finch", 0),
    # two names
    ("dogs", "Pug", "Pug, Boston bull", 0),
    ("dogs", "Pug", "Pug and Boston Terrier", 0),
    ("dogs", "Pug", "Pug / Yorkie", 0),
    ("dogs", "Pug", "Boston bull; Pug", 0),
    ("synthetic", "Crested Finch", "Crested Finch Crested Warbler", 0),
    ("flowers", "lotus", "lotus, water lily", 0),
    # hedges and negations (the grammar of extract_choice)
    ("dogs", "Pug", "Pug or Boston bull", 0),
    ("dogs", "Pug", "maybe a Pug", 0),
    ("dogs", "Pug", "probably Pug", 0),
    ("dogs", "Pug", "Pug?? perhaps", 0),
    ("dogs", "Pug", "not a Pug", 0),
    ("dogs", "Pug", "It isn't a Boston bull, it is a Pug", 0),
    ("dogs", "Pug", "either Pug", 0),
    ("dogs", "Pug", "Pug, wait", 0),
    ("synthetic", "Crested Finch", "if anything, Crested Finch", 0),
    ("synthetic", "Crested Finch", "Crested Finch or Tufted Finch", 0),  # "or" hedges, even between synonyms
    ("synthetic", "Crested Finch", "Crested Finch, not Common Finch", 0),
    ("dogs", "Pug", "I don't know", 0),
    ("dogs", "Pug", "None of these", 0),
    # empty answers
    ("dogs", "Pug", "", 0),
    ("dogs", "Pug", "   ", 0),
    ("dogs", "Pug", None, 0),
    ("dogs", "Pug", "...", 0),
    # a bare genus several classes share, or a fragment of one name
    ("dogs", "Yorkshire_terrier", "terrier", 0),
    ("dogs", "Yorkshire_terrier", "a terrier", 0),
    ("dogs", "Blenheim_spaniel", "Spaniel", 0),
    ("synthetic", "Crested Finch", "Finch", 0),
    ("synthetic", "Crested Finch", "Crested", 0),
    ("synthetic", "Crested Finch", "Crested Finch, Warbler", 0),
    ("flowers", "water lily", "lily", 0),
    ("synthetic", "Fork-tailed Finch", "Swallow", 0),
    # unicode look-alikes: NFKC folds width variants and strips invisibles; other scripts stay other letters
    ("dogs", "Pug", "\uff30\uff55\uff47", 1),  # full-width PUG
    ("dogs", "Pug", "P\u200bug", 1),  # a zero-width space hides nothing
    ("dogs", "Pug", "\u0420ug", 0),  # Cyrillic Er
    ("dogs", "Pug", "Pu\u0261", 0),  # Latin script g
    ("synthetic", "Crested Finch", "Cr\u0435sted Finch", 0),  # Cyrillic ie
    ("dogs", "Pug", "P u g", 0),
    # long inputs
    ("dogs", "Pug", LONG, 0),
    ("dogs", "Pug", "Pug " + "very " * 990, 1),
    ("dogs", "Pug", "Pug " * 1001, 0),
]


@pytest.mark.parametrize("dataset,label,answer,expected", CASES)
def test_open_classification_case(dataset, label, answer, expected):
    reward = make_open_classification_reward(VOCAB)
    text = "<think>x</think><answer>" + (answer or "") + "</answer>" if answer is not None else "<think>x</think>"
    assert reward([text], label=[label], dataset=[dataset]) == [float(expected)]


def test_the_case_table_is_large_and_covers_both_outcomes():
    assert len(CASES) >= 60
    assert {c[3] for c in CASES} == {0, 1}


def test_the_reward_reads_only_the_one_answer_block():
    reward = make_open_classification_reward(VOCAB)
    label, ds = ["Pug"], ["dogs"]
    assert reward(["Pug"], label=label, dataset=ds) == [0.0]
    assert reward(["<answer>Pug</answer> Actually Boston bull"], label=label, dataset=ds) == [0.0]
    assert reward(["<answer>Pug</answer><answer>Pug</answer>"], label=label, dataset=ds) == [0.0]
    assert reward([[{"role": "assistant", "content": "<answer>Pug</answer>"}]], label=label, dataset=ds) == [1.0]


def test_an_empty_answer_is_not_a_substring_of_every_label():
    """The substring test of other code (`"" in label`) scores this 1."""
    reward = make_open_classification_reward(VOCAB)
    assert reward(["<answer></answer>"], label=["Pug"], dataset=["dogs"]) == [0.0]


def test_without_a_vocabulary_the_batch_rows_give_it():
    reward = get_reward_funcs(["open_classification"])[0]
    kwargs = {"label": ["Crested Finch"] * 2, "dataset": ["synthetic"] * 2, "aliases": [["Tufted Finch"]] * 2,
              "options": [["Crested Finch", "Crested Warbler", "Common Finch", "Spotted Finch"]] * 2}
    assert reward(["<answer>Tufted Finch</answer>", "<answer>Crested Finch, Crested Warbler</answer>"],
                  **kwargs) == [1.0, 0.0]


def test_a_label_outside_the_vocabulary_is_an_error_not_a_zero():
    reward = make_open_classification_reward(VOCAB)
    with pytest.raises(ValueError, match="not in the training vocabulary"):
        reward(["<answer>Akita</answer>"], label=["Akita"], dataset=["dogs"])


def test_an_alias_equal_to_another_class_name_is_dropped():
    vocab = ClassVocabulary.build(["marigold", "english marigold"], {"english marigold": ["Marigold", "pot marigold"]})
    assert vocab.named("marigold") == "marigold" and vocab.named("pot marigold") == "english marigold"


def test_vocabularies_gather_labels_options_and_aliases_per_dataset():
    rows = [{"dataset": "a", "label": "x", "options": ["x", "y"], "aliases": ["ex"]},
            {"dataset": "b", "label": "z", "options": ["z", "w"]}]
    vocab = vocabularies(rows)
    assert vocab["a"].named("ex") == "x" and vocab["a"].named("w") is None and vocab["b"].named("w") == "w"


def test_the_shipped_alias_tables_cite_a_source_for_every_entry():
    import json

    from refine_rft.data.aliases import TABLE, shipped_aliases

    tables = json.loads(TABLE.read_text())["datasets"]
    assert set(tables) == {"cub", "aircraft", "cars", "dogs", "flowers", "pets"}
    entries = [e for rows in tables.values() for e in rows]
    assert len(entries) > 100 and all(e["source"].startswith("https://") and e["aliases"] for e in entries)
    assert shipped_aliases("dogs")["japanese spaniel"] == ["Japanese Chin"]


def test_synthetic_rows_carry_their_aliases(tmp_path):
    from refine_rft_workshop.synthetic import synthetic_questions

    rows = synthetic_questions(tmp_path, "test", per_class=1, num_classes=8)
    with_aliases = [r for r in rows if r.get("aliases")]
    assert with_aliases and all(r["aliases"][0].split()[-1] == r["label"].split()[-1] for r in with_aliases)
    vocab = vocabularies(rows)["synthetic"]
    for row in with_aliases:
        assert vocab.named(f"It is a {row['aliases'][0]}.") == row["label"]


@pytest.mark.slow
def test_the_open_world_recipe_trains_with_open_cot_and_the_open_reward(tmp_path, tiny_model_path,
                                                                        synthetic_train_jsonl):
    import json

    from refine_rft.train.grpo import train_grpo
    from refine_rft_workshop import RECIPES

    recipe = RECIPES / "open_world.yaml"
    out = train_grpo(recipe, {"model_name_or_path": str(tiny_model_path), "train_file": str(synthetic_train_jsonl),
                              "output_dir": str(tmp_path / "run"), "max_steps": 2, "num_generations": 2,
                              "per_device_train_batch_size": 4, "max_completion_length": 16, "save_strategy": "no",
                              "report_to": [], "disable_tqdm": True, "logging_steps": 1})
    history = [r for r in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in r]
    assert len(history) == 2 and all("rewards/open_classification_reward/mean" in r for r in history)
    assert "open_cot" in (out / "refine_rft_config.yaml").read_text()
