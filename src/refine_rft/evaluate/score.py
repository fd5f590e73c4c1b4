"""Answer-only accuracy from a predictions file, under each prompt style's rule.

Every style reads answers with the one grammar of :mod:`refine_rft.parsing` (one option, no
second option, no negation, no hedge), which R_cls uses too:

- **choice**: the whole response under :func:`~refine_rft.parsing.extract_letter_answer` (the
  shared grammar; a leading letter is read like any other, and what follows must not contradict it).
- **both**: the response must state exactly one option letter *and* name exactly one option in
  full, and the two must be the same option; that option must be the true one. A response with
  only the letter, only the name, a letter and a name that disagree, or two of either, is
  unparseable (and wrong), and so is one that the shared grammar refuses.
- **cot**: the ``<answer>…</answer>`` block is required (no block: unparseable and wrong, as in
  the paper, whatever the rest of the text says) and taken as R_cls takes it
  (:func:`~refine_rft.parsing.answer_block`: one block, nothing after it); the block must identify
  the true option under :func:`~refine_rft.parsing.extract_choice`.

Accuracies are percentages. A style's average is the mean of its per-dataset accuracies (each
dataset weighs the same, as the paper's "Avg" column).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from refine_rft.files import iter_jsonl_tolerant, write_text_atomic
from refine_rft.prompts import prompt_style

SCORES_FILE = "scores.json"


def parsed_choice(style: str, response: str | None, options: Sequence[str]) -> int | None:
    """The option index that ``response`` gives under ``style``'s rule (``None``: unparseable);
    the rules are :data:`~refine_rft.prompts.PROMPT_STYLES`' ``parse``.

    >>> options = ["Laysan_Albatross", "Sooty_Albatross", "Least_Auklet", "Rusty_Blackbird"]
    >>> parsed_choice("cot", "<think>dark</think><answer>B. Sooty_Albatross</answer>", options)
    1
    >>> parsed_choice("cot", "The answer is B. Sooty_Albatross", options) is None
    True
    """
    return prompt_style(style).parse(response, options)


def score_rows(rows: Iterable[dict]) -> dict:
    """Per-style, per-dataset accuracy (%) and unparseable share (%) of prediction rows.

    >>> rows = [{"style": "choice", "dataset": "cub", "options": ["x", "y"], "answer": 1, "response": r}
    ...         for r in ["B", "A", "no idea"]]
    >>> s = score_rows(rows)["choice"]
    >>> round(s["average"], 1), s["per_dataset"]["cub"]["n"], round(s["unparseable"], 1)
    (33.3, 3, 33.3)
    """
    counts: dict = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))  # style -> dataset -> [n, right, none]
    for row in rows:
        choice = parsed_choice(row["style"], row["response"], row["options"])
        cell = counts[row["style"]][row["dataset"]]
        cell[0] += 1
        cell[1] += choice == row["answer"]
        cell[2] += choice is None
    scores = {}
    for style, datasets in counts.items():
        per_dataset = {
            name: {"n": n, "accuracy": 100.0 * right / n, "unparseable": 100.0 * none / n}
            for name, (n, right, none) in sorted(datasets.items())
        }
        total = sum(d["n"] for d in per_dataset.values())
        scores[style] = {
            "per_dataset": per_dataset,
            "average": sum(d["accuracy"] for d in per_dataset.values()) / len(per_dataset),
            "unparseable": sum(datasets[k][2] for k in datasets) * 100.0 / total,
            "n": total,
        }
    return scores


def score_predictions(path: str | Path, write: bool = True) -> dict:
    """Score ``predictions.jsonl`` and (by default) write ``scores.json`` next to it, atomically.

    Returns ``{"predictions": name, "styles": {style: {"per_dataset": ..., "average": ...,
    "unparseable": ..., "n": ...}}}``.
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no predictions file: {path}")
    scores = {"predictions": path.name, "styles": score_rows(iter_jsonl_tolerant(path))}
    if write:
        write_text_atomic(path.parent / SCORES_FILE, json.dumps(scores, indent=2) + "\n")
    return scores
