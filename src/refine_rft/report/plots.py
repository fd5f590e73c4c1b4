"""PNG plots for the report: per-dataset accuracy bars, and training curves from trainer logs.

Training curves read ``log_history`` of the trainer's ``trainer_state.json``, where TRL's GRPO
trainer logs ``reward``, ``rewards/<function>/mean`` (one per reward function),
``completions/mean_length`` and our judge's ``judge/<counter>`` metrics.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402

from refine_rft.files import naming_the_file  # noqa: E402
from refine_rft.prompts import STYLES  # noqa: E402
from refine_rft.report.runs import Run  # noqa: E402
from refine_rft.dataset_specs import display_name  # noqa: E402
from refine_rft.report.tables import STYLE_LABELS, _datasets  # noqa: E402

# What a training curve shows, by log key: the total reward, each reward function, the
# completion length, and judge failures (an outage must be visible, not hidden in the reward).
CURVE_PATTERNS = (r"reward", r"rewards/.+/mean", r"completions/mean_length", r"judge/.*fail.*")


def accuracy_bars(runs: Sequence[Run], path: str | Path) -> Path | None:
    """One panel per prompt style: per-dataset (and average) accuracy, one bar per run."""
    styles = [s for s in STYLES if any(s in run.scores for run in runs)]
    if not styles:
        return None
    datasets = _datasets(d for run in runs for s in run.scores.values() for d in s["per_dataset"])
    labels = [display_name(d) for d in datasets] + ["Avg"]
    fig, axes = plt.subplots(1, len(styles), figsize=(max(5.0, 1.1 * len(labels) * len(styles) + 2), 3.6),
                             squeeze=False)
    width = 0.8 / len(runs)
    for ax, style in zip(axes[0], styles):
        for i, run in enumerate(runs):
            values = [run.accuracy(style, d) for d in datasets] + [run.accuracy(style)]
            xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(labels))]
            ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=run.name)
        ax.set_title(f"Answer-only, {STYLE_LABELS[style]}")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside the bars
    return save_figure(fig, path)


def curve_keys(log_history: Sequence[dict]) -> list[str]:
    """The logged keys that training curves show, in :data:`CURVE_PATTERNS` order.

    >>> curve_keys([{"step": 1, "loss": 0.1, "rewards/format_reward/mean": 1.0, "rewards/format_reward/std": 0.0,
    ...              "reward": 1.0, "completions/mean_length": 9.0, "judge/failures": 0}])
    ['reward', 'rewards/format_reward/mean', 'completions/mean_length', 'judge/failures']
    """
    keys = list(dict.fromkeys(k for entry in log_history for k in entry))
    return [k for pattern in CURVE_PATTERNS for k in keys if re.fullmatch(pattern, k)]


def training_curves(run: Run, path: str | Path) -> Path | None:
    """A grid of curves (one panel per key of :func:`curve_keys`) against the training step."""
    keys = curve_keys(run.log_history)
    if not keys:
        return None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(e["step"], e[key]) for e in run.log_history if key in e and "step" in e
                  and isinstance(e[key], (int, float))]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 30 else None)
        ax.set_title(key, fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(f"Training: {run.name}")
    return save_figure(fig, path)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it to ``path`` atomically (a half-written PNG never has the final name) and
    close it; every plot of the project is saved through here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        with naming_the_file(path):
            fig.savefig(tmp, dpi=dpi)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    tmp.replace(path)  # atomic: a half-written PNG never has the final name
    return path
