"""The attribute-grounded judge (``backend: attributes``): a deterministic teacher for data whose
images come with ground-truth attributes (CUB's attribute annotations, or any data that has them).

It reads the response's *attribute claims* - mentions such as "crimson wings", "its wings are
crimson", "crimson-winged", "hooked beak", "crested", "no crest" - and checks each against the
image's attributes::

    F (factual accuracy) = true claims / all claims                          (0 when nothing is claimed)
    H (helpfulness)      = share of the wrong options ruled out by a true claim, i.e. options whose
                           value for that claim's attribute differs from the image's
    score                = 100 * F * (0.5 + 0.5 * H)

So a response that states only true but non-distinguishing facts scores 50, one whose true claims
rule out every distractor scores 100, and each false claim scales the whole score down (listing
every colour to be safe earns little). Mentions that are negated or about something else ("not
black wings", "unlike the Purple Finch's golden body") are not claims.

Attributes are a dict per image, either ``attribute -> value`` (``{"wing_color": "crimson"}``; a
list of values is allowed) or ``attribute -> bool`` in CUB's ``"has_wing_color::blue": True``
style. Records must carry ``attributes`` and ``option_attributes`` (one dict per option). The words
come from the data: an attribute's name gives the part it describes (``wing_color`` -> "wing",
``has_bill_shape`` -> "bill"; a value that already names its part, like "crested" or "no crest",
is the whole phrase), its values the claims. The judge config's ``attribute_values`` adds values
no image or option has, so that claiming them counts as false rather than as nothing.

RSC version: RSC_A = 100 if the ``<answer>`` names exactly the true option (R_cls), RSC_U = the
score above on the ``<think>`` and ``<attribute>`` text, RSC_O = 100 if the response has the
required ``<think>``/``<attribute>``/``<answer>`` format (R_fa), else 0. Responses to the choice or
both styles are answered in plain text, read by their style's answer rule (the one accuracy is
scored by: Both needs the letter and the name): RSC_A asks that it gives the true option, RSC_O
that it gives one option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from refine_rft.errors import DataError
from refine_rft.judge.base import Judge, answer_given, require_fields
from refine_rft.parsing import THINK_ATTRIBUTE_ANSWER, follows_format, parse_response

NEEDED = ("attributes", "option_attributes", "options", "answer")
WHY = "backend 'attributes' needs ground-truth attributes; use backend 'openai' for data without them"

# A mention preceded, in its clause, by one of these is not a claim about this image.
_NOT_A_CLAIM = re.compile(r"\b(?:not|no|never|without|lacks?|lacking|isn't|aren't|doesn't|don't|unlike|"
                          r"rather than|instead of|whereas|would|should|could|nor|neither)\b[^.,;:!?]*$",
                          re.IGNORECASE)
_CLAUSE_START = re.compile(r".*(?:[.,;:!?]|\bbut\b|\bwhile\b)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Fact:
    """One checkable statement: ``attribute`` has ``value`` (``True`` for boolean attributes)."""

    attribute: str
    value: object


def _words(text: str) -> str:
    return re.sub(r"[_\s]+", " ", str(text)).strip().lower()


def _part_and_value(fact: Fact) -> tuple[str, str]:
    """The part a fact is about and the value's words; the part is empty when the value names it.

    >>> [_part_and_value(Fact(*f)) for f in [("wing_color", "crimson"), ("has_bill_shape::hooked_seabird", True),
    ...                                      ("crest", "no crest")]]
    [('wing', 'crimson'), ('bill', 'hooked seabird'), ('', 'no crest')]
    """
    name, _, value_from_key = fact.attribute.partition("::")
    value = _words(value_from_key if fact.value is True else str(fact.value))
    part = re.sub(r"^has ", "", _words(name))
    part = re.sub(r" (?:colou?r|shape|pattern|length|size)$", "", part)
    return ("" if part and part in value else part), value


def attribute_phrase(attribute: str, value) -> str:
    """The plain words for one attribute value, as the judge reads them as a claim.

    >>> attribute_phrase("wing_color", "crimson"), attribute_phrase("crest", "no crest")
    ('crimson wing', 'no crest')
    """
    part, words = _part_and_value(Fact(attribute, value))
    return f"{words} {part}" if part else words


def fact_patterns(fact: Fact) -> list[str]:
    """Regexes that state ``fact`` ("crimson wings", "wings are crimson", "crimson-winged", ...).

    >>> import re
    >>> [bool(re.search(fact_patterns(Fact("wing_color", "crimson"))[0], t))
    ...  for t in ["crimson wings", "crimson-coloured wing", "crimson body"]]
    [True, True, False]
    """
    part, value = _part_and_value(fact)
    v = re.escape(value).replace(r"\ ", r"[\s_-]+")
    if not part:  # the value is the whole phrase: "crested", "no crest"
        if value == "crested":
            return [r"\bcrested\b", r"\ban? (?:\w+ )?crest\b"]
        if value == "no crest":
            return [r"\bno crest\b", r"\b(?:without|lacks|lacking) an? crest\b", r"\bcrestless\b",
                    r"\bnot crested\b", r"\buncrested\b"]
        return [rf"\b{v}\b"]
    singular = part[:-1] if part.endswith("s") else part
    p = rf"(?:{re.escape(part)}|{re.escape(singular)}s?)"
    return [
        rf"\b{v}(?:[\s-]+(?:colou?red|shaped|patterned))?[\s-]+{p}\b",
        rf"\b{p}\s+(?:is|are|looks?|appears?|seems?)\s+(?:(?!not\b|never\b)\w+\s+)?{v}\b",
        rf"\b{v}-{re.escape(singular)}ed\b",
    ]


def _is_claim(text: str, start: int) -> bool:
    before = text[max(0, start - 80):start]
    clause = _CLAUSE_START.sub("", before)
    return _NOT_A_CLAIM.search(clause) is None


def candidate_facts(attributes: dict, option_attributes: list[dict],
                    extra_values: dict[str, list[str]] | None = None) -> list[Fact]:
    """Every fact worth looking for: each value an attribute takes in the image, the options or
    ``extra_values`` (the judge config's ``attribute_values``); for boolean attributes, the attribute itself."""
    facts: dict[Fact, None] = {}
    for table in [attributes, *option_attributes]:
        for attribute, value in table.items():
            if isinstance(value, bool):
                facts[Fact(attribute, True)] = None
                continue
            values = value if isinstance(value, list) else [value]
            for item in [*values, *(extra_values or {}).get(attribute, ())]:
                facts[Fact(attribute, item)] = None
    return list(facts)


def holds(fact: Fact, attributes: dict) -> bool:
    """Whether ``fact`` is true for an image (or class) with these attributes."""
    truth = attributes.get(fact.attribute)
    if fact.value is True:
        return bool(truth)
    return fact.value in truth if isinstance(truth, list) else fact.value == truth


def claims(text: str, facts: list[Fact]) -> set[Fact]:
    """The facts ``text`` asserts about the image.

    >>> facts = candidate_facts({"wing_color": "crimson", "crest": "crested"}, [], {"crest": ["no crest"]})
    >>> sorted((f.attribute, f.value) for f in claims("Its wings are crimson; it has no crest.", facts))
    [('crest', 'no crest'), ('wing_color', 'crimson')]
    >>> claims("The wings are not black.", facts)
    set()
    """
    found = set()
    for fact in facts:
        for pattern in fact_patterns(fact):
            if any(_is_claim(text, m.start()) for m in re.finditer(pattern, text, re.IGNORECASE)):
                found.add(fact)
                break
    return found


def attribute_score(text: str, attributes: dict, option_attributes: list[dict], answer: int,
                    extra_values: dict[str, list[str]] | None = None) -> dict:
    """Score ``text`` against the image's attributes (formula in the module docstring).

    Returns ``{"score": 0..100, "accuracy": F, "helpfulness": H, "claims": n, "true_claims": k}``.

    >>> image = {"wing_color": "crimson", "body_color": "golden", "crest": "crested"}
    >>> options = [image, {**image, "wing_color": "black"}, {**image, "crest": "no crest"}]
    >>> attribute_score("Crimson wings and a crest.", image, options, 0)["score"]
    100.0
    >>> attribute_score("Golden body.", image, options, 0)["score"]
    50.0
    >>> attribute_score("Crimson wings and a slate body.", image, options, 0)["score"]  # slate: not a known value
    75.0
    >>> attribute_score("Crimson wings and a slate body.", image, options, 0, {"body_color": ["slate"]})["score"]
    37.5
    """
    found = claims(text, candidate_facts(attributes, option_attributes, extra_values))
    true = [fact for fact in found if holds(fact, attributes)]
    accuracy = len(true) / len(found) if found else 0.0
    others = [table for index, table in enumerate(option_attributes) if index != answer]
    ruled_out = [table for table in others if any(not holds(fact, table) for fact in true)]
    helpfulness = len(ruled_out) / len(others) if others else 1.0
    return {"score": round(100 * accuracy * (0.5 + 0.5 * helpfulness), 4), "accuracy": accuracy,
            "helpfulness": helpfulness, "claims": len(found), "true_claims": len(true)}


class AttributeJudge(Judge):
    """Deterministic judge from ground-truth attributes; same interface as the teacher judge."""

    def _check(self, sample: dict) -> None:
        require_fields(sample, NEEDED, WHY)
        if len(sample["option_attributes"]) != len(sample["options"]):
            raise DataError(f"judge: sample {sample.get('id', '?')!r}: option_attributes has "
                             f"{len(sample['option_attributes'])} entries for {len(sample['options'])} options")

    async def _score_reasoning(self, text: str, sample: dict) -> float:
        self._check(sample)
        detail = attribute_score(text, sample["attributes"], sample["option_attributes"], int(sample["answer"]),
                                 self.config.attribute_values)
        return detail["score"]

    async def _score_rsc(self, sample: dict) -> dict:
        self._check(sample)
        response, answer = sample["response"], int(sample["answer"])
        chosen = answer_given(sample)  # the style's answer rule, as accuracy reads it (R_cls for CoT)
        correct = chosen == answer
        if (sample.get("style") or "cot") == "cot":
            obeyed = follows_format(response, THINK_ATTRIBUTE_ANSWER)  # R_fa
            parsed = parse_response(response)
            reasoning = " ".join(part for part in (parsed.think, parsed.attribute) if part)
        else:
            obeyed, reasoning = chosen is not None, response
        detail = attribute_score(reasoning, sample["attributes"], sample["option_attributes"], answer,
                                 self.config.attribute_values)
        return {
            "RSC_A": 100.0 if correct else 0.0,
            "RSC_A_feedback": f"The answer {'names' if correct else 'does not name'} exactly the right choice.",
            "RSC_U": detail["score"],
            "RSC_U_feedback": (f"{detail['true_claims']} of {detail['claims']} attribute claims are true for the "
                               f"image; they rule out {detail['helpfulness']:.0%} of the wrong choices."),
            "RSC_O": 100.0 if obeyed else 0.0,
            "RSC_O_feedback": "The response follows the required format." if obeyed
            else "The response does not follow the required format.",
        }
