"""Shared fixtures: offline mode, a per-session cache for the tiny model, small synthetic data."""

from __future__ import annotations

import os

import pytest

# Tests never reach the hub: every model and dataset they use is built here.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Keep built tiny models in a cache shared by the whole session (built once)."""
    if "REFINE_RFT_CACHE" not in os.environ:
        os.environ["REFINE_RFT_CACHE"] = str(tmp_path_factory.mktemp("refine-rft-cache"))
    yield


@pytest.fixture(scope="session")
def tiny_model_path(_session_cache):
    from refine_rft.models.tiny import cached_tiny_model

    return cached_tiny_model("qwen2_vl", seed=0)
