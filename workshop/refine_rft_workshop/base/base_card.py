"""The card of a built instruct base: ``README.md`` and the loss curve ``loss.png``.

The card says how the folder was made (the command, the code revision, the recipe and the seeds
its images were drawn with), how big the model is, how its training loss went and, once measured,
its starting profile (:mod:`refine_rft_workshop.base.base_profile`).

>>> smoothed([1.0, 3.0, 5.0, 7.0], window=2)
[1.0, 2.0, 4.0, 6.0]
"""

from __future__ import annotations

from pathlib import Path


def smoothed(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` values (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_losses(losses: dict[str, list[float]], path: Path) -> Path:
    """Per-task training loss (per-sequence mean, smoothed over 50 steps), log scale; the build
    aids' losses dashed, and the correct-line probe's accuracy (not a loss) left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refine_rft.report.plots import save_figure

    figure, axis = plt.subplots(figsize=(7, 4))
    from refine_rft_workshop.base.instruct_data import TASKS

    for task, values in losses.items():
        if task == "flag_accuracy":
            continue
        # A hint learnt to the last digit logs 0, which a log axis cannot show.
        curve = [max(value, 1e-4) for value in smoothed(values, 50)]
        axis.plot(curve, label=task, linewidth=2.0 if task == "all" else 1.0,
                  linestyle="-" if task in ("all", *TASKS) else "--")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("loss per sequence (mean token cross-entropy)")
    axis.set_title("tiny instruct base: training loss per task")
    axis.legend(ncol=2, fontsize=8)
    return save_figure(figure, path, dpi=90)


def _final(values: list[float]) -> float:
    tail = values[-50:]
    return round(sum(tail) / len(tail), 3)


def card_text(summary: dict, profile: dict | None = None) -> str:
    """The ``README.md`` of a built base, from its ``build.json`` summary and measured profile."""
    from refine_rft_workshop.base.base_profile import missed_targets

    recipe = summary["recipe"]
    lines = [
        "# tiny:instruct — the embedded tiny instruct base",
        "",
        f"A `{recipe['size']}`-size tiny Qwen2-VL ({summary['parameters']:,} parameters, fp16 safetensors) trained "
        "from random weights on instruction data meant to give it the starting profile of an instruct MLLM "
        "(Choice well, the CoT tag format only part of the time, right answers with flawed reasoning; targets in `refine_rft_workshop.base.base_profile`). "
        "Its measured profile is below. Pass its folder, `refine_rft_workshop.tiny_instruct_path()`, as the model.",
        "",
        "Built with",
        "",
        "    refine-rft-workshop build-base --out workshop/refine_rft_workshop/tiny_instruct --force "
        + f"--steps {recipe['steps']} --threads {summary['torch_threads']}"
        + (f" --init PREVIOUS --learning-rate {recipe['learning_rate']}" if recipe.get("init") else ""),
        "",
        *([f"continuing from the previous build (`PREVIOUS`: the base whose model.safetensors has SHA-256 "
           f"`{recipe['init']}`; how to get it: `benchmarks/instruct_base.md`).", ""] if recipe.get("init") else []),
        f"- code revision: `{summary['revision']}`",
        f"- {recipe['steps']} steps, {summary['seconds'] / 60:.0f} min on {summary['torch_threads']} CPU "
        f"thread{'s' if summary['torch_threads'] > 1 else ''}",
        f"- pool: {summary['pool_rows']} images ({recipe['pool_per_class']} per species, {recipe['classes']} species), "
        f"drawn with image seed {recipe['pool_image_seed']} and option seed {recipe['pool_seed']}; no other images",
        f"- per step: {', '.join(f'{n} {task}' for task, n in _counts(recipe).items())} examples",
        "- build-time aids (`refine_rft_workshop.base.build_aids`, not part of the saved model): one token per "
        f"option line and per species name: {'yes' if recipe.get('catalogue_tokens') else 'no'}; "
        f"vision probe weight {recipe.get('vision_probe', 0)}; "
        f"attention hints weight {recipe.get('attention_hints', 0)}",
        f"- lr {recipe['learning_rate']} (warm-up {recipe['warmup_steps']} steps, cosine to "
        f"{recipe['final_lr_ratio']} of it), AdamW, weight decay {recipe['weight_decay']}",
        "- final loss per task (mean of the last 50 steps): "
        + ", ".join(f"{task} {_final(values)}" for task, values in summary["losses"].items()),
        "",
        "![training loss per task](loss.png)",
        "",
    ]
    if profile:
        lines += [
            f"## Starting profile ({profile['questions']} fresh questions, image seed {profile['image_seed']}, greedy)",
            "",
            "| Choice | top letter | Both | CoT | CoT format | RSC_A | RSC_U | RSC_O | RSC_U right | RSC_U wrong "
            "| Open | Open-exact |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {profile['choice']} | {profile['top_letter']} | {profile['both']} | {profile['cot']} | "
            f"{profile['cot_format']} | {profile['RSC_A']} | {profile['RSC_U']} | {profile['RSC_O']} | "
            f"{profile.get('RSC_U_right', '–')} | {profile.get('RSC_U_wrong', '–')} | "
            f"{profile.get('open', '–')} | {profile.get('open_exact', '–')} |",
            "",
            f"Choice answers by letter: {profile['letters']}. Measured with `refine_rft_workshop.base.base_profile."
            "measure_profile` (part of the build).",
            "",
            "Targets missed: " + ("; ".join(missed_targets(profile)) or "none") + ".",
            "",
        ]
    return "\n".join(lines)


def _counts(recipe: dict) -> dict[str, int]:
    from refine_rft_workshop.base.instruct_data import TASKS

    return {task: recipe["mix"][task] for task in TASKS}


def write_card(folder: Path, summary: dict, profile: dict | None = None) -> None:
    """Write ``loss.png`` and ``README.md`` into ``folder``."""
    plot_losses(summary["losses"], Path(folder) / "loss.png")
    (Path(folder) / "README.md").write_text(card_text(summary, profile), encoding="utf-8")
