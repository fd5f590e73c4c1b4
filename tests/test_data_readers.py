"""Every reader on small fixtures written in its official layout (tiny images, .mat via scipy)."""

from __future__ import annotations

import pytest

from refine_rft_workshop.testing.fake_layouts import tiny_jpeg, write_layout
from refine_rft.data.readers import read_split
from refine_rft.data.readers.official import FLOWER_NAMES, pet_class_name

JPEG = tiny_jpeg()

# Per dataset: classes in official order and (file name, class) pairs per split, spelled as the
# published choice files spell them.
CASES = {
    "cub": (["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross"],
            {"train": [("Black_Footed_Albatross_0001_1.jpg", "Black_footed_Albatross"),
                       ("Laysan_Albatross_0003_3.jpg", "Laysan_Albatross")],
             "test": [("Black_Footed_Albatross_0046_18.jpg", "Black_footed_Albatross"),
                      ("Sooty_Albatross_0003_1078.jpg", "Sooty_Albatross")]}),
    "aircraft": (["707-320", "BAE 146-200", "F/A-18"],
                 {"train": [("0034309.jpg", "BAE 146-200")],
                  "test": [("1514522.jpg", "707-320"), ("0062765.jpg", "F/A-18"), ("0116175.jpg", "BAE 146-200")]}),
    "cars": (["AM General Hummer SUV 2000", "Ram C/V Cargo Van Minivan 2012", "Suzuki Aerio Sedan 2007"],
             {"train": [("00001.jpg", "Suzuki Aerio Sedan 2007"), ("00002.jpg", "AM General Hummer SUV 2000")],
              "test": [("00001.jpg", "Ram C/V Cargo Van Minivan 2012"), ("00002.jpg", "Suzuki Aerio Sedan 2007")]}),
    "dogs": (["Chihuahua", "Japanese_spaniel", "black-and-tan_coonhound"],
             {"train": [("n02085620_10074.jpg", "Chihuahua"), ("n02089078_1.jpg", "black-and-tan_coonhound")],
              "test": [("n02085782_191.jpg", "Japanese_spaniel"), ("n02085620_1235.jpg", "Chihuahua")]}),
    "flowers": (list(FLOWER_NAMES),
                {"train": [("image_00003.jpg", "fire lily"), ("image_00004.jpg", "pink primrose")],
                 "test": [("image_00001.jpg", "pink primrose"), ("image_00002.jpg", "blackberry lily")]}),
    "pets": (["Abyssinian", "American Pit Bull Terrier", "British Shorthair"],
             {"train": [("Abyssinian_100.jpg", "Abyssinian"), ("British_Shorthair_3.jpg", "British Shorthair")],
              "test": [("american_pit_bull_terrier_191.jpg", "American Pit Bull Terrier"),
                       ("Abyssinian_201.jpg", "Abyssinian")]}),
}


@pytest.mark.parametrize("dataset", list(CASES))
def test_reader_reads_official_layout(tmp_path, dataset):
    classes, splits = CASES[dataset]
    base = write_layout(dataset, tmp_path, splits, classes, image=JPEG)
    for split, expected in splits.items():
        for root in (tmp_path, base):  # the dataset's folder or the folder holding it
            labelled = read_split(dataset, root, split)
            assert labelled.classes == classes
            assert sorted((e.image.name, e.label) for e in labelled.examples) == sorted(expected)
            assert all(e.image.is_file() for e in labelled.examples)
            assert len({e.key for e in labelled.examples}) == len(expected)


def test_pet_names_and_flower_label_order():
    assert pet_class_name("german_shorthaired_12") == "German Shorthaired"
    assert pet_class_name("Egyptian_Mau_1") == "Egyptian Mau"
    # imagelabels.mat numbers classes 1..102; label 21 is "fire lily", not the choice file's key order.
    assert (len(FLOWER_NAMES), FLOWER_NAMES[0], FLOWER_NAMES[20], FLOWER_NAMES[-1]) == (
        102, "pink primrose", "fire lily", "blackberry lily")


def test_cub_attributes_fill_image_and_class_dicts(tmp_path):
    classes, splits = CASES["cub"]
    base = write_layout("cub", tmp_path, splits, classes, image=JPEG)
    (tmp_path / "attributes.txt").write_text(
        "1 has_bill_shape::curved_(up_or_down)\n2 has_bill_shape::hooked\n3 has_wing_color::black\n"
        "4 has_wing_color::white\n")
    (base / "attributes").mkdir()
    # image 3 (test, Black_footed_Albatross): hooked bill (certain), black and white wings;
    # attribute 1 is present but only guessed (certainty 2), so it is left out.
    rows = ["3 1 1 2 1.0", "3 2 1 4 1.0", "3 3 1 3 1.0", "3 4 1 4 1.0 0", "4 2 0 4 1.0"]
    rows += [f"{i} {a} 0 1 1.0" for i in (1, 2) for a in (1, 2, 3, 4)]
    (base / "attributes" / "image_attribute_labels.txt").write_text("\n".join(rows) + "\n")
    (base / "attributes" / "class_attribute_labels_continuous.txt").write_text(
        "10.0 80.0 60.0 20.0\n70.0 5.0 0.0 40.0\n0 0 0 0\n")
    labelled = read_split("cub", tmp_path, "test")
    by_name = {e.image.name: e for e in labelled.examples}
    assert by_name["Black_Footed_Albatross_0046_18.jpg"].attributes == {
        "bill_shape": "hooked", "wing_color": "black and white"}
    assert by_name["Sooty_Albatross_0003_1078.jpg"].attributes == {}
    assert labelled.class_attributes == {
        "Black_footed_Albatross": {"bill_shape": "hooked", "wing_color": "black"},
        "Laysan_Albatross": {"bill_shape": "curved (up or down)", "wing_color": "white"},
        "Sooty_Albatross": {}}


def test_cub_attributes_folder_without_names_file(tmp_path):
    classes, splits = CASES["cub"]
    base = write_layout("cub", tmp_path, splits, classes, image=JPEG)
    (base / "attributes").mkdir()
    with pytest.raises(FileNotFoundError, match="attributes.txt"):
        read_split("cub", base, "test")


def test_generic_readers(tmp_path):
    for split, names in (("train", ["a.png", "b.jpg"]), ("test", ["c.jpg"])):
        for label in ("heron", "egret"):
            folder = tmp_path / "folders" / split / label
            folder.mkdir(parents=True)
            for name in names:
                (folder / name).write_bytes(JPEG)
            (folder / "notes.txt").write_text("not an image")
    labelled = read_split("folder", tmp_path / "folders", "train")
    assert labelled.classes == ["egret", "heron"]
    assert sorted(e.key for e in labelled.examples) == ["egret/a", "egret/b", "heron/a", "heron/b"]

    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.jpg").write_bytes(JPEG)
    (tmp_path / "test.csv").write_text("path,label\nimg/x.jpg,Great Egret\nimg/x.jpg,Grey Heron\n")
    labelled = read_split("csv", tmp_path, "test")
    assert labelled.classes == ["Great Egret", "Grey Heron"]
    assert labelled.examples[0].image == (tmp_path / "img" / "x.jpg").resolve()
    (tmp_path / "bad.csv").write_text("file,class\nimg/x.jpg,a\n")
    with pytest.raises(ValueError, match="'path' and 'label'"):
        read_split("csv", tmp_path / "bad.csv", "test")


def test_errors_name_the_file(tmp_path):
    classes, splits = CASES["cars"]
    base = write_layout("cars", tmp_path, splits, classes)
    (base / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(FileNotFoundError, match="cars_test_annos_withlabels.mat"):
        read_split("cars", tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="images_variant|variants.txt"):
        read_split("aircraft", tmp_path, "test")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        read_split("cars", tmp_path, "val")
    with pytest.raises(ValueError, match="valid datasets: cub, aircraft"):
        read_split("birds", tmp_path, "test")

    classes, splits = CASES["aircraft"]
    base = write_layout("aircraft", tmp_path, splits, classes)
    (base / "data" / "images_variant_test.txt").write_text("1514522 Concorde\n")
    with pytest.raises(ValueError, match="images_variant_test.txt with unknown class.*Concorde"):
        read_split("aircraft", tmp_path, "test")
    (base / "data" / "images_variant_test.txt").write_text("1514522\n")
    with pytest.raises(ValueError, match=r"images_variant_test.txt:1"):
        read_split("aircraft", tmp_path, "test")

    base = write_layout("flowers", tmp_path, CASES["flowers"][1], [])
    (base / "setid.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="setid.mat"):
        read_split("flowers", tmp_path, "test")
