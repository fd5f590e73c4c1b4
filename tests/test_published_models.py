"""Full-size random-weight Qwen-VL models: the published dimensions, counted on the meta device against the
parameter counts the model cards publish (Qwen2-VL 2B 2.21B / 7B 8.29B, Qwen2.5-VL 3B 3.75B / 7B 8.29B,
Qwen3-VL 2B 2.13B / 4B 4.44B / 8B 8.77B)."""

import json

import pytest
from PIL import Image

from refine_rft_workshop.published import (MAX_PIXELS, PUBLISHED, build_published_model, instantiate_published,
                                         published_config)


@pytest.mark.parametrize("name, billions, vision_billions", [
    ("qwen2-vl-7b", 8.29, 0.676), ("qwen2-vl-2b", 2.21, 0.665), ("qwen2.5-vl-3b", 3.75, 0.669),
    ("qwen2.5-vl-7b", 8.29, 0.677), ("qwen3-vl-2b", 2.13, 0.407), ("qwen3-vl-4b", 4.44, 0.415),
    ("qwen3-vl-8b", 8.77, 0.576)])
def test_meta_instantiation_has_the_published_parameter_count(name, billions, vision_billions):
    model = instantiate_published(name, device="meta")
    parameters = list(model.parameters())
    assert {p.device.type for p in parameters} == {"meta"}
    assert {str(p.dtype) for p in parameters} == {"torch.bfloat16"}
    assert round(sum(p.numel() for p in parameters) / 1e9, 2) == billions
    assert round(sum(p.numel() for p in model.model.visual.parameters()) / 1e9, 3) == vision_billions


def test_config_carries_the_published_dimensions_and_the_tokenizer_ids():
    config = published_config("qwen2-vl-7b")
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (3584, 18944, 28)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (28, 4, 152064)
    assert text.rope_parameters["mrope_section"] == [16, 24, 24] and text.rope_parameters["rope_theta"] == 1e6
    assert (vision.depth, vision.embed_dim, vision.num_heads, vision.mlp_ratio) == (32, 1280, 16, 4)
    assert (vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size, vision.hidden_size) == (14, 2, 2, 3584)
    assert config.tie_word_embeddings is False and published_config("qwen2-vl-2b").tie_word_embeddings is True
    assert config.image_token_id < 2048  # the embedded tokenizer's id, inside the published vocabulary


def test_unknown_model_fails_naming_the_valid_ones():
    with pytest.raises(ValueError, match="qwen2-vl-2b, qwen2-vl-7b, qwen2.5-vl-3b, .*qwen3-vl-8b"):
        published_config("qwen2-vl-72b")


def test_weightless_folder_loads_as_a_model_path(tmp_path):
    # use_kernels=False: from transformers 5.25, hub kernels are on by default, and the kernels
    # library refuses the meta device these shape-only loads use.
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = build_published_model(tmp_path / "m", "qwen2-vl-2b")
    assert (folder / "model.safetensors").stat().st_size < 1024  # no tensors: nothing big is ever written
    model = AutoModelForImageTextToText.from_pretrained(folder, device_map="meta", use_kernels=False)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in instantiate_published("qwen2-vl-2b").parameters())
    assert model.config.text_config.hidden_size == PUBLISHED["qwen2-vl-2b"]["text"]["hidden_size"]

    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert processor.image_processor.size["longest_edge"] == MAX_PIXELS
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which bird?"}]}],
        add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (448, 448))], return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 256  # (448 / 28) ** 2


def test_qwen3_vl_dimensions_are_its_own():
    config = published_config("qwen3-vl-8b")
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (4096, 12288, 36)
    assert text.head_dim == 128
    assert text.rope_parameters["mrope_section"] == [24, 20, 20] and text.rope_parameters["mrope_interleaved"]
    assert (vision.patch_size, vision.depth, vision.deepstack_visual_indexes) == (16, 27, [8, 16, 24])
    assert published_config("qwen3-vl-4b").text_config.head_dim == 128  # not hidden / heads (80)


@pytest.mark.parametrize("name, factor", [("qwen2.5-vl-3b", 28), ("qwen3-vl-2b", 32)])
def test_weightless_folder_names_its_bounds_as_the_hub_does(tmp_path, name, factor):
    """Qwen2.5-VL: top-level min_pixels / max_pixels; Qwen3-VL: size {shortest_edge, longest_edge}; and a
    recipe's max_pixels wins over either on load (1280 tokens: a 2000 x 1500 image becomes 1230)."""
    from refine_rft.resolution import ImageResolution

    folder = build_published_model(tmp_path / "m", name)
    saved = json.loads((folder / "processor_config.json").read_text())["image_processor"]
    if factor == 28:
        assert (saved["min_pixels"], saved["max_pixels"]) == (3136, 12845056)
    else:
        assert "max_pixels" not in saved
        assert saved["size"] == {"shortest_edge": 65536, "longest_edge": 16777216}
    assert saved["patch_size"] * saved["merge_size"] == factor
    resolution = ImageResolution(max_pixels=1280 * factor * factor)
    processor = resolution.load_processor(str(folder), trust_remote_code=True)
    assert processor.image_processor.size["longest_edge"] == 1280 * factor * factor
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}],
                                         add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (2000, 1500))], return_tensors="pt")
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == 1230  # 41 x 30 cells


@pytest.mark.parametrize("name", ["qwen2.5-vl-3b", "qwen3-vl-2b"])
def test_weightless_folders_of_the_new_families_load(tmp_path, name):
    from transformers import AutoModelForImageTextToText

    folder = build_published_model(tmp_path / "m", name)
    model = AutoModelForImageTextToText.from_pretrained(folder, device_map="meta", use_kernels=False)
    assert type(model).__name__ == type(instantiate_published(name)).__name__
    published = instantiate_published(name)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in published.parameters())
