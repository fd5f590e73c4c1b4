"""The toy teacher (workshop): its knobs do what they say, and training reaches it through the real
teacher client and health check, over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

from refine_rft.errors import ConfigError
from refine_rft.files import read_jsonl
from refine_rft_workshop.synthetic import ATTRIBUTES, attribute_phrase
from refine_rft_workshop.teacher import MODEL_NAME, ToyTeacher, ToyTeacherServer, judge_settings

IMAGE = {"body_color": "crimson", "wing_color": "black", "beak_shape": "short", "tail_shape": "fan",
         "crest": "crested", "breast_pattern": "plain"}
RECORD = {"id": "q0", "answer": 0, "attributes": IMAGE,
          "option_attributes": [IMAGE, {**IMAGE, "wing_color": "white"}, {**IMAGE, "crest": "no crest"},
                                {**IMAGE, "beak_shape": "long"}]}
TRUE = "<think>Black wings and a crest.</think><answer>A</answer>"


def test_a_perfect_teacher_agrees_with_the_attribute_evaluator():
    from refine_rft.judge.attributes import attribute_score
    from refine_rft.parsing import parse_response

    perfect = ToyTeacher(misread=0.0, verbosity=0.0)
    for response in (TRUE, "<think>Short beak, azure wings.</think><answer>A</answer>",
                     "<think>A crimson body.</think><attribute>plain breast</attribute><answer>A</answer>", "B"):
        parsed = parse_response(response)
        text = " ".join(p for p in (parsed.think, parsed.attribute) if p)
        expected = attribute_score(text, IMAGE, RECORD["option_attributes"], 0,
                                   {k: list(v) for k, v in ATTRIBUTES.items()})["score"]
        assert perfect.score(response, RECORD) == pytest.approx(expected)


def test_misread_is_the_share_of_traits_misread_and_the_same_every_time():
    records = [{"id": f"q{i}", "attributes": IMAGE} for i in range(500)]
    for rate in (0.0, 0.2, 0.4, 1.0):
        teacher = ToyTeacher(misread=rate)
        wrong = sum(teacher.beliefs(r)[k] != v for r in records for k, v in IMAGE.items())
        assert abs(wrong / (len(records) * len(IMAGE)) - rate) < 0.03
        assert all(teacher.beliefs(r) == teacher.beliefs(r) for r in records[:20])
    # A misread picture makes a true claim look false: a teacher that misreads everything gives 0.
    assert ToyTeacher(misread=1.0, verbosity=0.0).score(TRUE, RECORD) == 0.0


def test_what_it_cannot_see_neither_earns_nor_costs():
    blind = ToyTeacher(misread=0.0, verbosity=0.0, sees=("crest",))
    assert blind.beliefs(RECORD) == {"crest": "crested"}
    # "black wings" cannot be checked; "a crest" can, and rules out the crestless option only.
    assert blind.score(TRUE, RECORD) == pytest.approx(100 * (0.5 + 0.5 / 3))
    assert blind.score("<think>White wings and a crest.</think><answer>A</answer>", RECORD) == \
        blind.score(TRUE, RECORD)


def test_verbosity_pays_for_length_whatever_it_says():
    talker = ToyTeacher(misread=0.0, verbosity=0.5, verbose_words=10)
    babble = "<think>" + "this bird is a bird " * 3 + "</think><answer>A</answer>"
    assert talker.score(babble, RECORD) == 50.0  # no claim: nothing true, all of the length share
    assert ToyTeacher(misread=0.0, verbosity=0.0).score(babble, RECORD) == 0.0


@pytest.mark.parametrize("knobs, message", [({"misread": 1.5}, "misread must be in [0, 1]"),
                                            ({"verbosity": -0.1}, "verbosity"),
                                            ({"sees": ("wing_colour",)}, "unknown traits ['wing_colour']")])
def test_bad_knobs_are_refused_by_name(knobs, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ToyTeacher(**knobs)


def test_training_reaches_the_toy_teacher_through_the_real_client(synthetic_train_jsonl):
    """The judge training builds from the demo's settings (backend openai, Fig. 3's prompt) passes
    the health check (a real judgement and the sight check) and gets, for each training picture, the
    toy teacher's score of that picture's question; an unknown picture scores 0."""
    from PIL import Image

    from refine_rft.judge import JudgeConfig, make_judge
    from refine_rft.judge.health import check_endpoints

    records = list(read_jsonl(synthetic_train_jsonl))
    teacher = ToyTeacher(misread=0.4)
    with ToyTeacherServer(teacher, synthetic_train_jsonl) as server:
        config = JudgeConfig.from_dict(judge_settings(server.url))
        assert config.model == MODEL_NAME and config.prompt == "paper"
        check_endpoints(config)
        responses = ["<think>" + ", ".join(attribute_phrase(k, v) for k, v in r["attributes"].items())
                     + ".</think><answer>A</answer>" for r in records]

        async def judge_all():
            judge = make_judge(config)
            try:
                return await judge.reasoning_scores(
                    [{**r, "response": text} for r, text in zip(records, responses)]
                    + [{"id": "unknown", "image": Image.new("RGB", (112, 112), (0, 255, 0)), "response": TRUE}])
            finally:
                await judge.aclose()

        scores = asyncio.run(judge_all())
    expected = [teacher.score(text, r) for r, text in zip(records, responses)]
    assert scores[:-1] == pytest.approx(expected) and scores[-1] == 0.0
    assert len(set(expected)) > 1  # the misreads differ between pictures


def test_refine_rft_judge_warns_when_the_rsc_judge_is_the_teacher(tmp_path, capsys):
    """A run trained with the attribute judge's R_cot, judged by the attribute judge: warned; trained
    with the toy teacher: not warned."""
    import yaml

    from refine_rft.judge.cli import warn_if_judge_is_the_teacher
    from refine_rft.judge.config import JudgeConfig

    for teacher, warned in (({"backend": "attributes"}, True),
                            ({"backend": "openai", "model": MODEL_NAME, "base_urls": ["http://x/v1"]}, False)):
        run, folder = tmp_path / f"run{warned}", tmp_path / f"eval{warned}"
        run.mkdir(), folder.mkdir()
        (run / "refine_rft_config.yaml").write_text(yaml.safe_dump(
            {"script": {"rewards": ["attribute_format", "classification", "reasoning"], "judge": teacher}}))
        (folder / "run_settings.json").write_text(json.dumps({"model": "tiny", "adapter": str(run)}))
        assert warn_if_judge_is_the_teacher(JudgeConfig(backend="attributes"), folder / "predictions.jsonl") is warned
        assert ("is the teacher that gave R_cot" in capsys.readouterr().err) is warned
