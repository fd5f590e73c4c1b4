"""``open_classification``: R_cls for open-world training (the ``open_cot`` prompt, no options).

1.0 iff the response's one ``<answer>`` block (:func:`~refine_rft.parsing.answer_block`: one block,
nothing after it) names the true class and nothing else, under :mod:`refine_rft.openworld`'s rule:
its name or an alias, normalised; 0.0 for another class of the dataset, two names, a hedge or a
negation (the grammar of :func:`~refine_rft.parsing.extract_choice`), an empty answer, a bare word
several classes share, or more than 1,000 words. Linear in the response's length.

"Another class of the dataset" needs all the dataset's classes: the training run passes the class
list recorded beside its training file (``classes.json``, both sides of a base-to-new split:
:func:`~refine_rft.openworld.dataset_vocabularies`), so naming an unseen class beside the true one
scores 0 though no training row shows it; called without one, the reward uses what the batch's rows
show (labels, options, aliases).

>>> reward = make_open_classification_reward()
>>> rows = {"label": ["Crested Finch"] * 6, "dataset": ["cub"] * 6, "aliases": [["Tufted Finch"]] * 6,
...         "options": [["Crested Finch", "Purple Finch", "Spotted Finch", "Crested Warbler"]] * 6}
>>> reward(["<answer>Tufted Finch</answer>", "<answer>crested-finch.</answer>", "<answer>Finch</answer>",
...         "<answer>Crested Finch or Purple Finch</answer>", "<answer></answer>", "Crested Finch"], **rows)
[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping

from refine_rft.openworld import ClassVocabulary, vocabularies
from refine_rft.parsing import answer_block
from refine_rft.rewards.rules import completion_text


def make_open_classification_reward(vocabulary: Mapping[str, ClassVocabulary] | None = None):
    """The ``open_classification`` reward over ``vocabulary`` (``{dataset: ClassVocabulary}``)."""

    def open_classification_reward(completions, label, dataset=None, options=None, aliases=None, **kwargs):
        n = len(completions)
        datasets = dataset if dataset is not None else [""] * n
        known = vocabulary
        if known is None:
            rows = [{"dataset": datasets[i], "label": label[i], "options": options[i] if options else [],
                     "aliases": aliases[i] if aliases else None} for i in range(n)]
            known = vocabularies(rows)
        rewards = []
        for completion, truth, name in zip(completions, label, datasets, strict=True):
            vocab = known.get(name)
            if vocab is None or truth not in vocab.classes:
                raise ValueError(f"open_classification: class {truth!r} of dataset {name!r} is not in the "
                                 "training vocabulary")
            rewards.append(float(vocab.named(answer_block(completion_text(completion))) == truth))
        return rewards

    return open_classification_reward
