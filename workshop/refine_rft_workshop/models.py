"""Workshop model names: ``tiny:instruct`` and ``tiny:<arch>`` turned into folders the pipeline loads.

The pipeline itself knows only hub ids and folders; the workshop's commands, tests and benchmarks
name their toy models this way and pass the resolved folder on."""

from __future__ import annotations

from refine_rft.errors import ConfigError

TINY_PREFIX = "tiny:"


def resolve_model_path(name: str) -> str:
    """Turn ``tiny:instruct`` into the shipped tiny instruct base (checked, see
    :mod:`refine_rft_workshop.instruct`) and ``tiny:<arch>`` (e.g. ``tiny:qwen2_vl``) into the path of
    the cached random-weight tiny model; any other name (a hub id or a folder) is returned unchanged.

    >>> resolve_model_path("Qwen/Qwen2-VL-7B-Instruct")
    'Qwen/Qwen2-VL-7B-Instruct'
    """
    if not name.startswith(TINY_PREFIX):
        return name
    from refine_rft_workshop.instruct import instruct_model_path
    from refine_rft_workshop.tiny import ARCHS, cached_tiny_model

    arch = name[len(TINY_PREFIX):] or "qwen2_vl"
    if arch == "instruct":
        return str(instruct_model_path())
    if arch not in ARCHS:
        valid = [TINY_PREFIX + a for a in ("instruct", *ARCHS)]
        raise ConfigError(f"unknown tiny model {name!r}; valid: {', '.join(valid)}")
    return str(cached_tiny_model(arch))
