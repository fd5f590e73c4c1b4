"""The starting profile of an instruct base, measured on fresh synthetic questions.

The paper's policy starts as an instruct MLLM that answers Choice well (Qwen2-VL-7B: 79.5 %), the
CoT prompt worse (53.9 %), and follows the tag format only part of the time. The tiny base must
play that role: :data:`TARGETS` are the ranges it should fall in, measured here with greedy
decoding on questions whose images no build has seen (image seed :data:`PROFILE_IMAGE_SEED`).

It must also start with the paper's flaw, "seemingly correct answers often rely on flawed
reasoning" (Qwen2-VL-7B: RSC_A 65.0, RSC_U 54.7): the attribute judge's RSC_U of its *right* CoT
answers at most 75, at most 15 points between right and wrong answers' RSC_U, and RSC_U overall
below RSC_A + 10. Otherwise R_cls alone already rewards true claims, and the demo cannot tell R_cot's
effect from R_cls's.

>>> good = {"choice": 70.0, "top_letter": 30.0, "both": 50.0, "cot_format": 40.0, "cot": 40.0,
...         "RSC_A": 40.0, "RSC_U": 45.0, "RSC_U_right": 50.0, "RSC_U_wrong": 42.0}
>>> missed_targets(good)
[]
>>> missed_targets(dict(good, cot_format=90.0, cot=75.0, RSC_U_right=96.0, RSC_U=71.0))
['cot_format 90.0 not in 20-70', 'RSC_U_right 96.0 not in 0-75', 'cot 75.0 not below choice 70.0', 'RSC_U_wrong 42.0 is 54.0 below RSC_U_right 96.0 (at most 15)', 'RSC_U 71.0 not below RSC_A 40.0 + 10']
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

PROFILE_IMAGE_SEED = 7
# metric -> (low, high), in percent; "cot" must also stay below "choice".
TARGETS = {"choice": (60, 100), "top_letter": (0, 40), "both": (40, 100), "cot_format": (20, 70),
           "cot": (25, 100), "RSC_U": (30, 80), "RSC_U_right": (0, 75)}
# Right and wrong CoT answers' RSC_U may differ by at most this much (either way); RSC_U overall
# must stay below RSC_A plus RSC_U_ABOVE_RSC_A.
MAX_USEFULNESS_GAP = 15
RSC_U_ABOVE_RSC_A = 10
MAX_NEW_TOKENS = {"choice": 8, "both": 48, "cot": 128, "open": 32}


def missed_targets(profile: dict) -> list[str]:
    """The targets a measured profile misses, one line each (empty: all met)."""
    missed = [f"{key} {profile[key]} not in {low}-{high}" for key, (low, high) in TARGETS.items()
              if not low <= profile[key] <= high]
    if profile["cot"] >= profile["choice"]:
        missed.append(f"cot {profile['cot']} not below choice {profile['choice']}")
    right, wrong = profile["RSC_U_right"], profile["RSC_U_wrong"]
    if abs(right - wrong) > MAX_USEFULNESS_GAP:
        where = "below" if wrong < right else "above"
        missed.append(f"RSC_U_wrong {wrong} is {abs(right - wrong):.1f} {where} RSC_U_right {right} "
                      f"(at most {MAX_USEFULNESS_GAP})")
    if profile["RSC_U"] >= profile["RSC_A"] + RSC_U_ABOVE_RSC_A:
        missed.append(f"RSC_U {profile['RSC_U']} not below RSC_A {profile['RSC_A']} + {RSC_U_ABOVE_RSC_A}")
    return missed


def _mean(values) -> float:
    values = list(values)
    return round(sum(values) / len(values), 1) if values else 0.0


def profile_of(rows: list[dict]) -> dict:
    """The profile of prediction rows (styles choice, both, cot, and open when there are any) with
    the attribute judge's RSC (the demo's judge: every value a synthetic attribute can take is a
    known claim), RSC_U split by whether the CoT answer was right (RSC_A 100), and open-world
    accuracy with the species' aliases accepted (``open``) and without (``open_exact``)."""
    from refine_rft.evaluate.score import parsed_choice
    from refine_rft.judge import make_judge
    from refine_rft.judge.config import JudgeConfig
    from refine_rft.rewards.rules import attribute_format_reward

    by_style = {style: [r for r in rows if r["style"] == style] for style in ("choice", "both", "cot")}
    correct = {style: [parsed_choice(style, r["response"], r["options"]) == r["answer"] for r in style_rows]
               for style, style_rows in by_style.items()}
    letters = Counter(parsed_choice("choice", r["response"], r["options"]) for r in by_style["choice"])
    from refine_rft_workshop.synthetic import judge_vocabulary

    judge = make_judge(JudgeConfig.from_dict({"backend": "attributes", **judge_vocabulary()}))

    async def judge_all():
        return [await judge.rsc(r) for r in by_style["cot"]]

    rsc = [s for s in asyncio.run(judge_all()) if s is not None]
    right = [s["RSC_U"] for s in rsc if s["RSC_A"] == 100.0]
    wrong = [s["RSC_U"] for s in rsc if s["RSC_A"] != 100.0]
    return {
        "questions": len(by_style["choice"]),
        "choice": _mean(100 * c for c in correct["choice"]),
        "letters": {("ABCD"[k] if k is not None else "none"): n for k, n in sorted(letters.items(), key=str)},
        # The share of the most frequent letter among all answers (unparseable ones count as none).
        "top_letter": round(100 * max([n for k, n in letters.items() if k is not None], default=0)
                            / max(1, len(by_style["choice"])), 1),
        "both": _mean(100 * c for c in correct["both"]),
        "cot": _mean(100 * c for c in correct["cot"]),
        "cot_format": _mean(100 * f for f in attribute_format_reward([r["response"] for r in by_style["cot"]])),
        **{key: _mean(s[key] for s in rsc) for key in ("RSC_A", "RSC_U", "RSC_O")},
        "RSC_U_right": _mean(right), "RSC_U_wrong": _mean(wrong), "cot_right": len(right),
        **_open_profile([r for r in rows if r["style"] == "open"]),
    }


def _open_profile(rows: list[dict]) -> dict:
    """``{"open", "open_exact"}`` of open-style rows, read against every synthetic species and alias."""
    if not rows:
        return {}
    from refine_rft.evaluate.score import score_rows
    from refine_rft_workshop.synthetic import synthetic_class_list

    classes = synthetic_class_list(len({r["label"] for r in rows}))
    scores = score_rows(rows, class_lists={r["dataset"]: classes for r in rows})["open"]
    return {"open": round(scores["average"], 1), "open_exact": round(scores["exact_average"], 1)}


def measure_profile(model: str, folder: str | Path, image_seed: int = PROFILE_IMAGE_SEED, per_class: int = 10,
                    classes: int = 24, batch_size: int = 48) -> dict:
    """Draw ``per_class`` fresh test questions per species with ``image_seed`` into ``folder``,
    answer them greedily with ``model`` under Choice, Both, CoT and the open question, and return the profile."""
    from refine_rft.data.records import prediction_key, read_rows, require_all, validate_prediction
    from refine_rft.files import write_jsonl_atomic
    from refine_rft_workshop.synthetic import synthetic_questions
    from refine_rft.evaluate import EvalSettings, generate_predictions
    from refine_rft.resolution import choose_resolution

    folder = Path(folder)
    rows = synthetic_questions(folder / "data", "test", per_class, num_classes=classes, image_seed=image_seed)
    test = write_jsonl_atomic(folder / "data" / "test.jsonl", rows)
    settings = EvalSettings(model, choose_resolution(None, None, None, model), batch_size=batch_size,
                            max_new_tokens=MAX_NEW_TOKENS, trust_remote_code=True)  # its processor file
    predictions = generate_predictions([test], ["choice", "both", "cot", "open"], folder / "eval", settings)
    rows = require_all(read_rows([predictions], validate_prediction, key=prediction_key))
    return {"image_seed": image_seed, **profile_of(rows)}
