"""Hostile recipes through the real command (in-process): every one is refused in one line (exit 2)
before anything is loaded or written; none runs code, reads a device or expands an alias bomb."""

from __future__ import annotations

import pytest

from refine_rft.cli import main as refine_rft
from refine_rft_workshop import RECIPES

BASE = RECIPES / "vanilla_grpo.yaml"


def refused(tmp_path, capsys, text: str, *extra: str) -> str:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    status = refine_rft(["train", "--config", str(recipe), "--output_dir", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("refine-rft train: error: ")]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
    return lines[0]


def test_yaml_tags_that_would_run_code_are_refused(tmp_path, capsys):
    marker = tmp_path / "ran"
    line = refused(tmp_path, capsys, f"include: {BASE}\nlearning_rate: !!python/object/apply:os.system "
                                     f"['touch {marker}']\n")
    assert "not valid YAML" in line and "python/object" in line and not marker.exists()


def test_an_alias_bomb_is_refused_without_being_expanded(tmp_path, capsys):
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    line = refused(tmp_path, capsys, "\n".join(levels) + "\n")  # 9**9 = 387 million values once expanded
    assert "expands to more than 100,000 values through its YAML aliases" in line


def test_include_takes_local_recipe_files_only_and_refuses_cycles_naming_the_chain(tmp_path, capsys):
    assert "only local files can be included, not URLs" in refused(
        tmp_path, capsys, "include: https://example.invalid/recipe.yaml\n")
    assert "/dev/zero" in refused(tmp_path, capsys, "include: /dev/zero\n")
    assert "must be a regular .yaml, .yml or .json file" in refused(tmp_path, capsys, "include: /etc/passwd\n")
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: recipe.yaml\n")
    line = refused(tmp_path, capsys, "include: a.yaml\n")
    chain = " -> ".join(str(tmp_path / name) for name in ("recipe.yaml", "a.yaml", "b.yaml", "recipe.yaml"))
    assert f"recipe include cycle: {chain}" in line


def test_a_huge_lora_rank_is_refused(tmp_path, capsys):
    assert "lora_r must be between 1 and 4096, got 100000000" in refused(
        tmp_path, capsys, f"include: {BASE}\nuse_peft: true\nlora_r: 100000000\n", "--train_file", "q.jsonl",
        "--model_name_or_path", "m")
