"""Qwen2.5-VL and Qwen3-VL as policies, through model folders of the hub's shape.

- The processor saved with the adapter (GRPO and SFT) and in the export carries the recipe's image bounds,
  even where the folder's processor config names the hub's own bounds (top-level ``min_pixels`` /
  ``max_pixels`` for Qwen2.5-VL, ``size: {shortest_edge, longest_edge}`` for Qwen3-VL): a 2000 x 1500 image
  becomes the recipe's number of image tokens when the saved processor is loaded.
- GRPO with R_cot (the attribute judge), SFT, eval under every prompt, export, reload and predict run on the
  tiny ``qwen2_5_vl`` and ``qwen3_vl`` architectures.
- Qwen3-VL's real chat template, written into a tiny model: the CoT prompt renders, and a correct three-tag
  answer gets R_fa = 1, also where a thinking variant opens ``<think>`` in the generation prompt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from refine_rft_workshop import RECIPES as TINY_RECIPES

REPO = Path(__file__).resolve().parents[1]
# Qwen/Qwen3-VL-8B-Instruct's chat template (its chat_template.json on the Hugging Face hub,
# https://huggingface.co/Qwen/Qwen3-VL-8B-Instruct), byte for byte: the copy TRL ships as
# trl/chat_templates/qwen3_vl.jinja ("Original Qwen3-VL chat template"), which other projects quote as
# byte-identical to the one Qwen/Qwen3-VL-8B-Instruct ships. The -Thinking models' template differs in its
# generation prompt, which opens the thinking block: '<|im_start|>assistant\n<think>\n'.
QWEN3_VL_TEMPLATE = (REPO / "tests" / "fixtures" / "qwen3_vl_8b_instruct_chat_template.jinja").read_text()
INSTRUCT_PROMPT = "{{- '<|im_start|>assistant\\n' }}"
THINKING_PROMPT = "{{- '<|im_start|>assistant\\n<think>\\n' }}"
# The recipe's bounds in these tests: 4 to 16 image tokens of 28 x 28 pixels (the tiny models' grid).
MIN_PIXELS, MAX_PIXELS = 28 * 28 * 4, 28 * 28 * 16


def hub_shaped_tiny(tmp_path: Path, arch: str) -> Path:
    """A tiny ``arch`` model whose processor config names its bounds as the hub's checkpoints do."""
    from refine_rft_workshop.published import write_hub_bounds
    from refine_rft_workshop.tiny import cached_tiny_model

    folder = tmp_path / f"hub-{arch}"
    shutil.copytree(cached_tiny_model(arch), folder)
    write_hub_bounds(folder, arch)
    return folder


def legacy_layout(folder: Path) -> Path:
    """``folder`` with its image processor settings in a separate ``preprocessor_config.json``, as the hub's
    Qwen2.5-VL repositories have them (transformers 5 nests them in ``processor_config.json``)."""
    processor_config = json.loads((folder / "processor_config.json").read_text())
    image_processor = processor_config.pop("image_processor")
    image_processor.update(processor_class=processor_config["processor_class"],
                           auto_map=processor_config["auto_map"])
    (folder / "preprocessor_config.json").write_text(json.dumps(image_processor, indent=2))
    (folder / "processor_config.json").write_text(json.dumps(processor_config, indent=2))
    return folder


def image_tokens_of_big_image(folder: Path) -> int:
    """Image tokens the processor saved in ``folder`` makes of a 2000 x 1500 image, loaded as a user would."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}],
                                         add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (2000, 1500))], return_tensors="pt")
    return int((inputs["input_ids"] == processor.image_token_id).sum())


def recipe_tokens() -> int:
    from refine_rft.resolution import ImageResolution

    height, width = ImageResolution(MIN_PIXELS, MAX_PIXELS).grid(1500, 2000)
    return height * width // 28 ** 2


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_hub_shaped_folder_names_the_hub_bounds(tmp_path, arch):
    folder = hub_shaped_tiny(tmp_path, arch)
    saved = json.loads((folder / "processor_config.json").read_text())["image_processor"]
    if arch == "qwen2_5_vl":
        assert (saved["min_pixels"], saved["max_pixels"]) == (3136, 12845056)
    else:
        assert saved["size"] == {"shortest_edge": 65536, "longest_edge": 16777216}
        assert "max_pixels" not in saved
    # Loaded as it is, a 2000 x 1500 image is far above the recipe's 16 tokens.
    assert image_tokens_of_big_image(folder) > 1000


@pytest.mark.parametrize("arch, legacy", [("qwen2_5_vl", False), ("qwen2_5_vl", True), ("qwen3_vl", False)])
def test_training_processor_saves_the_recipe_bounds(tmp_path, arch, legacy):
    """The processor the trainers get (and save beside the adapter) is loaded with the recipe's bounds,
    which win over the hub config's own in either form and either file layout."""
    from types import SimpleNamespace

    from refine_rft.resolution import ImageResolution
    from refine_rft.train.model import load_processor

    folder = hub_shaped_tiny(tmp_path, arch)
    if legacy:
        legacy_layout(folder)
        assert image_tokens_of_big_image(folder) > 1000  # the hub's own bounds, as loaded without the recipe
    model_args = SimpleNamespace(model_name_or_path=str(folder), model_revision=None)
    processor = load_processor(model_args, SimpleNamespace(trust_remote_code=True),
                               ImageResolution(MIN_PIXELS, MAX_PIXELS))
    processor.save_pretrained(tmp_path / "saved")
    assert image_tokens_of_big_image(tmp_path / "saved") == recipe_tokens()
    # The bounds live in the image processor's settings alone, not in the tokenizer's (which would pass them
    # back into every processor call, a deprecated argument).
    assert "pixels" not in (tmp_path / "saved" / "tokenizer_config.json").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_train_eval_export_predict_keep_the_recipe_resolution(tmp_path, arch, synthetic_train_jsonl, capsys):
    from refine_rft_workshop.synthetic import draw_bird, make_species
    from refine_rft.evaluate import cli as eval_cli
    from refine_rft.evaluate.predict import main as predict_main
    from refine_rft.train.export import main as export_main
    from refine_rft.train.grpo import train_grpo
    from refine_rft.train.sft import train_sft

    folder = hub_shaped_tiny(tmp_path, arch)
    common = {"model_name_or_path": str(folder), "train_file": str(synthetic_train_jsonl), "max_steps": 2,
              "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "save_strategy": "no", "report_to": [],
              "disable_tqdm": True, "max_train_samples": 8}
    grpo_out = train_grpo(TINY_RECIPES / "refine_rft.yaml", {
        **common, "output_dir": str(tmp_path / "grpo"), "num_generations": 2,
        "per_device_train_batch_size": 4, "max_completion_length": 16,
        "rewards": ["attribute_format", "classification", "reasoning"],
        "reward_weights": [0.3, 0.3, 0.4], "judge": {"backend": "attributes"}})
    sft_out = train_sft(TINY_RECIPES / "sft.yaml",
                        {**common, "output_dir": str(tmp_path / "sft")})
    expected = recipe_tokens()
    assert 4 <= expected <= 16
    for run in (grpo_out, sft_out):
        assert (run / "adapter_model.safetensors").is_file()
        assert image_tokens_of_big_image(run) == expected, run.name

    merged = tmp_path / "merged"
    assert export_main(["--trust-remote-code", "--adapter", str(grpo_out), "--out", str(merged)]) == 0
    assert json.loads((merged / "config.json").read_text())["model_type"] == arch
    assert image_tokens_of_big_image(merged) == expected

    from refine_rft_workshop.synthetic import synthetic_questions
    from refine_rft.files import write_jsonl_atomic

    questions = synthetic_questions(tmp_path, "test", per_class=1, num_classes=4)
    data = write_jsonl_atomic(tmp_path / "q.jsonl", questions)
    assert eval_cli.main(["--trust-remote-code", "--model", str(merged), "--data", str(data), "--out", str(tmp_path / "eval"),
                          "--limit", "2", "--max-new-tokens", "choice=2,both=4,cot=8"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert sorted({r["style"] for r in rows}) == ["both", "choice", "cot"] and len(rows) == 6

    image = tmp_path / "bird.png"
    draw_bird(make_species(4)[0], 112).save(image)
    capsys.readouterr()
    assert predict_main(["--trust-remote-code", "--model", str(merged), "--image", str(image), "--options", "a;b;c;d",
                         "--max-new-tokens", "8"]) == 0
    assert "Answer:" in capsys.readouterr().out


def test_fixture_is_the_template_trl_recognises():
    """TRL swaps in its assistant-masked training variant for this exact text (SFT's assistant_only_loss)."""
    from trl.chat_template_utils import qwen3_vl_chat_template, qwen3_vl_training_chat_template

    assert QWEN3_VL_TEMPLATE == qwen3_vl_chat_template
    assert "{% generation %}" in qwen3_vl_training_chat_template
    assert INSTRUCT_PROMPT in QWEN3_VL_TEMPLATE


def real_template_model(tmp_path: Path, template: str) -> Path:
    """The tiny Qwen3-VL with ``template`` as its chat template (processor and tokenizer)."""
    from transformers import AutoProcessor

    from refine_rft_workshop.tiny import cached_tiny_model

    folder = tmp_path / "qwen3vl-real-template"
    shutil.copytree(cached_tiny_model("qwen3_vl"), folder)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    processor.chat_template = processor.tokenizer.chat_template = template
    processor.save_pretrained(folder)
    return folder


CORRECT = ("<think>The bird has a red crown and a short beak, which matches Common Finch.</think>\n"
           "<attribute>red crown, short beak</attribute>\n<answer>B. Common Finch</answer>")
OPTIONS = ["Crested Finch", "Common Finch", "Sooty Tern", "Grey Heron"]


@pytest.mark.parametrize("variant", ["instruct", "thinking"])
def test_real_qwen3_vl_template_keeps_r_fa_for_a_correct_answer(tmp_path, variant):
    from transformers import AutoProcessor

    from refine_rft.chat import generation_prefix
    from refine_rft.parsing import cot_choice
    from refine_rft.prompts import question_messages
    from refine_rft.rewards import get_reward_funcs
    from refine_rft.train.monitor import with_template_prefix

    template = QWEN3_VL_TEMPLATE if variant == "instruct" else QWEN3_VL_TEMPLATE.replace(INSTRUCT_PROMPT,
                                                                                           THINKING_PROMPT)
    processor = AutoProcessor.from_pretrained(real_template_model(tmp_path, template), trust_remote_code=True)
    prompt = processor.apply_chat_template(question_messages("birds", OPTIONS, "cot"),
                                           add_generation_prompt=True, tokenize=False)
    assert "<|vision_start|><|image_pad|><|vision_end|>" in prompt
    assert "<think>" in prompt  # the CoT instruction names the tags
    prefix = generation_prefix(processor)
    # What the model writes: the whole answer, or (thinking variant) all after the template's "<think>\n".
    written = CORRECT if variant == "instruct" else CORRECT[len("<think>"):]
    assert prefix == ("" if variant == "instruct" else "<think>\n")
    assert prompt.endswith("<|im_start|>assistant\n" + prefix)

    rewards = with_template_prefix(get_reward_funcs(["attribute_format", "classification"]), prefix)
    completions = [[{"role": "assistant", "content": written}], [{"role": "assistant", "content": CORRECT}]]
    scores = [func(completions, options=[OPTIONS] * 2, answer=[1, 1]) for func in rewards]
    assert scores == [[1.0, 1.0], [1.0, 1.0]]  # R_fa and R_cls, whether or not the model re-opened <think>
    if variant == "thinking":
        # Without putting the template's opening back, the same answer would fail R_fa.
        raw = get_reward_funcs(["attribute_format"])[0](completions[:1])
        assert raw == [0.0]
    from refine_rft.chat import restore_prefix

    assert cot_choice(restore_prefix(prefix, written), OPTIONS) == 1


def test_evaluation_puts_back_what_a_thinking_template_opened(tmp_path):
    """The hf evaluation generator's responses start with the template's "<think>\\n"."""
    from refine_rft_workshop.synthetic import synthetic_questions
    from refine_rft.evaluate.generate import HFGenerator

    folder = real_template_model(tmp_path, QWEN3_VL_TEMPLATE.replace(INSTRUCT_PROMPT, THINKING_PROMPT))
    records = synthetic_questions(tmp_path, "test", per_class=1, num_classes=2)
    generator = HFGenerator(str(folder), device="cpu", trust_remote_code=True)
    assert generator.template_prefix == "<think>\n"
    responses = generator.generate(records, "cot", max_new_tokens=3)
    assert all(text.startswith("<think>\n") for text in responses)
