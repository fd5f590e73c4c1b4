"""One image resolution: a 2000 x 1500 image becomes at most max_pixels / 28**2 image tokens in the
training path (the processor and dataset TRL's trainers get) and in the evaluation path, on the tiny
Qwen2-VL with a configured max_pixels below its own default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# The tiny model's own default admits 16 tokens (112 x 112); these bounds admit 4.
MAX_PIXELS, MIN_PIXELS = 56 * 56, 28 * 28
MAX_TOKENS = MAX_PIXELS // (28 * 28)


@pytest.fixture(scope="module")
def big_image_questions(tmp_path_factory):
    from PIL import Image

    from refine_rft.files import write_jsonl_atomic

    out = tmp_path_factory.mktemp("big")
    Image.new("RGB", (2000, 1500), (120, 30, 200)).save(out / "big.png")
    row = {"id": "big-1", "dataset": "synthetic", "image": "big.png", "label": "a", "options": ["a", "b", "c", "d"],
           "answer": 0, "noun": "birds"}
    return write_jsonl_atomic(out / "questions.jsonl", [row])


def _image_tokens(processor, input_ids) -> int:
    return int((input_ids == processor.image_token_id).sum())


def _training_inputs(recipe: str, questions: Path, tmp_path: Path, **overrides):
    from refine_rft.train import grpo, sft
    from refine_rft.train.config import parse_recipe
    from refine_rft.train.data import load_training_inputs

    types = sft._dataclass_types() if "sft" in recipe else grpo._dataclass_types()
    from refine_rft_workshop import RECIPES, tiny_instruct_path

    args = parse_recipe(types, recipe=RECIPES / recipe,
                        overrides={"model_name_or_path": str(tiny_instruct_path()), "train_file": str(questions),
                                   "output_dir": str(tmp_path), **overrides})
    return load_training_inputs(*args)


@pytest.mark.parametrize("recipe", ["refine_rft.yaml", "sft.yaml"])
def test_training_path_caps_image_tokens(recipe, big_image_questions, tmp_path, tiny_model_path):
    from refine_rft.train.data import grpo_rows, sft_rows, to_dataset

    processor, records, resolution = _training_inputs(recipe, big_image_questions, tmp_path,
                                                      max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS)
    assert resolution.max_tokens() == MAX_TOKENS and resolution.factor == 28
    rows = grpo_rows(records) if recipe.startswith("refine") else sft_rows(records)
    image = to_dataset(rows, resolution)[0]["image"]
    # The image TRL's trainer (and its vLLM engine) receives is already on the token grid ...
    assert image.size == (56, 28)
    # ... and the trainer's processor tokenises even the original image into at most MAX_TOKENS tokens.
    from PIL import Image

    with Image.open(records[0]["image"]) as original:
        for picture in (image, original.convert("RGB")):
            text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                  "text": "q"}]}], add_generation_prompt=True, tokenize=False)
            inputs = processor(text=[text], images=[[picture]], return_tensors="pt")
            grid = inputs["image_grid_thw"][0]
            merged = processor.image_processor.merge_size ** 2  # patches per image token
            assert int(grid.prod()) // merged == _image_tokens(processor, inputs["input_ids"]) <= MAX_TOKENS


def test_without_a_resolution_the_tiny_default_admits_more(big_image_questions, tmp_path, tiny_model_path):
    """The check above can fail: the same image under the processor's own bounds gives more tokens."""
    processor, records, resolution = _training_inputs("refine_rft.yaml", big_image_questions, tmp_path,
                                                      max_pixels=None, min_pixels=None)
    assert not resolution.is_set
    from PIL import Image

    inputs = processor.image_processor(images=[Image.open(records[0]["image"]).convert("RGB")], return_tensors="pt")
    assert int(inputs["image_grid_thw"][0].prod()) // processor.image_processor.merge_size ** 2 > MAX_TOKENS


def test_eval_path_caps_image_tokens(big_image_questions, tiny_model_path):
    from refine_rft.evaluate.generate import HFGenerator, load_questions
    from refine_rft.resolution import ImageResolution

    generator = HFGenerator(str(tiny_model_path), device="cpu",
                            resolution=ImageResolution(MIN_PIXELS, MAX_PIXELS), trust_remote_code=True)
    records = load_questions([big_image_questions])
    for style in ("choice", "cot"):
        inputs = generator.inputs(records, style)
        assert inputs["image_grid_thw"].tolist() == [[1, 2, 4]]
        assert _image_tokens(generator.processor, inputs["input_ids"]) == 2 <= MAX_TOKENS


def test_eval_reads_the_resolution_saved_with_the_run(tmp_path, big_image_questions, tiny_model_path):
    """`refine-rft eval` on an adapter or merged folder uses the resolution its training run saved."""
    import yaml

    from refine_rft.evaluate.generate import EvalSettings, generate_predictions
    from refine_rft.resolution import choose_resolution, resolution_of_run

    run = tmp_path / "adapter"
    run.mkdir()
    (run / "refine_rft_config.yaml").write_text(yaml.safe_dump(
        {"script": {"max_pixels": MAX_PIXELS, "min_pixels": MIN_PIXELS}, "training": {}, "model": {}}))
    assert resolution_of_run(run).max_tokens() == MAX_TOKENS
    assert choose_resolution(None, None, None, run).max_pixels == MAX_PIXELS
    assert choose_resolution(None, 112 * 112, run).max_pixels == 112 * 112  # the command line wins
    assert not choose_resolution(None, None, tmp_path).is_set
    path = generate_predictions([big_image_questions], ["choice"], tmp_path / "eval",
                                EvalSettings(str(tiny_model_path), resolution_of_run(run), max_new_tokens={"choice": 2},
                                             trust_remote_code=True))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["big-1"]


def test_bad_bounds_fail_naming_the_field():
    from refine_rft.resolution import ImageResolution

    with pytest.raises(ValueError, match="max_pixels must be an integer >= 784"):
        ImageResolution(max_pixels=100)
    with pytest.raises(ValueError, match="min_pixels .* is larger than max_pixels"):
        ImageResolution(min_pixels=5000, max_pixels=3136)
