"""Full-size random-weight Qwen2-VL, Qwen2.5-VL and Qwen3-VL models, published dimensions, built offline.

Memory and time of training and generation do not depend on the weights' values, so a model with
the published dimensions (Qwen2-VL 2B/7B, Qwen2.5-VL 3B/7B, Qwen3-VL 2B/4B/8B) and random
weights measures them exactly, on a machine that cannot download the real ones. Only the
dimensions are written here (from the published ``config.json`` files); the tokenizer is the
embedded one of :mod:`refine_rft_workshop.tiny` (its special-token ids go into the config, the
embedding keeps the published vocabulary size, so the embedding and LM head weigh what they weigh).

Two ways to get one, neither of which ever holds the weights in CPU memory:

- :func:`instantiate_published` builds the model under a ``torch.device`` context, so every
  parameter is allocated (and initialised) directly on the target device, in the target dtype;
  on ``"meta"`` it costs no memory at all (parameter counts, shapes).
- :func:`build_published_model` writes a folder of a few MB (config, *empty* weights file,
  tokenizer, processor) that every ``from_pretrained`` in the project loads as a model path:
  transformers finds no weights, creates the parameters on the load's device (TRL's
  ``device_map``, or a ``torch.device`` context) and initialises them there. So
  ``refine-rft train --model_name_or_path FOLDER`` runs the real code path on random weights.

>>> model = instantiate_published("qwen2-vl-7b", device="meta")
>>> round(sum(p.numel() for p in model.parameters()) / 1e9, 2)
8.29
"""

from __future__ import annotations

import os
from pathlib import Path

from refine_rft.errors import ConfigError
from refine_rft.files import atomic_directory

# The published config.json dimensions (text model, vision tower) of each model's hub repository
# (``hub_id``). Qwen2-VL and Qwen2.5-VL share a 32-block ViT of width 1280 with 14 px patches (2.5:
# window attention, full attention in blocks 7/15/23/31, a gated SiLU MLP); Qwen3-VL has its own ViT
# with 16 px patches, learned position embeddings (48 x 48 = 2304) and DeepStack features from three
# blocks. All merge 2 x 2 patches into one image token and project into the language model's width.
_QWEN2_VIT = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, in_channels=3)
_QWEN2_5_VIT = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_act="silu",
                    window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2)
_QWEN3_VIT_SMALL = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
                        spatial_merge_size=2, temporal_patch_size=2, in_channels=3,
                        hidden_act="gelu_pytorch_tanh", num_position_embeddings=2304,
                        deepstack_visual_indexes=[5, 11, 17])
_QWEN3_VIT_LARGE = dict(_QWEN3_VIT_SMALL, depth=27, hidden_size=1152, intermediate_size=4304,
                        deepstack_visual_indexes=[8, 16, 24])
_QWEN2_TEXT = dict(max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1_000_000.0,
                   mrope_section=[16, 24, 24])
_QWEN2_5_TEXT = dict(_QWEN2_TEXT, max_position_embeddings=128000)
_QWEN3_TEXT = dict(max_position_embeddings=262144, rms_norm_eps=1e-6, rope_theta=5_000_000.0, head_dim=128,
                   mrope_section=[24, 20, 20], mrope_interleaved=True, vocab_size=151936)

PUBLISHED: dict[str, dict] = {
    "qwen2-vl-2b": {
        "hub_id": "Qwen/Qwen2-VL-2B-Instruct", "arch": "qwen2_vl",
        "text": dict(_QWEN2_TEXT, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                     num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                     tie_word_embeddings=True),
        "vision": dict(_QWEN2_VIT, hidden_size=1536),
    },
    "qwen2-vl-7b": {
        "hub_id": "Qwen/Qwen2-VL-7B-Instruct", "arch": "qwen2_vl",
        "text": dict(_QWEN2_TEXT, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                     tie_word_embeddings=False),
        "vision": dict(_QWEN2_VIT, hidden_size=3584),
    },
    "qwen2.5-vl-3b": {
        "hub_id": "Qwen/Qwen2.5-VL-3B-Instruct", "arch": "qwen2_5_vl",
        "text": dict(_QWEN2_5_TEXT, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                     num_attention_heads=16, num_key_value_heads=2, vocab_size=151936,
                     tie_word_embeddings=True),
        "vision": dict(_QWEN2_5_VIT, out_hidden_size=2048),
    },
    "qwen2.5-vl-7b": {
        "hub_id": "Qwen/Qwen2.5-VL-7B-Instruct", "arch": "qwen2_5_vl",
        "text": dict(_QWEN2_5_TEXT, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                     tie_word_embeddings=False),
        "vision": dict(_QWEN2_5_VIT, out_hidden_size=3584),
    },
    "qwen3-vl-2b": {
        "hub_id": "Qwen/Qwen3-VL-2B-Instruct", "arch": "qwen3_vl",
        "text": dict(_QWEN3_TEXT, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                     num_attention_heads=16, num_key_value_heads=8, tie_word_embeddings=True),
        "vision": dict(_QWEN3_VIT_SMALL, out_hidden_size=2048),
    },
    "qwen3-vl-4b": {
        "hub_id": "Qwen/Qwen3-VL-4B-Instruct", "arch": "qwen3_vl",
        "text": dict(_QWEN3_TEXT, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True),
        "vision": dict(_QWEN3_VIT_SMALL, out_hidden_size=2560),
    },
    "qwen3-vl-8b": {
        "hub_id": "Qwen/Qwen3-VL-8B-Instruct", "arch": "qwen3_vl",
        "text": dict(_QWEN3_TEXT, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False),
        "vision": dict(_QWEN3_VIT_LARGE, out_hidden_size=4096),
    },
}

# Each architecture's published preprocessor_config.json, in its own terms. Qwen2/2.5-VL name the
# bounds top-level (images are resized, aspect kept, so that their pixel count lies in
# [min_pixels, max_pixels] with both sides multiples of 28 = patch 14 x merge 2; 4 to 16,384 image
# tokens). Qwen3-VL names them in ``size`` (sides multiples of 32 = patch 16 x merge 2; 64 to 16,384
# image tokens) and normalises with mean = std = 0.5.
HUB_PROCESSOR: dict[str, dict] = {
    "qwen2_vl": dict(min_pixels=56 * 56, max_pixels=28 * 28 * 16384, patch_size=14, merge_size=2,
                     temporal_patch_size=2),
    "qwen2_5_vl": dict(min_pixels=56 * 56, max_pixels=28 * 28 * 16384, patch_size=14, merge_size=2,
                       temporal_patch_size=2),
    "qwen3_vl": dict(size={"shortest_edge": 64 * 32 * 32, "longest_edge": 16384 * 32 * 32}, patch_size=16,
                     merge_size=2, temporal_patch_size=2, image_mean=[0.5, 0.5, 0.5],
                     image_std=[0.5, 0.5, 0.5]),
}
MIN_PIXELS = HUB_PROCESSOR["qwen2_vl"]["min_pixels"]
MAX_PIXELS = HUB_PROCESSOR["qwen2_vl"]["max_pixels"]
_CONFIG_CLASSES = {"qwen2_vl": "Qwen2VLConfig", "qwen2_5_vl": "Qwen2_5_VLConfig", "qwen3_vl": "Qwen3VLConfig"}
_MODEL_CLASSES = {"qwen2_vl": "Qwen2VLForConditionalGeneration",
                  "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
                  "qwen3_vl": "Qwen3VLForConditionalGeneration"}


def published_names() -> list[str]:
    """The model names :func:`published_config` knows.

    >>> published_names()  # doctest: +NORMALIZE_WHITESPACE
    ['qwen2-vl-2b', 'qwen2-vl-7b', 'qwen2.5-vl-3b', 'qwen2.5-vl-7b',
     'qwen3-vl-2b', 'qwen3-vl-4b', 'qwen3-vl-8b']
    """
    return sorted(PUBLISHED)


def published_config(name: str, tokenizer=None):
    """The config (``Qwen2VLConfig``, ``Qwen2_5_VLConfig`` or ``Qwen3VLConfig``) of the published model
    ``name`` with ``tokenizer``'s special-token ids (the embedded tokenizer when ``None``).

    >>> config = published_config("qwen2-vl-2b")
    >>> config.text_config.hidden_size, config.vision_config.depth, config.tie_word_embeddings
    (1536, 32, True)
    >>> published_config("qwen3-vl-8b").vision_config.patch_size
    16
    """
    import transformers

    from refine_rft_workshop.tiny import build_tokenizer

    if name not in PUBLISHED:
        raise ConfigError(f"unknown published model {name!r}; valid: {', '.join(published_names())}")
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    spec = PUBLISHED[name]
    text = dict(spec["text"])
    rope = {"rope_type": "default", "mrope_section": text.pop("mrope_section"),
            "rope_theta": text.pop("rope_theta")}
    if text.pop("mrope_interleaved", False):
        rope["mrope_interleaved"] = True
    text.update(rope_parameters=rope, bos_token_id=None, pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in [
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]}
    if max(ids.values()) >= text["vocab_size"] or len(tokenizer) > text["vocab_size"]:
        raise ConfigError(f"tokenizer of {len(tokenizer)} tokens does not fit {name}'s vocabulary")
    config_class = getattr(transformers, _CONFIG_CLASSES[spec["arch"]])
    return config_class(text_config=text, vision_config=dict(spec["vision"]),
                        tie_word_embeddings=text["tie_word_embeddings"], **ids)


def instantiate_published(name: str, device: str = "meta", dtype: str = "bfloat16"):
    """A random-weight ``...ForConditionalGeneration`` of ``name`` created directly on ``device``
    (``"meta"``: shapes only, no memory) in ``dtype``, in eval mode."""
    import torch
    import transformers

    config = published_config(name)
    model_class = getattr(transformers, _MODEL_CLASSES[PUBLISHED[name]["arch"]])
    with torch.device(device):
        model = model_class._from_config(config, dtype=getattr(torch, dtype))
    return model.eval()


def build_published_model(out: str | os.PathLike, name: str = "qwen2-vl-7b", dtype: str = "bfloat16") -> Path:
    """Write a loadable model folder for ``name`` without weights (see the module docstring).

    ``AutoModelForImageTextToText.from_pretrained(out, device_map="cuda")`` (or inside
    ``with torch.device("cuda"):``) then allocates and initialises every weight on the GPU;
    ``AutoProcessor.from_pretrained(out, trust_remote_code=True)`` gives the embedded tokenizer
    with the published image settings. Written atomically: ``out`` is complete or absent.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from refine_rft_workshop import image_only_processor
    from refine_rft_workshop.tiny import _PROCESSOR_CLASSES, CHAT_TEMPLATE, _add_auto_map, build_tokenizer

    out = Path(out)
    tokenizer = build_tokenizer()
    config = published_config(name, tokenizer)
    config.dtype = getattr(torch, dtype)
    arch = PUBLISHED[name]["arch"]
    config.architectures = [_MODEL_CLASSES[arch]]  # what TRL and the Auto classes load
    with atomic_directory(out) as work:
        config.save_pretrained(work)
        GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(work)
        # No tensors: loading reports every weight as missing and initialises it on the load's device.
        save_file({}, str(work / "model.safetensors"), metadata={"format": "pt"})
        # The hub's own preprocessor settings, in the hub's form (see HUB_PROCESSOR).
        image_processor = Qwen2VLImageProcessorPil(**HUB_PROCESSOR[arch])
        (work / "image_only_processor.py").write_bytes(
            Path(__file__).with_name("image_only_processor.py").read_bytes())
        processor_class = _PROCESSOR_CLASSES[arch]
        getattr(image_only_processor, processor_class)(image_processor=image_processor, tokenizer=tokenizer,
                                                       chat_template=CHAT_TEMPLATE).save_pretrained(work)
        _add_auto_map(work, processor_class)
        write_hub_bounds(work, arch)
    return out


def write_hub_bounds(folder: str | os.PathLike, arch: str) -> None:
    """Rewrite ``folder``'s processor settings so that they name the image bounds as the hub's
    ``preprocessor_config.json`` of ``arch`` does: top-level ``min_pixels`` / ``max_pixels`` for
    Qwen2/2.5-VL (beside ``size``, which they override on load), ``size`` alone for Qwen3-VL.

    transformers saves ``size`` only, so a folder it writes would not show how a hub checkpoint's
    bounds behave when a recipe asks for others; this one does.
    """
    import json

    bounds = {k: HUB_PROCESSOR[arch][k] for k in ("min_pixels", "max_pixels") if k in HUB_PROCESSOR[arch]}
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = Path(folder) / name
        if not path.is_file():
            continue
        config = json.loads(path.read_text(encoding="utf-8"))
        target = config.get("image_processor", config) if name == "processor_config.json" else config
        if "size" not in target and name == "processor_config.json":
            continue
        target.update(bounds)
        if "size" in HUB_PROCESSOR[arch]:
            target["size"] = dict(HUB_PROCESSOR[arch]["size"])
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
