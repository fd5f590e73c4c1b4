"""The paper's tables from run folders, as Markdown, CSV and LaTeX.

- Table 2, Answer-only: accuracy per dataset under each prompt (CH., Both, CoT) and their averages.
- Table 3, Reasoning-Answer: the judge's RSC_A / RSC_U / RSC_O per dataset and on average.
- Table 4, general VQA: MMStar / MMMU / TextVQA (lmms-eval or VLMEvalKit), and which image resolution
  VLMEvalKit used (its registered setting or the training one).
- Table 5, ablation: which components each labelled run used, with its average scores.

With open-world predictions (``open``, ``open_cot``) Table 2 gains their columns, and two tables
follow it: open-world accuracy with aliases, without (exact) and under Fine-R1's substring rule
(TI), and Fine-R1's similarity score (its encoder and protocol named, a stand-in marked); with a base-to-new split, seen / unseen / harmonic mean
per style. Without them the tables are the paper's, unchanged.

Numbers are percentages (RSC: 0-100) with one decimal; a missing value is "–" ("" in CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.data.records import RSC_KEYS
from refine_rft.dataset_specs import display_name, official
from refine_rft.evaluate.general import DEFAULT_TASKS, GENERAL_DIR
from refine_rft.evaluate.vlmevalkit import WORK_DIR as VLMEVALKIT_DIR
from refine_rft.evaluate.vlmevalkit import resolution_note
from refine_rft.files import write_text_atomic
from refine_rft.prompts import PROMPT_STYLES, STYLES
from refine_rft.report.runs import Run

STYLE_LABELS = {name: style.label for name, style in PROMPT_STYLES.items()}
TASK_NAMES = {"mmstar": "MMStar", "mmmu_val": "MMMU", "textvqa_val": "TextVQA"}
# VLMEvalKit's names of the same sets (the paper's harness); their numbers are not lmms-eval's.
VLMEVALKIT_NAMES = {"MMStar": "MMStar", "MMMU_DEV_VAL": "MMMU", "TextVQA_VAL": "TextVQA"}


@dataclass
class Table:
    """A table whose columns may be grouped (``(group, label)``; consecutive equal groups merge)."""

    key: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[list]
    caption: list[str] = field(default_factory=list)  # lines under the table


    def header(self) -> list[str]:
        return [f"{group} {label}".strip() for group, label in self.columns]

    def to_markdown(self) -> str:
        """A GitHub Markdown table under a ``###`` title.

        >>> print(Table("t", "T", [("", "Run"), ("CUB", "CH.")], [["a", 50.0], ["b", None]]).to_markdown())
        ### T
        <BLANKLINE>
        | Run | CUB CH. |
        | --- | ---: |
        | a | 50.0 |
        | b | – |
        """
        align = ["---" if i == 0 else "---:" for i in range(len(self.columns))]
        lines = [f"### {self.title}", "", _md_row(self.header()), _md_row(align)]
        lines += [_md_row([_cell(v, "md") for v in row]) for row in self.rows]
        if self.caption:
            lines += ["", *(line + "  " if i < len(self.caption) - 1 else line for i, line in enumerate(self.caption))]
        return "\n".join(lines)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header())
        writer.writerows([[_cell(v, "csv") for v in row] for row in self.rows])
        return out.getvalue()

    def to_latex(self) -> str:
        """A booktabs ``tabular`` with ``\\multicolumn`` group headers."""
        spans, rules, col = [], [], 1
        for group, labels in _groups(self.columns):
            width = len(labels)
            if group:
                spans.append(f"\\multicolumn{{{width}}}{{c}}{{{_tex(group)}}}")
                rules.append(f"\\cmidrule(lr){{{col}-{col + width - 1}}}")
            else:
                spans += [""] * width
            col += width
        lines = [f"% {self.title}", "\\begin{tabular}{l" + "c" * (len(self.columns) - 1) + "}", "\\toprule"]
        if any(group for group, _ in self.columns):
            lines += [" & ".join(spans) + " \\\\", " ".join(rules)]
        lines += [" & ".join(_tex(label) for _, label in self.columns) + " \\\\", "\\midrule"]
        lines += [" & ".join(_cell(v, "tex") for v in row) + " \\\\" for row in self.rows]
        lines += ["\\bottomrule", "\\end{tabular}"]
        lines += [f"% {line}" for line in self.caption]
        return "\n".join(lines) + "\n"


def _groups(columns: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    groups: list[tuple[str, list[str]]] = []
    for group, label in columns:
        if groups and groups[-1][0] == group and group:
            groups[-1][1].append(label)
        else:
            groups.append((group, [label]))
    return groups


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _tex(text: str) -> str:
    for char in "\\&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text


def _cell(value, fmt: str) -> str:
    if value is None:
        return {"md": "–", "csv": "", "tex": "--"}[fmt]
    if isinstance(value, bool):
        return {"md": ("✓", "✗"), "csv": ("yes", "no"), "tex": ("\\checkmark", "$\\times$")}[fmt][not value]
    if isinstance(value, (int, float)):
        return f"{value:.1f}"
    return _tex(str(value)) if fmt == "tex" else str(value)


def _datasets(names) -> list[str]:
    """Dataset names in the paper's order, unknown ones after, alphabetically."""
    order = list(official())
    return sorted(set(names), key=lambda d: (order.index(d) if d in order else len(order), d))


def answer_only_table(runs: Sequence[Run]) -> Table | None:
    """Table 2: one row per run; per dataset one column per prompt style that any run has."""
    styles = [s for s in STYLES if any(s in run.scores for run in runs)]
    datasets = _datasets(d for run in runs for s in run.scores.values() for d in s["per_dataset"])
    if not styles:
        return None
    columns = [("", "Run")] + [(display_name(d), STYLE_LABELS[s]) for d in datasets + ["Avg"] for s in styles]
    rows = [[run.name] + [run.accuracy(s, None if d == "Avg" else d) for d in datasets + ["Avg"] for s in styles]
            for run in runs]
    return Table("table2_answer_only", "Answer-only accuracy (%)", columns, rows)


def reasoning_table(runs: Sequence[Run], style: str = "cot") -> Table | None:
    """Table 3: the judge's mean RSC_A / RSC_U / RSC_O per dataset and on average (runs with judge rows)."""
    judged = [(run, run.rsc(style)) for run in runs if any(k[1] == style for k in run.judge)]
    if not judged:
        return None
    datasets = _datasets(d for _, rsc in judged for d in rsc["per_dataset"])
    columns = [("", "Run")] + [(display_name(d), k) for d in datasets + ["Avg"] for k in RSC_KEYS]
    rows = [[run.name] + [(rsc["average"] if d == "Avg" else rsc["per_dataset"].get(d, {})).get(k)
                          for d in datasets + ["Avg"] for k in RSC_KEYS] for run, rsc in judged]
    return Table("table3_reasoning", "Reasoning-Answer scores (judge, 0-100)", columns, rows,
                 judges_caption([run for run, _ in judged]))


def _by_name(runs: Sequence[Run], attribute: str, missing: str) -> str:
    groups: dict[str, list[str]] = {}
    for run in runs:
        groups.setdefault(getattr(run, attribute) or missing, []).append(run.name)
    if len(groups) == 1:
        return f"{next(iter(groups))} (every run)"
    return "; ".join(f"{name} ({', '.join(names)})" for name, names in groups.items())


def judges_caption(runs: Sequence[Run]) -> list[str]:
    """Table 3's caption: which judge scored RSC and which teacher gave R_cot, per run, read from the
    runs' settings (:mod:`refine_rft.judge.provenance`); a warning line for each run whose RSC judge
    is the teacher that trained it.

    >>> from types import SimpleNamespace as Run
    >>> print("\\n".join(judges_caption([Run(name="Zero-shot", rsc_judge="gpt-4.1-mini", teacher=None),
    ...                                   Run(name="Ours", rsc_judge="gpt-4.1-mini", teacher="gpt-4.1-mini")])))
    RSC judged by: gpt-4.1-mini (every run).
    R_cot given by: no R_cot teacher recorded (Zero-shot); gpt-4.1-mini (Ours).
    Warning: Ours was scored by gpt-4.1-mini, the teacher that gave its R_cot in training: a judge favours the model trained to please it; judge RSC with another model.
    """
    lines = [f"RSC judged by: {_by_name(runs, 'rsc_judge', 'not recorded')}.",
             f"R_cot given by: {_by_name(runs, 'teacher', 'no R_cot teacher recorded')}."]
    for run in runs:
        if run.teacher and run.teacher == run.rsc_judge:
            lines.append(f"Warning: {run.name} was scored by {run.rsc_judge}, the teacher that gave its R_cot in "
                         "training: a judge favours the model trained to please it; judge RSC with another model.")
    return lines


def general_table(runs: Sequence[Run]) -> Table | None:
    """Table 4: each harness's headline metric per set (runs with general-eval results). lmms-eval's
    and VLMEvalKit's columns stay apart (the paper's numbers are VLMEvalKit's)."""
    with_results = [run for run in runs if run.general]
    if not with_results:
        return None
    order = [*DEFAULT_TASKS, *VLMEVALKIT_NAMES]
    tasks = sorted({t for run in with_results for t in run.general},
                   key=lambda t: (order.index(t) if t in order else len(order), t))
    harnesses = [h for h, names in (("lmms-eval", TASK_NAMES), ("VLMEvalKit", VLMEVALKIT_NAMES))
                 if any(t in names for t in tasks)]
    columns = [("", "Run")] + [(_harness_group(t, harnesses), TASK_NAMES.get(t) or VLMEVALKIT_NAMES.get(t, t))
                               for t in tasks]
    rows = [[run.name] + [run.general.get(t) for t in tasks] for run in with_results]
    # Which image resolution VLMEvalKit showed each run (its registered setting or the training one).
    notes = [resolution_note(run.path / GENERAL_DIR / VLMEVALKIT_DIR) for run in with_results]
    if any(notes):
        columns.append(("", "Image resolution"))
        rows = [row + [note] for row, note in zip(rows, notes)]
    return Table("table4_general", f"General VQA ({', '.join(harnesses) or 'other'}, %)", columns, rows)


def _harness_group(task: str, harnesses: list[str]) -> str:
    """A column group naming the harness, only when the table mixes two."""
    if len(harnesses) < 2:
        return ""
    return "VLMEvalKit" if task in VLMEVALKIT_NAMES else "lmms-eval"


def ablation_table(runs: Sequence[Run]) -> Table | None:
    """Table 5: runs whose ``run.json`` has an ``ablation`` object, with their average scores."""
    labelled = [run for run in runs if run.ablation]
    if not labelled:
        return None
    components = list(dict.fromkeys(k for run in labelled for k in run.ablation))
    styles = [s for s in STYLES if any(s in run.scores for run in labelled)]
    judged = any(run.judge for run in labelled)
    columns = [("", "Run")] + [("Components", c) for c in components]
    columns += [("Answer-only Avg", STYLE_LABELS[s]) for s in styles]
    columns += [("Reasoning Avg", k) for k in RSC_KEYS] if judged else []
    rows = []
    for run in labelled:
        rsc = run.rsc()["average"] if judged else {}
        rows.append([run.name] + [run.ablation.get(c) for c in components] + [run.accuracy(s) for s in styles]
                    + ([rsc.get(k) for k in RSC_KEYS] if judged else []))
    return Table("table5_ablation", "Ablation", columns, rows)


def open_world_table(runs: Sequence[Run]) -> Table | None:
    """Open-world styles: accuracy with aliases, exact names only, and Fine-R1's similarity (0-100)."""
    styles = [s for s in STYLES if PROMPT_STYLES[s].open_world and any(s in run.scores for run in runs)]
    if not styles:
        return None
    # The encoder's name says whether it is Fine-R1's SigLIP or the MiniLM stand-in; the protocol
    # whether Fine-R1's computation was reproduced (quirks included) or corrected.
    encoders = sorted({f"{run.scores[s]['similarity']['encoder']}, "
                       f"{run.scores[s]['similarity'].get('protocol', 'fine-r1')} protocol"
                       for run in runs for s in styles if "similarity" in run.scores.get(s, {})})
    columns = [("", "Run")]
    for s in styles:
        columns += [(STYLE_LABELS[s], "Acc."), (STYLE_LABELS[s], "Exact"), (STYLE_LABELS[s], "TI")]
        columns += [(STYLE_LABELS[s], "Sim.")] if encoders else []
    rows = []
    for run in runs:
        row = [run.name]
        for s in styles:
            score = run.scores.get(s, {})
            similarity = score.get("similarity")
            row += [score.get("average"), score.get("exact_average"), score.get("fine_r1_ti_average")]
            row += [100 * similarity["average"] if similarity else None] if encoders else []
        rows.append(row)
    title = "Open-world accuracy (%): with aliases, exact names only, Fine-R1's substring rule (TI)"
    title += f"; similarity x100 by {'; '.join(encoders)}" if encoders else ""
    return Table("table2b_open_world", title, columns, rows)


def base_to_new_table(runs: Sequence[Run]) -> Table | None:
    """Base-to-new: seen, unseen and harmonic-mean accuracy per style (runs on a split's test sets)."""
    styles = [s for s in STYLES if any("per_class_split" in run.scores.get(s, {}) for run in runs)]
    if not styles:
        return None
    columns = [("", "Run")] + [(STYLE_LABELS[s], k) for s in styles for k in ("Seen", "Unseen", "HM")]
    rows = []
    for run in runs:
        row = [run.name]
        for s in styles:
            split = run.scores.get(s, {}).get("per_class_split", {})
            row += [split.get("seen", {}).get("accuracy"), split.get("unseen", {}).get("accuracy"),
                    split.get("harmonic")]
        rows.append(row)
    return Table("table2c_base_to_new", "Base-to-new accuracy (%): seen, unseen classes, harmonic mean", columns, rows)


def fine_r1_protocol_table(runs: Sequence[Run]) -> Table | None:
    """Closed-world runs on Fine-R1's files (``refine-rft prepare fine-r1``): each run's option order
    and, per style, Fine-R1's substring rule beside this project's strict rule. A run on the released
    order and one on re-shuffled options give the three readings: released + substring (Fine-R1's
    number), released + strict, shuffled + strict."""
    styles = [s for s in STYLES if any("fine_r1_substring_average" in run.scores.get(s, {}) for run in runs)]
    if not styles:
        return None
    columns = [("", "Run"), ("", "Options")]
    columns += [(STYLE_LABELS[s], label) for s in styles for label in ("Substring", "Strict")]
    rows = []
    for run in runs:
        orders = sorted({o for s in styles for o in run.scores.get(s, {}).get("option_order", [])})
        row = [run.name, "; ".join(orders) or None]
        for s in styles:
            score = run.scores.get(s, {})
            row += [score.get("fine_r1_substring_average"),
                    score.get("average") if "fine_r1_substring_average" in score else None]
        rows.append(row)
    return Table("table2d_fine_r1_protocol",
                 "Fine-R1's files (%): its substring rule vs the strict rule, by option order", columns, rows)


def all_tables(runs: Sequence[Run]) -> list[Table]:
    """The tables that the runs have data for, in the paper's order."""
    tables = [answer_only_table(runs), open_world_table(runs), base_to_new_table(runs), fine_r1_protocol_table(runs),
              reasoning_table(runs), general_table(runs), ablation_table(runs)]
    return [t for t in tables if t is not None]


def write_tables(tables: Sequence[Table], out_dir: str | Path) -> list[Path]:
    """Write ``<key>.md``, ``<key>.csv``, ``<key>.tex`` per table and all of them in ``tables.md``."""
    out_dir = Path(out_dir)
    paths = []
    for table in tables:
        paths.append(write_text_atomic(out_dir / f"{table.key}.md", table.to_markdown() + "\n"))
        paths.append(write_text_atomic(out_dir / f"{table.key}.csv", table.to_csv()))
        paths.append(write_text_atomic(out_dir / f"{table.key}.tex", table.to_latex()))
    paths.append(write_text_atomic(out_dir / "tables.md", "\n\n".join(t.to_markdown() for t in tables) + "\n"))
    return paths
