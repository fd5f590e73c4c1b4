"""The optional vLLM pin matches the range the installed TRL supports (read from TRL's own check)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _trl_vllm_range() -> tuple[Version, Version]:
    from trl import import_utils

    source = inspect.getsource(import_utils.is_vllm_available)
    match = re.search(r'Version\("([\d.]+)"\) <= _vllm_base_version <= Version\("([\d.]+)"\)', source)
    assert match, "TRL's vLLM version check changed form; read it and update the pin in pyproject.toml"
    return Version(match.group(1)), Version(match.group(2))


def test_vllm_pin_is_what_trl_supports():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["vllm"]
    (requirement,) = (Requirement(r) for r in extras if Requirement(r).name == "vllm")
    low, high = _trl_vllm_range()
    admitted = {v for v in ("0.21.9", str(low), "0.24.0", str(high), f"{high}.post1", "0.31.1", "0.32.0")
                if requirement.specifier.contains(v, prereleases=False)}
    assert admitted == {str(low), "0.24.0", str(high), f"{high}.post1"}
