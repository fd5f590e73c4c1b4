"""The synthetic set as `refine-rft-workshop synthetic` writes it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from refine_rft.data.records import read_questions
from refine_rft.files import read_jsonl
from refine_rft_workshop.cli import main as cli_main
from refine_rft_workshop.synthetic import ATTRIBUTES, attribute_distance, make_species
from refine_rft_workshop.synthetic_cli import main, prepare_synthetic


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_splits_sizes_and_disjoint_images(tmp_path):
    paths = prepare_synthetic(tmp_path, num_classes=8, shots=2, test_per_class=3, pool_per_class=4, image_size=64)
    assert set(paths) == {"train", "test", "pool"}
    rows = {split: read_questions(path) for split, path in paths.items()}
    assert {s: len(r) for s, r in rows.items()} == {"train": 16, "test": 24, "pool": 32}
    for split, split_rows in rows.items():
        assert {r["label"] for r in split_rows} == {s.name for s in make_species(8)}
        assert all(Path(r["image"]).is_file() for r in split_rows)
        assert all(set(r["attributes"]) == set(ATTRIBUTES) for r in split_rows)
    # Different splits draw different images: no file content is shared.
    digests = {split: {_digest(r["image"]) for r in split_rows} for split, split_rows in rows.items()}
    assert not digests["train"] & digests["test"]
    assert not digests["pool"] & (digests["train"] | digests["test"])


def test_deterministic_and_hard_distractors(tmp_path):
    first = read_jsonl(prepare_synthetic(tmp_path / "a", num_classes=8, shots=1, test_per_class=1)["test"])
    second = read_jsonl(prepare_synthetic(tmp_path / "b", num_classes=8, shots=1, test_per_class=1)["test"])
    assert [(r["options"], r["answer"]) for r in first] == [(r["options"], r["answer"]) for r in second]
    assert [_digest(r["image"]) for r in first] == [_digest(r["image"]) for r in second]
    by_name = {s.name: s for s in make_species(8)}
    for row in first:
        target = by_name[row["label"]]
        distances = sorted(attribute_distance(target, by_name[o]) for o in row["options"] if o != row["label"])
        others = sorted(attribute_distance(target, s) for s in by_name.values() if s is not target)
        assert distances == others[:3]  # the 3 nearest species by attributes
        assert row["option_attributes"][row["answer"]] == row["attributes"]


def test_no_pool_by_default_and_bad_sizes(tmp_path):
    assert "pool" not in prepare_synthetic(tmp_path, num_classes=4, shots=1, test_per_class=1)
    assert not (tmp_path / "pool.jsonl").exists()
    with pytest.raises(ValueError, match="shots"):
        prepare_synthetic(tmp_path, num_classes=4, shots=0)


def test_cli_prints_one_line_per_split(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--classes", "4", "--shots", "1",
                 "--test-per-class", "2", "--pool-per-class", "1", "--image-size", "48", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["train", "test", "pool"]
    assert lines[1].startswith("test: 8 questions, 4 classes")
    assert cli_main(["synthetic", "--out", str(tmp_path / "x"), "--shots", "0"]) == 2  # one line, exit 2


def test_the_command_resumes_itself(tmp_path, capsys):
    """Drawn with the same settings: left as it is; other settings: refused, naming the change;
    ``--overwrite``: drawn afresh."""
    from refine_rft.errors import SettingsChanged

    args = ["--out", str(tmp_path), "--classes", "4", "--shots", "1", "--test-per-class", "1", "--image-size", "48"]
    assert main(args) == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json*")}
    capsys.readouterr()
    assert main(args) == 0
    assert "already drawn with these settings" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json*")} == {
        **stamps, "synthetic_settings.json": (tmp_path / "synthetic_settings.json").stat().st_mtime_ns}
    with pytest.raises(SettingsChanged, match=r"seed 0 -> 1.*--overwrite"):
        main([*args, "--seed", "1"])
    assert main([*args, "--seed", "1", "--overwrite"]) == 0
    assert (tmp_path / "train.jsonl").stat().st_mtime_ns != stamps["train.jsonl"]


def test_image_seed_draws_other_images_of_the_same_questions(tmp_path):
    def test_rows(folder, *extra):
        assert main(["--out", str(tmp_path / folder), "--classes", "8", "--shots", "1",
                     "--test-per-class", "2", "--image-size", "48", *extra]) == 0
        return read_questions(tmp_path / folder / "test.jsonl")

    default, same, other = test_rows("a"), test_rows("b", "--image-seed", "0"), test_rows("c", "--image-seed", "5")
    fields = ("id", "label", "options", "answer", "attributes", "option_attributes")
    questions = [[{k: r[k] for k in fields} for r in rows] for rows in (default, same, other)]
    assert questions[0] == questions[1] == questions[2]
    assert [_digest(r["image"]) for r in default] == [_digest(r["image"]) for r in same]
    assert not {_digest(r["image"]) for r in default} & {_digest(r["image"]) for r in other}
