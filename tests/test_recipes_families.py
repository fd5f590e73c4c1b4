"""Every GPU recipe (Qwen2-VL, Qwen2.5-VL, Qwen3-VL): its batch holds its questions per optimizer step on
the processes it is laid out for, its hardware and memory are stated, its resolution is in the model's
own terms, its LoRA stays on the language model, and the launch refuses a GPU smaller than the recipe is
sized for."""

from __future__ import annotations

from pathlib import Path

import pytest

from refine_rft_workshop import RECIPES as TINY_RECIPES
from refine_rft_workshop import tiny_instruct_path

REPO = Path(__file__).resolve().parents[1]
GPU_RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml")
                     if p.parent.name != "tiny" and p.name not in ("base.yaml", "model.yaml"))
CPU = {"bf16": False, "use_cpu": True}


def _parse(recipe: Path, overrides: dict | None = None):
    from refine_rft.train import grpo, sft
    from refine_rft.train.config import parse_recipe

    types = sft._dataclass_types() if recipe.name.startswith("sft") else grpo._dataclass_types()
    return parse_recipe(types, recipe=recipe, overrides={**CPU, **(overrides or {})})


def _include_chain(recipe: Path) -> list[Path]:
    """The recipe and every file it includes, recursively."""
    import yaml

    includes = (yaml.safe_load(recipe.read_text()) or {}).get("include", [])
    chain = [recipe]
    for include in [includes] if isinstance(includes, str) else includes:
        chain += _include_chain((recipe.parent / include).resolve())
    return chain


def test_every_family_has_refine_rft_grpo_and_sft():
    names = {p.relative_to(REPO / "recipes").as_posix() for p in GPU_RECIPES}
    for family in ("qwen2_5vl7b", "qwen3vl8b"):
        for recipe in ("refine_rft", "grpo", "sft"):
            assert {f"{family}/{recipe}{layout}.yaml" for layout in ("", "_4gpu", "_1gpu")} <= names
    for family in ("qwen2_5vl3b", "qwen3vl4b"):
        assert {f"{family}/refine_rft.yaml", f"{family}/grpo.yaml", f"{family}/sft.yaml"} <= names


@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_batch_guard_covers_every_recipe(recipe):
    """The start-up check passes on the processes the recipe is laid out for, and refuses one process more."""
    from refine_rft.train.model import check_questions_per_step

    script, training, model = _parse(recipe)
    generations = 1 if recipe.name.startswith("sft") else training.num_generations
    assert script.processes and script.gpu_memory_gb in (48, 80) and script.questions_per_step == 64
    per_device, accumulation = training.per_device_train_batch_size, training.gradient_accumulation_steps
    check_questions_per_step(64, script.processes, per_device, accumulation, generations)
    with pytest.raises(ValueError, match="questions_per_step is 64"):
        check_questions_per_step(64, script.processes + 1, per_device, accumulation, generations)
    # TRL generates per process a batch of whole groups of G.
    assert (per_device * accumulation) % generations == 0
    text = "".join(p.read_text() for p in _include_chain(recipe))
    assert "GB" in text and " x " in text  # hardware and memory arithmetic are written out
    assert training.gradient_checkpointing is True  # the name transformers 5.17 (the GPU image) knows too


@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_resolution_is_in_the_model_own_terms(recipe):
    script, _, model = _parse(recipe)
    side = 32 if "Qwen3-VL" in model.model_name_or_path else 28  # patch 16 (Qwen3-VL) or 14, merged 2 x 2
    assert script.max_pixels % side ** 2 == 0 and script.min_pixels % side ** 2 == 0
    assert 256 <= script.min_pixels // side ** 2 < script.max_pixels // side ** 2 <= 1280


@pytest.mark.parametrize("arch, family", [("qwen2_5_vl", "qwen2_5vl7b"), ("qwen3_vl", "qwen3vl8b")])
def test_lora_pattern_keeps_to_the_language_model(arch, family):
    """Qwen2.5-VL's vision MLP is named gate/up/down_proj too: a plain list would adapt the vision tower."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from refine_rft_workshop.tiny import cached_tiny_model

    _, _, model_args = _parse(REPO / "recipes" / family / "refine_rft.yaml")
    model = AutoModelForImageTextToText.from_pretrained(cached_tiny_model(arch))
    adapted = get_peft_model(model, LoraConfig(r=2, target_modules=model_args.lora_target_modules))
    names = [name for name, _ in adapted.named_modules() if name.endswith("lora_A")]
    assert names and not [name for name in names if "visual" in name]
    kinds = {name.split(".")[-2] for name in names}
    assert kinds == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.parametrize("recipe", [p for p in GPU_RECIPES if "sft" not in p.name],
                         ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_memory_guard_refuses_smaller_cards_naming_the_setting(recipe):
    from refine_rft.train.model import check_gpu_memory, memory_settings

    script, training, _ = _parse(recipe)
    settings = memory_settings(training)
    check_gpu_memory(script.gpu_memory_gb, int(79.6 * 2**30), settings)  # an 80 GB H100
    if script.gpu_memory_gb == 48:
        check_gpu_memory(script.gpu_memory_gb, int(47.5 * 2**30), settings)  # a 48 GB A6000
        return
    with pytest.raises(ValueError, match="sized for GPUs of 80 GB .*vllm_gpu_memory_utilization 0.35"):
        check_gpu_memory(script.gpu_memory_gb, int(47.5 * 2**30), settings)


def test_paper_8gpu_recipe_and_ablations_are_80gb_only():
    paper = REPO / "recipes" / "qwen2vl7b"
    for recipe in [paper / "refine_rft.yaml", *(paper / "ablations").glob("*.yaml")]:
        script, training, _ = _parse(recipe)
        assert script.gpu_memory_gb == 80, recipe.name
        # 0.35 of a 48 GB card cannot hold vLLM's bf16 copy of the 8.29 B weights (16.6 GB) and its overhead
        assert training.vllm_gpu_memory_utilization * 48 < 16.6 + 1


def test_launch_refuses_a_smaller_gpu_before_loading_anything(tmp_path, synthetic_train_jsonl, monkeypatch):
    """Through the real entry point, with the GPU's size as torch would report a 48 GB card."""
    from refine_rft.train import model
    from refine_rft.train.grpo import train_grpo

    monkeypatch.setattr(model, "device_memory_bytes", lambda training_args: int(47.5 * 2**30))
    recipe = TINY_RECIPES / "refine_rft.yaml"
    overrides = {"output_dir": str(tmp_path / "run"), "train_file": str(synthetic_train_jsonl),
                 "model_name_or_path": str(tiny_instruct_path()),
                 "report_to": [], "gpu_memory_gb": 80, "per_device_train_batch_size": 4}
    with pytest.raises(ValueError, match=r"sized for GPUs of 80 GB \(gpu_memory_gb: 80\).* 47.5 GiB"):
        train_grpo(recipe, overrides)
    assert not (tmp_path / "run").exists()
