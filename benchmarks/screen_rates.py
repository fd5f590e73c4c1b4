"""How the judge's phrase screen does: false positives on benign FGVR wording, catches on attacks.

    python benchmarks/screen_rates.py [--choices-dir fgvr-choices]   # every flagged / missed held-out sentence, then the rates

Two pairs of corpora, reported apart:

- *held out* (:mod:`refine_rft_workshop.testing.screen_heldout`): 300+ sentences of the six domains'
  own wording (aircraft specifications, car reviews, dog and cat breed standards, field guides,
  flower keys, and reasoning about them), and attacks of kinds the tuning corpus lacks (other
  languages, base64, letter-spaced words, role prefixes, verdicts in prose). Nothing was tuned on
  them: these are the figures to quote.
- *tuning* (:mod:`refine_rft_workshop.testing.screen_corpus`): written alongside the patterns.

A third corpus is the category names themselves, which is what an open-world ``<answer>`` block holds
(the open verifier scores a flagged answer 0 without a call): every class name and alias of the shipped
alias table, and with ``--choices-dir`` every class and option of the published choice files
(``bird-200.json``, ...), as written and as shown (``Black_footed_Albatross`` and "Black footed Albatross").

The last two lines are the held-out false-positive rate and the held-out attack catch rate. The screen
only flags and counts by default (``judge.reject_injections: false``); these rates say what turning
``reject_injections`` on would zero by mistake and what it would still let through to the fence.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from refine_rft.judge.prompts import addresses_the_judge
from refine_rft_workshop.testing import screen_heldout
from refine_rft_workshop.testing.screen_corpus import screen_rates


def category_names(choices_dir: str | None) -> set[str]:
    """Every class name and alias of the shipped alias table, and of ``choices_dir``'s choice files every
    class and option, each as written and as shown."""
    from refine_rft.data.aliases import TABLE, shipped_aliases
    from refine_rft.data.choices import read_choices
    from refine_rft.data.readers import pretty_name

    names = set()
    for dataset in json.loads(TABLE.read_text(encoding="utf-8"))["datasets"]:
        for label, aliases in shipped_aliases(dataset).items():
            names.update([label, *aliases])
    for path in sorted(Path(choices_dir).glob("*.json")) if choices_dir else []:
        for choice in read_choices(path):
            names.update(choice.options)
            names.add(choice.groundtruth)
    return names | {pretty_name(name) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--choices-dir", help="the published choice files (bird-200.json, ...), to screen their names too")
    args = parser.parse_args()
    tuned = screen_rates(addresses_the_judge)
    held = screen_rates(addresses_the_judge, benign=screen_heldout.BENIGN, attacks=screen_heldout.ATTACKS)
    domain_of = dict((text, domain) for domain, text in screen_heldout.BENIGN_BY_DOMAIN)
    kind_of = dict((text, kind) for kind, text in screen_heldout.ATTACKS_BY_KIND)
    for text in held["flagged"]:
        print(f"false positive ({domain_of[text]}): {text!r}")
    for text in held["missed"]:
        print(f"missed attack ({kind_of[text]}): {text!r}")
    kinds, caught = Counter(kind_of.values()), Counter(kind_of[t] for t in held["missed"])
    print("held-out catch rate by kind: " + ", ".join(
        f"{kind} {kinds[kind] - caught[kind]}/{kinds[kind]}" for kind in kinds))
    print(f"tuning corpus: false positives {tuned['false_positives']}/{tuned['benign']} = "
          f"{tuned['false_positive_rate']:.3f}, attacks caught {tuned['caught']}/{tuned['attacks']} = "
          f"{tuned['catch_rate']:.3f}")
    names = category_names(args.choices_dir)
    flagged_names = sorted(name for name in names if addresses_the_judge(name))
    print(f"category names flagged: {len(flagged_names)}/{len(names)}" + (f" {flagged_names[:10]}" if flagged_names else ""))
    print(f"held-out benign false-positive rate: {held['false_positives']}/{held['benign']} = "
          f"{held['false_positive_rate']:.3f}")
    print(f"held-out attack catch rate: {held['caught']}/{held['attacks']} = {held['catch_rate']:.3f}")


if __name__ == "__main__":
    main()
