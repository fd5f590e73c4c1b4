"""benchmarks/gpu_smoke.py: its --tiny run end to end on CPU, and the arithmetic of its implications."""

import json


def test_tiny_run_through_training_and_evaluation(tmp_path, load_benchmark):
    """The script's ``main`` in this process (its command line is the argparse in front of it)."""
    from transformers.utils import logging as hf_logging

    from refine_rft_workshop.testing.commands import run_in_process

    out = tmp_path / "figures.json"
    verbosity = hf_logging.get_verbosity()
    try:
        done = run_in_process(load_benchmark("gpu_smoke").main, ["--tiny", "--json", out])
    finally:
        hf_logging.set_verbosity(verbosity)  # the script quiets transformers for the rest of its process
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    step, args = figures["step"], figures["args"]
    completions = args["batch"] * args["grad_accum"]
    assert len(figures["steps"]) == args["steps"] - 1  # the warm-up step is not counted
    assert step["completions"] == completions and step["completion_tokens"] == completions * args["completion_tokens"]
    # Every completion reached the scripted judge over HTTP, inside the rewards phase.
    assert figures["judge_requests"] == args["steps"] * completions
    assert step["rewards_s"] >= args["latency"]
    for timed in figures["steps"]:
        parts = timed["generation_s"] + timed["rewards_s"] + timed["optimizer_s"]
        assert abs(parts - timed["total_s"]) < 1e-6 and min(timed["generation_s"], timed["optimizer_s"]) > 0
    assert step["prompt_tokens"] > completions * 16  # 16 image tokens per 112 px image, plus the question
    assert figures["evaluation"]["tokens_per_s"] > 0 and figures["evaluation"]["questions"] == args["eval_questions"]
    printed = done.stdout
    assert "seconds per optimizer step" in printed and "4 x 48 GB" in printed and "8 x 80 GB" in printed


def test_implications_of_a_7b_measurement(load_benchmark):
    smoke = load_benchmark("gpu_smoke")
    args = type("Args", (), dict(batch=12, grad_accum=4, generations=6, completion_tokens=512))()
    facts = {"weights_gib": 15.4, "kv_bytes_per_token": 2 * 28 * 4 * 128 * 2}
    step = {"completions": 48, "prompt_tokens": 48 * 300, "peak_generation_gib": [20.0, 22.0],
            "peak_training_gib": [30.0, 32.0], "generation_s": 20.0, "rewards_s": 1.0, "optimizer_s": 10.0}
    lines = smoke.implications(step, facts, args)
    paper, recipe = lines[:4], lines[4:]
    assert "12 completions x 8 accumulation per GPU (96 generated at once)" in paper[0]
    assert "12 completions x 4 accumulation per GPU (48 generated at once)" in recipe[0]
    # 48 GB: training peak 32 GiB fits; vLLM needs 15.4 + 96 x 812 tokens x 56 KiB (4.2 GiB) + 2 = 21.6 GiB,
    # more than the 15.5 GiB left beside the training peak.
    assert "-> fits (margin +15.5 GiB)" in paper[1]
    assert "vLLM colocate needs 21.6 GiB" in paper[2] and paper[2].endswith("does NOT fit")
    assert "vLLM colocate needs 19.5 GiB" in recipe[2] and recipe[2].endswith("-> fits")
    assert "step ~62 s" in paper[3] and "step ~31 s" in recipe[3]  # generation, rewards, optimizer x2 on 4 GPUs


def test_every_published_model_builds_and_parses_with_its_recipe(tmp_path, load_benchmark):
    """``--model NAME`` for each published model: the weightless folder and its recipe with the benchmark's
    overrides, as ``train_steps`` parses them (the GPU run itself needs a GPU)."""
    from transformers import AutoConfig

    from refine_rft_workshop.published import PUBLISHED, published_names
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    smoke = load_benchmark("gpu_smoke")
    assert sorted(smoke.RECIPES) == published_names()
    for name in published_names():
        args = smoke.argparse.Namespace(model=name, tiny=False, steps=4, batch=12, grad_accum=4,
                                        generations=6, completion_tokens=512)
        folder = smoke.build_model(args, tmp_path)
        assert AutoConfig.from_pretrained(folder).model_type == PUBLISHED[name]["arch"]
        values = {**smoke.overrides(args, folder, tmp_path / "train.jsonl", tmp_path / "out",
                                    "http://127.0.0.1:1/v1"), "bf16": False, "use_cpu": True}
        script, training, model = parse_recipe(grpo._dataclass_types(), recipe=smoke.RECIPES[name],
                                               overrides=values)
        assert model.model_name_or_path == folder and training.per_device_train_batch_size == 12
        side = 32 if PUBLISHED[name]["arch"] == "qwen3_vl" else 28
        assert script.max_pixels % side ** 2 == 0
