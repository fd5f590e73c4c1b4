"""How the judge's phrase screen does: false positives on benign FGVR reasoning, catches on attacks.

    python benchmarks/screen_rates.py            # the two rates, then every flagged / missed sentence

The corpora are :mod:`refine_rft_workshop.testing.screen_corpus` (deterministic); the test suite asserts the
false-positive rate is 0.
"""

from __future__ import annotations

from refine_rft.judge.prompts import addresses_the_judge
from refine_rft_workshop.testing.screen_corpus import screen_rates


def main() -> None:
    rates = screen_rates(addresses_the_judge)
    for text in rates["flagged"]:
        print(f"false positive: {text!r}")
    for text in rates["missed"]:
        print(f"missed attack:  {text!r}")
    print(f"benign false-positive rate: {rates['false_positives']}/{rates['benign']} = "
          f"{rates['false_positive_rate']:.3f}")
    print(f"attack catch rate: {rates['caught']}/{rates['attacks']} = {rates['catch_rate']:.3f}")


if __name__ == "__main__":
    main()
