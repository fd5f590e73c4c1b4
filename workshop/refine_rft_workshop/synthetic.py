"""Synthetic fine-grained birds: procedurally drawn species with known visual attributes.

The embedded default dataset, for the CPU demo and the tests, and the only data here with
ground-truth reasoning: every image comes with the attributes it was drawn from, so a judge can
check each claim a response makes.

A species is a combination of six discrete attributes (body colour, wing colour, beak shape,
tail shape, crest, breast pattern). Species come in genera of closely related members: each
member differs from its genus' type species in one attribute, which is what makes the task
fine-grained ("Crimson-winged Finch" vs "Common Finch"). Pose, scale, position, background and
noise are random per image.

>>> species = make_species(24, seed=0)
>>> len(species), len({s.name for s in species})
(24, 24)
>>> min(attribute_distance(a, b) for a in species for b in species if a is not b)
1
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from refine_rft.errors import ConfigError

# How the reference reasoning about a synthetic bird opens ("The bird has a crimson body, ...").
REASONING_OPENING = "The bird has"

COLORS = {
    "crimson": (200, 30, 40),
    "golden": (235, 185, 30),
    "azure": (40, 110, 220),
    "olive": (110, 130, 40),
    "slate": (90, 95, 110),
    "ivory": (245, 240, 215),
    "black": (25, 25, 25),
    "white": (250, 250, 250),
}

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "body_color": ("crimson", "golden", "azure", "olive", "slate", "ivory"),
    "wing_color": ("black", "white", "crimson", "azure", "golden", "olive"),
    "beak_shape": ("short", "long", "hooked"),
    "tail_shape": ("forked", "fan", "pointed"),
    "crest": ("crested", "no crest"),
    "breast_pattern": ("plain", "spotted", "striped"),
}

# How each attribute value is said in reasoning text ("a crimson body", "black wings", ...).
PHRASES: dict[str, str] = {
    "body_color": "{} body",
    "wing_color": "{} wings",
    "beak_shape": "{} beak",
    "tail_shape": "{} tail",
    "crest": "{}",
    "breast_pattern": "{} breast",
}

# How a species that differs from its genus' type in one attribute is named after it.
_NAME_PREFIX: dict[str, dict[str, str]] = {
    "body_color": {v: v.capitalize() for v in ATTRIBUTES["body_color"]},
    "wing_color": {v: f"{v.capitalize()}-winged" for v in ATTRIBUTES["wing_color"]},
    "beak_shape": {"short": "Short-billed", "long": "Long-billed", "hooked": "Hook-billed"},
    "tail_shape": {"forked": "Fork-tailed", "fan": "Fan-tailed", "pointed": "Pin-tailed"},
    "crest": {"crested": "Crested", "no crest": "Bare-headed"},
    "breast_pattern": {"plain": "Plain-breasted", "spotted": "Spotted", "striped": "Striped"},
}

# Aliases of the synthetic species, so that the open-world rule's aliases are exercised on this data
# too: a species whose name starts with one of these prefixes is also called by the synonym
# ("Crested Finch" is also "Tufted Finch"). "Swallow-tailed" holds a genus name (Swallow) on purpose.
SYNONYMS = {"Crested": "Tufted", "Spotted": "Speckled", "Striped": "Streaked", "Bare-headed": "Crestless",
            "Hook-billed": "Hooked-beak", "Fork-tailed": "Swallow-tailed", "Common": "Eurasian"}

GENERA = ("Finch", "Warbler", "Tanager", "Shrike", "Thrush", "Sparrow", "Wren", "Oriole",
          "Vireo", "Bunting", "Kinglet", "Flycatcher", "Starling", "Swallow", "Lark", "Pipit")


@dataclass(frozen=True)
class Species:
    """One synthetic class: a name and its attribute values (``attribute -> value``)."""

    name: str
    attributes: dict


def attribute_phrase(attribute: str, value: str) -> str:
    """The words for one attribute value, as reasoning text and the judge use them.

    >>> attribute_phrase("wing_color", "crimson"), attribute_phrase("crest", "no crest")
    ('crimson wings', 'no crest')
    """
    return PHRASES[attribute].format(value)


def attribute_distance(a: Species, b: Species) -> int:
    """How many attributes two species differ in."""
    return sum(a.attributes[k] != b.attributes[k] for k in ATTRIBUTES)


def make_species(num_classes: int = 24, seed: int = 0, per_genus: int = 4) -> list[Species]:
    """``num_classes`` species in genera of ``per_genus``; each non-type member differs from the
    genus' type species in exactly one attribute (a different one per member). Deterministic.
    """
    if not 2 <= per_genus <= len(ATTRIBUTES) + 1:
        raise ConfigError(f"per_genus must be in 2..{len(ATTRIBUTES) + 1}, got {per_genus}")
    genera_needed = math.ceil(num_classes / per_genus)
    if genera_needed > len(GENERA):
        raise ConfigError(f"num_classes={num_classes} needs {genera_needed} genera; at most {len(GENERA)} exist")
    rng = random.Random(seed)
    taken: set[tuple] = set()
    species: list[Species] = []
    for genus in GENERA[:genera_needed]:
        while True:
            base = {k: rng.choice(values) for k, values in ATTRIBUTES.items()}
            members = [("Common", base)]
            for attribute in rng.sample(list(ATTRIBUTES), per_genus - 1):
                value = rng.choice([v for v in ATTRIBUTES[attribute] if v != base[attribute]])
                members.append((_NAME_PREFIX[attribute][value], {**base, attribute: value}))
            keys = [tuple(attrs[k] for k in ATTRIBUTES) for _, attrs in members]
            if len(set(keys)) == len(keys) and not taken.intersection(keys):
                taken.update(keys)
                break
        species.extend(Species(f"{prefix} {genus}", attrs) for prefix, attrs in members)
    return species[:num_classes]


def synthetic_aliases(name: str) -> list[str]:
    """The aliases of a synthetic species (see :data:`SYNONYMS`).

    >>> synthetic_aliases("Crested Finch"), synthetic_aliases("Crimson Finch")
    (['Tufted Finch'], [])
    """
    prefix, _, genus = name.partition(" ")
    return [f"{SYNONYMS[prefix]} {genus}"] if prefix in SYNONYMS else []


def synthetic_class_list(num_classes: int = 24, species_seed: int = 0) -> dict:
    """The ``classes.json`` entry of the synthetic data: every species and its aliases.

    >>> synthetic_class_list(8)["aliases"]["Common Finch"]
    ['Eurasian Finch']
    """
    from refine_rft.openworld import class_list

    names = [s.name for s in make_species(num_classes, seed=species_seed)]
    return class_list(names, {n: synthetic_aliases(n) for n in names}, source="refine-rft-workshop synthetic")


def nearest_distractors(target: Species, species: Sequence[Species], rng: random.Random, k: int = 3) -> list[str]:
    """The ``k`` species closest to ``target`` by attribute distance (hard negatives); ties broken by ``rng``."""
    others = [s for s in species if s.name != target.name]
    others.sort(key=lambda s: (attribute_distance(target, s), rng.random()))
    return [s.name for s in others[:k]]


def _jitter(color: tuple[int, int, int], rng: random.Random, amount: int = 18) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in color)


def draw_bird(species: Species, size: int = 112, rng: random.Random | None = None) -> Image.Image:
    """Draw one image of ``species``: random pose, scale, position, background and noise."""
    rng = rng or random.Random(0)
    attrs = species.attributes
    # Draw at 2x and downsample: anti-aliased edges without a slow renderer.
    big = size * 2
    background = tuple(rng.randint(150, 230) for _ in range(3))
    image = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 5)):  # background clutter (leaves, sky patches)
        x, y, r = rng.randint(0, big), rng.randint(0, big), rng.randint(big // 12, big // 5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(background, rng, 30))

    scale = rng.uniform(0.75, 1.0) * big / 224
    cx = big / 2 + rng.uniform(-0.08, 0.08) * big
    cy = big / 2 + rng.uniform(-0.06, 0.08) * big
    facing = rng.choice((1, -1))  # pose: facing right or left

    def point(dx: float, dy: float) -> tuple[float, float]:
        return (cx + facing * dx * scale, cy + dy * scale)

    def box(x0, y0, x1, y1):
        (ax, ay), (bx, by) = point(x0, y0), point(x1, y1)
        return (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))

    body = _jitter(COLORS[attrs["body_color"]], rng)
    wing = _jitter(COLORS[attrs["wing_color"]], rng)
    dark = (30, 30, 30)

    tail = {
        "forked": [(-55, 0), (-105, -30), (-80, 2), (-105, 32)],
        "fan": [(-55, 0), (-100, -40), (-112, 0), (-100, 40)],
        "pointed": [(-55, -8), (-115, 0), (-55, 10)],
    }[attrs["tail_shape"]]
    draw.polygon([point(*p) for p in tail], fill=wing, outline=dark)
    draw.ellipse(box(-65, -38, 45, 42), fill=body, outline=dark)  # body
    pattern = attrs["breast_pattern"]
    if pattern == "spotted":
        for dx, dy in ((5, 15), (20, 25), (-10, 28), (12, 5), (-5, 5), (28, 10)):
            draw.ellipse(box(dx - 4, dy - 4, dx + 4, dy + 4), fill=dark)
    elif pattern == "striped":
        for dx in (-12, 0, 12, 24):
            draw.line([point(dx, 0), point(dx + 4, 34)], fill=dark, width=max(2, int(3 * scale)))
    draw.ellipse(box(-45, -28, 20, 12), fill=wing, outline=dark)  # folded wing
    draw.ellipse(box(30, -62, 76, -16), fill=body, outline=dark)  # head
    if attrs["crest"] == "crested":
        draw.polygon([point(40, -56), point(46, -84), point(54, -58), point(60, -80), point(66, -54)],
                     fill=wing, outline=dark)
    beak = {
        "short": [(72, -44), (92, -38), (72, -32)],
        "long": [(72, -44), (122, -38), (72, -33)],
        "hooked": [(72, -46), (96, -44), (100, -30), (90, -36), (72, -32)],
    }[attrs["beak_shape"]]
    draw.polygon([point(*p) for p in beak], fill=(230, 150, 40), outline=dark)
    draw.ellipse(box(55, -45, 63, -37), fill=(0, 0, 0))  # eye

    image = image.resize((size, size), Image.BILINEAR).filter(ImageFilter.SMOOTH)
    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def judge_vocabulary() -> dict:
    """The attribute judge's extra values (its config's ``attribute_values``): every value a synthetic
    bird's attribute can take, so that claiming one no option has counts as false.

    >>> sorted(judge_vocabulary()["attribute_values"]) == sorted(ATTRIBUTES)
    True
    """
    return {"attribute_values": {name: list(values) for name, values in ATTRIBUTES.items()}}


def vocabulary(species: Sequence[Species] | None = None) -> list[str]:
    """Words the model will have to read and write about this data (for tokenizer training)."""
    species = species if species is not None else make_species(48, seed=0)
    words = [s.name for s in species]
    words += [attribute_phrase(a, v) for a, values in ATTRIBUTES.items() for v in values]
    words += [p for table in _NAME_PREFIX.values() for p in table.values()]
    words += [f"{prefix} {genus}" for genus in GENERA for prefix in ("Common",)]
    return words


def synthetic_questions(
    out_dir: str | Path,
    split: str,
    per_class: int,
    num_classes: int = 24,
    image_size: int = 112,
    seed: int = 0,
    species_seed: int = 0,
    image_seed: int | None = None,
    classes: Sequence[str] | None = None,
    class_split: str | None = None,
) -> list[dict]:
    """Draw ``per_class`` images of each species into ``out_dir/images/<split>/`` and return one
    question record per image (4 options: the species and its 3 nearest species by attributes).

    Besides the image's own ``attributes``, each record carries ``option_attributes``: the
    attributes of each option's species, aligned with ``options``, so that a judge can tell which
    attributes separate the true class from the others without any outside table.

    The species set depends only on ``(num_classes, species_seed)``, so every split of a dataset
    shares it. Option sets and orders depend on ``(seed, split)``; images on ``(image_seed, split)``
    (``image_seed`` defaults to ``seed``), so splits never share images, and another
    ``image_seed`` draws other images of the same questions: same ids, species, attributes and
    options. Each record carries its species' ``aliases`` (:func:`synthetic_aliases`).

    ``classes`` (a base-to-new split) keeps only those species, as targets *and* as distractors,
    and ``class_split`` ("seen"/"unseen") is written into every record.

    >>> import tempfile
    >>> rows = synthetic_questions(tempfile.mkdtemp(), "test", per_class=1, num_classes=8)
    >>> len(rows), rows[0]["dataset"], len(rows[0]["options"]), sorted(rows[0]["attributes"])[:2]
    (8, 'synthetic', 4, ['beak_shape', 'body_color'])
    >>> other = synthetic_questions(tempfile.mkdtemp(), "test", per_class=1, num_classes=8, image_seed=5)
    >>> [r["options"] for r in other] == [r["options"] for r in rows]
    True
    """
    from refine_rft.data.records import make_record, seeded_rng

    species = make_species(num_classes, seed=species_seed)
    indices = {s.name: i for i, s in enumerate(species)}  # ids keep the index in the whole species set
    if classes is not None:
        kept = set(classes)
        species = [s for s in species if s.name in kept]
    image_dir = Path(out_dir) / "images" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    image_seed = seed if image_seed is None else image_seed
    rows = []
    for target in species:
        class_index = indices[target.name]
        for k in range(per_class):
            question_id = f"synthetic/{split}/{class_index:03d}_{k:04d}"
            path = image_dir / f"{class_index:03d}_{k:04d}.png"
            # Two independent streams: the image's and the question's, so that the image seed
            # changes the pictures and nothing else.
            draw_bird(target, image_size, seeded_rng(image_seed, question_id)).save(path)
            rng = seeded_rng(seed, f"options:{question_id}")
            options = [target.name, *nearest_distractors(target, species, rng)]
            record = make_record(question_id, "synthetic", str(path.resolve()), target.name, options,
                                 "birds", seed=seed, attributes=dict(target.attributes))
            by_name = {s.name: s for s in species}
            record["option_attributes"] = [dict(by_name[name].attributes) for name in record["options"]]
            if synthetic_aliases(target.name):
                record["aliases"] = synthetic_aliases(target.name)
            if class_split is not None:
                record["class_split"] = class_split
            rows.append(record)
    return rows


def synthetic_base_to_new(out_dir: Path, sizes: dict[str, int], common: dict) -> dict[str, Path]:
    """The synthetic splits of ``refine-rft-workshop synthetic --base-to-new``: species halved (seeded),
    ``train`` (and ``pool``) and ``test_seen`` from seen species, ``test_unseen``, and ``split.json``."""
    from refine_rft.data.base_to_new import check_disjoint, class_split, write_split_file
    from refine_rft.files import write_jsonl_atomic

    split = class_split("synthetic", [s.name for s in make_species(common["num_classes"])], common["seed"])
    plans = [("train", "train", split.seen, "seen"), ("pool", "pool", split.seen, "seen"),
             ("test_seen", "test", split.seen, "seen"), ("test_unseen", "test", split.unseen, "unseen")]
    built = {name: synthetic_questions(out_dir, kind, sizes[kind], classes=classes, class_split=side, **common)
             for name, kind, classes, side in plans if sizes[kind]}
    check_disjoint(built["train"], built["test_unseen"])
    paths = {name: write_jsonl_atomic(out_dir / f"{name}.jsonl", rows) for name, rows in built.items()}
    paths["split"] = write_split_file(out_dir, [split])
    return paths
