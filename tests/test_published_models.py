"""Full-size random-weight Qwen2-VL models: the published dimensions, counted on the meta device."""

import pytest
from PIL import Image

from refine_rft_workshop.published import (MAX_PIXELS, PUBLISHED, build_published_model, instantiate_published,
                                         published_config)


@pytest.mark.parametrize("name, billions, vision_billions", [("qwen2-vl-7b", 8.29, 0.676), ("qwen2-vl-2b", 2.21, 0.665)])
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
    with pytest.raises(ValueError, match="qwen2-vl-2b, qwen2-vl-7b"):
        published_config("qwen2-vl-72b")


def test_weightless_folder_loads_as_a_model_path(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = build_published_model(tmp_path / "m", "qwen2-vl-2b")
    assert (folder / "model.safetensors").stat().st_size < 1024  # no tensors: nothing big is ever written
    model = AutoModelForImageTextToText.from_pretrained(folder, device_map="meta")
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
