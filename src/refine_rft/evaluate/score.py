"""Answer-only accuracy from a predictions file, under each prompt style's rule.

Every style reads answers with the one grammar of :mod:`refine_rft.parsing` (one option, no
second option, no negation, no hedge), which R_cls uses too:

- **choice**: the whole response under :func:`~refine_rft.parsing.extract_choice` (the
  shared grammar; a leading letter is read like any other, and what follows must not contradict it).
- **both**: the response must state exactly one option letter *and* name exactly one option in
  full, and the two must be the same option; that option must be the true one. A response with
  only the letter, only the name, a letter and a name that disagree, or two of either, is
  unparseable (and wrong), and so is one that the shared grammar refuses.
- **cot**: the ``<answer>…</answer>`` block is required (no block: unparseable and wrong, as in
  the paper, whatever the rest of the text says) and taken as R_cls takes it
  (:func:`~refine_rft.parsing.answer_block`: one block, nothing after it); the block must identify
  the true option under :func:`~refine_rft.parsing.extract_choice`.
- **open**, **open_cot** (no options shown): the whole response, or for ``open_cot`` its one
  ``<answer>`` block, must name the true class and nothing else (:mod:`refine_rft.openworld`),
  among **every** class and alias of the dataset: the class list recorded in ``classes.json``
  beside the predictions (``refine-rft eval`` copies it from the question files' folder), so a
  seen or unseen file scored alone is scored against both sides; without one, what the file shows.

Accuracies are percentages. A style's average is :func:`~refine_rft.metrics.macro_mean`, the mean
of its per-dataset accuracies (each dataset weighs the same, as the paper's "Avg" column).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from refine_rft.data.records import SCORES_FILE, prediction_key, read_rows, require_all, validate_prediction
from refine_rft.errors import MissingFile
from refine_rft.files import write_text_atomic
from refine_rft.openworld import dataset_vocabularies, gather_class_lists, true_label
import refine_rft.evaluate.fine_r1 as fine_r1
from refine_rft.evaluate.similarity import DEFAULT_PROTOCOL, domain_word, label_text, similarity_scores
from refine_rft.metrics import group_means, macro_mean
from refine_rft.prompts import prompt_style


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


def score_rows(rows: Iterable[dict], similarity=None, class_lists: dict | None = None, where: str = "",
               protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Per-style, per-dataset accuracy (%) and unparseable share (%) of prediction rows.

    Open-world styles (``open``, ``open_cot``) are read by :mod:`refine_rft.openworld` against
    every class and alias of the dataset (``class_lists``, ``{dataset: entry}`` of ``classes.json``;
    else what the rows show), and add ``exact`` (the class's own name only, no alias),
    ``fine_r1_ti`` (Fine-R1's own open-world accuracy, its substring rule:
    :func:`~refine_rft.evaluate.fine_r1.open_world_hit`) and, given a ``similarity`` encoder,
    Fine-R1's similarity score under ``protocol`` (:mod:`refine_rft.evaluate.similarity`). Rows of a base-to-new split (``class_split``) add
    ``per_class_split``: seen, unseen and their harmonic mean, for every style. Closed-world rows
    from Fine-R1's files (``option_order``, ``refine-rft prepare fine-r1``) add
    ``fine_r1_substring``: Fine-R1's closed-world rule (:func:`~refine_rft.evaluate.fine_r1.closed_world_hit`)
    and the ``option_order`` they were shown in.

    >>> rows = [{"style": "choice", "dataset": "cub", "options": ["x", "y"], "answer": 1, "response": r}
    ...         for r in ["B", "A", "no idea"]]
    >>> s = score_rows(rows)["choice"]
    >>> round(s["average"], 1), s["per_dataset"]["cub"]["n"], round(s["unparseable"], 1)
    (33.3, 3, 33.3)
    >>> rows = [{"style": "open", "dataset": "dogs", "label": "Japanese_spaniel", "aliases": ["Japanese Chin"],
    ...          "options": ["Japanese_spaniel", "Pug"], "answer": 0, "response": r}
    ...         for r in ["A Japanese Chin.", "Japanese_spaniel", "Pug", ""]]
    >>> s = score_rows(rows)["open"]
    >>> s["average"], s["exact_average"], s["unparseable"]
    (50.0, 25.0, 25.0)
    """
    rows = list(rows)
    vocab = dataset_vocabularies([r for r in rows if prompt_style(r["style"]).open_world], class_lists, where)
    cells: dict[str, list[dict]] = defaultdict(list)  # style -> one entry per row, in percent
    open_rows: list[tuple[dict, dict]] = []  # (row, its entry): similarity comes later
    for row in rows:
        style = prompt_style(row["style"])
        if style.open_world:
            answer = style.answer(row["response"])
            named = vocab[row["dataset"]].named(answer)
            right, none = named == true_label(row), named is None
            exact = right and vocab[row["dataset"]].exact(answer) is not None
        else:
            choice = parsed_choice(row["style"], row["response"], row["options"])
            right, none, exact = choice == row["answer"], choice is None, None
        entry = {"dataset": row["dataset"], "accuracy": 100.0 * right, "unparseable": 100.0 * none,
                 "exact": None if exact is None else 100.0 * exact, "class_split": row.get("class_split"),
                 "similarity": None, "fine_r1_ti": None, "fine_r1_substring": None,
                 "option_order": row.get("option_order")}
        if not style.open_world and row.get("option_order"):  # a question from Fine-R1's files
            entry["fine_r1_substring"] = 100.0 * fine_r1.closed_world_hit(row["response"], label_text(row, "fine-r1"))
        cells[row["style"]].append(entry)
        if style.open_world:
            hit = fine_r1.open_world_hit(row["response"], label_text(row, "fine-r1"), domain_word(row, "fine-r1"))
            entry["fine_r1_ti"] = 100.0 * hit
            open_rows.append((row, entry))
    if similarity is not None and open_rows:
        scores = similarity_scores([r for r, _ in open_rows], similarity, protocol)
        for (_, entry), score in zip(open_rows, scores, strict=True):
            entry["similarity"] = score
    return {style: _style_scores(entries, prompt_style(style).open_world, similarity, protocol)
            for style, entries in cells.items()}


def _style_scores(entries: list[dict], open_world: bool, similarity, protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Per-dataset means of one style's entries and their :func:`~refine_rft.metrics.macro_mean`s;
    the unparseable share is over all rows."""
    keys = ["accuracy", "unparseable"] + (["exact", "fine_r1_ti"] if open_world else [])
    substring = any(entry["fine_r1_substring"] is not None for entry in entries)
    keys += ["fine_r1_substring"] if substring else []
    if open_world and similarity is not None:
        keys.append("similarity")
    counts = Counter(entry["dataset"] for entry in entries)
    means = {key: group_means(entries, key) for key in keys}
    scores = {
        "per_dataset": {name: {"n": n, **{key: means[key][name] for key in keys}} for name, n in sorted(counts.items())},
        "average": macro_mean(entries, "accuracy"),
        "unparseable": sum(entry["unparseable"] for entry in entries) / len(entries),
        "n": len(entries),
    }
    if substring:
        scores["fine_r1_substring_average"] = macro_mean(entries, "fine_r1_substring")
        scores["option_order"] = sorted({entry["option_order"] for entry in entries} - {None})
    if open_world:
        scores["exact_average"] = macro_mean(entries, "exact")
        scores["fine_r1_ti_average"] = macro_mean(entries, "fine_r1_ti")
        if similarity is not None:
            scores["similarity"] = {"average": macro_mean(entries, "similarity"),
                                    "encoder": similarity.name, "stand_in": similarity.stand_in,
                                    "protocol": protocol}
    sides = sorted({entry["class_split"] for entry in entries} - {None})
    if sides:
        scores["per_class_split"] = _class_split_scores(entries, sides)
    return scores


def _class_split_scores(entries: list[dict], sides: list[str]) -> dict:
    """Seen and unseen accuracy (each the mean of per-dataset accuracies) and their harmonic mean."""
    out = {}
    for side in sides:
        on_side = [entry for entry in entries if entry["class_split"] == side]
        out[side] = {"accuracy": macro_mean(on_side, "accuracy"), "n": len(on_side)}
    if "seen" in out and "unseen" in out:
        seen, unseen = out["seen"]["accuracy"], out["unseen"]["accuracy"]
        out["harmonic"] = 2 * seen * unseen / (seen + unseen) if seen + unseen else 0.0
    return out


def score_predictions(path: str | Path, write: bool = True, similarity: str | None = None,
                      protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Score ``predictions.jsonl`` and (by default) write ``scores.json`` next to it, atomically.

    Returns ``{"predictions": name, "styles": {style: {"per_dataset": ..., "average": ...,
    "unparseable": ..., "n": ...}}}``. ``similarity`` (``siglip``, ``minilm`` or ``auto``; see
    :func:`~refine_rft.evaluate.similarity.text_encoder`) adds Fine-R1's similarity score to the
    open-world styles, computed under ``protocol`` (``fine-r1`` or ``corrected``).
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"no predictions file: {path}")
    # The rule every stage reads rows by; a scored file is all of it or nothing (the report's rule).
    rows = require_all(read_rows([path], validate_prediction, key=prediction_key))
    class_lists = gather_class_lists([path])
    encoder = None
    if similarity is not None:
        from refine_rft.evaluate.similarity import text_encoder

        encoder = text_encoder(similarity)
    scores = {"predictions": path.name, "styles": score_rows(rows, encoder, class_lists, where=str(path), protocol=protocol)}
    if write:
        write_text_atomic(path.parent / SCORES_FILE, json.dumps(scores, indent=2) + "\n")
    return scores
