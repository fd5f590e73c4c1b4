"""The embedded tiny VLM: a random-weight model of the real Qwen-VL architecture, built offline.

It lets every stage of the pipeline (training, generation, evaluation) run end to end on a CPU
with no download: the model classes, processor and chat template are the real ones, only the
sizes are tiny and the tokenizer is trained locally on the words this project's tasks use.

>>> import tempfile
>>> path = build_tiny_model(tempfile.mkdtemp())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from refine_rft.errors import ConfigError
from refine_rft.files import atomic_directory

ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen-style chat template. The assistant turn is wrapped in {% generation %} so that
# `return_assistant_tokens_mask=True` (TRL's SFT `assistant_only_loss`) trains on it alone.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}"
    "{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Tiny but real. "tiny" (the default: hidden 64, 2 decoder layers, a 1-block vision tower) is for
# tests; "base" is the size of the shipped instruct base (``tiny:instruct``, built by
# ``refine-rft-workshop build-base``): enough capacity to learn the letter look-up and the species in a
# CPU build. Images are resized to 112x112 at most. "tiny" cuts them into 8x8 patches of 14 px
# merged 2x2; "base" into 16x16 patches of 7 px merged 4x4, because the beak and the breast
# pattern that tell neighbouring species apart are a few pixels wide (a 14 px grid saw them in
# 70-75 % of held-out images, benchmarks/instruct_base.md). Both give 16 image tokens.
SIZES: dict[str, dict] = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vision_depth=1, vision_width=32, vision_heads=2, patch=14, merge=2),
    "base": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, vision_depth=2, vision_width=128, vision_heads=4, patch=7, merge=4),
}
IMAGE_SIDE = 112  # largest image side in pixels
MIN_PIXELS = 56 * 56
MAX_PIXELS = IMAGE_SIDE * IMAGE_SIDE


def _tokenizer_corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: the prompts, tags, letters and the synthetic
    data's class and attribute words, so each is a few tokens rather than dozens of bytes."""
    from refine_rft_workshop.synthetic import ATTRIBUTES, REASONING_OPENING, attribute_phrase, make_species, vocabulary
    from refine_rft.prompts import INSTRUCTIONS, STYLES, answer_text, question_text

    species = make_species(48, seed=0)
    names = [s.name for s in species]
    lines = []
    for i in range(0, len(names) - 3, 2):
        options = names[i : i + 4]
        for style in STYLES:
            lines.append(question_text("birds", options, style))
        for j in range(4):
            phrases = ", ".join(attribute_phrase(a, species[i + j].attributes[a]) for a in ATTRIBUTES)
            lines.append(
                f"<think>{REASONING_OPENING} a {phrases}. It matches {options[j]}.</think>\n"
                f"<attribute>{phrases}</attribute>\n<answer>{answer_text(options, j)}</answer>"
            )
    lines += vocabulary(species) + list(INSTRUCTIONS.values())
    lines += [f"{letter}" for letter in "ABCD"] + ["The answer is A.", "Option B", "(C)", "D."]
    lines += [
        "You are a helpful assistant.",
        "Describe the image. What colour is the bird? What shape is its beak and its tail?",
        "Which of these aircraft cars dogs flowers pets is shown in the image?",
        "Score the reasoning from 0 to 100. Output only the score.",
    ]
    # Repeat so that merges of the task's words win over rare byte pairs.
    return lines * 4


def build_tokenizer(vocab_size: int = 2048):
    """A byte-level BPE tokenizer with the Qwen special tokens, trained on :func:`_tokenizer_corpus`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_tokenizer_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"},
        padding_side="left",
        model_max_length=4096,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _model_config(arch: str, tokenizer, size: str = "tiny"):
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig, Qwen3VLConfig

    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}; valid: {', '.join(SIZES)}")
    dims = dict(SIZES[size])
    width, depth, vision_heads = dims.pop("vision_width"), dims.pop("vision_depth"), dims.pop("vision_heads")
    patch, merge = dims.pop("patch"), dims.pop("merge")

    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in [
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")]}
    head_dim = dims["hidden_size"] // dims["num_attention_heads"]
    half = head_dim // 2
    mrope = [half - 2 * (half // 3), half // 3, half // 3]  # temporal, height, width; sums to head_dim/2
    text = dict(dims, max_position_embeddings=4096, vocab_size=len(tokenizer), bos_token_id=None,
                eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    hidden = dims["hidden_size"]
    vision_common = dict(depth=depth, num_heads=vision_heads, patch_size=patch, spatial_merge_size=merge)
    if arch == "qwen2_vl":
        text["rope_parameters"] = {"rope_type": "default", "mrope_section": mrope, "rope_theta": 10000.0}
        vision = dict(vision_common, embed_dim=width, hidden_size=hidden, mlp_ratio=2)
        return Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    if arch == "qwen2_5_vl":
        text["rope_parameters"] = {"rope_type": "default", "mrope_section": mrope, "rope_theta": 10000.0}
        vision = dict(vision_common, hidden_size=width, intermediate_size=2 * width, out_hidden_size=hidden,
                      window_size=56, fullatt_block_indexes=[0])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
    if arch == "qwen3_vl":
        text["head_dim"] = head_dim
        text["rope_parameters"] = {"rope_type": "default", "mrope_section": mrope, "mrope_interleaved": True,
                                   "rope_theta": 10000.0}
        vision = dict(vision_common, hidden_size=width, intermediate_size=2 * width, out_hidden_size=hidden,
                      num_position_embeddings=(IMAGE_SIDE // patch) ** 2, deepstack_visual_indexes=[0])
        return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)
    raise ConfigError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHS)}")


_PROCESSOR_CLASSES = {
    "qwen2_vl": "ImageOnlyQwen2VLProcessor",
    "qwen2_5_vl": "ImageOnlyQwen2_5_VLProcessor",
    "qwen3_vl": "ImageOnlyQwen3VLProcessor",
}


def build_tiny_model(out: str | os.PathLike, arch: str = "qwen2_vl", seed: int = 0, size: str = "tiny") -> Path:
    """Build a random-weight ``arch`` model (``size`` from :data:`SIZES`) with a local tokenizer and
    an image-only processor.

    The folder loads offline with ``AutoModelForImageTextToText.from_pretrained(out)`` and
    ``AutoProcessor.from_pretrained(out, trust_remote_code=True)``. Deterministic for a seed.
    Written to a temporary folder first and renamed, so ``out`` is complete or absent.
    """
    import torch
    from transformers import AutoModelForImageTextToText
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHS)}")
    out = Path(out)
    with atomic_directory(out) as work:
        tokenizer = build_tokenizer()
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(_model_config(arch, tokenizer, size), dtype=torch.float32)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(work)

        # The patch grid is the size's (real Qwen3-VL uses 16 px patches; only sizes are tiny here).
        grid = SIZES[size]
        image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS,
                                                   patch_size=grid["patch"], merge_size=grid["merge"])
        shutil.copy(Path(__file__).with_name("image_only_processor.py"), work / "image_only_processor.py")
        processor_class = _PROCESSOR_CLASSES[arch]
        module = __import__("refine_rft_workshop.image_only_processor", fromlist=[processor_class])
        processor = getattr(module, processor_class)(image_processor=image_processor, tokenizer=tokenizer,
                                                     chat_template=CHAT_TEMPLATE)
        processor.save_pretrained(work)
        _add_auto_map(work, processor_class)
    return out


def _add_auto_map(folder: Path, processor_class: str) -> None:
    """Point AutoProcessor at the image-only processor shipped in the folder (remote code)."""
    reference = f"image_only_processor.{processor_class}"
    for name in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        path = folder / name
        if not path.exists():
            continue
        config = json.loads(path.read_text())
        config.setdefault("auto_map", {})["AutoProcessor"] = reference
        if name == "processor_config.json":
            config["processor_class"] = processor_class
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def tiny_model_cache_dir() -> Path:
    """Where :func:`cached_tiny_model` keeps built models (``$REFINE_RFT_CACHE`` or ``~/.cache/refine-rft``)."""
    return Path(os.environ.get("REFINE_RFT_CACHE", Path.home() / ".cache" / "refine-rft"))


def _source_fingerprint() -> str:
    """Changes whenever the code that defines the tiny model changes, so the cache never goes stale."""
    from refine_rft import prompts
    from refine_rft_workshop import synthetic

    digest = hashlib.sha256()
    for module_file in (__file__, Path(__file__).with_name("image_only_processor.py"), prompts.__file__,
                        synthetic.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()[:12]


def cached_tiny_model(arch: str = "qwen2_vl", seed: int = 0, size: str = "tiny") -> Path:
    """The model for ``(arch, seed, size)``, built once and reused (keyed by the builder's source).

    Processes sharing the cache (parallel test workers, demo stages) wait for one builder rather than
    each building the same model.
    """
    from filelock import FileLock  # (a dependency of huggingface_hub, hence of transformers)

    path = tiny_model_cache_dir() / f"{size}-{arch}-s{seed}-{_source_fingerprint()}"
    if not (path / "config.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path.with_name(path.name + ".lock")):
            if not (path / "config.json").exists():
                build_tiny_model(path, arch=arch, seed=seed, size=size)
    return path
