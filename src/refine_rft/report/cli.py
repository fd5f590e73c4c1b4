"""``refine-rft report RUN_DIR ... --out DIR``: tables, plots and an HTML report from run folders.

Reads only files that earlier stages wrote (see :mod:`refine_rft.report.runs` for a run folder's
layout) and writes into ``DIR``: ``table*.{md,csv,tex}``, ``tables.md``, ``accuracy.png``,
``training_<run>.png`` and ``report.html``.

A judge score that is not a number in [0, 100] is left out of the tables and the page and reported
on stderr with its file and row id; the command then exits with status 1.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.errors import ConfigError
from refine_rft.files import refuse_output_over_input, write_text_atomic
from refine_rft.report.html import build_html
from refine_rft.report.plots import accuracy_bars, training_curves
from refine_rft.report.runs import Run, load_run
from refine_rft.report.tables import all_tables, write_tables
from refine_rft.settings import parse


def _slug(name: str) -> str:
    """A file-name-safe form of a run name.

    >>> _slug("ReFine-RFT (ours)")
    'ReFine-RFT_ours'
    """
    return re.sub(r"[^0-9A-Za-z._-]+", "_", name).strip("_") or "run"


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path, samples: int = 6, seed: int = 0) -> Path:
    """Write every table, plot and ``report.html`` for ``run_dirs`` into ``out_dir``; return the HTML path."""
    return write_report([load_run(d) for d in run_dirs], out_dir, samples, seed)


def write_report(runs: Sequence[Run], out_dir: str | Path, samples: int = 6, seed: int = 0) -> Path:
    """:func:`build_report` on loaded runs."""
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"several runs are named {duplicates}: give each a distinct 'name' in its run.json")
    out_dir = Path(out_dir)
    refuse_output_over_input([("RUN_DIR", run.path) for run in runs], [("--out", out_dir)])
    tables = all_tables(runs)
    write_tables(tables, out_dir)
    plots = [accuracy_bars(runs, out_dir / "accuracy.png")]
    plots += [training_curves(run, out_dir / f"training_{_slug(run.name)}.png") for run in runs]
    plots = [p for p in plots if p is not None]
    return write_text_atomic(out_dir / "report.html", build_html(runs, tables, plots, samples, seed))


@dataclass
class ReportArguments:
    """Which runs, and where the report goes."""

    runs: list[str] = field(metadata={"positional": True, "metavar": "RUN_DIR",
                                      "help": "run folders (one table row each, in order)"})
    out: str = field(metadata={"help": "folder for tables, plots and report.html"})
    samples: int = field(default=6, metadata={"help": "sample questions shown in the HTML report"})
    seed: int = field(default=0, metadata={"help": "seed of the question sample"})


def parse_args(argv: list[str] | None = None) -> tuple[ReportArguments]:
    return parse("refine-rft report", [ReportArguments], argv, description=__doc__, select="report")


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_args(argv)
    refuse_output_over_input([("RUN_DIR", folder) for folder in args.runs], [("--out", args.out)])
    runs = [load_run(d) for d in args.runs]
    path = write_report(runs, args.out, args.samples, args.seed)
    print((Path(args.out) / "tables.md").read_text(encoding="utf-8"))
    print(f"wrote {path}")
    rejected = [message for run in runs for message in run.rejected]
    if rejected:
        print(f"refine-rft report: {len(rejected)} judge value(s) rejected, left out of the tables and the page:",
              *rejected, sep="\n", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
