"""Are the parsers of model and judge output linear? Time on 64 kB and on 1 MB of adversarial text.

    .venv/bin/python benchmarks/parsing_linear.py

For each parser and each kind of input, prints the time on 1 MB and the ratio of the 1 MB time to
the 64 kB time: about 16 for a linear parser (16 times the input), 256 for a quadratic one. Small
inputs are dominated by fixed costs, so ratios below 16 are common; what matters is that none
approaches 256.
"""

from __future__ import annotations

import time

from refine_rft.evaluate.score import parsed_choice
from refine_rft.judge.prompts import addresses_the_judge, fence_student_text
from refine_rft.judge.group import parse_group_scores
from refine_rft.judge.scoring import parse_rsc, parse_score
from refine_rft.parsing import answer_block, extract_choice, parse_response
from refine_rft.openworld import ClassVocabulary
from refine_rft.rewards.open import make_open_classification_reward
from refine_rft.rewards.rules import attribute_format_reward, classification_reward, format_reward

OPTIONS = ["Laysan_Albatross", "Sooty_Albatross", "Black_footed_Albatross", "Least_Auklet"]
UNITS = {"spaces": " ", "letters": "B ", "or or or": "or ", "open tags": "<answer>", "angle brackets": "<",
         "zero width": "\u200b", "braces": "{", "score is": "score is ", "names": "Sooty Albatross ",
         "think blocks": "<think>a</think>"}
VOCABULARY = {"cub": ClassVocabulary.build(OPTIONS, {"Sooty_Albatross": ["Sooty Gooney"]})}
OPEN_REWARD = make_open_classification_reward(VOCABULARY)
PARSERS = {
    "extract_choice": lambda t: extract_choice(t, OPTIONS),
    "both rule": lambda t: parsed_choice("both", t, OPTIONS),
    "answer_block": answer_block, "parse_response": parse_response,
    "R_cls": lambda t: classification_reward([t], options=[OPTIONS], answer=[1]),
    "open answer rule": lambda t: VOCABULARY["cub"].named(t),
    "open R_cls": lambda t: OPEN_REWARD([t], label=["Sooty_Albatross"], dataset=["cub"]),
    "R_f": lambda t: format_reward([t]), "R_fa": lambda t: attribute_format_reward([t]),
    "parse_score": parse_score, "parse_rsc": parse_rsc, "parse_group_scores": lambda t: parse_group_scores(t, 6),
    "addresses_the_judge": addresses_the_judge, "fence_student_text": fence_student_text,
}


def seconds(parse, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        parse(text)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    print(f"{'parser':<22}{'input':<16}{'1 MB (ms)':>10}{'1 MB / 64 kB':>14}")
    worst = 0.0
    for name, parse in PARSERS.items():
        for kind, unit in UNITS.items():
            small, large = (unit * (size // len(unit)) for size in (1 << 16, 1 << 20))
            t_small, t_large = seconds(parse, small), seconds(parse, large)
            ratio = t_large / max(t_small, 1e-6)
            worst = max(worst, t_large)
            print(f"{name:<22}{kind:<16}{1000 * t_large:>10.1f}{ratio:>14.1f}")
    print(f"slowest parser on 1 MB: {1000 * worst:.1f} ms")


if __name__ == "__main__":
    main()
