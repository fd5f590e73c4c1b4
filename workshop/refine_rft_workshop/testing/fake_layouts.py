"""Write stand-in datasets in the six official layouts: for tests, benchmarks and dry runs.

:func:`write_layout` lays out the files a dataset's authors distribute (index files, ``.mat``
files via ``scipy.io.savemat``, image folders) for a given list of ``(file name, class)`` images
per split, so the readers can be exercised without the real data. Image files get the bytes of
``image`` (``b""`` for speed when images are not verified, or a tiny real JPEG).

>>> import tempfile
>>> root = write_layout("pets", tempfile.mkdtemp(), {"test": [("Bengal_1.jpg", "Bengal")]}, ["Bengal"])
>>> sorted(p.name for p in (root / "annotations").iterdir())
['list.txt', 'test.txt', 'trainval.txt']
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from refine_rft.data.readers.official import FLOWER_NAMES
from refine_rft.dataset_specs import DATASETS


def tiny_jpeg(color: tuple[int, int, int] = (120, 160, 90), size: int = 8) -> bytes:
    """The bytes of a small valid JPEG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="JPEG")
    return buffer.getvalue()


def _write_images(folder: Path, names, image: bytes) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image)


def _lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _cell(strings) -> np.ndarray:
    """A MATLAB cell array column of strings (how the official .mat files store names)."""
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = s
    return cell


def _unique(images):
    return list(dict.fromkeys((Path(name).name, label) for name, label in images))


def write_layout(dataset: str, root: str | Path, splits: dict[str, list[tuple[str, str]]], classes: list[str],
                 image: bytes = b"") -> Path:
    """Write ``dataset``'s official layout under ``root/<distributed folder name>``; return that folder.

    ``splits`` maps ``train``/``test`` to ``(file name, class name)`` pairs (a path's folders are
    ignored; duplicates are written once). ``classes`` is the class list in official order
    (ignored for flowers, whose names are fixed). Flowers files must be named ``image_NNNNN.jpg``;
    Dogs files ``<wnid>_<n>.jpg`` give their wnid, others get a made-up one in class order.
    """
    from scipy.io import savemat

    base = Path(root) / DATASETS[dataset].folder
    splits = {split: _unique(images) for split, images in splits.items()}
    index = {c: i for i, c in enumerate(classes)}
    if dataset == "cub":
        folders = [f"{i + 1:03d}.{c}" for i, c in enumerate(classes)]
        _lines(base / "classes.txt", [f"{i + 1} {f}" for i, f in enumerate(folders)])
        rows = [(f"{folders[index[c]]}/{n}", c, split) for split, images in splits.items() for n, c in images]
        _lines(base / "images.txt", [f"{i} {p}" for i, (p, _, _) in enumerate(rows, 1)])
        _lines(base / "image_class_labels.txt", [f"{i} {index[c] + 1}" for i, (_, c, _) in enumerate(rows, 1)])
        _lines(base / "train_test_split.txt", [f"{i} {int(s == 'train')}" for i, (_, _, s) in enumerate(rows, 1)])
        _write_images(base / "images", [p for p, _, _ in rows], image)
    elif dataset == "aircraft":
        data = base / "data"
        _lines(data / "variants.txt", classes)
        for split, images in splits.items():
            listing = "trainval" if split == "train" else "test"
            _lines(data / f"images_variant_{listing}.txt", [f"{Path(n).stem} {c}" for n, c in images])
            _write_images(data / "images", [n for n, _ in images], image)
    elif dataset == "cars":
        (base / "devkit").mkdir(parents=True, exist_ok=True)
        savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array([classes], dtype=object)})
        for split, images in splits.items():
            annos = np.zeros((1, len(images)), dtype=[("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"),
                                                      ("bbox_y2", "O"), ("class", "O"), ("fname", "O")])
            for i, (name, label) in enumerate(images):
                annos[0, i] = (1, 1, 8, 8, index[label] + 1, name)
            target = base / ("devkit/cars_train_annos.mat" if split == "train" else "cars_test_annos_withlabels.mat")
            savemat(target, {"annotations": annos})
            _write_images(base / f"cars_{split}", [n for n, _ in images], image)
    elif dataset == "dogs":
        wnid = {}
        for images in splits.values():
            for name, label in images:
                match = re.match(r"(n\d{8})_", name)
                wnid.setdefault(label, match.group(1) if match else f"n{index[label]:08d}")
        paths = {split: [f"{wnid[c]}-{c}/{n}" for n, c in images] for split, images in splits.items()}
        (base / "lists").mkdir(parents=True, exist_ok=True)
        every = sorted(p for listed in paths.values() for p in listed)
        savemat(base / "lists" / "file_list.mat", {"file_list": _cell(every)})
        for split, listed in paths.items():
            labels = np.array([[index[p.split("/")[0].partition("-")[2]] + 1] for p in listed], dtype=np.uint8)
            savemat(base / "lists" / f"{split}_list.mat", {"file_list": _cell(listed), "labels": labels})
            _write_images(base / "Images", listed, image)
    elif dataset == "flowers":
        numbers = {split: [int(Path(n).stem.split("_")[-1]) for n, _ in images] for split, images in splits.items()}
        labels = np.ones(max(n for ns in numbers.values() for n in ns), dtype=np.uint8)
        for split, images in splits.items():
            for number, (_, label) in zip(numbers[split], images):
                labels[number - 1] = FLOWER_NAMES.index(label) + 1
        base.mkdir(parents=True, exist_ok=True)
        savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
        train = numbers.get("train", [])
        savemat(base / "setid.mat", {"trnid": np.array([train[::2]], dtype=np.uint16),
                                     "valid": np.array([train[1::2]], dtype=np.uint16),
                                     "tstid": np.array([numbers.get("test", [])], dtype=np.uint16)})
        _write_images(base / "jpg", [f"image_{n:05d}.jpg" for ns in numbers.values() for n in ns], image)
    elif dataset == "pets":
        def row(name: str, label: str) -> str:
            species = 1 if name[:1].isupper() else 2  # cat breeds are capitalised in the file names
            return f"{Path(name).stem} {index[label] + 1} {species} 1"

        every = [row(n, c) for images in splits.values() for n, c in images]
        _lines(base / "annotations" / "list.txt", ["#Image CLASS-ID SPECIES BREED ID", *every])
        for split in ("train", "test"):
            listing = "trainval" if split == "train" else "test"
            _lines(base / "annotations" / f"{listing}.txt", [row(n, c) for n, c in splits.get(split, [])])
            _write_images(base / "images", [n for n, _ in splits.get(split, [])], image)
    else:
        raise ValueError(f"no official layout for {dataset!r}; valid: {', '.join(DATASETS)}")
    return base
