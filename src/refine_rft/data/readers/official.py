"""The six FGVR benchmarks, read from the files their authors distribute.

``root`` is the dataset's own folder or the folder that holds it under its distributed name
(its spec's ``folder``, :mod:`refine_rft.dataset_specs`). ``train`` is every official non-test image (CUB train, Aircraft trainval,
Cars train, Dogs train, Flowers trnid+valid, Pets trainval); ``test`` is the official test split.

Class names are the strings the published choice files use: CUB without the ``NNN.`` prefix of
``classes.txt`` (``Black_footed_Albatross``), Aircraft variants from ``variants.txt``, Cars from
``cars_meta.mat``, Dogs from the ``<wnid>-<breed>`` folder names (``Japanese_spaniel``), Flowers
from the standard 102-name list (``imagelabels.mat`` has only numbers), Pets from the image file
names in title case (``american_pit_bull_terrier_191.jpg`` -> ``American Pit Bull Terrier``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from refine_rft.data.readers.base import (
    Example,
    LabelledSplit,
    check_split,
    dataset_dir,
    load_mat,
    read_pairs,
    require,
)
from refine_rft.data.readers.cub_attributes import read_cub_attributes
from refine_rft.dataset_specs import DATASETS
from refine_rft.errors import DataError

# Oxford 102 Flowers class names in label order (label 1 = "pink primrose"), as the published
# choice file spells them; the dataset itself ships only the numbers.
FLOWER_NAMES = (
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
    "tiger lily", "moon orchid", "bird of paradise", "monkshood", "globe thistle", "snapdragon",
    "colt's foot", "king protea", "spear thistle", "yellow iris", "globe flower", "purple coneflower",
    "peruvian lily", "balloon flower", "giant white arum lily", "fire lily", "pincushion flower",
    "fritillary", "red ginger", "grape hyacinth", "corn poppy", "prince of wales feathers",
    "stemless gentian", "artichoke", "sweet william", "carnation", "garden phlox", "love in the mist",
    "mexican aster", "alpine sea holly", "ruby-lipped cattleya", "cape flower", "great masterwort",
    "siam tulip", "lenten rose", "barbeton daisy", "daffodil", "sword lily", "poinsettia",
    "bolero deep blue", "wallflower", "marigold", "buttercup", "oxeye daisy", "common dandelion",
    "petunia", "wild pansy", "primula", "sunflower", "pelargonium", "bishop of llandaff", "gaura",
    "geranium", "orange dahlia", "pink and yellow dahlia", "cautleya spicata", "japanese anemone",
    "black-eyed susan", "silverbush", "californian poppy", "osteospermum", "spring crocus",
    "bearded iris", "windflower", "tree poppy", "gazania", "azalea", "water lily", "rose",
    "thorn apple", "morning glory", "passion flower", "lotus", "toad lily", "anthurium", "frangipani",
    "clematis", "hibiscus", "columbine", "desert-rose", "tree mallow", "magnolia", "cyclamen",
    "watercress", "canna lily", "hippeastrum", "bee balm", "air plant", "foxglove", "bougainvillea",
    "camellia", "mallow", "mexican petunia", "bromelia", "blanket flower", "trumpet creeper",
    "blackberry lily",
)


def _as_list(values) -> list:
    """A squeezed MATLAB vector as a list (a one-element vector squeezes to a scalar)."""
    return np.atleast_1d(values).tolist()


def _ids(table: dict[str, str], key: str, path: Path, dataset: str, what: str) -> str:
    if key not in table:
        raise DataError(f"{dataset}: {path}: image id {key} has no {what}")
    return table[key]


def read_cub(root: Path, split: str) -> LabelledSplit:
    """CUB-200-2011: ``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``,
    ``classes.txt``, ``images/``; the optional ``attributes/`` folder fills ``attributes``."""
    check_split("cub", split)
    base = dataset_dir(root, "images.txt", DATASETS["cub"].folder, "cub")
    classes = {i: name.partition(".")[2] or name for i, name in read_pairs(base / "classes.txt", "cub")}
    labels = dict(read_pairs(base / "image_class_labels.txt", "cub"))
    is_train = dict(read_pairs(base / "train_test_split.txt", "cub"))
    wanted = "1" if split == "train" else "0"
    chosen = []
    for image_id, relative in read_pairs(base / "images.txt", "cub"):
        if _ids(is_train, image_id, base / "train_test_split.txt", "cub", "split") != wanted:
            continue
        class_id = _ids(labels, image_id, base / "image_class_labels.txt", "cub", "class")
        if class_id not in classes:
            raise DataError(f"cub: {base / 'image_class_labels.txt'}: unknown class id {class_id} "
                             f"(not in {base / 'classes.txt'})")
        chosen.append((image_id, base / "images" / relative, classes[class_id]))
    image_attributes, class_attributes = {}, {}
    if (base / "attributes").is_dir():
        image_attributes, by_class_id = read_cub_attributes(base, {i for i, _, _ in chosen})
        class_attributes = {classes[i]: attrs for i, attrs in by_class_id.items() if i in classes}
    examples = [Example(path.stem, path, label, image_attributes.get(image_id)) for image_id, path, label in chosen]
    return LabelledSplit("cub", split, examples, list(classes.values()), class_attributes)


def read_aircraft(root: Path, split: str) -> LabelledSplit:
    """FGVC-Aircraft 2013b at variant level: ``data/variants.txt``,
    ``data/images_variant_{trainval,test}.txt`` (``<id> <variant>``), ``data/images/<id>.jpg``."""
    check_split("aircraft", split)
    data = dataset_dir(root, "data/variants.txt", DATASETS["aircraft"].folder, "aircraft") / "data"
    classes = [line.strip() for line in (data / "variants.txt").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    listing = data / f"images_variant_{'trainval' if split == 'train' else 'test'}.txt"
    examples = [Example(image_id, data / "images" / f"{image_id}.jpg", variant)
                for image_id, variant in read_pairs(listing, "aircraft")]
    return LabelledSplit("aircraft", split, examples, classes, source=str(listing))


def read_cars(root: Path, split: str) -> LabelledSplit:
    """Stanford Cars: ``devkit/cars_meta.mat`` (class names), ``devkit/cars_train_annos.mat`` with
    ``cars_train/``, and ``cars_test_annos_withlabels.mat`` with ``cars_test/``; classes are 1-based."""
    check_split("cars", split)
    base = dataset_dir(root, "devkit/cars_meta.mat", DATASETS["cars"].folder, "cars")
    classes = [str(name) for name in _as_list(load_mat(base / "devkit/cars_meta.mat", "cars",
                                                       "class_names")["class_names"])]
    if split == "train":
        annos_path, images = base / "devkit/cars_train_annos.mat", base / "cars_train"
    else:
        # Distributed separately from the devkit; accept it at the root or inside devkit/.
        annos_path, images = base / "cars_test_annos_withlabels.mat", base / "cars_test"
        if not annos_path.exists() and (base / "devkit" / annos_path.name).exists():
            annos_path = base / "devkit" / annos_path.name
    annotations = np.atleast_1d(load_mat(annos_path, "cars", "annotations")["annotations"])
    if annotations.dtype.names is None or not {"fname", "class"} <= set(annotations.dtype.names):
        raise DataError(f"cars: {annos_path}: 'annotations' must be a struct array with fields 'fname' and 'class'")
    examples = []
    for fname, class_id in zip(annotations["fname"], annotations["class"]):
        index = int(class_id) - 1
        if not 0 <= index < len(classes):
            raise DataError(f"cars: {annos_path}: {fname} has class {int(class_id)}, outside 1..{len(classes)}")
        examples.append(Example(Path(str(fname)).stem, images / str(fname), classes[index]))
    return LabelledSplit("cars", split, examples, classes)


def read_dogs(root: Path, split: str) -> LabelledSplit:
    """Stanford Dogs: ``Images/<wnid>-<breed>/``, ``lists/{file_list,train_list,test_list}.mat``;
    the class name is the breed part of the folder name (``n02085782-Japanese_spaniel``)."""
    check_split("dogs", split)
    base = dataset_dir(root, "lists", DATASETS["dogs"].folder, "dogs")
    folders = [str(f) for f in _as_list(load_mat(base / "lists/file_list.mat", "dogs", "file_list")["file_list"])]
    breed = {}
    for name in folders:  # wnid order is the official class order
        folder = name.split("/")[0]
        breed.setdefault(folder, folder.partition("-")[2] or folder)
    listing = base / "lists" / f"{split}_list.mat"
    examples = []
    for name in _as_list(load_mat(listing, "dogs", "file_list")["file_list"]):
        folder = str(name).split("/")[0]
        if folder not in breed:
            raise DataError(f"dogs: {listing}: {name} is in no class folder of {base / 'lists/file_list.mat'}")
        examples.append(Example(Path(str(name)).stem, base / "Images" / str(name), breed[folder]))
    return LabelledSplit("dogs", split, examples, [breed[f] for f in sorted(breed)])


def read_flowers(root: Path, split: str) -> LabelledSplit:
    """Oxford 102 Flowers: ``jpg/image_%05d.jpg``, ``imagelabels.mat`` (``labels``, 1-based) and
    ``setid.mat`` (``trnid``, ``valid``, ``tstid``: 1-based image numbers)."""
    check_split("flowers", split)
    base = dataset_dir(root, "imagelabels.mat", DATASETS["flowers"].folder, "flowers")
    labels = _as_list(load_mat(base / "imagelabels.mat", "flowers", "labels")["labels"])
    sets = load_mat(base / "setid.mat", "flowers", "trnid", "valid", "tstid")
    numbers = _as_list(sets["tstid"]) if split == "test" else _as_list(sets["trnid"]) + _as_list(sets["valid"])
    examples = []
    for number in sorted(int(n) for n in numbers):
        if not 1 <= number <= len(labels):
            raise DataError(f"flowers: {base / 'setid.mat'}: image {number} has no label in imagelabels.mat")
        label = int(labels[number - 1])
        if not 1 <= label <= len(FLOWER_NAMES):
            raise DataError(f"flowers: {base / 'imagelabels.mat'}: image {number} has label {label}, outside 1..102")
        name = f"image_{number:05d}"
        examples.append(Example(name, base / "jpg" / f"{name}.jpg", FLOWER_NAMES[label - 1]))
    return LabelledSplit("flowers", split, examples, list(FLOWER_NAMES))


def pet_class_name(image_name: str) -> str:
    """The class of an Oxford-IIIT Pet image name, as the published choice file spells it.

    >>> pet_class_name("american_pit_bull_terrier_191"), pet_class_name("British_Shorthair_1")
    ('American Pit Bull Terrier', 'British Shorthair')
    """
    words = image_name.rsplit("_", 1)[0].split("_")
    return " ".join(w[:1].upper() + w[1:] for w in words)


def read_pets(root: Path, split: str) -> LabelledSplit:
    """Oxford-IIIT Pet: ``images/<name>.jpg`` and ``annotations/{list,trainval,test}.txt``
    (``<name> <class id> <species> <breed id>``; ``#`` lines are comments)."""
    check_split("pets", split)
    base = dataset_dir(root, "annotations", DATASETS["pets"].folder, "pets")

    def rows(path: Path) -> list[list[str]]:
        lines = require(path, "pets").read_text(encoding="utf-8").splitlines()
        return [line.split() for line in lines if line.strip() and not line.startswith("#")]

    by_id: dict[int, str] = {}
    for fields in rows(base / "annotations/list.txt"):
        by_id.setdefault(int(fields[1]), pet_class_name(fields[0]))
    listing = base / "annotations" / f"{'trainval' if split == 'train' else 'test'}.txt"
    examples = [Example(f[0], base / "images" / f"{f[0]}.jpg", pet_class_name(f[0])) for f in rows(listing)]
    return LabelledSplit("pets", split, examples, [by_id[i] for i in sorted(by_id)])
