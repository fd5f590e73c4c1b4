"""Published choice files, seeded shuffles, few-shot sets, distractors and `refine-rft prepare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refine_rft.cli import main as cli_main
from refine_rft.dataset_specs import DATASETS
from refine_rft.data.cli import main
from refine_rft.data.distractors import choose_distractors, clip_distractors, similar_distractors
from refine_rft.data.fewshot import fewshot_size, sample_shots
from refine_rft.data.paper import letter_shares
from refine_rft.data.prepare import prepare_dataset
from refine_rft.data.questions import check_images
from refine_rft.data.readers import Example, LabelledSplit, read_split
from refine_rft.data.readers.official import FLOWER_NAMES
from refine_rft.data.records import make_record, read_questions
from refine_rft_workshop.testing.fake_layouts import tiny_jpeg, write_layout

JPEG = tiny_jpeg()
CARS = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi S5 Coupe 2012", "BMW X5 SUV 2007",
        "Suzuki Aerio Sedan 2007"]


def _write_choices(path: Path, entries: list[tuple[str, list[str]]]) -> Path:
    """A choice file in the published format from ``(image, [groundtruth, d1, d2, d3])`` pairs."""
    content: dict[str, list] = {}
    for image, options in entries:
        content.setdefault(options[0], []).append({"image": image, "options": options, "groundtruth": options[0]})
    path.write_text(json.dumps(content))
    return path


@pytest.fixture
def cars(tmp_path):
    """A Stanford Cars layout (train and test both have 00001.jpg, as in the real data) and a choice file."""
    test = [(f"{i:05d}.jpg", CARS[i % 5]) for i in range(1, 9)]
    write_layout("cars", tmp_path, {"train": [(f"{i:05d}.jpg", c) for i, c in enumerate(CARS, 1)], "test": test},
                 CARS, image=JPEG)
    entries = [(f"images/{name}", [label, *[c for c in CARS if c != label][:3]]) for name, label in test]
    entries.append(entries[0])  # the published Dogs file asks about one image twice: keep both
    path = _write_choices(tmp_path / "car-196.json", entries)
    in_file_order = [(q["image"], q["options"]) for qs in json.loads(path.read_text()).values() for q in qs]
    return tmp_path, path, in_file_order


def test_one_question_per_entry_with_its_options(cars):
    root, choices, entries = cars
    rows = prepare_dataset("cars", root, "test", choices=choices)
    assert len(rows) == len(entries)
    for row, (image, options) in zip(rows, entries):
        assert Path(row["image"]).name == Path(image).name and Path(row["image"]).parent.name == "cars_test"
        assert sorted(row["options"]) == sorted(options) and row["options"][row["answer"]] == row["label"] == options[0]
        assert row["noun"] == "cars" and row["dataset"] == "cars"
    ids = [r["id"] for r in rows]
    assert "cars/test/00001#2" in ids and len(set(ids)) == len(ids)
    # Same seed, same order on every run; another seed reorders some questions.
    assert rows == prepare_dataset("cars", root, "test", choices=choices)
    other = prepare_dataset("cars", root, "test", choices=choices, seed=1)
    assert [r["options"] for r in other] != [r["options"] for r in rows]


def test_choice_errors_list_what_does_not_fit(cars, tmp_path):
    root, _, entries = cars
    bad = _write_choices(tmp_path / "unmatched.json", entries[:2] + [("images/09999.jpg", entries[0][1]),
                                                                     ("images/08888.jpg", entries[0][1])])
    with pytest.raises(ValueError, match=r"2 of 4 entries match no image.*09999.jpg, .*08888.jpg"):
        prepare_dataset("cars", root, "test", choices=bad)
    image, options = entries[0]
    wrong = _write_choices(tmp_path / "wrong.json", [(image, options[1:] + options[:1])])
    with pytest.raises(ValueError, match="disagree with the dataset's labels"):
        prepare_dataset("cars", root, "test", choices=wrong)
    unknown = _write_choices(tmp_path / "unknown.json", [(image, [options[0], "Tesla Cybertruck 2024"])])
    with pytest.raises(ValueError, match="unknown class.*Cybertruck"):
        prepare_dataset("cars", root, "test", choices=unknown)
    (tmp_path / "broken.json").write_text(json.dumps({"x": [{"image": "a.jpg", "options": ["x", "x"],
                                                             "groundtruth": "x"}]}))
    with pytest.raises(ValueError, match=r"broken.json: class 'x' entry 0: 'options'"):
        prepare_dataset("cars", root, "test", choices=tmp_path / "broken.json")


def test_seeded_shuffle_spreads_the_answer_evenly():
    rows = [make_record(f"cub/test/{i}", "cub", "x.jpg", "gt", ["gt", "d1", "d2", "d3"], "birds", seed=0)
            for i in range(4000)]
    shares = letter_shares(rows)
    assert set(shares) == set("ABCD") and all(0.22 < s < 0.28 for s in shares.values())


def test_fewshot_sampler(tmp_path):
    assert fewshot_size(5) == 200 * 5 + 100 * 5 + 196 * 5 + 120 * 5 + 102 * 5 + 37 * 5 == 3775
    examples = [Example(f"{c}{i}", Path(f"{c}{i}.jpg"), c) for c in "abc" for i in range(6)]
    split = LabelledSplit("toy", "train", examples, ["a", "b", "c"])
    shots = sample_shots(split, 2, seed=0)
    assert [e.label for e in shots] == ["a", "a", "b", "b", "c", "c"]
    assert shots == sample_shots(split, 2, seed=0)
    assert any(sample_shots(split, 2, seed=s) != shots for s in range(1, 5))
    with pytest.raises(ValueError, match=r"fewer than 7 images: a \(6\)"):
        sample_shots(split, 7)


def test_random_and_clip_distractors():
    classes = [f"class {i}" for i in range(10)]
    examples = [Example(str(i), Path(f"{i}.jpg"), classes[i % 10]) for i in range(30)]
    picked = choose_distractors("random", examples, classes, seed=0)
    assert all(len(set(d)) == 3 and e.label not in d and set(d) <= set(classes) for e, d in zip(examples, picked))
    assert picked == choose_distractors("random", examples, classes, seed=0)
    assert picked != choose_distractors("random", examples, classes, seed=1)
    with pytest.raises(ValueError, match="valid strategies: random, similar, clip"):
        choose_distractors("hard", examples, classes)
    with pytest.raises(ValueError, match="at least 4 classes"):
        choose_distractors("random", examples[:1], classes[:3])
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"refine-rft\[clip\]"):
            clip_distractors(examples, classes)


def test_clip_miner_defaults_are_focis():
    import inspect

    from refine_rft.data import distractors
    from refine_rft.data.cli import parse_args

    _, args = parse_args(["pets", "--root", "x", "--split", "train", "--out", "o.jsonl"])
    assert (args.clip_model, args.clip_pretrained) == ("ViT-L-14", "laion2b_s32b_b82k")
    for function in (distractors.clip_scores, distractors.clip_distractors):
        defaults = inspect.signature(function).parameters
        assert (defaults["model_name"].default, defaults["pretrained"].default) == ("ViT-L-14", "laion2b_s32b_b82k")
    assert inspect.signature(distractors.clip_scores).parameters["template"].default == "an image of a {}"


def test_clip_scoring_uses_focis_prompt_and_ranks_wrong_classes(tmp_path):
    """score_with_clip with a loaded CLIP (here a small torch model in CLIP's interface: no weights to
    download): FOCI's prompt for every class, and the wrong classes ranked by image-text similarity."""
    import numpy as np
    import torch
    from PIL import Image

    from refine_rft.data.distractors import score_with_clip, top_wrong_classes

    classes = ["Red_Tanager", "Orange_Oriole", "Blue_Jay", "Green_Jay"]
    colours = {"Red_Tanager": (1.0, 0, 0), "Orange_Oriole": (1.0, 0.5, 0), "Blue_Jay": (0, 0, 1.0),
               "Green_Jay": (0, 0.6, 0.8)}  # a blue-green jay: the blue image's closest wrong class
    prompts: list[str] = []

    def tokenizer(texts):
        prompts.extend(texts)
        return torch.tensor([[classes.index(next(c for c in classes if c.replace("_", " ") in t))] for t in texts])

    class ColourClip(torch.nn.Module):
        def encode_text(self, tokens):
            return torch.tensor([colours[classes[int(t)]] for t in tokens[:, 0]])

        def encode_image(self, pixels):
            return pixels  # preprocess below gives the mean colour

    def preprocess(image):
        return torch.tensor(np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) / 255.0)

    paths = []
    for name, rgb in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        Image.new("RGB", (8, 8), rgb).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    scores = score_with_clip(ColourClip(), preprocess, tokenizer, paths, classes)
    assert prompts == ["an image of a Red Tanager", "an image of a Orange Oriole", "an image of a Blue Jay",
                       "an image of a Green Jay"]
    assert scores.shape == (2, 4)
    assert top_wrong_classes(scores, [0, 2], k=1) == [[1], [3]]  # red -> orange, blue -> green


def test_similar_distractors_are_hard_negatives():
    classes = ["Laysan_Albatross", "Sooty_Albatross", "Black_footed_Albatross", "Blue_Jay", "Cardinal",
               "737-300", "737-400", "A320", "Boxer", "golden_retriever"]
    examples = [Example("a", Path("a.jpg"), "Laysan_Albatross"), Example("b", Path("b.jpg"), "737-300")]
    picked = similar_distractors(examples, classes, seed=0, pool=3)
    assert {"Sooty_Albatross", "Black_footed_Albatross"} <= set(picked[0])
    assert "737-400" in picked[1]
    assert picked == similar_distractors(examples, classes, seed=0, pool=3)


def test_images_are_checked(tmp_path):
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    good.write_bytes(JPEG)
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    assert check_images([good, good]) == 1
    with pytest.raises(ValueError, match="unreadable image .*bad.jpg"):
        check_images([good, bad])
    assert check_images([bad], verify=False) == 1
    with pytest.raises(FileNotFoundError, match="missing image .*gone.jpg"):
        check_images([tmp_path / "gone.jpg"], verify=False)


def test_cub_pretty_names_and_option_attributes(tmp_path):
    classes = ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross", "Heermann_Gull"]
    test = [(f"{c}_000{i}.jpg", c) for i, c in enumerate(classes)]
    base = write_layout("cub", tmp_path, {"test": test}, classes, image=JPEG)
    (base / "attributes").mkdir()
    (base / "attributes" / "attributes.txt").write_text("1 has_wing_color::black\n2 has_wing_color::grey\n")
    (base / "attributes" / "image_attribute_labels.txt").write_text("1 1 1 4 0.0\n")
    (base / "attributes" / "class_attribute_labels_continuous.txt").write_text("90 1\n80 20\n10 90\n0 50\n")
    rows = prepare_dataset("cub", tmp_path, "test", distractors="random", pretty=True)
    first = next(r for r in rows if r["label"] == "Black footed Albatross")
    assert set(first["options"]) == {"Black footed Albatross", "Laysan Albatross", "Sooty Albatross", "Heermann Gull"}
    assert first["attributes"] == {"wing_color": "black"}
    wings = dict(zip(first["options"], (a["wing_color"] for a in first["option_attributes"])))
    assert wings == {"Black footed Albatross": "black", "Laysan Albatross": "black", "Sooty Albatross": "grey",
                     "Heermann Gull": "grey"}


def test_cli_dataset_writes_atomically_and_reports(cars, tmp_path, capsys):
    root, choices, entries = cars
    out = tmp_path / "out" / "cars_test.jsonl"
    assert main(["cars", "--root", str(root), "--split", "test", "--choices", str(choices), "--out", str(out)]) == 0
    assert len(read_questions(out)) == len(entries)
    assert capsys.readouterr().out.startswith(f"cars test: {len(entries)} questions, 5 classes, answers A=")
    (root / "stanford_cars" / "cars_test" / "00003.jpg").write_bytes(b"truncated")
    failed = tmp_path / "out" / "failed.jsonl"
    args = ["cars", "--root", str(root), "--split", "test", "--choices", str(choices), "--out", str(failed)]
    assert cli_main(["prepare", *args]) == 2  # bad data: one line, exit 2
    error = capsys.readouterr().err
    assert "refine-rft prepare: error: " in error and "unreadable image" in error and not failed.exists()
    # No temporary file left behind either; the class list is the first run's.
    assert sorted((tmp_path / "out").iterdir()) == [out, tmp_path / "out" / "classes.json"]
    assert main(args + ["--no-verify-images"]) == 0
    train = tmp_path / "out" / "train.jsonl"
    assert main(["cars", "--root", str(root), "--split", "train", "--shots", "1", "--distractors", "random",
                 "--out", str(train)]) == 0
    assert sorted(r["label"] for r in read_questions(train)) == sorted(CARS)


def test_prepare_paper_builds_six_test_sets_and_the_fewshot_set(tmp_path, capsys):
    """All six layouts at once: test sets from choice files, 1-shot train set over every class."""
    classes = {"cub": ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross", "Heermann_Gull"],
               "aircraft": ["707-320", "727-200", "737-200", "A300B4", "F/A-18"],
               "cars": CARS,
               "dogs": ["Chihuahua", "Japanese_spaniel", "Maltese_dog", "Pekinese"],
               "flowers": list(FLOWER_NAMES),
               "pets": ["Abyssinian", "American Bulldog", "Bengal", "Yorkshire Terrier"]}
    names = {"cub": "{c}_{i}.jpg", "aircraft": "{i:07d}.jpg", "cars": "{i:05d}.jpg",
             "dogs": "n0208{j:04d}_{i}.jpg", "flowers": "image_{i:05d}.jpg", "pets": "{c}_{i}.jpg"}
    for dataset, labels in classes.items():
        def image(i, j, c):
            return names[dataset].format(i=i, j=j, c=c.replace(" ", "_"))
        train = [(image(100 + j, j, c), c) for j, c in enumerate(labels)]
        test = [(image(1 + j, j, c), c) for j, c in enumerate(labels[:4])]
        write_layout(dataset, tmp_path / "roots", {"train": train, "test": test}, labels, image=JPEG)
        entries = [(f"images/{n}", [c, *[o for o in labels[:4] if o != c]]) for n, c in test]
        (tmp_path / "choices").mkdir(exist_ok=True)
        _write_choices(tmp_path / "choices" / DATASETS[dataset].choices, entries)
    out = tmp_path / "paper"
    assert main(["paper", "--roots", str(tmp_path / "roots"), "--choices-dir", str(tmp_path / "choices"),
                 "--out", str(out), "--shots", "1", "--distractors", "random"]) == 0
    for dataset in classes:
        rows = read_questions(out / "test" / f"{dataset}.jsonl")
        assert len(rows) == 4 and {r["dataset"] for r in rows} == {dataset}
    train = read_questions(out / "train.jsonl")
    assert len(train) == sum(len(c) for c in classes.values())  # 1 shot x every class
    table = capsys.readouterr().out
    assert "| flowers | 4 | 4 |" in table and "| **all** | 24 | 24 |" in table
    assert read_split("dogs", tmp_path / "roots", "train").classes == classes["dogs"]
    (tmp_path / "choices" / "pet-37.json").unlink()
    assert cli_main(["prepare", "paper", "--roots", str(tmp_path / "roots"), "--choices-dir",
                     str(tmp_path / "choices"), "--out", str(tmp_path / "again")]) == 2
    assert not (tmp_path / "again").exists()
