"""Download the wheels an offline GPU machine needs to run this project (and ``gpu_smoke.py``).

The target has Python 3.12 (manylinux x86_64) with PyTorch, transformers, peft and accelerate but
no network. transformers is deliberately not bundled: the lent image's 5.17 is the project's floor
(pyproject.toml), the recipes set no key newer than it (``gradient_checkpointing``, not 5.24's
``activation_checkpointing``; tests/test_dependencies.py refuses one), and a bundled transformers would
also have to bring its own huggingface-hub and tokenizers over the image's. This script, run where PyPI
is reachable, downloads into ``OUT`` (default ``.whl/``)
the wheels of what such a machine lacks: TRL, openai and datasets (at the versions installed here
when this environment has them, i.e. the tested ones), every dependency they declare
(``Requires-Dist``, markers evaluated for the target, extras not followed) that is not in
:data:`ASSUMED_PRESENT` (the frameworks' own dependencies and the scientific stack of PyTorch
images: pandas, pyarrow, scipy, pillow, matplotlib, tensorboard), recursively, and this project
as a wheel. It fails if the bundle exceeds
``--max-mib`` (64 MiB, the transfer limit), or if a dependency declared twice cannot be satisfied
by the one version bundled. Then, on the GPU machine::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site

Usage::

    python benchmarks/gpu_wheels.py [--out .whl] [--max-mib 64]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("trl", "openai", "datasets")
# What torch, transformers, peft and accelerate bring on any recent version, and the scientific
# stack that PyTorch GPU images carry. Never bundled: a bundled copy on PYTHONPATH would shadow the
# machine's own (its CUDA build of torch, its compiled pyarrow). The scientific stack cannot travel
# anyway: pyarrow (needed by datasets), scipy and pandas alone are about 100 MiB of wheels.
FRAMEWORKS = (
    "torch", "transformers", "peft", "accelerate", "triton",
    "huggingface-hub", "tokenizers", "safetensors", "numpy", "packaging", "pyyaml", "regex", "tqdm",
    "filelock", "fsspec", "typing-extensions", "sympy", "mpmath", "networkx", "jinja2", "markupsafe",
    "psutil", "setuptools",
)
SCIENTIFIC_STACK = ("pyarrow", "pandas", "scipy", "pillow", "matplotlib", "tensorboard")
ASSUMED_PRESENT = frozenset(canonicalize_name(name) for name in FRAMEWORKS + SCIENTIFIC_STACK)
PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
TARGET_MARKERS = {
    "python_version": PYTHON, "python_full_version": f"{PYTHON}.0", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "x86_64", "os_name": "posix", "extra": "",
}


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The ``Requires-Dist`` of a wheel that apply on the target (no extras)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode("utf-8")
    requirements = []
    for line in metadata.splitlines():
        if not line:  # the headers end at the first empty line
            break
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker is None or requirement.marker.evaluate(TARGET_MARKERS):
                requirements.append(requirement)
    return requirements


def pinned(requirement: Requirement) -> str:
    """The version installed here when it satisfies ``requirement`` (tested together), else ``requirement``."""
    try:
        local = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return str(Requirement(f"{requirement.name}{requirement.specifier}"))
    if requirement.specifier.contains(local, prereleases=True):
        return f"{requirement.name}=={local}"
    return str(Requirement(f"{requirement.name}{requirement.specifier}"))


def run(command: list[str]) -> None:
    """Run a pip command; its output (build warnings, index notices) is shown only if it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def download(requirements: list[str], dest: Path) -> None:
    """``pip download`` binary wheels for the target, without dependencies."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", PYTHON, "--implementation", "cp", "--dest", str(dest)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    run(command + requirements)


def build_project_wheel(dest: Path) -> Path:
    """This project as a wheel (built offline with the setuptools installed here)."""
    before = set(dest.glob("*.whl"))
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dest), str(REPO)])
    (wheel,) = set(dest.glob("*.whl")) - before
    return wheel


def bundled_wheels(folder: Path) -> dict[str, tuple[Version, Path]]:
    """Canonical name -> (version, path) of the wheels in ``folder``."""
    wheels = {}
    for path in folder.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        wheels[canonicalize_name(name)] = (version, path)
    return wheels


def unmet_requirements(folder: Path) -> list[str]:
    """Requirements of the bundled wheels that are neither bundled (at a satisfying version) nor
    assumed present; empty for an installable set."""
    wheels = bundled_wheels(folder)
    unmet = []
    for name, (_, path) in sorted(wheels.items()):
        for requirement in wheel_requirements(path):
            dependency = canonicalize_name(requirement.name)
            if dependency in ASSUMED_PRESENT:
                continue
            if dependency not in wheels:
                unmet.append(f"{name} needs {requirement}: not bundled")
            elif not requirement.specifier.contains(wheels[dependency][0], prereleases=True):
                unmet.append(f"{name} needs {requirement}: bundled {dependency} {wheels[dependency][0]}")
    return unmet


def collect(out: Path) -> None:
    """Download the roots and, round by round, their missing dependencies into ``out``."""
    project = build_project_wheel(out)
    queue = [Requirement(name) for name in ROOTS] + wheel_requirements(project)
    while queue:
        wanted = {}
        have = bundled_wheels(out)
        for requirement in queue:
            name = canonicalize_name(requirement.name)
            if name not in ASSUMED_PRESENT and name not in have and name not in wanted:
                wanted[name] = pinned(requirement)
        if not wanted:
            break
        download(sorted(wanted.values()), out)
        fresh = bundled_wheels(out)
        queue = [r for name in wanted for r in wheel_requirements(fresh[name][1])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / ".whl"), help="folder for the wheels (replaced)")
    parser.add_argument("--max-mib", type=float, default=64.0, help="fail above this total size")
    args = parser.parse_args(argv)

    out = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="wheels-", dir=out.parent if out.parent.exists() else None))
    try:
        collect(work)
        unmet = unmet_requirements(work)
        if unmet:
            raise SystemExit("the bundle is not an installable set:\n  " + "\n  ".join(unmet))
        wheels = sorted(work.glob("*.whl"), key=lambda p: p.stat().st_size, reverse=True)
        total = sum(p.stat().st_size for p in wheels) / 2**20
        if total > args.max_mib:
            largest = ", ".join(f"{p.name} ({p.stat().st_size / 2**20:.1f} MiB)" for p in wheels[:3])
            raise SystemExit(f"the bundle is {total:.1f} MiB, over --max-mib {args.max_mib:g}; largest: {largest}")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)  # complete or absent
    finally:
        if work.exists():
            shutil.rmtree(work)
    for path in sorted(out.glob("*.whl")):
        print(f"{path.stat().st_size / 2**20:7.2f} MiB  {path.name}")
    print(f"{total:7.2f} MiB  in {len(wheels)} wheels in {out} (limit {args.max_mib:g} MiB)")
    print("on the GPU machine: python3 -m pip install -q --no-index --no-deps --target /tmp/site "
          f"{out.name}/*.whl && export PYTHONPATH=/tmp/site")
    return 0


if __name__ == "__main__":
    sys.exit(main())
