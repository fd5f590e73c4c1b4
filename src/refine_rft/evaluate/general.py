"""``refine-rft general-eval``: general VQA (the paper's Table 4) through lmms-eval.

Fine-grained training must not cost general ability; the paper checks MMStar, MMMU (val) and
TextVQA (val) with lmms-eval on the merged model (``refine-rft export``). This module only builds
the lmms-eval command and reads its results file; lmms-eval downloads its datasets from the hub,
so it runs on a GPU machine with network access::

    pip install -e ".[eval]"
    refine-rft general-eval --model runs/refine/merged --out runs/refine --num-processes 8
    # runs: accelerate launch --num_processes=8 -m lmms_eval --model qwen2_vl \\
    #   --model_args pretrained=runs/refine/merged --tasks mmstar,mmmu_val,textvqa_val \\
    #   --batch_size 1 --output_path runs/refine/general_eval

lmms-eval writes ``<output_path>/<model name>/<date>_results.json`` whose ``results`` map each
task to ``{"<metric>,<filter>": value, ...}``; ``refine-rft report`` reads the newest such file
under ``RUN_DIR/general_eval``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from refine_rft.errors import DataError

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
    """The newest lmms-eval results file under ``run_dir/general_eval`` (names start with the date)."""
    files = sorted((Path(run_dir) / GENERAL_DIR).glob("**/*_results.json"), key=lambda p: p.name)
    return files[-1] if files else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refine-rft general-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="merged model folder (see refine-rft export)")
    parser.add_argument("--out", help="run folder; results go to OUT/general_eval (default: the model folder)")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    parser.add_argument("--model-type", default="qwen2_vl", help="lmms-eval model name (qwen2_vl, qwen2_5_vl, ...)")
    parser.add_argument("--model-args", default="", help="extra lmms-eval model_args, e.g. max_pixels=1003520")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-processes", type=int, default=1, help="GPUs (uses accelerate launch when > 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the command and exit")
    args = parser.parse_args(argv)
    out = Path(args.out or args.model) / GENERAL_DIR
    command = lmms_eval_command(args.model, out, [t for t in args.tasks.split(",") if t], args.model_type,
                                args.model_args, args.batch_size, args.num_processes)
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


if __name__ == "__main__":
    raise SystemExit(main())
