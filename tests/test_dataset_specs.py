"""One spec per benchmark: a seventh benchmark is one :class:`DatasetSpec` plus its reader, and every
stage that knows benchmarks by name sees it (reader, layout, class count, noun, open question,
choice file, domain word, display name)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from refine_rft.data.cli import main as prepare_main
from refine_rft.data.cli import parse_args, refuse_overwriting_data
from refine_rft.data.fewshot import fewshot_size
from refine_rft.data.paper import prepare_paper
from refine_rft.data.prepare import prepare_dataset
from refine_rft.data.readers import read_split, reader_names
from refine_rft.dataset_specs import DATASETS, DatasetSpec, display_name, noun_of
from refine_rft.errors import ConfigError, MissingFile
from refine_rft.evaluate.similarity import domain_word
from refine_rft.prompts import question_text
from refine_rft.report.tables import _datasets

# The reader of an iNat-style benchmark, in the user's own package: iNat 2021 ships its splits as
# COCO-style JSON (``train_mini.json``, ``val.json``) beside the image folders.
READER = '''
import json
from pathlib import Path

from refine_rft.data.readers.base import Example, LabelledSplit


def read_inat_fungi(root: Path, split: str) -> LabelledSplit:
    listing = json.loads((root / {"train": "train_mini.json", "test": "val.json"}[split]).read_text())
    names = {c["id"]: c["name"] for c in listing["categories"]}
    labels = {a["image_id"]: names[a["category_id"]] for a in listing["annotations"]}
    examples = [Example(Path(i["file_name"]).stem, root / i["file_name"], labels[i["id"]]) for i in listing["images"]]
    return LabelledSplit("inat_fungi", split, examples, [names[k] for k in sorted(names)])
'''
SPEC = DatasetSpec("inat_fungi", "iNat-Fungi", "my_benchmarks:read_inat_fungi", "inat2021", 4, "mushrooms",
                   "species", "fungi-4.json", "train_mini (50 images per species)", "fungus")
CLASSES = ["Amanita muscaria", "Boletus edulis", "Cantharellus cibarius", "Morchella esculenta"]


@pytest.fixture
def seventh(tmp_path, monkeypatch):
    """The spec added in-process, its reader importable, and an iNat-style folder under ``roots``."""
    package = tmp_path / "site"
    package.mkdir()
    (package / "my_benchmarks.py").write_text(READER)
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setitem(DATASETS, SPEC.key, SPEC)
    root = tmp_path / "roots" / SPEC.folder
    listing = {"categories": [{"id": i, "name": name} for i, name in enumerate(CLASSES)], "images": [],
               "annotations": []}
    for number in range(8):
        name = f"train_mini/{CLASSES[number % 4]}/{number:04d}.jpg"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"not checked here")
        listing["images"].append({"id": number, "file_name": name})
        listing["annotations"].append({"image_id": number, "category_id": number % 4})
    (root / "train_mini.json").write_text(json.dumps(listing))
    yield root
    sys.modules.pop("my_benchmarks", None)


def test_a_seventh_spec_reaches_every_stage(seventh, tmp_path, capsys):
    # prepare: its reader, its noun, its layout, its subcommand
    assert "inat_fungi" in reader_names()
    split = read_split("inat_fungi", seventh, "train")
    assert split.classes == CLASSES and len(split.examples) == 8
    rows = prepare_dataset("inat_fungi", seventh, "train", shots=2, verify_images=False)
    assert {r["noun"] for r in rows} == {"mushrooms"} and len(rows) == 8
    assert prepare_main(["--help"]) == 0
    assert "one split of inat_fungi, from its official layout (inat2021)" in capsys.readouterr().out
    groups = parse_args(["inat_fungi", "--root", str(seventh.parent), "--split", "train", "--out",
                         str(seventh / "out.jsonl")])
    args = SimpleNamespace(**{k: v for group in groups for k, v in vars(group).items()})
    with pytest.raises(ConfigError, match="inside"):  # --root resolved to its layout folder, which holds --out
        refuse_overwriting_data(args)
    # the k-shot arithmetic and the paper's choice files
    assert fewshot_size(5) == 3775 + 5 * 4
    with pytest.raises(MissingFile, match="fungi-4.json"):
        prepare_paper(tmp_path / "roots", tmp_path / "no-choices", tmp_path / "paper")
    # prompts, open-world similarity, report
    assert noun_of("inat_fungi") == "mushrooms"
    assert question_text("mushrooms", [], "open") == "What species is this mushroom?"
    assert domain_word({"dataset": "inat_fungi", "noun": "mushrooms"}, "corrected") == "fungus"
    assert display_name("inat_fungi") == "iNat-Fungi"
    assert _datasets(["zz_custom", "inat_fungi", "cub"]) == ["cub", "inat_fungi", "zz_custom"]


def test_without_the_spec_the_name_is_unknown_data(tmp_path):
    assert "inat_fungi" not in reader_names() and display_name("inat_fungi") == "inat_fungi"
    assert noun_of("inat_fungi") == "objects"
    assert domain_word({"dataset": "inat_fungi", "noun": "mushrooms"}, "corrected") == "mushroom"  # the noun's
    with pytest.raises(ConfigError, match="unknown dataset 'inat_fungi'; valid datasets: cub, aircraft"):
        read_split("inat_fungi", tmp_path, "train")


def test_a_reader_that_does_not_load_is_one_line_naming_it(monkeypatch, tmp_path):
    monkeypatch.setitem(DATASETS, "broken", DatasetSpec("broken", "Broken", "no_such_module:read", "b", 1, "things",
                                                        "kind", "b.json", "train", "object"))
    with pytest.raises(ConfigError, match="dataset 'broken': cannot load its reader 'no_such_module:read'"):
        read_split("broken", tmp_path, "train")
