"""Dependency versions: the optional vLLM pin matches the range the installed TRL supports (read from
TRL's own check); the floors in pyproject.toml are met by the installed versions, are no lower than TRL's
own, and the features the code and recipes use exist in them; no recipe sets a key newer than the
transformers floor."""

from __future__ import annotations

import inspect
import os
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


# Training arguments that exist only from a transformers release newer than the floor: no recipe may set them.
NEWER_THAN_FLOOR = {"5.24": ("activation_checkpointing", "activation_checkpointing_kwargs")}


def _floors() -> dict[str, Version]:
    tomllib = pytest.importorskip("tomllib")
    floors = {}
    for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                floors[requirement.name] = Version(spec.version)
    return floors


def test_installed_versions_meet_the_floors_and_trl_needs_no_higher():
    from importlib.metadata import requires, version

    floors = _floors()
    for name, floor in floors.items():
        assert Version(version(name).split("+")[0]) >= floor, name
    # TRL's own floors on the packages we also pin: ours must not promise less than TRL needs.
    for line in requires("trl"):
        requirement = Requirement(line)
        if requirement.marker is not None or requirement.name not in floors:
            continue
        for spec in requirement.specifier:
            if spec.operator == ">=":
                assert floors[requirement.name] >= Version(spec.version), (requirement.name, str(spec))


def test_the_code_features_exist_in_the_installed_versions():
    import dataclasses

    import transformers
    from transformers import TrainingArguments
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from trl import GRPOConfig
    from trl.chat_template_utils import qwen3_vl_chat_template

    for name in ("Qwen2VLConfig", "Qwen2_5_VLConfig", "Qwen3VLConfig", "Qwen3VLForConditionalGeneration"):
        assert hasattr(transformers, name), name
    assert Qwen2VLImageProcessorPil(min_pixels=3136).size["shortest_edge"] == 3136  # the recipes' bound names
    assert "gradient_checkpointing" in {f.name for f in dataclasses.fields(TrainingArguments)}
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert {"loss_type", "vllm_importance_sampling_correction", "scale_rewards", "vllm_mode",
            "multi_objective_aggregation", "vllm_enable_sleep_mode", "vllm_gpu_memory_utilization"} <= fields
    assert "<|vision_start|>" in qwen3_vl_chat_template


def test_recipes_use_no_key_newer_than_the_transformers_floor():
    import yaml

    floor = _floors()["transformers"]
    recipes = sorted((PYPROJECT.parent / "recipes").rglob("*.yaml"))
    assert recipes
    for release, keys in NEWER_THAN_FLOOR.items():
        if floor >= Version(release):
            continue
        for recipe in recipes:
            used = set(yaml.safe_load(recipe.read_text()) or {}) & set(keys)
            assert not used, f"{recipe}: {sorted(used)} need transformers {release}, the floor is {floor}"


CONSTRAINTS = PYPROJECT.parent / "constraints" / "gpu.txt"


def _pins() -> dict[str, Version]:
    """constraints/gpu.txt: package -> the version ``pip install ".[vllm]"`` resolves."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_the_floors_are_the_gpu_installs_versions():
    """Each floor is the version the GPU install resolves: the floor venv (``make test-floor``) runs the fast
    tests on exactly those, so a floor is a version the suite has passed on, not a guess."""
    from packaging.utils import canonicalize_name

    pins = _pins()
    assert pins["vllm"] == Version("0.31.0") and pins["torch"] == Version("2.13.0")
    assert Version("5.17") <= pins["transformers"] < Version("5.18")
    assert {name: floor for name, floor in _floors().items()} == \
        {name: pins[canonicalize_name(name)] for name in _floors()}


@pytest.mark.skipif(not os.environ.get("REFINE_RFT_CONSTRAINTS"), reason="only in the floor venv (make test-floor)")
def test_the_floor_venv_runs_the_pinned_versions():
    """Under ``make test-floor`` every installed package that the GPU install pins is at its pin."""
    from importlib.metadata import distributions

    from packaging.utils import canonicalize_name

    pins = _pins()
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version.split("+")[0]) for d in distributions()}
    off = {name: (str(version), str(pins[name])) for name, version in installed.items()
           if name in pins and version != pins[name]}
    assert not off and "vllm" not in installed
