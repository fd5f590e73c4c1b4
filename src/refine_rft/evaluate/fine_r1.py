"""Fine-R1's evaluation rules, as its code applies them (to reproduce its numbers, quirks included).

Source: ``eval/evaluation.py`` of github.com/PKU-ICST-MIPL/FineR1_ICLR2026 (commit 84cdc5c),
``extract_answer``, ``eval_closedworld`` and ``eval_openworld``. What it does, and where that is not
what its paper describes:

- **The answer** is the text from the first ``<answer>`` to the last ``</answer>``, stripped
  (its regex ``<answer>(.*)</answer>`` is greedy). In the open world an empty or missing block falls
  back to the *whole response*, reasoning included (:func:`compared_text`).
- **The domain word** of the similarity score comes from testing the image path: ``"aircraft"``, then
  ``"birds"``, ``"cars"``, ``"flower"``, else ``"object"`` (:func:`path_domain`). Its released paths
  are ``fgvc_aircraft/``, ``bird_200/``, ``stanford-cars/``, ``dogs_120/``, ``flower102/`` and
  ``oxford-pet/``, so CUB-200 gets ``object``, not ``bird`` (:data:`DOMAINS`), as do dogs and pets.
- **Closed-world accuracy** counts a hit when the label, lower-cased with ``_`` read as a space, is a
  substring of the answer block (:func:`closed_world_hit`): ``"A or B or C"`` naming the label scores,
  an option letter alone never does. Its released question files always list the true class first
  and the options are never shuffled.
- **Open-world accuracy ("TI")** is the same substring test on the answer or its fallback; for cars
  only the name without its **last two words** must appear (``"Ferrari 458 Italia"`` for
  ``"Ferrari 458 Italia Convertible 2012"``; a two-word name leaves ``""``, which every answer
  contains) (:func:`open_world_hit`). The similarity score embeds the full name.
- **Labels** are Fine-R1's spellings (``Black Footed Albatross``, ``Airbus A300B4`` for FGVC's
  ``A300B4``): :func:`fine_r1_name` maps this project's class names onto them.

Every function here is linear in the response's length.

>>> answer_block("<think>x</think><answer> Pug </answer> and <answer>Boxer</answer>")
'Pug </answer> and <answer>Boxer'
>>> compared_text("<think>a Pug</think><answer></answer>")
'<think>a Pug</think><answer></answer>'
>>> closed_world_hit("<answer>A. Pug or Boxer</answer>", "Pug"), closed_world_hit("<answer>A</answer>", "Pug")
(True, False)
>>> open_world_hit("<answer>a Ferrari 458 Italia</answer>", "Ferrari 458 Italia Convertible 2012", "car")
True
"""

from __future__ import annotations

from functools import lru_cache

SOURCE = "github.com/PKU-ICST-MIPL/FineR1_ICLR2026 eval/evaluation.py (commit 84cdc5c)"
# Fine-R1's domain word per benchmark, as its path test yields it for its released image paths.
DOMAINS = {"aircraft": "aircraft", "cub": "object", "cars": "car", "dogs": "object", "flowers": "flower",
           "pets": "object"}
OPEN, CLOSE = "<answer>", "</answer>"


def answer_block(output: str | None) -> str | None:
    """What Fine-R1's ``re.search(r'<answer>(.*)</answer>', output, re.DOTALL).group(1).strip()``
    returns (``None``: no match), in linear time: first ``<answer>`` to last ``</answer>``."""
    if not output:
        return None
    start = output.find(OPEN)
    if start < 0:
        return None
    end = output.rfind(CLOSE)
    return output[start + len(OPEN):end].strip() if end >= start + len(OPEN) else None


def compared_text(output: str | None) -> str:
    """The open-world text Fine-R1 scores: the answer block, or the whole output when it is empty or missing."""
    return answer_block(output) or (output or "")


def path_domain(path: str) -> str:
    """Fine-R1's domain word for an image path.

    >>> [path_domain(p) for p in ("bird_200/images/x.jpg", "data/birds/x.jpg", "stanford-cars/cars_test/1.jpg")]
    ['object', 'bird', 'car']
    """
    for needle, word in (("aircraft", "aircraft"), ("birds", "bird"), ("cars", "car"), ("flower", "flower")):
        if needle in path:
            return word
    return "object"


def domain(dataset: str, path: str) -> str:
    """The domain word Fine-R1 gives a question: its released paths' for the six benchmarks, else its
    path test on ``path``."""
    return DOMAINS.get(dataset) or path_domain(path)


def closed_world_hit(output: str | None, label: str) -> bool:
    """Fine-R1's closed-world rule: the label is a substring of the answer block (no block: wrong)."""
    answer = answer_block(output)
    return bool(answer) and label.lower().replace("_", " ") in answer.lower().replace("_", " ")


def open_world_hit(output: str | None, label: str, domain_word: str) -> bool:
    """Fine-R1's open-world "TI" rule (the car truncation included; see the module)."""
    text = compared_text(output).lower()
    if domain_word == "car":
        return " ".join(label.lower().split()[:-2]) in text
    return label.lower().replace("_", " ") in text


@lru_cache(maxsize=8)
def _names(dataset: str) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    from refine_rft.data.base_to_new import fine_r1_names
    from refine_rft.parsing import normalize_name

    names = fine_r1_names(dataset)
    by_key = {normalize_name(n): n for n in names}
    return by_key, tuple(by_key.items())


def fine_r1_name(dataset: str, label: str) -> str:
    """Fine-R1's spelling of a class of one of the six benchmarks (the same class after
    normalisation, or the one Fine-R1 name that ends with it); else the name with ``_`` as spaces.

    >>> fine_r1_name("aircraft", "A300B4"), fine_r1_name("cub", "Black_footed_Albatross"), fine_r1_name("x", "a_b")
    ('Airbus A300B4', 'Black Footed Albatross', 'a b')
    """
    from refine_rft.data.readers import pretty_name
    from refine_rft.parsing import normalize_name

    by_key, items = _names(dataset)
    key = normalize_name(label)
    if key in by_key:
        return by_key[key]
    ends = [name for k, name in items if k.endswith(" " + key)]
    return ends[0] if len(ends) == 1 else pretty_name(label)
