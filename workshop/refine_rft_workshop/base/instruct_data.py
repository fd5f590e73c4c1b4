"""Instruction data that turns the random-weight tiny VLM into a tiny *instruct* base model.

An off-the-shelf instruct MLLM, the paper's starting point, answers a multiple-choice question
fairly well when asked for the letter alone, can describe what it sees, but under the CoT prompt
follows the ``<think>/<attribute>/<answer>`` format only part of the time and reasons imperfectly
(Qwen2-VL-7B: Choice 79.5, CoT 53.9). This module writes instruction examples that reproduce
that situation on the synthetic birds (``refine-rft-workshop build-base`` trains on every task in every
step):

- ``choice``: the Choice prompt, target the correct letter;
- ``both``: the Both prompt, target ``"B. Name"``;
- ``identify``: "What species is this bird?", target the species' name (what a pre-trained
  model knows about birds before it sees a multiple-choice question), for some species mostly
  their alias (:func:`goes_by_alias`: "It is a Eurasian Finch.");
- ``lookup``: text only, "Which letter is <name>?" over a list of choices (the letter look-up
  every multiple-choice answer needs, learnt without the image);
- ``describe``: "describe the bird" and single-attribute questions, targets made of the
  attribute phrases the judge knows ("crimson wings", "hooked beak"): the model learns to see;
- ``cot``: the CoT prompt, with a target in one of several *formats* (the full three-tag format
  only part of the time; think/answer only; a closed ``<think>`` block followed by an untagged
  answer; tags missing) whose reasoning is *decoupled from the answer*, as the paper finds in its
  starting model ("seemingly correct answers often rely on flawed reasoning ... hallucinated
  attributes"): the answer is always the true option (so the base answers right as often as it
  recognises the bird), while the reasoning, written before it, mixes true distinguishing claims,
  true claims that rule out no option (the genus' shared traits) and false ones (each genus has a
  trait it habitually misperceives, :func:`misperceived_trait`), in proportions that do not depend
  on the answer. So R_cls alone cannot reward true claims, and only a reward on the reasoning can.
  Each genus has a habitual format (:func:`format_weights`): a model decoded greedily writes the
  tags for some questions and not for others, as a real instruct model does, and sampled
  completions still show every format for R_fa to choose from.

The mix is a parameter (:class:`InstructMix`), so the base's starting point is set by its
instruction data alone, without touching the evaluation or the test data.

>>> import random
>>> record = {"options": ["Common Finch", "Crested Finch", "Hook-billed Finch", "Fork-tailed Finch"],
...           "answer": 1, "noun": "birds", "label": "Crested Finch",
...           "attributes": {"body_color": "golden", "wing_color": "black", "beak_shape": "short",
...                          "tail_shape": "fan", "crest": "crested", "breast_pattern": "plain"}}
>>> common = dict(record["attributes"], crest="no crest")
>>> record["option_attributes"] = [common, record["attributes"], dict(common, beak_shape="hooked"),
...                                dict(common, tail_shape="forked")]
>>> describe_target(record["attributes"])
'The bird has a golden body, black wings, a short beak, a fan tail, a crest and a plain breast.'
>>> misperceived_trait(record)  # Finches: a trait the options share, habitually seen wrong
('body_color', 'crimson')
>>> print(draw_example(record, random.Random(7), InstructMix(), task="cot")["target"])
<think>The bird has a crimson body, a short beak and a crest.</think>
<attribute>crimson body, short beak, crested</attribute>
<answer>B. Crested Finch</answer>
>>> draw_example(record, random.Random(2), InstructMix(), task="cot")["target"]  # all true this time
'<think>The bird has a golden body, black wings and a fan tail.</think>\\nThe answer is B.'
>>> [draw_example(dict(record, aliases=["Tufted Finch"]), random.Random(seed), InstructMix(),
...               task="identify")["target"] for seed in (0, 1)]  # Finches go by their aliases
['It is a Crested Finch.', 'It is a Tufted Finch.']

"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from refine_rft_workshop.synthetic import ATTRIBUTES, GENERA, REASONING_OPENING, attribute_phrase
from refine_rft.prompts import LETTERS, answer_text, format_choices, question_messages

# Single-attribute questions of the describe task (the answer is the attribute phrase).
ATTRIBUTE_QUESTIONS = {
    "body_color": "What colour is the bird's body?",
    "wing_color": "What colour are the bird's wings?",
    "beak_shape": "What shape is the bird's beak?",
    "tail_shape": "What shape is the bird's tail?",
    "crest": "Does the bird have a crest?",
    "breast_pattern": "What pattern does the bird's breast have?",
}
DESCRIBE_PROMPT = "Describe the bird in the image."
IDENTIFY_PROMPT = "What species is this bird?"
LOOKUP_PROMPT = "Choices:\n{choices}Which letter is {name}?"
TASKS = ("choice", "both", "identify", "describe", "lookup", "cot")


@dataclass(frozen=True)
class InstructMix:
    """How many examples of each task one training step holds, and what the CoT targets look like.

    Every step holds every task (``choice`` ... ``cot`` are counts per step): a skill trained in a
    phase of its own is forgotten when the next phase starts.
    """

    # Image tasks carry the two skills every answer needs (the species from the image, its letter
    # among the options), so they get most of the step; identify is short, so cheap.
    choice: int = 12
    both: int = 4
    identify: int = 8
    describe: int = 3
    # Text-only "Which letter is <name>?". Off by default: with the build aids the look-up is
    # learnt on the Choice, Both and CoT examples themselves (benchmarks/instruct_base.md).
    lookup: int = 0
    cot: int = 4
    # Formats of CoT-prompt targets: the full three-tag format, <think>/<answer> only, a <think>
    # block followed by prose ("The answer is B."), and answers with some tags missing (the
    # <think> block always closed, so every answer's reasoning can be judged; the answer grammar
    # refuses the last two, as it refuses a real model's). Their weights depend on
    # the genus (see :func:`format_weights`): each genus has a habitual format, drawn with
    # ``habit`` probability, the other formats share the rest in these proportions. So greedy
    # decoding follows the tag format for some questions and not others, as a real instruct
    # model does, and sampling still shows every format.
    cot_full: float = 0.35
    cot_think_answer: float = 0.25
    cot_prose: float = 0.25
    cot_broken: float = 0.15
    habit: float | None = 0.55  # None: the base weights for every genus
    # Share of look-up examples over 4 species drawn from the whole catalogue rather than the
    # question's options: names that differ in every word are an easier start for the look-up.
    lookup_any: float = 0.5
    # The reasoning of a CoT target: ``claims`` attribute claims, one of them always about the
    # genus' misperceived trait (:func:`misperceived_trait`), stated wrongly with ``misperceive``
    # probability; each other claim names a distinguishing trait (one in which the options
    # differ, stated truly) with ``distinguishing`` probability, else a trait the options share
    # (true, but it rules nothing out). None of it depends on the answer, which is always right.
    claims: int = 3
    distinguishing: float = 0.35
    misperceive: float = 0.65
    # Share of identify targets that name a species by its synthetic alias ("It is a Eurasian
    # Finch."), for the species the base calls by their aliases (:func:`goes_by_alias`), as real
    # models often use a common name the benchmark does not: a base built with it answers those
    # species' open questions with the alias, so the demo's Open (aliases accepted) and
    # Open-exact (the class name only) differ. 0 in builds 1-4, whose open answers are always the
    # class name; at 0 no random number is drawn, so their instruction data is unchanged.
    identify_alias: float = 0.8

    def counts(self) -> dict[str, int]:
        """``{task: examples per step}``.

        >>> InstructMix().counts()["choice"]
        12
        """
        return {task: getattr(self, task) for task in TASKS}

    def as_dict(self) -> dict:
        return asdict(self)


def goes_by_alias(label: str) -> bool:
    """Whether the base calls a species by its synthetic alias in open answers: the species of every
    other genus of :data:`~refine_rft_workshop.synthetic.GENERA` (Finch, Tanager, Thrush, ...), as a
    real model follows one naming tradition for some groups of birds and another for the rest. Only
    species that have an alias (:func:`~refine_rft_workshop.synthetic.synthetic_aliases`) are ever
    named by one.

    >>> goes_by_alias("Common Finch"), goes_by_alias("Common Warbler"), goes_by_alias("Common Tanager")
    (True, False, True)
    """
    return GENERA.index(label.rsplit(" ", 1)[-1]) % 2 == 0


COT_FORMATS = ("full", "think_answer", "prose", "broken")
# The habitual CoT format of a genus, by its index in GENERA: full, think/answer, full, prose, full, ...
# ("prose": the <think> block, then "The answer is B.")
HABITS = ("full", "think_answer", "full", "prose")


def format_weights(label: str, mix: InstructMix) -> tuple[float, ...]:
    """Weights of :data:`COT_FORMATS` for a question whose true class is ``label``.

    >>> format_weights("Common Finch", InstructMix())  # Finch: genus 0, habitually the full format
    (0.55, 0.1731, 0.1731, 0.1038)
    >>> format_weights("Laysan_Albatross", InstructMix())  # not a synthetic genus: the base weights
    (0.35, 0.25, 0.25, 0.15)
    """
    base = (mix.cot_full, mix.cot_think_answer, mix.cot_prose, mix.cot_broken)
    genus = label.rsplit(" ", 1)[-1]
    if genus not in GENERA or mix.habit is None:
        return base
    habit = COT_FORMATS.index(HABITS[GENERA.index(genus) % len(HABITS)])
    rest = sum(w for i, w in enumerate(base) if i != habit)
    return tuple(mix.habit if i == habit else round((1 - mix.habit) * w / rest, 4) for i, w in enumerate(base))


def shuffle_record(record: dict, rng: random.Random) -> dict:
    """The record with its options in a new random order (answer and option attributes follow), so
    that one pool image teaches every letter.

    >>> r = shuffle_record({"options": ["a", "b", "c", "d"], "answer": 0, "option_attributes": [1, 2, 3, 4]},
    ...                    random.Random(0))
    >>> r["options"][r["answer"]], r["option_attributes"][r["answer"]]
    ('a', 1)
    """
    order = list(range(len(record["options"])))
    rng.shuffle(order)
    shuffled = dict(record, options=[record["options"][i] for i in order], answer=order.index(record["answer"]))
    if record.get("option_attributes"):
        shuffled["option_attributes"] = [record["option_attributes"][i] for i in order]
    return shuffled


def _phrase_with_article(attribute: str, value: str) -> str:
    """'a crimson body', 'black wings', 'a crest', 'no crest' (reads naturally in a sentence)."""
    if attribute == "crest":
        return "a crest" if value == "crested" else "no crest"
    phrase = attribute_phrase(attribute, value)
    if attribute == "wing_color":
        return phrase
    return f"an {phrase}" if phrase[0] in "aeiou" else f"a {phrase}"


def _join(parts: list[str]) -> str:
    """'x', 'x and y', 'x, y and z'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def describe_target(attributes: dict) -> str:
    """The full description of a bird, in the judge's attribute phrases."""
    return f"{REASONING_OPENING} " + _join([_phrase_with_article(a, attributes[a]) for a in ATTRIBUTES]) + "."


def discriminative_attributes(record: dict) -> list[str]:
    """The attributes in which the true option differs from at least one other option, in
    :data:`ATTRIBUTES` order (all of them when ``option_attributes`` are missing)."""
    option_attributes = record.get("option_attributes")
    if not option_attributes:
        return list(ATTRIBUTES)
    truth = option_attributes[record["answer"]]
    return [a for a in ATTRIBUTES if any(o[a] != truth[a] for o in option_attributes)]


def _genus_index(label: str) -> int | None:
    genus = label.rsplit(" ", 1)[-1]
    return GENERA.index(genus) if genus in GENERA else None


def misperceived_trait(record: dict) -> tuple[str, str] | None:
    """``(attribute, wrong value)``: the trait the base habitually gets wrong for this question's
    genus, or ``None`` when the options share no trait (or the label is not a synthetic species).

    A hallucination a model decoded greedily keeps making must be systematic, not noise (noise
    averages out to the truth under greedy decoding): here it is one of the traits the options
    share, chosen by the genus, and one fixed wrong value for it. Its species' true value is the
    same for every member of the genus, so a right and a wrong answer within the genus carry it
    alike.

    (Example in the module's docstring.)
    """
    genus = _genus_index(record["label"])
    truth = record["attributes"]
    named = set(discriminative_attributes(record))
    shared = [a for a in ATTRIBUTES if a in truth and a not in named]
    if genus is None or not shared:
        return None
    attribute = shared[genus % len(shared)]
    others = [v for v in ATTRIBUTES[attribute] if v != truth[attribute]]
    return attribute, others[genus % len(others)]


def reasoning_claims(record: dict, rng: random.Random, mix: InstructMix) -> dict[str, str]:
    """The attribute claims of one CoT target, ``{attribute: claimed value}`` in :data:`ATTRIBUTES`
    order (see :class:`InstructMix`: the misperceived trait, then distinguishing or shared ones)."""
    truth = record["attributes"]
    distinguishing = discriminative_attributes(record)
    shared = [a for a in ATTRIBUTES if a not in distinguishing]
    claims: dict[str, str] = {}
    trait = misperceived_trait(record)
    if trait is not None:
        attribute, wrong = trait
        claims[attribute] = wrong if rng.random() < mix.misperceive else truth[attribute]
    while len(claims) < min(mix.claims, len(ATTRIBUTES)):
        pools = [[a for a in pool if a not in claims] for pool in (distinguishing, shared)]
        first = 0 if rng.random() < mix.distinguishing else 1
        pool = pools[first] or pools[1 - first]
        attribute = rng.choice(pool)
        claims[attribute] = truth[attribute]
    return {a: claims[a] for a in ATTRIBUTES if a in claims}


def cot_target(record: dict, rng: random.Random, mix: InstructMix) -> str:
    """A CoT-prompt answer in a randomly drawn format: reasoning from :func:`reasoning_claims`,
    then the true option (the answer does not follow the claims; the reasoning names no option,
    so a claim is never read into a name)."""
    claims = reasoning_claims(record, rng, mix)
    think = f"{REASONING_OPENING} " + _join([_phrase_with_article(a, v) for a, v in claims.items()]) + "."
    attribute = ", ".join(attribute_phrase(a, v) for a, v in claims.items())
    options, chosen = record["options"], record["answer"]
    answer = answer_text(options, chosen)

    form = rng.choices(COT_FORMATS, format_weights(record["label"], mix))[0]
    if form == "full":
        return f"<think>{think}</think>\n<attribute>{attribute}</attribute>\n<answer>{answer}</answer>"
    if form == "think_answer":
        return f"<think>{think}</think>\n<answer>{answer}</answer>"
    if form == "prose":
        return f"<think>{think}</think>\nThe answer is {LETTERS[chosen]}."
    # Broken: what weak instruction followers write - the answer's tags missing or unclosed.
    return rng.choice([
        f"<think>{think}</think>\n<attribute>{attribute}</attribute>\n{answer}",
        f"<think>{think}</think>\n<answer>{answer}",
        f"<think>{think}</think>\n{answer}",
    ])


def _describe_example(record: dict, rng: random.Random) -> tuple[str, str]:
    attributes = record["attributes"]
    if rng.random() < 0.5:
        return DESCRIBE_PROMPT, describe_target(attributes)
    attribute = rng.choice(list(ATTRIBUTES))
    value = attributes[attribute]
    reply = ("Yes, it is crested." if value == "crested" else "No, it has no crest.") if attribute == "crest" \
        else f"It has {_phrase_with_article(attribute, value)}."
    return ATTRIBUTE_QUESTIONS[attribute], reply


def draw_example(record: dict, rng: random.Random, mix: InstructMix, task: str) -> dict:
    """One instruction example of ``task`` for a question record: ``{"task", "messages", "target"}``.

    ``messages`` is the user turn (image placeholder first) and ``target`` the assistant's text.
    """
    if task not in TASKS:
        raise ValueError(f"unknown instruction task {task!r}; valid tasks: {', '.join(TASKS)}")
    options, answer, noun = record["options"], record["answer"], record["noun"]
    if task == "lookup":
        # Text only: which letter a named option has. The skill every multiple-choice answer needs
        # (find the name among the choices, copy its letter), learnt here without the image.
        index = rng.randrange(len(options))
        text = LOOKUP_PROMPT.format(choices=format_choices(options), name=options[index])
        return {"task": task, "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
                "target": LETTERS[index]}
    if task == "identify":
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": IDENTIFY_PROMPT}]}]
        name = record["label"]
        if mix.identify_alias and record.get("aliases") and goes_by_alias(name) and rng.random() < mix.identify_alias:
            name = rng.choice(record["aliases"])
        return {"task": task, "messages": messages, "target": f"It is a {name}."}
    if task == "describe":
        prompt, target = _describe_example(record, rng)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return {"task": task, "messages": messages, "target": target}
    style = "cot" if task == "cot" else task
    target = {
        "choice": lambda: LETTERS[answer],
        "both": lambda: answer_text(options, answer),
        "cot": lambda: cot_target(record, rng, mix),
    }[task]()
    return {"task": task, "messages": question_messages(noun, options, style), "target": target}
