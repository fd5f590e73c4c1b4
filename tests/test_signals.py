"""``refine-rft export`` stopped by a signal while it writes the merged model, then rerun: the folder is
absent until complete, and the rerun's files equal an uninterrupted export's, byte for byte.
(``eval`` under the same signals: tests/test_eval_generate.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import refine_rft
from refine_rft_workshop.models import resolve_model_path as tiny

SRC = Path(refine_rft.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny Qwen2-VL, with non-zero weights (so the merge changes the model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny("tiny:qwen2_vl"))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    folder = tmp_path_factory.mktemp("adapter") / "adapter"
    peft.save_pretrained(folder)
    return folder


def export(adapter: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "refine_rft.cli", "export", "--trust-remote-code", "--adapter", str(adapter), "--out",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_export_stopped_while_writing_then_rerun_equals_an_uninterrupted_export(adapter, tmp_path, stop):
    reference = tmp_path / "reference"
    assert export(adapter, reference).wait(timeout=600) == 0
    out = tmp_path / "merged"
    process = export(adapter, out)
    deadline = time.time() + 600
    while not any(p.name.startswith(".merged.") for p in tmp_path.iterdir()):  # the folder being written
        assert process.poll() is None, "the export ended before it could be stopped"
        assert time.time() < deadline
        time.sleep(0.002)
    process.send_signal(stop)
    status = process.wait(timeout=600)
    assert status in (-stop, 130), process.stderr.read()
    assert not out.exists()  # never a half model under the final name
    if stop == signal.SIGINT:  # a clean stop removes what it had written
        assert not any(p.name.startswith(".merged.") for p in tmp_path.iterdir())
    assert export(adapter, out).wait(timeout=600) == 0
    assert contents(out) == contents(reference)
