"""The SFT baseline: target ``"B. <name>"`` with the loss on it alone; LoRA moves; export merges it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from refine_rft_workshop.models import resolve_model_path as tiny
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "workshop" / "refine_rft_workshop" / "recipes" / "sft.yaml"


def _overrides(tmp_path, train_file, **extra) -> dict:
    # The random-weight tiny model (the recipe's default is the shipped instruct base): these tests
    # are about the SFT mechanics, and export merges onto tiny:qwen2_vl.
    return {"model_name_or_path": tiny("tiny:qwen2_vl"), "train_file": str(train_file), "output_dir": str(tmp_path / "sft"),
            "report_to": [],
            "disable_tqdm": True, "save_strategy": "no", **extra}


def test_sft_loss_covers_the_answer_only(tmp_path, tiny_model_path, synthetic_train_jsonl):
    from refine_rft.files import read_jsonl
    from refine_rft.prompts import answer_text
    from refine_rft.train.config import parse_recipe
    from refine_rft.train.sft import _dataclass_types, build_trainer

    trainer = build_trainer(*parse_recipe(_dataclass_types(), recipe=RECIPE,
                                          overrides=_overrides(tmp_path, synthetic_train_jsonl)))
    records = read_jsonl(synthetic_train_jsonl)
    indices = [0, 5, 11]
    batch = trainer.data_collator([trainer.train_dataset[i] for i in indices])
    tokenizer = trainer.processing_class.tokenizer
    for index, ids, labels in zip(indices, batch["input_ids"], batch["labels"]):
        trained = [int(token) for token, label in zip(ids, labels) if label != -100]
        expected = answer_text(records[index]["options"], records[index]["answer"])
        assert tokenizer.decode(trained) == expected + "<|im_end|>"
        # the image and the question are in the input, just not in the loss
        assert len(trained) < int((labels == -100).sum())


@pytest.mark.slow
def test_sft_trains_lora_and_export_merges_it(tmp_path, tiny_model_path, synthetic_train_jsonl):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from refine_rft.train.export import main as export_main
    from refine_rft.train.sft import train_sft

    out = train_sft(RECIPE, _overrides(tmp_path, synthetic_train_jsonl, max_steps=3))
    history = [row for row in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in row]
    assert len(history) == 3 and all(row["loss"] > 0 for row in history)
    adapter = load_file(out / "adapter_model.safetensors")
    assert sum(float(t.norm()) for name, t in adapter.items() if "lora_B" in name) > 0
    assert "sft_target: answer" in (out / "refine_rft_config.yaml").read_text()
    card = (out / "README.md").read_text()  # TRL's model card, written after the final save
    assert "library_name: transformers" in card and "refine-rft" in card and "sft" in card

    merged_dir = tmp_path / "merged"
    assert export_main(["--trust-remote-code", "--adapter", str(out), "--out", str(merged_dir), "--base", tiny("tiny:qwen2_vl")]) == 0
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir)
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_path)
    name = next(n for n, _ in merged.named_parameters() if n.endswith("layers.0.self_attn.q_proj.weight"))
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert not torch.equal(dict(merged.named_parameters())[name], dict(base.named_parameters())[name])
    AutoProcessor.from_pretrained(merged_dir, trust_remote_code=True)  # the processor travels with it
    # The merged model is a standard Qwen2-VL checkpoint (vLLM and lmms-eval load it by class); the
    # only custom code in the folder is the tiny base's own image-only processor, which a real
    # Qwen2-VL base does not have, so its export carries none.
    config = json.loads((merged_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen2VLForConditionalGeneration"] and "auto_map" not in config
    assert sorted(p.name for p in merged_dir.glob("*.py")) == ["image_only_processor.py"]
    for name in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        if (merged_dir / name).is_file():
            assert set(json.loads((merged_dir / name).read_text()).get("auto_map", {})) <= {"AutoProcessor"}
    with pytest.raises(FileExistsError):
        export_main(["--trust-remote-code", "--adapter", str(out), "--out", str(merged_dir), "--base", tiny("tiny:qwen2_vl")])
