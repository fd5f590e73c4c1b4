"""The ``[eval]`` extra installs what lmms-eval's Qwen2-VL model imports (``decord`` among them).

Runs where the extra is installed (``pip install -e ".[eval]"``); skipped only where lmms-eval is absent.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_eval_extra_names_lmms_eval_and_decord():
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["eval"]
    assert any(req.startswith("lmms-eval") for req in extra)
    assert any(req.startswith("eva-decord") for req in extra)


@pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="the [eval] extra is not installed")
def test_lmms_eval_loads_its_qwen2_vl_model_class():
    from lmms_eval.models import get_model

    model_class = get_model("qwen2_vl")  # imports lmms_eval's qwen2_vl module, decord included
    assert model_class.__name__ == "Qwen2_VL"
