"""benchmarks/gpu_wheels.py: the offline wheel bundle is an installable set within the transfer limit."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_wheels.py"


def test_framework_dependencies_are_what_the_frameworks_bring(load_benchmark):
    """Every name assumed present with the frameworks is a dependency of torch, transformers, peft or
    accelerate as installed here (triton only comes with CUDA builds of torch)."""
    wheels = load_benchmark("gpu_wheels")
    closure, todo = set(), ["torch", "transformers", "peft", "accelerate"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in closure:
            continue
        closure.add(name)
        for line in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(wheels.TARGET_MARKERS):
                todo.append(requirement.name)
    assert {canonicalize_name(n) for n in wheels.FRAMEWORKS} - {"triton"} <= closure


@pytest.mark.slow
@pytest.mark.end_to_end
def test_end_to_end_bundle_is_an_installable_set_within_the_limit(tmp_path, load_benchmark):
    out = tmp_path / "whl"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = load_benchmark("gpu_wheels")
    bundled = wheels.bundled_wheels(out)
    assert {"trl", "openai", "datasets", "refine-rft"} <= set(bundled)
    assert not set(bundled) & wheels.ASSUMED_PRESENT  # nothing shadows the machine's own packages
    assert wheels.unmet_requirements(out) == []
    assert sum(p.stat().st_size for p in out.glob("*.whl")) <= 64 * 2**20
    assert "pip install -q --no-index --no-deps --target /tmp/site" in done.stdout
    missing = next(out.glob("sniffio-*.whl"))
    missing.unlink()
    assert any(line.startswith("openai needs sniffio") for line in wheels.unmet_requirements(out))
