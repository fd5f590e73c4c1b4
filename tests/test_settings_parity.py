"""Every flag the commands accepted before their settings became dataclasses still parses to the same
value: each case is a command line and the values the command used for it, recorded from the
argparse parsers these settings replaced."""

from __future__ import annotations

import pytest

from refine_rft_workshop import RECIPES as TINY

CASES = [  # (command, argv, the values it parsed to)
    ('eval', ['--model', 'm', '--data', 'd.jsonl', '--out', 'o'],
     {'model': 'm', 'adapter': None, 'data': ['d.jsonl'], 'prompts': 'choice,both,cot', 'out': 'o', 'backend': 'hf', 'batch_size': 16, 'max_new_tokens': {}, 'limit': None, 'similarity': None, 'similarity_protocol': 'fine-r1', 'max_prompt_tokens': None, 'max_pixels': None, 'min_pixels': None, 'trust_remote_code': False, 'overwrite': False}),
    ('eval', ['--model', 'm', '--adapter', 'a', '--data', 'd1.jsonl', 'd2.jsonl', '--prompts', 'choice,cot', '--out', 'o', '--backend', 'vllm', '--batch-size', '4', '--max-new-tokens', 'cot=256,choice=4', '--limit', '3', '--similarity', 'minilm', '--max-prompt-tokens', '900', '--max-pixels', '1003520', '--min-pixels', '200704', '--trust-remote-code', '--overwrite', '--similarity-protocol', 'corrected'],
     {'model': 'm', 'adapter': 'a', 'data': ['d1.jsonl', 'd2.jsonl'], 'prompts': 'choice,cot', 'out': 'o', 'backend': 'vllm', 'batch_size': 4, 'max_new_tokens': {'cot': 256, 'choice': 4}, 'limit': 3, 'similarity': 'minilm', 'similarity_protocol': 'corrected', 'max_prompt_tokens': 900, 'max_pixels': 1003520, 'min_pixels': 200704, 'trust_remote_code': True, 'overwrite': True}),
    ('predict', ['--model', 'm', '--image', 'PNG', '--options', 'a;b'],
     {'model': 'm', 'adapter': None, 'image': 'PNG', 'options': 'a;b', 'dataset': None, 'root': None, 'label': None, 'noun': None, 'style': 'cot', 'max_new_tokens': None, 'backend': 'hf', 'max_pixels': None, 'min_pixels': None, 'trust_remote_code': False}),
    ('predict', ['--model', 'm', '--adapter', 'a', '--image', 'PNG', '--dataset', 'cub', '--root', 'r', '--label', 'x', '--noun', 'birds', '--style', 'both', '--max-new-tokens', '12', '--backend', 'vllm', '--max-pixels', '1003520', '--min-pixels', '200704', '--trust-remote-code'],
     {'model': 'm', 'adapter': 'a', 'image': 'PNG', 'options': None, 'dataset': 'cub', 'root': 'r', 'label': 'x', 'noun': 'birds', 'style': 'both', 'max_new_tokens': 12, 'backend': 'vllm', 'max_pixels': 1003520, 'min_pixels': 200704, 'trust_remote_code': True}),
    ('general-eval', ['--model', 'm', '--out', 'o'],
     {'model': 'm', 'out': 'o', 'harness': 'lmms-eval', 'tasks': None, 'model_type': 'qwen2_vl', 'model_args': '', 'batch_size': 1, 'num_processes': 1, 'vlmevalkit_dir': None, 'judge': 'exact_matching', 'max_pixels': None, 'min_pixels': None, 'trust_remote_code': False, 'resolution': None, 'dry_run': False}),
    ('general-eval', ['--model', 'm', '--out', 'o', '--harness', 'vlmevalkit', '--tasks', 'MMStar', '--model-type', 'qwen2_5_vl', '--model-args', 'attn_implementation=sdpa', '--batch-size', '2', '--num-processes', '8', '--vlmevalkit-dir', 'kit', '--judge', 'chatgpt', '--max-pixels', '1003520', '--min-pixels', '200704', '--trust-remote-code', '--resolution', 'training', '--dry-run'],
     {'model': 'm', 'out': 'o', 'harness': 'vlmevalkit', 'tasks': 'MMStar', 'model_type': 'qwen2_5_vl', 'model_args': 'attn_implementation=sdpa', 'batch_size': 2, 'num_processes': 8, 'vlmevalkit_dir': 'kit', 'judge': 'chatgpt', 'max_pixels': 1003520, 'min_pixels': 200704, 'trust_remote_code': True, 'resolution': 'training', 'dry_run': True}),
    ('export', ['--adapter', 'a', '--out', 'o'],
     {'adapter': 'a', 'out': 'o', 'base': None, 'dtype': 'auto', 'trust_remote_code': False}),
    ('export', ['--adapter', 'a', '--out', 'o', '--base', 'b', '--dtype', 'bfloat16', '--trust-remote-code'],
     {'adapter': 'a', 'out': 'o', 'base': 'b', 'dtype': 'bfloat16', 'trust_remote_code': True}),
    ('report', ['r1', '--out', 'o'],
     {'runs': ['r1'], 'out': 'o', 'samples': 6, 'seed': 0}),
    ('report', ['r1', 'r2', '--out', 'o', '--samples', '3', '--seed', '7'],
     {'runs': ['r1', 'r2'], 'out': 'o', 'samples': 3, 'seed': 7}),
    ('prepare', ['cub', '--root', 'r', '--split', 'train', '--out', 'o.jsonl'],
     {'dataset': 'cub', 'root': 'r', 'split': 'train', 'choices': None, 'out': 'o.jsonl', 'noun': None, 'name': None, 'base_to_new': False, 'shots': None, 'seed': 0, 'distractors': 'similar', 'pretty_names': False, 'no_verify_images': False, 'clip_model': 'ViT-L-14', 'clip_pretrained': 'laion2b_s32b_b82k', 'device': 'cpu'}),
    ('prepare', ['csv', '--root', 'r.csv', '--split', 'test', '--choices', 'c.json', '--out', 'o.jsonl', '--noun', 'things', '--name', 'mine', '--base-to-new', '--shots', '4', '--seed', '3', '--distractors', 'random', '--pretty-names', '--no-verify-images', '--clip-model', 'ViT-B-32', '--clip-pretrained', 'openai', '--device', 'cuda'],
     {'dataset': 'csv', 'root': 'r.csv', 'split': 'test', 'choices': 'c.json', 'out': 'o.jsonl', 'noun': 'things', 'name': 'mine', 'base_to_new': True, 'shots': 4, 'seed': 3, 'distractors': 'random', 'pretty_names': True, 'no_verify_images': True, 'clip_model': 'ViT-B-32', 'clip_pretrained': 'openai', 'device': 'cuda'}),
    ('prepare', ['paper', '--roots', 'r', '--choices-dir', 'c', '--out', 'o'],
     {'dataset': 'paper', 'roots': 'r', 'choices_dir': 'c', 'out': 'o', 'base_to_new': False, 'shots': 5, 'seed': 0, 'distractors': 'similar', 'pretty_names': False, 'no_verify_images': False, 'clip_model': 'ViT-L-14', 'clip_pretrained': 'laion2b_s32b_b82k', 'device': 'cpu'}),
    ('prepare', ['fine-r1', '--root', 'r', '--out', 'o'],
     {'dataset': 'fine-r1', 'root': 'r', 'images': None, 'out': 'o', 'shuffle_seed': None, 'no_verify_images': False}),
    ('prepare', ['fine-r1', '--root', 'r', '--out', 'o', '--images', 'i', '--shuffle-seed', '3', '--no-verify-images'],
     {'dataset': 'fine-r1', 'root': 'r', 'images': 'i', 'out': 'o', 'shuffle_seed': 3, 'no_verify_images': True}),
    ('prepare', ['paper', '--roots', 'r', '--choices-dir', 'c', '--out', 'o', '--base-to-new', '--shots', '2', '--seed', '1', '--distractors', 'clip', '--pretty-names', '--no-verify-images', '--clip-model', 'ViT-B-32', '--clip-pretrained', 'openai', '--device', 'cuda'],
     {'dataset': 'paper', 'roots': 'r', 'choices_dir': 'c', 'out': 'o', 'base_to_new': True, 'shots': 2, 'seed': 1, 'distractors': 'clip', 'pretty_names': True, 'no_verify_images': True, 'clip_model': 'ViT-B-32', 'clip_pretrained': 'openai', 'device': 'cuda'}),
    ('judge', ['p.jsonl', '--out', 's.jsonl'],
     {'predictions': 'p.jsonl', 'out': 's.jsonl', 'styles': 'cot', 'overwrite': False, 'backend': 'openai', 'base_urls': ['https://api.openai.com/v1'], 'model': 'gpt-4.1-mini', 'prompt': 'paper', 'api_key_env': 'OPENAI_API_KEY', 'timeout': 60.0, 'max_retries': 4, 'backoff_base': 1.0, 'backoff_max': 30.0, 'concurrency': 32, 'max_image_side': 768, 'max_tokens': 16, 'rsc_max_tokens': 400, 'cache_path': None, 'reject_injections': False, 'skip_untagged': False, 'group_judging': False, 'max_failure_rate': 0.5, 'attribute_values': {}, 'failure_window': 64, 'routing': 'question', 'replica_capacity': 64, 'load_factor': 1.25, 'replica_failures': 3, 'cooldown_s': 30.0, 'sight_check': True}),
    ('judge', ['p.jsonl', '--out', 's.jsonl', '--backend', 'attributes'],
     {'predictions': 'p.jsonl', 'out': 's.jsonl', 'styles': 'cot', 'overwrite': False, 'backend': 'attributes', 'base_urls': ['http://127.0.0.1:8000/v1'], 'model': '', 'prompt': 'paper', 'api_key_env': 'REFINE_RFT_JUDGE_API_KEY', 'timeout': 60.0, 'max_retries': 4, 'backoff_base': 1.0, 'backoff_max': 30.0, 'concurrency': 32, 'max_image_side': 768, 'max_tokens': 16, 'rsc_max_tokens': 400, 'cache_path': None, 'reject_injections': False, 'skip_untagged': False, 'group_judging': False, 'max_failure_rate': 0.5, 'attribute_values': {}, 'failure_window': 64, 'routing': 'question', 'replica_capacity': 64, 'load_factor': 1.25, 'replica_failures': 3, 'cooldown_s': 30.0, 'sight_check': True}),
    ('judge', ['p.jsonl', '--out', 's.jsonl', '--endpoint', 'http://a:1/v1', '--model', 'm'],
     {'predictions': 'p.jsonl', 'out': 's.jsonl', 'styles': 'cot', 'overwrite': False, 'backend': 'openai', 'base_urls': ['http://a:1/v1'], 'model': 'm', 'prompt': 'paper', 'api_key_env': 'REFINE_RFT_JUDGE_API_KEY', 'timeout': 60.0, 'max_retries': 4, 'backoff_base': 1.0, 'backoff_max': 30.0, 'concurrency': 32, 'max_image_side': 768, 'max_tokens': 16, 'rsc_max_tokens': 400, 'cache_path': None, 'reject_injections': False, 'skip_untagged': False, 'group_judging': False, 'max_failure_rate': 0.5, 'attribute_values': {}, 'failure_window': 64, 'routing': 'question', 'replica_capacity': 64, 'load_factor': 1.25, 'replica_failures': 3, 'cooldown_s': 30.0, 'sight_check': True}),
    ('judge', ['p.jsonl', '--out', 's.jsonl', '--backend', 'openai', '--endpoint', 'http://a:1/v1', '--endpoint', 'http://b:2/v1', '--model', 'm', '--api-key-env', 'KEY', '--concurrency', '3', '--timeout', '2.5', '--max-retries', '1', '--max-failure-rate', '0.25', '--failure-window', '8', '--cache', 'c.db', '--reject-injections', '--no-sight-check', '--styles', 'cot,choice', '--overwrite'],
     {'predictions': 'p.jsonl', 'out': 's.jsonl', 'styles': 'cot,choice', 'overwrite': True, 'backend': 'openai', 'base_urls': ['http://a:1/v1', 'http://b:2/v1'], 'model': 'm', 'prompt': 'paper', 'api_key_env': 'KEY', 'timeout': 2.5, 'max_retries': 1, 'backoff_base': 1.0, 'backoff_max': 30.0, 'concurrency': 3, 'max_image_side': 768, 'max_tokens': 16, 'rsc_max_tokens': 400, 'cache_path': 'c.db', 'reject_injections': True, 'skip_untagged': False, 'group_judging': False, 'max_failure_rate': 0.25, 'attribute_values': {}, 'failure_window': 8, 'routing': 'question', 'replica_capacity': 64, 'load_factor': 1.25, 'replica_failures': 3, 'cooldown_s': 30.0, 'sight_check': False}),
]


def parsed(command: str, argv: list[str]) -> dict:
    """The values ``command`` parses ``argv`` to, by the names above: its settings dataclasses' fields."""
    import dataclasses
    import importlib

    from refine_rft.cli import COMMANDS

    values = {}
    for settings in importlib.import_module(COMMANDS[command][0]).parse_args(argv):
        values.update({spec.name: getattr(settings, spec.name) for spec in dataclasses.fields(settings)})
    return {key: str(value) if hasattr(value, "__fspath__") else value for key, value in values.items()}


@pytest.mark.parametrize("command, argv, expected", CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_every_flag_parses_as_before(command, argv, expected):
    assert parsed(command, argv) == expected


TRAIN = ["--config", str(TINY / "refine_rft.yaml"), "--train_file", "q.jsonl", "--model_name_or_path", "m",
         "--bf16", "false", "--use_cpu", "true"]


@pytest.mark.parametrize("flags, expected", [
    ([], {"learning_rate": 1e-04, "max_pixels": 12544, "overwrite": False, "log_sample_ids": True}),
    (["--learning_rate", "0.5", "--max_pixels", "1003520", "--min-pixels", "200704", "--overwrite",
      "--no_log_sample_ids", "--num_generations", "2", "--rewards", "format", "length", "--length_budget", "64",
      "--prompt_style", "both", "--max_train_samples", "5", "--lora_r", "8"],
     {"learning_rate": 0.5, "max_pixels": 1003520, "min_pixels": 200704, "overwrite": True, "log_sample_ids": False,
      "num_generations": 2, "rewards": ["format", "length"], "length_budget": 64, "prompt_style": "both",
      "max_train_samples": 5, "lora_r": 8}),
    (["--judge", '{"backend": "attributes", "concurrency": 2}'], {"judge.backend": "attributes", "judge.concurrency": 2}),
])
def test_train_flags_parse_as_before(flags, expected):
    from refine_rft.train import grpo
    from refine_rft.train.config import parse_recipe

    script, training, model = parse_recipe(grpo._dataclass_types(), TRAIN + flags)
    for name, value in expected.items():
        owner, _, attribute = name.rpartition(".")
        objects = [getattr(script, owner)] if owner else [script, training, model]
        found = next(getattr(o, attribute) for o in objects if hasattr(o, attribute))
        assert found == value, name
