"""General VQA with VLMEvalKit, the harness the paper's Table 4 was measured with.

VLMEvalKit is not a pip package with a command: it runs from its checkout (``git clone
https://github.com/open-compass/VLMEvalKit && pip install -e VLMEvalKit``) as ``python run.py``.
This module writes its ``--config`` JSON (the merged model as a ``Qwen2VLChat`` with this project's
image resolution, and the three datasets), builds the command, and reads the score files it writes::

    python VLMEvalKit/run.py --config OUT/general_eval/vlmevalkit/config.json \\
        --work-dir OUT/general_eval/vlmevalkit --judge exact_matching
    # N GPUs: python -m torch.distributed.run --nproc-per-node=N VLMEvalKit/run.py ...

VLMEvalKit writes ``<work-dir>/<model>/T<date>_G<commit>/<model>_<dataset>_acc.csv`` (and links the
newest into ``<work-dir>/<model>/``). Their ``Overall`` column is the headline number: for the
multiple-choice sets (MMStar, MMMU_DEV_VAL) a fraction per ``split`` row (MMMU_DEV_VAL has ``dev``
and ``validation``; Table 4 is ``validation``), for TextVQA_VAL already a percentage.

Image resolution: by default VLMEvalKit's registered setting for the model's family
(:data:`REGISTERED`: its ``Qwen2-VL-7B-Instruct`` and ``Qwen2.5-VL-7B-Instruct`` entries in
``vlmeval/config.py`` pass ``min_pixels=1280 * 28 * 28, max_pixels=16384 * 28 * 28``; its Qwen3-VL
entries, class ``Qwen3VLChat``, pass none, i.e. the processor's own), which is what the paper's Table 4
base-model numbers match. ``--resolution training`` shows the model images at its training resolution
instead. Which one was used is written to ``<work-dir>/resolution.json`` and shown in Table 4.

Assumption the paper leaves open: the multiple-choice answers are matched exactly
(``--judge exact_matching``) rather than extracted by VLMEvalKit's default ChatGPT judge, so the
numbers need no API key and do not drift with a hosted model.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from refine_rft.errors import ConfigError, DataError
from refine_rft.resolution import ImageResolution

DATASETS = ("MMStar", "MMMU_DEV_VAL", "TextVQA_VAL")
# VLMEvalKit's dataset class of each set (the ``class`` of its config JSON).
DATASET_CLASSES = {"MMStar": "ImageMCQDataset", "MMMU_DEV_VAL": "MMMUDataset", "TextVQA_VAL": "ImageVQADataset"}
# (split row, scale to a percentage) of each set's ``Overall`` in its ``_acc.csv``.
HEADLINE = {"MMStar": ("none", 100.0), "MMMU_DEV_VAL": ("validation", 100.0), "TextVQA_VAL": (None, 1.0)}
WORK_DIR = "vlmevalkit"
MODEL_NAME = "refine_rft"
RESOLUTION_FILE = "resolution.json"
_QWEN2_REGISTERED = ImageResolution(1280 * 28 * 28, 16384 * 28 * 28)
# VLMEvalKit's registered entry per model family (model_type of config.json): its chat class and bounds.
REGISTERED: dict[str, tuple[str, ImageResolution]] = {
    "qwen2_vl": ("Qwen2VLChat", _QWEN2_REGISTERED),
    "qwen2_5_vl": ("Qwen2VLChat", _QWEN2_REGISTERED),
    "qwen3_vl": ("Qwen3VLChat", ImageResolution()),
}


def model_family(model: str | Path) -> str:
    """The ``model_type`` in a model folder's ``config.json`` (``qwen2_vl`` when it has none)."""
    path = Path(model) / "config.json"
    if not path.is_file():
        return "qwen2_vl"
    family = json.loads(path.read_text(encoding="utf-8")).get("model_type", "qwen2_vl")
    if family not in REGISTERED:
        raise ConfigError(f"{model}: model_type {family!r} has no VLMEvalKit entry here; "
                          f"known: {', '.join(REGISTERED)}")
    return family


def write_resolution_note(work_dir: str | Path, which: str, resolution: ImageResolution) -> Path:
    """Record which resolution the general-VQA run used (``registered`` or ``training``) for Table 4."""
    from refine_rft.files import write_text_atomic

    note = {"resolution": which, **resolution.processor_kwargs()}
    return write_text_atomic(Path(work_dir) / RESOLUTION_FILE, json.dumps(note, indent=2) + "\n")


def resolution_note(work_dir: str | Path) -> str | None:
    """The recorded resolution as Table 4 shows it: ``registered (1280-16384 x 28px)``; ``None`` if none.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_resolution_note(folder, "training", ImageResolution(200704, 1003520))
    >>> resolution_note(folder)
    'training (200704-1003520 px)'
    """
    path = Path(work_dir) / RESOLUTION_FILE
    if not path.is_file():
        return None
    note = json.loads(path.read_text(encoding="utf-8"))
    bounds = "-".join(str(note.get(key, "default")) for key in ("min_pixels", "max_pixels"))
    return f"{note.get('resolution', '?')} ({bounds} px)"


def vlmevalkit_config(model: str, resolution: ImageResolution, datasets=DATASETS,
                      model_name: str = MODEL_NAME, chat_class: str = "Qwen2VLChat") -> dict:
    """VLMEvalKit's ``--config`` JSON for ``model`` (a merged folder) on ``datasets``.

    >>> config = vlmevalkit_config("runs/x/merged", ImageResolution(200704, 1003520), ["MMStar"])
    >>> config["model"]["refine_rft"]
    {'class': 'Qwen2VLChat', 'model_path': 'runs/x/merged', 'min_pixels': 200704, 'max_pixels': 1003520}
    >>> config["data"]
    {'MMStar': {'class': 'ImageMCQDataset', 'dataset': 'MMStar'}}
    """
    unknown = [d for d in datasets if d not in DATASET_CLASSES]
    if unknown:
        raise ConfigError(f"unknown VLMEvalKit dataset(s) {unknown}; supported here: {', '.join(DATASETS)}")
    return {
        "model": {model_name: {"class": chat_class, "model_path": str(model),
                               **resolution.processor_kwargs()}},
        "data": {d: {"class": DATASET_CLASSES[d], "dataset": d} for d in datasets},
    }


def vlmevalkit_command(vlmevalkit_dir: str | Path, config_path: str | Path, work_dir: str | Path,
                       num_processes: int = 1, judge: str = "exact_matching") -> list[str]:
    """The command line that runs VLMEvalKit's ``run.py`` on a config file.

    >>> vlmevalkit_command("VLMEvalKit", "c.json", "out")[1:]
    ['VLMEvalKit/run.py', '--config', 'c.json', '--work-dir', 'out', '--judge', 'exact_matching']
    """
    launcher = [sys.executable]
    if num_processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={num_processes}"]
    return [*launcher, str(Path(vlmevalkit_dir) / "run.py"), "--config", str(config_path),
            "--work-dir", str(work_dir), "--judge", judge]


def write_config(config: dict, work_dir: str | Path) -> Path:
    """Write the config JSON into ``work_dir`` (atomically) and return its path."""
    from refine_rft.files import write_text_atomic

    return write_text_atomic(Path(work_dir) / "config.json", json.dumps(config, indent=2) + "\n")


def parse_vlmevalkit_results(work_dir: str | Path, model_name: str = MODEL_NAME) -> dict[str, float]:
    """Each dataset's headline score (a percentage) from the newest ``<model>_<dataset>_acc.csv`` under
    ``work_dir``; datasets without a score file are left out, a file without the expected row or
    ``Overall`` column fails naming it."""
    scores = {}
    for dataset, (split, scale) in HEADLINE.items():
        files = [p for p in Path(work_dir).glob(f"**/{model_name}_{dataset}_acc.csv") if p.is_file()]
        if not files:
            continue
        path = max(files, key=lambda p: (p.stat().st_mtime, p.parent.name))
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        row = next((r for r in rows if split is None or r.get("split") == split), None)
        if row is None or row.get("Overall") in (None, ""):
            raise DataError(f"{path}: no 'Overall' score" + (f" in a split={split!r} row" if split else "")
                             + f" (rows: {[r.get('split') for r in rows]})")
        scores[dataset] = scale * float(row["Overall"])
    return scores
