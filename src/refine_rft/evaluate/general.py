"""``refine-rft general-eval``: general VQA (the paper's Table 4) with lmms-eval or VLMEvalKit.

Fine-grained training must not cost general ability; the paper checks MMStar, MMMU (val) and
TextVQA (val) on the merged model (``refine-rft export``) with VLMEvalKit (``--harness vlmevalkit``,
see :mod:`refine_rft.evaluate.vlmevalkit`). lmms-eval (the default, ``pip install -e ".[eval]"``)
runs the same three sets, but its prompts and answer matching differ, so its numbers are not
comparable with the paper's. lmms-eval gets the image resolution the model was trained at (from the
``refine_rft_config.yaml`` that ``refine-rft export`` copies, or ``--max-pixels/--min-pixels``);
VLMEvalKit by default its own registered setting for the model (1280 to 16,384 tokens of 28 x 28 for
Qwen2/2.5-VL, as the paper's Table 4 numbers suggest), or the training resolution with
``--resolution training``.
This module only builds the harness's command and reads its result files; the harnesses download
their datasets, so this runs on a GPU machine with network access::

    refine-rft general-eval --model runs/refine/merged --out runs/refine --num-processes 8
    # runs: accelerate launch --num_processes=8 -m lmms_eval --model qwen2_vl \\
    #   --model_args pretrained=runs/refine/merged,min_pixels=200704,max_pixels=1003520 \\
    #   --tasks mmstar,mmmu_val,textvqa_val --batch_size 1 --output_path runs/refine/general_eval
    refine-rft general-eval --harness vlmevalkit --vlmevalkit-dir VLMEvalKit --model runs/refine/merged \\
        --out runs/refine --num-processes 8    # -> runs/refine/general_eval/vlmevalkit/

lmms-eval writes ``<output_path>/<model name>/<date>_results.json`` whose ``results`` map each
task to ``{"<metric>,<filter>": value, ...}``; ``refine-rft report`` reads the newest such file
under ``RUN_DIR/general_eval``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.errors import DataError
from refine_rft.files import refuse_output_over_input
from refine_rft.evaluate.vlmevalkit import DATASETS as VLMEVALKIT_DATASETS
from refine_rft.evaluate.vlmevalkit import WORK_DIR as VLMEVALKIT_DIR
from refine_rft.evaluate.vlmevalkit import REGISTERED as VLMEVALKIT_REGISTERED
from refine_rft.evaluate.vlmevalkit import model_family as vlmevalkit_family
from refine_rft.evaluate.vlmevalkit import (parse_vlmevalkit_results, vlmevalkit_command, vlmevalkit_config,
                                            write_config, write_resolution_note)
from refine_rft.resolution import choose_resolution
from refine_rft.trust import trust_for

DEFAULT_TASKS = ("mmstar", "mmmu_val", "textvqa_val")
# The headline metric of each task in lmms-eval's results (all fractions in [0, 1]).
TASK_METRICS = {"mmstar": "average", "mmmu_val": "mmmu_acc", "textvqa_val": "exact_match"}
GENERAL_DIR = "general_eval"


def lmms_eval_command(model: str, output_path: str | Path, tasks=DEFAULT_TASKS, model_type: str = "qwen2_vl",
                      model_args: str = "", batch_size: int = 1, num_processes: int = 1) -> list[str]:
    """The lmms-eval command line for ``model`` (a folder with merged weights).

    >>> lmms_eval_command("m", "out", ["mmstar"])[2:]
    ['lmms_eval', '--model', 'qwen2_vl', '--model_args', 'pretrained=m', '--tasks', 'mmstar', '--batch_size', '1', '--output_path', 'out']
    """
    launcher = [sys.executable, "-m"]
    if num_processes > 1:
        launcher = [sys.executable, "-m", "accelerate.commands.launch", f"--num_processes={num_processes}", "-m"]
    pretrained = f"pretrained={model}" + (f",{model_args}" if model_args else "")
    return [*launcher, "lmms_eval", "--model", model_type, "--model_args", pretrained, "--tasks", ",".join(tasks),
            "--batch_size", str(batch_size), "--output_path", str(output_path)]


def parse_lmms_results(path: str | Path) -> dict[str, float]:
    """Each task's headline metric (a percentage) from an lmms-eval ``*_results.json`` file.

    Tasks outside :data:`TASK_METRICS` report their first non-stderr numeric metric.
    """
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data.get("results"), dict):
        raise DataError(f"{path}: not an lmms-eval results file (no 'results' object)")
    scores = {}
    for task, metrics in data["results"].items():
        values = {key.split(",")[0]: value for key, value in metrics.items()
                  if "," in key and "_stderr" not in key and isinstance(value, (int, float))}
        metric = TASK_METRICS.get(task, next(iter(values), None))
        if metric not in values:
            raise DataError(f"{path}: task {task!r} has no metric {metric!r} (has: {', '.join(values) or 'none'})")
        scores[task] = 100.0 * values[metric]
    return scores


def latest_results(run_dir: str | Path) -> Path | None:
    """The newest lmms-eval results file under ``run_dir/general_eval`` (names start with the date),
    outside VLMEvalKit's folder."""
    root = Path(run_dir) / GENERAL_DIR
    files = sorted((p for p in root.glob("**/*_results.json") if p.relative_to(root).parts[0] != VLMEVALKIT_DIR),
                   key=lambda p: p.name)
    return files[-1] if files else None


def general_scores(run_dir: str | Path) -> dict[str, float]:
    """A run's general-VQA percentages: lmms-eval's tasks (``mmstar``, ...) and VLMEvalKit's datasets
    (``MMStar``, ...), whichever harness left results under ``run_dir/general_eval``."""
    results = latest_results(run_dir)
    scores = parse_lmms_results(results) if results else {}
    return {**scores, **parse_vlmevalkit_results(Path(run_dir) / GENERAL_DIR / VLMEVALKIT_DIR)}


@dataclass
class GeneralEvalArguments:
    """Which model, which harness and tasks, and how to launch it."""

    model: str = field(metadata={"help": "merged model folder (see refine-rft export)"})
    out: str = field(metadata={"help": "run folder; results go to OUT/general_eval (outside the model folder: "
                                       "nothing is written where the model is read)"})
    harness: str = field(default="lmms-eval", metadata={
        "help": "lmms-eval (default) or VLMEvalKit (the paper's Table 4)", "choices": ("lmms-eval", "vlmevalkit")})
    tasks: str | None = field(default=None, metadata={
        "help": f"lmms-eval tasks (default: {','.join(DEFAULT_TASKS)}) or VLMEvalKit datasets (default: "
                f"{','.join(VLMEVALKIT_DATASETS)})"})
    model_type: str = field(default="qwen2_vl", metadata={"help": "lmms-eval model name (qwen2_vl, qwen2_5_vl, ...)"})
    model_args: str = field(default="", metadata={"help": "extra lmms-eval model_args, e.g. attn_implementation=sdpa"})
    batch_size: int = field(default=1, metadata={"help": "the harness's batch size"})
    num_processes: int = field(default=1, metadata={"help": "GPUs (uses accelerate launch when > 1)"})
    vlmevalkit_dir: str | None = field(default_factory=lambda: os.environ.get("VLMEVALKIT_DIR"), metadata={
        "help": "VLMEvalKit checkout holding run.py (default: $VLMEVALKIT_DIR)"})
    judge: str = field(default="exact_matching", metadata={
        "help": "VLMEvalKit's answer matcher for multiple-choice sets"})
    resolution: str | None = field(default=None, metadata={
        "help": "VLMEvalKit only: its registered resolution for the model (default; what the paper's Table 4 "
                "numbers match) or the training resolution (as lmms-eval gets); explicit "
                "--min-pixels/--max-pixels win over both", "choices": ("registered", "training")})
    dry_run: bool = field(default=False, metadata={"help": "print the command and exit"})


def _parser():
    from refine_rft.resolution import ResolutionArguments
    from refine_rft.settings import SettingsParser
    from refine_rft.trust import TrustArguments

    return SettingsParser("refine-rft general-eval", [GeneralEvalArguments, ResolutionArguments, TrustArguments],
                          __doc__, select="general_eval")


def parse_args(argv: list[str] | None = None) -> tuple:
    return _parser().parse(argv)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, pixels, trust = parser.parse(argv)
    # The harnesses load the model folder themselves: refuse code that is neither the project's nor trusted.
    trust_for(args.model, trust.trust_remote_code)
    out = Path(args.out) / GENERAL_DIR
    refuse_output_over_input([("--model", args.model)], [("--out", out)])
    resolution = choose_resolution(pixels.min_pixels, pixels.max_pixels, args.model)
    if args.harness == "vlmevalkit":
        return _run_vlmevalkit(args, pixels, out / VLMEVALKIT_DIR, resolution)
    if args.resolution is not None:
        parser.error("--resolution chooses VLMEvalKit's setting; lmms-eval always gets the training "
                     "resolution")
    tasks = [t for t in (args.tasks or ",".join(DEFAULT_TASKS)).split(",") if t]
    model_args = ",".join(filter(None, [args.model_args, *(f"{k}={v}" for k, v in resolution.processor_kwargs().items())]))
    command = lmms_eval_command(args.model, out, tasks, args.model_type, model_args, args.batch_size,
                                args.num_processes)
    print(" ".join(command))
    if args.dry_run:
        return 0
    if importlib.util.find_spec("lmms_eval") is None:
        print("refine-rft general-eval: lmms-eval is not installed; on a GPU machine run "
              "pip install -e '.[eval]' and rerun (the command is above)", file=sys.stderr)
        return 2
    subprocess.run(command, check=True)
    results = latest_results(out.parent)
    if results is None:
        print(f"refine-rft general-eval: lmms-eval wrote no *_results.json under {out}", file=sys.stderr)
        return 1
    for task, value in parse_lmms_results(results).items():
        print(f"{task:<14} {value:.1f}")
    return 0


def _run_vlmevalkit(args, pixels, work_dir: Path, training) -> int:
    datasets = [d for d in (args.tasks or ",".join(VLMEVALKIT_DATASETS)).split(",") if d]
    chat_class, registered = VLMEVALKIT_REGISTERED[vlmevalkit_family(args.model)]
    if pixels.min_pixels is not None or pixels.max_pixels is not None:
        which, resolution = "given", training
    elif args.resolution == "training":
        which, resolution = "training", training
    else:
        which, resolution = "registered", registered
    config = vlmevalkit_config(Path(args.model).resolve(), resolution, datasets, chat_class=chat_class)
    kit = Path(args.vlmevalkit_dir or "VLMEvalKit")
    command = vlmevalkit_command(kit.resolve(), work_dir.resolve() / "config.json", work_dir.resolve(),
                                 args.num_processes, args.judge)
    if args.dry_run:
        print(json.dumps(config, indent=2))
        print(" ".join(command))
        return 0
    if not (kit / "run.py").is_file():
        print(f"refine-rft general-eval: no VLMEvalKit checkout at {kit} (run.py missing); run git clone "
              "https://github.com/open-compass/VLMEvalKit && pip install -e VLMEvalKit, then pass "
              "--vlmevalkit-dir VLMEvalKit or set VLMEVALKIT_DIR", file=sys.stderr)
        return 2
    write_config(config, work_dir)
    write_resolution_note(work_dir, which, resolution)
    print(" ".join(command))
    # run.py resolves its own paths from its folder; the work dir and config are absolute.
    subprocess.run(command, check=True, cwd=kit)
    scores = parse_vlmevalkit_results(work_dir)
    if not scores:
        print(f"refine-rft general-eval: VLMEvalKit wrote no *_acc.csv under {work_dir}", file=sys.stderr)
        return 1
    for dataset, value in scores.items():
        print(f"{dataset:<14} {value:.1f}")
    return 0 if set(scores) == set(datasets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
