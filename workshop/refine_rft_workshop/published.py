"""Full-size random-weight Qwen2-VL models with the published dimensions, built offline.

Memory and time of training and generation do not depend on the weights' values, so a model with
the published ``Qwen/Qwen2-VL-2B-Instruct`` / ``Qwen/Qwen2-VL-7B-Instruct`` dimensions and random
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

# The published config.json dimensions (text model, vision tower). Both share the vision tower
# (a 32-block ViT of width 1280 with 14 px patches, 2x2 merge, 2-frame temporal patches); its
# merger projects into the language model's width ("hidden_size" of the vision config).
PUBLISHED: dict[str, dict] = {
    "qwen2-vl-2b": {
        "hub_id": "Qwen/Qwen2-VL-2B-Instruct",
        "text": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                     num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                     rms_norm_eps=1e-6, rope_theta=1_000_000.0, mrope_section=[16, 24, 24],
                     tie_word_embeddings=True),
        "vision": dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, patch_size=14,
                       spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_size=1536),
    },
    "qwen2-vl-7b": {
        "hub_id": "Qwen/Qwen2-VL-7B-Instruct",
        "text": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                     num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
                     rms_norm_eps=1e-6, rope_theta=1_000_000.0, mrope_section=[16, 24, 24],
                     tie_word_embeddings=False),
        "vision": dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, patch_size=14,
                       spatial_merge_size=2, temporal_patch_size=2, in_channels=3, hidden_size=3584),
    },
}

# The published preprocessor_config.json: images are resized (aspect kept) so that their pixel
# count lies in [MIN_PIXELS, MAX_PIXELS] and both sides are multiples of 28 (patch 14 x merge 2).
# MAX_PIXELS is 16384 image tokens: fine-grained benchmark images (about 500 x 375) are never
# downscaled, so an image costs (H/28) x (W/28) tokens, e.g. 256 for 448 x 448.
MIN_PIXELS = 56 * 56
MAX_PIXELS = 28 * 28 * 16384


def published_names() -> list[str]:
    """The model names :func:`published_config` knows.

    >>> published_names()
    ['qwen2-vl-2b', 'qwen2-vl-7b']
    """
    return sorted(PUBLISHED)


def published_config(name: str, tokenizer=None):
    """The ``Qwen2VLConfig`` of the published model ``name`` with ``tokenizer``'s special-token ids
    (the embedded tokenizer when ``None``).

    >>> config = published_config("qwen2-vl-2b")
    >>> config.text_config.hidden_size, config.vision_config.depth, config.tie_word_embeddings
    (1536, 32, True)
    """
    from transformers import Qwen2VLConfig

    from refine_rft_workshop.tiny import build_tokenizer

    if name not in PUBLISHED:
        raise ConfigError(f"unknown published model {name!r}; valid: {', '.join(published_names())}")
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    spec = PUBLISHED[name]
    text = dict(spec["text"])
    mrope_section, rope_theta = text.pop("mrope_section"), text.pop("rope_theta")
    text.update(
        rope_parameters={"rope_type": "default", "mrope_section": mrope_section, "rope_theta": rope_theta},
        bos_token_id=None, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in [
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]}
    if max(ids.values()) >= text["vocab_size"] or len(tokenizer) > text["vocab_size"]:
        raise ConfigError(f"tokenizer of {len(tokenizer)} tokens does not fit {name}'s vocabulary")
    return Qwen2VLConfig(text_config=text, vision_config=dict(spec["vision"]),
                         tie_word_embeddings=text["tie_word_embeddings"], **ids)


def instantiate_published(name: str, device: str = "meta", dtype: str = "bfloat16"):
    """A random-weight ``Qwen2VLForConditionalGeneration`` of ``name`` created directly on ``device``
    (``"meta"``: shapes only, no memory) in ``dtype``, in eval mode."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    config = published_config(name)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(config, dtype=getattr(torch, dtype))
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

    from refine_rft_workshop.image_only_processor import ImageOnlyQwen2VLProcessor
    from refine_rft_workshop.tiny import CHAT_TEMPLATE, _add_auto_map, build_tokenizer

    out = Path(out)
    tokenizer = build_tokenizer()
    config = published_config(name, tokenizer)
    config.dtype = getattr(torch, dtype)
    config.architectures = ["Qwen2VLForConditionalGeneration"]  # what TRL and the Auto classes load
    with atomic_directory(out) as work:
        config.save_pretrained(work)
        GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(work)
        # No tensors: loading reports every weight as missing and initialises it on the load's device.
        save_file({}, str(work / "model.safetensors"), metadata={"format": "pt"})
        spec = PUBLISHED[name]["vision"]
        image_processor = Qwen2VLImageProcessorPil(
            min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=spec["patch_size"],
            merge_size=spec["spatial_merge_size"], temporal_patch_size=spec["temporal_patch_size"])
        (work / "image_only_processor.py").write_bytes(
            Path(__file__).with_name("image_only_processor.py").read_bytes())
        ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                  chat_template=CHAT_TEMPLATE).save_pretrained(work)
        _add_auto_map(work, "ImageOnlyQwen2VLProcessor")
    return out
