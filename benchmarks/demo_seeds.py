"""The demo over several seeds: mean and spread of every run's scores, and the GRPO reward curves.

    .venv/bin/python benchmarks/demo_seeds.py [--seeds 0 1 2] [--out runs/demo_seeds] [--md benchmarks/demo_seeds.md]
        [--overwrite]

Each seed is a whole ``refine-rft-workshop demo --seed S --ablation`` in ``OUT/seed<S>`` (the demo's four
runs and the ablation GRPO (R_fa+R_cls), ReFine-RFT without R_cot, so that R_cot's own effect is
isolated; every GRPO arm shares every budget): its own 5-shot training set
and test images (image seed S), its own training seed; all start from the shipped base
``tiny:instruct``. Finished stages are skipped, so an interrupted benchmark resumes. Prints, per
run and metric, the mean and the standard deviation over seeds; writes them to
``OUT/summary.json`` and rewrites ``--md`` (keeping everything from its ``## Notes`` heading on),
with the reward curves of the three GRPO arms (mean over seeds) in a PNG next to it.

ReFine-RFT's R_cot comes from the toy teacher at the demo's default misreading rate
(:class:`refine_rft_workshop.teacher.ToyTeacher`); every RSC score comes from the attribute judge,
the evaluator, which trained nothing. ``benchmarks/teacher_quality.py`` reuses these run folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from refine_rft.data.records import RSC_KEYS
from refine_rft_workshop.demo import DemoConfig, demo_runs, run_demo
from refine_rft.files import write_text_atomic
from refine_rft.report import load_run

METRICS = ("CH.", "Both", "CoT", "Open", "Open exact", "Open sim.", "RSC_A", "RSC_U", "RSC_O")
GRPO_ARMS = ("grpo_rf_rcls", "grpo_rfa_rcls", "refine_rft")
RUNS = demo_runs(ablation=True)
NOTES = "## Notes"


def run_metrics(run_dir: Path) -> dict[str, float | None]:
    """Answer-only accuracy (Choice, Both, CoT), the open-world ``open`` prompt's accuracy (with the
    synthetic aliases; exact names only) and Fine-R1's similarity score x100 (MiniLM stand-in
    encoder), and mean RSC (CoT prompt) of one evaluated run folder."""
    run = load_run(run_dir)
    rsc = run.rsc("cot")["average"]
    open_world = run.scores.get("open", {})
    similarity = open_world.get("similarity")
    return {"CH.": run.accuracy("choice"), "Both": run.accuracy("both"), "CoT": run.accuracy("cot"),
            "Open": open_world.get("average"), "Open exact": open_world.get("exact_average"),
            "Open sim.": 100 * similarity["average"] if similarity else None,
            **{key: rsc.get(key) for key in RSC_KEYS}}


def cot_answers(run_dir: Path) -> dict[str, float]:
    """Of one evaluated run's CoT answers (%): those the answer grammar refuses, those whose one
    ``<answer>`` names one option by letter and another by name (a refused kind), and the correct
    share of the accepted ones.

    The CoT accuracy is ``(100 - refused) * correct_of_accepted / 100``.
    """
    from refine_rft.evaluate.score import parsed_choice
    from refine_rft.files import read_jsonl
    from refine_rft.parsing import answer_block, stated_options

    rows = [r for r in read_jsonl(run_dir / "predictions.jsonl") if r["style"] == "cot"]
    refused = mismatched = 0
    accepted = []
    for row in rows:
        got = parsed_choice("cot", row["response"], row["options"])
        if got is not None:
            accepted.append(got == row["answer"])
            continue
        refused += 1
        block = answer_block(row["response"])
        if block is not None:
            by_letter, by_name = stated_options(block, row["options"])
            mismatched += len(by_letter) == len(by_name) == 1 and by_letter != by_name
    return {"refused": 100 * refused / len(rows), "mismatched": 100 * mismatched / len(rows),
            "correct_of_accepted": 100 * sum(accepted) / len(accepted) if accepted else 0.0}


def usefulness_by_answer(run_dir: Path) -> dict[str, float | None]:
    """Mean RSC_U (the attribute claims' score) of one judged run's right and wrong CoT answers
    (RSC_A 100 or not), and how many were right: whether rewarding right answers also rewards true
    claims in this run.
    """
    from refine_rft.files import read_jsonl

    rows = [r for r in read_jsonl(run_dir / "judge_scores.jsonl") if r["style"] == "cot"]
    right = [r["RSC_U"] for r in rows if r.get("RSC_A") == 100.0 and r.get("RSC_U") is not None]
    wrong = [r["RSC_U"] for r in rows if r.get("RSC_A") != 100.0 and r.get("RSC_U") is not None]
    return {"RSC_U right": statistics.fmean(right) if right else None,
            "RSC_U wrong": statistics.fmean(wrong) if wrong else None, "right": len(right)}


def claim_kinds(run_dir: Path) -> dict[str, float]:
    """What one run's CoT answers claim, read as the attribute judge reads them (the ``<think>`` and
    ``<attribute>`` text; the demo's vocabulary): the share (%) of answers with a false claim, with a
    true claim about a trait in which the options differ (one that rules an option out), and with
    no claim at all. RSC_U is 100 x (true / all claims) x (0.5 + 0.5 x share of options ruled out),
    so these say which of the two factors a run moved.
    """
    from refine_rft.files import read_jsonl
    from refine_rft.judge.attributes import candidate_facts, claims, holds
    from refine_rft.parsing import parse_response
    from refine_rft_workshop.synthetic import judge_vocabulary

    vocabulary = judge_vocabulary()["attribute_values"]
    rows = [r for r in read_jsonl(run_dir / "predictions.jsonl") if r["style"] == "cot"]
    false = distinguishing = none = 0
    for row in rows:
        parsed = parse_response(row["response"])
        text = " ".join(part for part in (parsed.think, parsed.attribute) if part)
        found = claims(text, candidate_facts(row["attributes"], row["option_attributes"], vocabulary))
        true = [fact for fact in found if holds(fact, row["attributes"])]
        false += len(true) < len(found)
        distinguishing += any(not holds(fact, option) for fact in true for option in row["option_attributes"])
        none += not found
    return {key: 100 * value / len(rows) for key, value in
            (("false claim", false), ("distinguishing claim", distinguishing), ("no claim", none))}


def claim_kinds_markdown(per_seed: dict[int, dict[str, dict]]) -> str:
    """Mean over seeds of :func:`claim_kinds` per run, as a table."""
    runs = next(iter(per_seed.values()))
    keys = ("false claim", "distinguishing claim", "no claim")
    lines = ["What the CoT answers claim (% of answers; mean over seeds), from `claim_kinds`:", "",
             "| Run | with a false claim | with a true distinguishing claim | with no claim |",
             "| --- | ---: | ---: | ---: |"]
    for run in runs:
        cells = [statistics.fmean(per_seed[s][run][k] for s in per_seed) for k in keys]
        lines.append(f"| {run} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def usefulness_markdown(per_seed: dict[int, dict[str, dict]]) -> str:
    """:func:`usefulness_by_answer` per run, over all seeds' answers, as a table."""
    runs = next(iter(per_seed.values()))
    lines = ["RSC_U of right and wrong CoT answers (mean over seeds), from `usefulness_by_answer`:", "",
             "| Run | RSC_U of right answers | RSC_U of wrong answers | right answers (all seeds) |",
             "| --- | ---: | ---: | ---: |"]
    for run in runs:
        cells = []
        for key in ("RSC_U right", "RSC_U wrong"):
            values = [per_seed[s][run][key] for s in per_seed if per_seed[s][run][key] is not None]
            cells.append(f"{statistics.fmean(values):.1f}" if values else "-")
        cells.append(str(sum(per_seed[s][run]["right"] for s in per_seed)))
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cot_answers_markdown(per_seed: dict[int, dict[str, dict]]) -> str:
    """Mean over seeds of :func:`cot_answers` per run, as a table."""
    runs = next(iter(per_seed.values()))
    lines = ["CoT answers (% of all; mean over seeds), from `cot_answers`:", "",
             "| Run | refused by the grammar | letter and name of different options "
             "| correct, of the accepted |",
             "| --- | ---: | ---: | ---: |"]
    for run in runs:
        cells = [statistics.fmean(per_seed[s][run][k] for s in per_seed)
                 for k in ("refused", "mismatched", "correct_of_accepted")]
        lines.append(f"| {run} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


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
    """The mean ± sd table and the per-seed values.

    >>> text = to_markdown({"a": {m: {"mean": 1.0, "std": 0.5, "values": [0.5, 1.5]} for m in METRICS}}, [0, 1])
    >>> text.splitlines()[2]
    '| a | 1.0 ± 0.5 | 1.0 ± 0.5 | 1.0 ± 0.5 | 1.0 ± 0.5 | 1.0 ± 0.5 | 1.0 ± 0.5 | 1.0 ± 0.5 | 1.0 ± 0.5 | 1.0 ± 0.5 |'
    """
    lines = ["| Run | " + " | ".join(METRICS) + " |", "| --- |" + " ---: |" * len(METRICS)]
    for run, metrics in table.items():
        cells = [f"{m['mean']:.1f} ± {m['std']:.1f}" if m["mean"] is not None else "–"
                 for m in (metrics[k] for k in METRICS)]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    lines += ["", f"Per seed ({', '.join(map(str, seeds))}):", "", "| Run | " + " | ".join(METRICS) + " |",
              "| --- |" + " ---: |" * len(METRICS)]
    for run, metrics in table.items():
        cells = [" / ".join(f"{v:.1f}" for v in metrics[k]["values"]) or "–" for k in METRICS]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def reward_curves(out: Path, seeds: list[int], path: Path) -> Path:
    """One panel per GRPO arm: each logged reward (``rewards/<f>/mean`` and the total) against the
    step, averaged over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refine_rft.report.plots import save_figure

    names = {folder: name for folder, name, _ in RUNS}
    fig, axes = plt.subplots(1, len(GRPO_ARMS), figsize=(6 * len(GRPO_ARMS), 3.8), squeeze=False)
    for ax, arm in zip(axes[0], GRPO_ARMS):
        curves: dict[str, dict[int, list[float]]] = {}
        for seed in seeds:
            history = load_run(out / f"seed{seed}" / "eval" / arm).log_history
            for entry in history:
                for key, value in entry.items():
                    if (key == "reward" or (key.startswith("rewards/") and key.endswith("/mean"))) and "step" in entry:
                        curves.setdefault(key, {}).setdefault(entry["step"], []).append(value)
        for key, by_step in sorted(curves.items()):
            steps = sorted(by_step)
            label = key.removeprefix("rewards/").removesuffix("/mean")
            ax.plot(steps, [statistics.fmean(by_step[s]) for s in steps], label=label,
                    linewidth=2.0 if key == "reward" else 1.2)
        ax.set_title(f"{names[arm]}: rewards (mean of {len(seeds)} seeds)")
        ax.set_xlabel("GRPO step")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return save_figure(fig, path, dpi=90)


def settings_text(config: DemoConfig, seeds: list[int], seconds: dict[int, float], curves: Path) -> str:
    from refine_rft_workshop.instruct import INSTRUCT_DIR

    build = json.loads((INSTRUCT_DIR / "build.json").read_text())
    return "\n".join([
        "# `make demo` over three seeds", "",
        f"    .venv/bin/python benchmarks/demo_seeds.py --seeds {' '.join(map(str, seeds))}", "",
        f"Default demo settings (`refine_rft_workshop.demo.DemoConfig`): {config.classes} species, "
        f"{config.shots}-shot train "
        f"({config.classes * config.shots} questions), {config.classes * config.test_per_class} test questions; "
        f"the shipped tiny instruct base ({build['parameters'] / 1e6:.1f}M parameters, shipped, built at "
        f"`{build['revision'][:12]}`); GRPO {config.grpo_steps} steps × {config.prompts_per_step * config.num_generations} "
        f"completions ({config.prompts_per_step} prompts × G={config.num_generations}), completion length "
        f"{config.max_completion_length}, LoRA r={config.lora_r}, lr {config.learning_rate} for every GRPO arm; SFT "
        f"{config.sft_steps} steps. Test accuracy (%) under the Choice (CH.), Both and CoT prompts and the "
        "open-world Open prompt (no options; the species' name or a synthetic alias, read by the strict "
        "open-world rule; Open exact: names only; Open sim.: Fine-R1's similarity score x100 with the offline "
        "MiniLM stand-in encoder, not Fine-R1's SigLIP), and "
        "attribute-judge RSC (0-100) under the CoT prompt; mean ± standard deviation over seeds "
        f"{', '.join(map(str, seeds))} (each seed: its own training set, test images and training seed).", "",
        "ReFine-RFT's R_cot comes from the toy teacher (`refine_rft_workshop.teacher`: "
        + ", ".join(f"{k} {v}" for k, v in config.teacher.settings().items() if k not in ("model", "seed"))
        + ", seed: the demo's seed); RSC comes from the attribute judge, the evaluator: it sees every trait, never misreads and "
        "pays nothing for length, and trained no run.", "",
        "Wall-clock per seed: " + ", ".join(f"seed {s} {seconds[s]:.0f} s" for s in seeds)
        + f" (the first complete run of each). Reward curves (mean over seeds): `{curves.name}`.", "", "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/demo_seeds")
    parser.add_argument("--md", default=str(Path(__file__).with_name("demo_seeds.md")),
                        help="markdown file to rewrite (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="the quick demo (a smoke test of this script)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo the stages in --out made with other settings (refused without it)")
    args = parser.parse_args()
    out, md = Path(args.out), Path(args.md)
    per_seed, seconds, cot, usefulness, kinds = {}, {}, {}, {}, {}
    for seed in args.seeds:
        start = time.time()
        run_demo(out / f"seed{seed}", quick=args.quick, seed=seed, ablation=True, overwrite=args.overwrite)
        # The first completed run's wall-clock is kept: a rerun skips every finished stage.
        timing = out / f"seed{seed}" / "demo_seconds.json"
        if not timing.is_file():
            write_text_atomic(timing, json.dumps({"seconds": round(time.time() - start, 1)}) + "\n")
        seconds[seed] = json.loads(timing.read_text())["seconds"]
        per_seed[seed] = {name: run_metrics(out / f"seed{seed}" / "eval" / folder) for folder, name, _ in RUNS}
        cot[seed] = {name: cot_answers(out / f"seed{seed}" / "eval" / folder) for folder, name, _ in RUNS}
        usefulness[seed] = {name: usefulness_by_answer(out / f"seed{seed}" / "eval" / folder)
                            for folder, name, _ in RUNS}
        kinds[seed] = {name: claim_kinds(out / f"seed{seed}" / "eval" / folder) for folder, name, _ in RUNS}
    table = summarize(per_seed)
    summary = {"seeds": args.seeds, "runs": table, "seconds": seconds, "cot_answers": cot, "usefulness": usefulness,
               "claim_kinds": kinds}
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    curves = reward_curves(out, args.seeds, md.with_name(md.stem + "_rewards.png"))
    from refine_rft_workshop.demo.pipeline import QUICK

    body = "\n".join([settings_text(QUICK if args.quick else DemoConfig(), args.seeds, seconds, curves)
                      + to_markdown(table, args.seeds), cot_answers_markdown(cot), usefulness_markdown(usefulness),
                      claim_kinds_markdown(kinds)])
    old = md.read_text(encoding="utf-8") if md.is_file() else ""
    notes = old[old.index(NOTES):] if NOTES in old else ""
    write_text_atomic(md, body + ("\n" + notes if notes else ""))
    print(to_markdown(table, args.seeds))
    print(cot_answers_markdown(cot))
    print(usefulness_markdown(usefulness))
    print(claim_kinds_markdown(kinds))


if __name__ == "__main__":
    main()
