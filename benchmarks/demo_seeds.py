"""The demo over several seeds: mean and spread of every run's scores.

    .venv/bin/python benchmarks/demo_seeds.py [--seeds 0 1 2] [--out runs/demo_seeds] [--quick]

Each seed is a whole ``refine-rft demo --seed S`` (its own data, pre-training and training) in
``OUT/seed<S>``; finished stages are skipped, so an interrupted benchmark resumes. Prints, per
run and metric, the mean and the standard deviation over seeds, and writes them to
``OUT/summary.json`` and ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from refine_rft.data.records import RSC_KEYS
from refine_rft.demo import RUNS, run_demo
from refine_rft.files import write_text_atomic
from refine_rft.report import load_run

METRICS = ("CH.", "CoT", "RSC_A", "RSC_U", "RSC_O")


def run_metrics(run_dir: Path) -> dict[str, float | None]:
    """Answer-only accuracy (Choice, CoT) and mean RSC of one evaluated run folder."""
    run = load_run(run_dir)
    rsc = run.rsc("cot")["average"]
    return {"CH.": run.accuracy("choice"), "CoT": run.accuracy("cot"),
            **{key: rsc.get(key) for key in RSC_KEYS}}


def summarize(per_seed: dict[int, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """``{run: {metric: {"mean", "std", "values"}}}`` over seeds.

    >>> summarize({0: {"a": {"CoT": 10.0}}, 1: {"a": {"CoT": 20.0}}})["a"]["CoT"]["mean"]
    15.0
    """
    runs = next(iter(per_seed.values())).keys()
    table = {}
    for run in runs:
        table[run] = {}
        for metric in next(iter(per_seed.values()))[run]:
            values = [per_seed[s][run][metric] for s in per_seed if per_seed[s][run][metric] is not None]
            table[run][metric] = {"mean": statistics.fmean(values) if values else None,
                                  "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                                  "values": values}
    return table


def to_markdown(table: dict, seeds: list[int]) -> str:
    lines = [f"Mean ± standard deviation over seeds {', '.join(map(str, seeds))}", "",
             "| Run | " + " | ".join(METRICS) + " |", "| --- |" + " ---: |" * len(METRICS)]
    for run, metrics in table.items():
        cells = [f"{m['mean']:.1f} ± {m['std']:.1f}" if m["mean"] is not None else "–"
                 for m in (metrics[k] for k in METRICS)]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/demo_seeds")
    parser.add_argument("--quick", action="store_true", help="the quick demo (a smoke test of this script)")
    args = parser.parse_args()
    out = Path(args.out)
    per_seed = {}
    for seed in args.seeds:
        run_demo(out / f"seed{seed}", quick=args.quick, seed=seed)
        per_seed[seed] = {name: run_metrics(out / f"seed{seed}" / "eval" / folder) for folder, name, _ in RUNS}
    table = summarize(per_seed)
    markdown = to_markdown(table, args.seeds)
    write_text_atomic(out / "summary.json", json.dumps({"seeds": args.seeds, "runs": table}, indent=2) + "\n")
    write_text_atomic(out / "summary.md", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
