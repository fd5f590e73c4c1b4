"""Shared fixtures: offline mode, a tiny-model cache and built data shared by the run's parallel workers."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
from pathlib import Path

import pytest

# Tests never reach the hub: every model and dataset they use is built here.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One compute thread: the tiny models gain nothing from more, and on a busy CPU OpenMP threads that
# spin-wait for each other make a training step an order of magnitude slower (measured: 15 SFT steps
# 24 s with 2 threads, 1.8 s with 1). Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# A run started in the background of a non-interactive shell (`make test &`, nohup) ignores SIGINT,
# and every command a test starts inherits that: the tests that stop a command with Ctrl-C's SIGINT
# need it delivered.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    """Import a script of ``benchmarks/`` by name (they are scripts, not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def shared_folder(tmp_path_factory, name: str) -> Path:
    """A folder of this test run shared by its parallel workers (pytest-xdist): the parent of the
    workers' own temporary folders; without workers, one in the session's own."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / name
    folder.mkdir(exist_ok=True)
    return folder


def built_once(tmp_path_factory, name: str, build):
    """``build(folder)``'s result, built by the first worker that asks and read by the others: the
    result (a path) is recorded beside the folder once complete, under a lock that the others wait on."""
    from filelock import FileLock

    folder = shared_folder(tmp_path_factory, "built") / name
    done = folder.with_suffix(".done")
    with FileLock(folder.with_suffix(".lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed left
            folder.mkdir()
            done.write_text(str(build(folder)))
    return Path(done.read_text())


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Keep built tiny models in a cache shared by the whole run, its parallel workers too (the
    cache builds each model once, see ``refine_rft_workshop.tiny.cached_tiny_model``)."""
    if "REFINE_RFT_CACHE" not in os.environ:
        os.environ["REFINE_RFT_CACHE"] = str(shared_folder(tmp_path_factory, "refine-rft-cache"))
    yield


@pytest.fixture(scope="session")
def tiny_model_path(_session_cache):
    from refine_rft_workshop.tiny import cached_tiny_model

    return cached_tiny_model("qwen2_vl", seed=0)


@pytest.fixture(scope="session")
def synthetic_train_jsonl(tmp_path_factory):
    """A small synthetic training set (8 species x 2 images) as a prepared JSONL file."""
    from refine_rft_workshop.synthetic import synthetic_questions
    from refine_rft.files import write_jsonl_atomic

    def build(out: Path) -> Path:
        return write_jsonl_atomic(out / "train.jsonl", synthetic_questions(out, "train", per_class=2, num_classes=8))

    return built_once(tmp_path_factory, "synthetic-train", build)


@pytest.fixture(scope="session")
def cot_warm_model(tmp_path_factory, synthetic_train_jsonl, tiny_model_path):
    """The tiny model after the CoT format warm-up (workshop/refine_rft_workshop/recipes/sft_cot_warmup.yaml), so that its samples
    contain <think> blocks for the judge to score (a random-weight model's never do)."""
    from refine_rft.train.sft import train_sft

    recipe = Path(__file__).resolve().parents[1] / "workshop" / "refine_rft_workshop" / "recipes" / "sft_cot_warmup.yaml"

    def build(out: Path) -> Path:
        return train_sft(recipe, {"output_dir": str(out / "model"), "train_file": str(synthetic_train_jsonl),
                                  "model_name_or_path": str(tiny_model_path),
                                  "report_to": [], "max_steps": 60, "disable_tqdm": True})

    return built_once(tmp_path_factory, "cot-warm", build)
