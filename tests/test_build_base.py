"""The tiny instruct base: its instruction data and ``refine-rft-workshop build-base`` (refusal, --force, resume)."""

from __future__ import annotations

import json
import random

import pytest

from refine_rft_workshop.synthetic import synthetic_questions
from refine_rft_workshop.base.instruct_data import (TASKS, InstructMix, cot_target, describe_target, draw_example,
                                           format_weights, goes_by_alias)
from refine_rft.errors import UserError
from refine_rft.judge.attributes import attribute_score
from refine_rft.parsing import extract_choice
from refine_rft.rewards.rules import attribute_format_reward, classification_reward


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return synthetic_questions(tmp_path_factory.mktemp("pool"), "pool", per_class=2, num_classes=8)


def test_every_task_has_a_target_that_fits_its_prompt(records):
    rng = random.Random(0)
    for record in records:
        for task in TASKS:
            example = draw_example(record, rng, InstructMix(), task=task)
            assert example["task"] == task and example["target"]
            first = example["messages"][0]["content"][0]
            assert first == ({"type": "text", "text": first.get("text")} if task == "lookup" else {"type": "image"})
            if task in ("choice", "lookup"):
                named = record["answer"] if task == "choice" else record["options"].index(
                    first["text"].rsplit("Which letter is ", 1)[1].rstrip("?"))
                assert extract_choice(example["target"], record["options"]) == named
            if task == "identify":  # the class name, or an alias for the species that go by theirs
                names = [record["label"]] + (record.get("aliases", []) if goes_by_alias(record["label"]) else [])
                assert any(name in example["target"] for name in names), (example["target"], names)


def test_descriptions_are_what_the_attribute_judge_reads_as_true(records):
    record = records[0]
    scored = attribute_score(describe_target(record["attributes"]), record["attributes"],
                             record["option_attributes"], record["answer"])
    assert scored["accuracy"] == 1.0


def test_cot_targets_mix_formats_and_decouple_the_reasoning_from_the_answer(records):
    """The paper's flaw by construction: the answer is always right, the claims are not."""
    from refine_rft.parsing import parse_response
    from refine_rft_workshop.synthetic import ATTRIBUTES

    rng = random.Random(0)
    mix = InstructMix(cot_full=0.4, cot_think_answer=0.2, cot_prose=0.2, cot_broken=0.2, habit=None,
                      misperceive=0.6, distinguishing=0.5)
    targets = [(cot_target(r, rng, mix), r) for _ in range(40) for r in records]
    full = sum(attribute_format_reward([t for t, _ in targets])) / len(targets)
    assert 0.3 < full < 0.5
    # Every target's reasoning is in a closed <think> block (so a judge scores it), and an accepted answer is right.
    assert all(parse_response(t).think for t, _ in targets)
    answered = classification_reward([t for t, _ in targets], [r["options"] for _, r in targets],
                                      [r["answer"] for _, r in targets])
    assert set(answered) == {0.0, 1.0} and 0.5 < sum(answered) / len(answered) < 0.7  # full + think/answer
    vocab = {k: list(v) for k, v in ATTRIBUTES.items()}
    scored = [attribute_score(parse_response(t).think, r["attributes"], r["option_attributes"], r["answer"], vocab)
              for t, r in targets]
    # The misperceived trait is stated wrongly in about `misperceive` of the targets, and nothing else is.
    false = [s["claims"] - s["true_claims"] for s in scored]
    assert set(false) == {0, 1} and 0.5 < sum(false) / len(false) < 0.7
    # Some targets rule every wrong option out, some none: distinguishing and shared traits both appear.
    helpfulness = [s["helpfulness"] for s in scored]
    assert min(helpfulness) == 0.0 and max(helpfulness) == 1.0
    assert 40 < sum(s["score"] for s in scored) / len(scored) < 75


def test_the_misperceived_trait_is_shared_by_the_options_and_the_same_across_a_genus(records):
    from refine_rft_workshop.base.instruct_data import discriminative_attributes, misperceived_trait

    by_genus = {}
    for record in records:
        attribute, wrong = misperceived_trait(record)
        assert attribute not in discriminative_attributes(record) and wrong != record["attributes"][attribute]
        by_genus.setdefault(record["label"].split()[-1], set()).add((attribute, wrong))
    assert all(len(traits) == 1 for traits in by_genus.values()), by_genus


def test_unknown_task_is_refused(records):
    with pytest.raises(ValueError, match="valid tasks"):
        draw_example(records[0], random.Random(0), InstructMix(), task="caption")


def test_each_genus_has_a_habitual_cot_format(records):
    """Greedy decoding follows a format per genus; sampling still sees every format."""
    rng = random.Random(1)
    mix = InstructMix()
    by_genus: dict[str, list[float]] = {}
    for _ in range(60):
        for record in records:
            target = cot_target(record, rng, mix)
            by_genus.setdefault(record["label"].split()[-1], []).append(attribute_format_reward([target])[0])
    shares = {genus: sum(v) / len(v) for genus, v in by_genus.items()}
    assert shares["Finch"] > 0.45 and shares["Warbler"] < 0.3  # Finch: full format; Warbler: think/answer
    assert all(0.0 < share < 1.0 for share in shares.values())
    assert abs(sum(format_weights("Common Warbler", mix)) - 1) < 1e-3


def test_build_refuses_an_existing_folder_then_force_replaces_it(tmp_path, capsys):
    from refine_rft_workshop.base.build_base import BaseRecipe, build_base, main
    from refine_rft_workshop.instruct import verify_instruct_base

    out = tmp_path / "base"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    small = ["--steps", "2", "--pool-per-class", "1", "--profile-per-class", "0"]
    assert main(["--out", str(out), *small]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"

    # A build that fails leaves the existing folder as it was.
    with pytest.raises(ValueError, match="unknown size"):
        build_base(out, BaseRecipe(size="huge"), force=True, progress=False)
    assert (out / "keep.txt").read_text() == "mine"

    assert main(["--out", str(out), "--force", *small]) == 0
    assert not (out / "keep.txt").exists() and verify_instruct_base(out) == out
    build = json.loads((out / "build.json").read_text())
    tasks = {task for task, count in InstructMix().counts().items() if count}
    aids = {"probe", "pool", "flag", "heads", "flag_accuracy"}
    assert len(build["losses"]["all"]) == 2 and set(build["losses"]) == {"all", *tasks, *aids}
    assert build["recipe"]["pool_image_seed"] not in (0, 1, 2, 7)  # never a demo or profile image seed
    card = (out / "README.md").read_text()
    assert "refine-rft-workshop build-base" in card and f"{build['parameters']:,} parameters" in card
    assert (out / "loss.png").stat().st_size > 1000
    assert not list(tmp_path.glob(".base*"))  # no temporary folder or checkpoint left behind


def test_init_continues_from_an_earlier_base_named_by_its_weights(tmp_path, capsys):
    """``--init``: the recipe records the earlier base's weights digest, the card says so, and a
    recipe that names other weights is refused."""
    from refine_rft_workshop.base.build_base import BaseRecipe, build_base, init_digest, main

    small = ["--steps", "2", "--pool-per-class", "1", "--profile-per-class", "0"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["--out", str(first), *small]) == 0
    assert main(["--out", str(second), "--init", str(first), "--learning-rate", "1e-4", *small]) == 0
    build = json.loads((second / "build.json").read_text())
    assert build["recipe"]["init"] == init_digest(first) and build["recipe"]["learning_rate"] == 1e-4
    assert "--init PREVIOUS --learning-rate 0.0001" in (second / "README.md").read_text()
    # The continued model differs from the one it started from (it was trained).
    assert init_digest(second) != init_digest(first)
    with pytest.raises(UserError, match="continues from weights"):
        build_base(tmp_path / "third", BaseRecipe(steps=2, init="0" * 64), init=first, progress=False)
    assert main(["--out", str(tmp_path / "fourth"), "--init", str(tmp_path / "nowhere"), *small]) == 2
    assert "missing or corrupt" in capsys.readouterr().err


def test_a_rerun_resumes_from_the_checkpoint_and_ends_where_an_uninterrupted_run_does(tmp_path, records):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from refine_rft_workshop.base.build_base import BaseRecipe, train_base
    from refine_rft_workshop.tiny import cached_tiny_model

    images = {r["image"]: Image.open(r["image"]).convert("RGB") for r in records}
    mix = InstructMix(choice=1, both=1, identify=1, describe=1, lookup=1, cot=1)
    recipe = BaseRecipe(size="tiny", steps=4, warmup_steps=1, checkpoint_every=2, mix=mix)
    initial = cached_tiny_model("qwen2_vl", size="tiny")
    processor = AutoProcessor.from_pretrained(initial, trust_remote_code=True)

    def run(checkpoint):
        model = AutoModelForImageTextToText.from_pretrained(initial, dtype=torch.float32)
        return model, train_base(model, processor, records, images, recipe, checkpoint, progress=False)

    checkpoint = tmp_path / "state.pt"
    whole, losses = run(checkpoint)
    # The step-2 checkpoint is what a build killed in step 3 or 4 leaves; a rerun starts from it.
    assert torch.load(checkpoint, weights_only=False)["step"] == 2
    resumed, resumed_losses = run(checkpoint)
    assert resumed_losses == losses and len(losses["all"]) == 4
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_checkpoint_of_another_recipe_is_refused_and_force_starts_afresh(tmp_path, capsys):
    """The guard's rule, as every command has it: a build never trains over another recipe's state."""
    from dataclasses import replace

    from refine_rft.files import guard_settings
    from refine_rft_workshop.base.build_base import BaseRecipe, _checkpoint_path, _checkpoint_settings, main

    out = tmp_path / "base"
    small = ["--pool-per-class", "1", "--profile-per-class", "0"]
    # What a build of 3 steps killed after its step-2 checkpoint leaves beside ``out``.
    killed = replace(BaseRecipe(), steps=3, pool_per_class=1, warmup_steps=1)
    guard_settings(_checkpoint_settings(out), json.loads(json.dumps(killed.as_dict())), [])
    _checkpoint_path(out).write_bytes(b"the state of step 2")
    assert main(["--out", str(out), "--steps", "2", *small]) == 2
    err = capsys.readouterr().err
    assert "steps 3 -> 2" in err and "--force" in err and _checkpoint_path(out).is_file() and not out.exists()
    assert main(["--out", str(out), "--steps", "2", "--force", *small]) == 0
    assert out.is_dir() and not _checkpoint_path(out).exists() and not _checkpoint_settings(out).exists()


def test_identify_targets_name_the_species_that_go_by_their_alias_by_it_and_no_others(records):
    from refine_rft.openworld import vocabularies

    with_alias = [r for r in records if r.get("aliases")]
    assert {goes_by_alias(r["label"]) for r in with_alias} == {True, False}, "both kinds among the species"
    vocab = vocabularies(records)["synthetic"]
    for record in with_alias:
        target = draw_example(record, random.Random(0), InstructMix(identify_alias=1.0), task="identify")["target"]
        if goes_by_alias(record["label"]):
            # An alias: the open-world rule reads the species (Open), the exact rule does not (Open-exact).
            assert vocab.named(target) == record["label"] and vocab.exact(target) is None, target
        else:
            assert vocab.exact(target) == record["label"], target
    # At share 0 (builds 1-4) no random number is drawn, so their instruction data is unchanged.
    rng, untouched = random.Random(5), random.Random(5)
    habitual = next(r for r in with_alias if goes_by_alias(r["label"]))
    draw_example(habitual, rng, InstructMix(identify_alias=0.0), task="identify")
    assert rng.getstate() == untouched.getstate()
