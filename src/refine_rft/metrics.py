"""The paper's average, defined once: the mean of per-dataset means (its "Avg" column).

Every dataset weighs the same whatever its size, so a 1,000-question test set does not drown a
200-question one. Answer-only accuracy (:mod:`refine_rft.evaluate.score`), the judge's RSC
summary (:mod:`refine_rft.judge.reasoning_answer`) and the report's tables all average this way,
through :func:`macro_mean` and :func:`group_means`; nothing else computes the average.

A row is any mapping with a number under ``key`` and a group name under ``group``; a row whose
value is ``None`` (not scored: a failed judgement, say) is left out of the means, never read as 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping


def group_means(rows: Iterable[Mapping], key: str, group: str = "dataset") -> dict[str, float]:
    """The mean of ``row[key]`` per ``row[group]``, groups sorted by name; rows whose value is
    ``None`` are left out (a group with no value is absent).

    >>> group_means([{"dataset": "dogs", "acc": 0}, {"dataset": "cub", "acc": 100}, {"dataset": "cub", "acc": 50},
    ...              {"dataset": "cars", "acc": None}], "acc")
    {'cub': 75.0, 'dogs': 0.0}
    """
    values: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row[key] is not None:
            values[row[group]].append(float(row[key]))
    return {name: sum(cell) / len(cell) for name, cell in sorted(values.items())}


def macro_mean(rows: Iterable[Mapping], key: str, group: str = "dataset") -> float | None:
    """The mean over groups of each group's mean ``row[key]``: the paper's "Avg". ``None`` when no
    row has a value.

    >>> rows = [{"dataset": "cub", "RSC_A": 100}] * 3 + [{"dataset": "dogs", "RSC_A": 0}]
    >>> macro_mean(rows, "RSC_A")  # the mean of rows would be 75
    50.0
    >>> macro_mean([{"split": "seen", "x": 1.0}, {"split": "unseen", "x": 0.0}], "x", group="split")
    0.5
    >>> macro_mean([], "RSC_A") is None
    True
    """
    means = group_means(rows, key, group)
    return sum(means.values()) / len(means) if means else None
