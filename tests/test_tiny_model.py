"""The embedded tiny VLM: deterministic, loads offline in a fresh process, generates from an image."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from refine_rft_workshop.tiny import build_tokenizer, build_tiny_model

LOAD_AND_GENERATE = r"""
import json, random, sys
from transformers import AutoModelForImageTextToText, AutoProcessor
from refine_rft_workshop.synthetic import draw_bird, make_species
from refine_rft.prompts import question_messages
path = sys.argv[1]
processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
model = AutoModelForImageTextToText.from_pretrained(path)
species = make_species(24)
messages = question_messages("birds", [s.name for s in species[:4]], "cot")
text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(text=[text], images=[draw_bird(species[0], 112, random.Random(0))], return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
print(json.dumps({"processor": type(processor).__name__, "model": type(model).__name__,
                  "new_tokens": out.shape[1] - inputs["input_ids"].shape[1],
                  "image_tokens": int((inputs["input_ids"] == model.config.image_token_id).sum())}))
"""


@pytest.mark.end_to_end
def test_end_to_end_loads_offline_in_a_fresh_process_and_generates(tiny_model_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", LOAD_AND_GENERATE, str(tiny_model_path)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["processor"] == "ImageOnlyQwen2VLProcessor"
    assert info["model"] == "Qwen2VLForConditionalGeneration"
    assert info["new_tokens"] >= 1
    assert info["image_tokens"] == 16  # 112x112 -> 8x8 patches -> 2x2 merge


def test_build_is_deterministic(tmp_path, tiny_model_path):
    again = build_tiny_model(tmp_path / "again", seed=0)
    assert (again / "model.safetensors").read_bytes() == (tiny_model_path / "model.safetensors").read_bytes()
    assert (again / "tokenizer.json").read_bytes() == (tiny_model_path / "tokenizer.json").read_bytes()
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_other_architectures_build_and_run(tmp_path, arch):
    import random

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from refine_rft_workshop.synthetic import draw_bird, make_species

    path = build_tiny_model(tmp_path / arch, arch=arch)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert json.loads((path / "config.json").read_text())["model_type"] == arch
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which bird?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image = draw_bird(make_species(4)[0], 112, random.Random(0))
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=3, do_sample=False).shape[1] > inputs["input_ids"].shape[1]


def test_tokenizer_covers_the_task_vocabulary():
    tokenizer = build_tokenizer()
    for word in ["<think>", "</attribute>", "<answer>", "Crimson-winged", " Finch", "B.", "crested"]:
        assert len(tokenizer.tokenize(word)) <= 3, (word, tokenizer.tokenize(word))
    for special in ["<|im_start|>", "<|im_end|>", "<|image_pad|>", "<|vision_start|>"]:
        assert tokenizer.tokenize(special) == [special]


def test_assistant_mask_covers_only_the_answer(tiny_model_path):
    """SFT's labels (TRL's vision collator, then the project's :class:`~refine_rft.train.sft.AssistantOnlyLabels`)
    cover the answer and its end-of-turn token alone, with an image in the question, on every transformers
    the floors admit (5.17's own assistant mask is empty here)."""
    import random

    from transformers import AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from refine_rft.train.sft import AssistantOnlyLabels
    from refine_rft_workshop.synthetic import draw_bird, make_species

    processor = AutoProcessor.from_pretrained(tiny_model_path, trust_remote_code=True)
    image = draw_bird(make_species(4)[0], 112, random.Random(0))
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "B. Common Finch"}]},
    ]
    collator = AssistantOnlyLabels(DataCollatorForVisionLanguageModeling(processor),
                                   processor.tokenizer)
    short = {"images": [image], "messages": conversation}
    longer = {"images": [image], "messages": [conversation[0], {"role": "assistant", "content": [
        {"type": "text", "text": "C. Sooty Albatross, surely"}]}]}
    batch = collator([short, longer])
    answers = [processor.tokenizer.decode(ids[labels != -100]) for ids, labels in zip(batch["input_ids"], batch["labels"])]
    assert answers == ["B. Common Finch<|im_end|>", "C. Sooty Albatross, surely<|im_end|>"]


def test_cli_builds_a_model(tmp_path):
    """``refine-rft-workshop tiny-model`` builds it; the pipeline's own command has no such subcommand."""
    from refine_rft.cli import main as pipeline
    from refine_rft_workshop.cli import main

    assert main(["tiny-model", str(tmp_path / "m"), "--seed", "3"]) == 0
    assert (Path(tmp_path / "m") / "image_only_processor.py").exists()
    assert pipeline(["tiny-model", str(tmp_path / "n")]) == 2 and not (tmp_path / "n").exists()


def test_without_trust_remote_code_the_processor_does_not_load(tiny_model_path):
    """What really happens (transformers 5.24): a ValueError asking for ``trust_remote_code``, not a
    silent fallback to the tokenizer. With it, the image-only processor."""
    from transformers import AutoProcessor

    with pytest.raises(ValueError, match="trust_remote_code=True"):
        AutoProcessor.from_pretrained(tiny_model_path)
    processor = AutoProcessor.from_pretrained(tiny_model_path, trust_remote_code=True)
    assert type(processor).__name__ == "ImageOnlyQwen2VLProcessor"
