"""How good must the teacher be for R_cot to help? ReFine-RFT's RSC_U gain over GRPO (R_fa+R_cls)
as the toy teacher misreads more.

    .venv/bin/python benchmarks/teacher_quality.py [--rates 0 0.2 0.4] [--seeds 0 1 2] [--out runs/demo_seeds]
        [--md benchmarks/teacher_quality.md] [--quick] [--overwrite]

For each seed S and misreading rate m, ReFine-RFT (R_fa + R_cls + R_cot) is trained with R_cot from
the toy teacher (:class:`refine_rft_workshop.teacher.ToyTeacher`, ``misread=m``, its other knobs at
the demo's defaults) on the demo's seed-S training set, with the demo's budget; GRPO (R_fa + R_cls),
the same run without R_cot, is the reference. Both are scored by the attribute judge, the evaluator
(which sees every trait, never misreads and trained nothing), on the CoT answers to the seed's test
questions. The gain is RSC_U(ReFine-RFT at m) - RSC_U(R_fa + R_cls), per seed.

It shares ``OUT/seed<S>`` with ``benchmarks/demo_seeds.py`` (same data, base and budgets): the
R_fa + R_cls training and the ReFine-RFT training at the demo's rate (0.2) are the demo's own
(``OUT/seed<S>/train/grpo_rfa_rcls``, ``train/refine_rft``), and so are their evaluations when the
demo has made them; only the other rates' trainings (``train/refine_rft_misread<m>``) and, where
the demo's are missing, CoT-only evaluations (``OUT/seed<S>/teacher_quality/eval/...``: the CoT
prompt and RSC judging, nothing else) run here. Every stage is skipped when done with the same
settings, so an interrupted run resumes; a stage made with other settings is refused
(``--overwrite`` redoes it).

Prints the table (mean ± sd over seeds, and how many seeds gain), writes it to ``OUT/teacher_quality.json``
and ``--md`` (keeping everything from its ``## Notes`` heading on) and plots the gain against the
misreading rate into a PNG next to ``--md``. ``--quick`` uses the demo's quick budgets (a smoke test:
its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from refine_rft.files import write_text_atomic
from refine_rft_workshop.demo.pipeline import (
    ABLATION_RUN,
    QUICK,
    RUNS,
    STYLES,
    DemoConfig,
    base_model,
    eval_settings,
    evaluate_one,
    prepare_data,
    stage_done,
    train_one,
    train_plans,
)

NOTES = "## Notes"
REFINE = next(run for run in RUNS if run[0] == "refine_rft")


def rate_name(rate: float) -> str:
    """The folder suffix of a misreading rate.

    >>> rate_name(0.2), rate_name(0.0), rate_name(0.35)
    ('misread0.2', 'misread0', 'misread0.35')
    """
    return f"misread{rate:g}"


def cot_scores(run_dir: Path) -> dict[str, float]:
    """Mean RSC_A (= CoT accuracy with the attribute judge), RSC_U and RSC_O of one judged run."""
    from refine_rft.report import load_run

    average = load_run(run_dir).rsc("cot")["average"]
    return {key: average.get(key) for key in ("RSC_A", "RSC_U", "RSC_O")}


def seed_runs(out: Path, seed: int, rates: list[float], config: DemoConfig, overwrite: bool = False) -> dict:
    """Train and evaluate what seed ``seed`` needs (reusing the demo's stages); ``{"R_fa+R_cls": scores,
    rate: scores, ...}`` for the evaluator's CoT scores of each run."""
    folder = out / f"seed{seed}"
    config = config.for_seed(seed)  # the teacher's misreads drawn with the seed, as the demo draws them
    files = prepare_data(folder, config, seed, overwrite)
    base, digest, _ = base_model()
    plans = {plan[1]: plan for plan in train_plans(config, ablation=True)}
    runs = {}

    def evaluated(name: str, flags, adapter: Path, teacher, demo_eval: str | None) -> Path:
        """The demo's evaluation of this training when it is there, else a CoT-only one of its own."""
        if demo_eval is not None:
            demo_dir = folder / "eval" / demo_eval
            if stage_done(demo_dir, eval_settings(str(base), digest, adapter, files["test"], config, STYLES,
                                                  teacher)):
                print(f"      {name}: the demo's evaluation in {demo_dir}", flush=True)
                return demo_dir
        own = folder / "teacher_quality" / "eval" / adapter.name
        return evaluate_one(own, name, flags, str(base), digest, files["test"], adapter, config, ("cot",),
                            teacher, overwrite)

    reference = train_one(folder, plans["grpo_rfa_rcls"], str(base), digest, files["train"], config, seed, overwrite)
    runs["R_fa+R_cls"] = cot_scores(evaluated(ABLATION_RUN[1], ABLATION_RUN[2], reference, None, "grpo_rfa_rcls"))
    for rate in rates:
        rated = dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, misread=rate))
        demo_rate = rate == config.teacher.misread  # the demo's own ReFine-RFT run
        # the plan made from this rate's settings, so that its title names the rate
        plan = next(plan for plan in train_plans(rated, ablation=True) if plan[1] == "refine_rft")
        adapter = train_one(folder, plan, str(base), digest, files["train"], rated, seed, overwrite,
                            folder_name=None if demo_rate else f"refine_rft_{rate_name(rate)}")
        name = f"ReFine-RFT (misread {rate:g})"
        runs[rate] = cot_scores(evaluated(name, REFINE[2], adapter, rated.teacher,
                                          "refine_rft" if demo_rate else None))
    return runs


def summarize(per_seed: dict[int, dict], rates: list[float]) -> list[dict]:
    """One row per rate: ReFine-RFT's RSC_U and RSC_A, the RSC_U gain over R_fa + R_cls (mean, sd,
    per seed) and how many seeds gain.

    >>> rows = summarize({0: {"R_fa+R_cls": {"RSC_U": 50.0, "RSC_A": 60.0}, 0.2: {"RSC_U": 54.0, "RSC_A": 61.0}},
    ...                   1: {"R_fa+R_cls": {"RSC_U": 50.0, "RSC_A": 60.0}, 0.2: {"RSC_U": 48.0, "RSC_A": 59.0}}}, [0.2])
    >>> rows[0]["gain"], rows[0]["gain_sd"], rows[0]["seeds_gaining"]
    (1.0, 4.242640687119285, 1)
    """
    def stats(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    rows = []
    for rate in rates:
        gains = [per_seed[s][rate]["RSC_U"] - per_seed[s]["R_fa+R_cls"]["RSC_U"] for s in per_seed]
        rsc_u, rsc_u_sd = stats([per_seed[s][rate]["RSC_U"] for s in per_seed])
        rsc_a, rsc_a_sd = stats([per_seed[s][rate]["RSC_A"] for s in per_seed])
        gain, gain_sd = stats(gains)
        rows.append({"misread": rate, "RSC_U": rsc_u, "RSC_U_sd": rsc_u_sd, "RSC_A": rsc_a, "RSC_A_sd": rsc_a_sd,
                     "gain": gain, "gain_sd": gain_sd, "gains": gains,
                     "seeds_gaining": sum(g > 0 for g in gains)})
    return rows


def to_markdown(rows: list[dict], per_seed: dict[int, dict], seeds: list[int]) -> str:
    """The table: the reference row, then one row per misreading rate."""
    ref_u = [per_seed[s]["R_fa+R_cls"]["RSC_U"] for s in seeds]
    ref_a = [per_seed[s]["R_fa+R_cls"]["RSC_A"] for s in seeds]
    sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
    lines = ["| Run | teacher misreads | RSC_U | RSC_A (CoT acc.) | RSC_U gain over R_fa+R_cls | gain per seed "
             "| seeds gaining |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| GRPO (R_fa+R_cls) | – | {statistics.fmean(ref_u):.1f} ± {sd(ref_u):.1f} "
             f"| {statistics.fmean(ref_a):.1f} ± {sd(ref_a):.1f} | – | – | – |"]
    for row in rows:
        lines.append(f"| ReFine-RFT | {row['misread']:.0%} | {row['RSC_U']:.1f} ± {row['RSC_U_sd']:.1f} "
                     f"| {row['RSC_A']:.1f} ± {row['RSC_A_sd']:.1f} | {row['gain']:+.1f} ± {row['gain_sd']:.1f} "
                     f"| {' / '.join(f'{g:+.1f}' for g in row['gains'])} | {row['seeds_gaining']} of {len(seeds)} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> Path:
    """The RSC_U gain against the teacher's misreading rate: mean ± sd, each seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refine_rft.report.plots import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    rates = [100 * row["misread"] for row in rows]
    ax.axhline(0, color="grey", linewidth=1)
    ax.errorbar(rates, [row["gain"] for row in rows], yerr=[row["gain_sd"] for row in rows], marker="o",
                capsize=4, linewidth=2, label="mean ± sd over seeds")
    for rate, row in zip(rates, rows):
        ax.scatter([rate] * len(row["gains"]), row["gains"], color="black", s=12, zorder=3)
    ax.set_xlabel("toy teacher: traits misread (%)")
    ax.set_ylabel("RSC_U gain over GRPO (R_fa+R_cls)")
    ax.set_title("ReFine-RFT's reasoning gain vs teacher quality")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.4],
                        help="the toy teacher's misreading rates (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/demo_seeds", help="the run folders, shared with demo_seeds.py")
    parser.add_argument("--md", default=str(Path(__file__).with_name("teacher_quality.md")),
                        help="markdown file to rewrite (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="the demo's quick budgets (a smoke test)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo the stages in --out made with other settings (refused without it)")
    args = parser.parse_args(argv)
    if any(not 0.0 <= rate <= 1.0 for rate in args.rates):
        parser.error(f"--rates must lie in [0, 1], got {args.rates}")
    out, md = Path(args.out), Path(args.md)
    config = QUICK if args.quick else DemoConfig()
    per_seed = {seed: seed_runs(out, seed, args.rates, config, args.overwrite) for seed in args.seeds}
    rows = summarize(per_seed, args.rates)
    png = plot(rows, md.with_name(md.stem + ".png"))
    teacher = {**{k: v for k, v in config.teacher.settings().items() if k not in ("model", "misread")},
               "seed": "the demo's seed"}
    write_text_atomic(out / "teacher_quality.json", json.dumps(
        {"seeds": args.seeds, "rates": args.rates, "teacher": teacher, "rows": rows,
         "per_seed": {s: {str(k): v for k, v in runs.items()} for s, runs in per_seed.items()}}, indent=2) + "\n")
    table = to_markdown(rows, per_seed, args.seeds)
    header = "\n".join([
        "# Teacher quality: ReFine-RFT's RSC_U gain as the toy teacher misreads more", "",
        f"    .venv/bin/python benchmarks/teacher_quality.py --rates {' '.join(f'{r:g}' for r in args.rates)} "
        f"--seeds {' '.join(map(str, args.seeds))}" + (" --quick" if args.quick else ""), "",
        f"The demo's settings ({'quick' if args.quick else 'default'} budgets; "
        f"`benchmarks/demo_seeds.md`), seeds {', '.join(map(str, args.seeds))}. ReFine-RFT's R_cot from the toy "
        "teacher misreading each trait of a picture with the given probability (other knobs: "
        + ", ".join(f"{k} {v}" for k, v in teacher.items())
        + "); RSC (CoT prompt) from the attribute judge, which never misreads. Gain: ReFine-RFT's RSC_U "
        f"minus GRPO (R_fa+R_cls)'s, the same run without R_cot, per seed; mean ± sd. Plot: `{png.name}`.", "", ""])
    old = md.read_text(encoding="utf-8") if md.is_file() else ""
    notes = old[old.index(NOTES):] if NOTES in old else ""
    write_text_atomic(md, header + table + ("\n" + notes if notes else ""))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
