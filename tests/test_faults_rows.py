"""Rows and recipes that used to ruin a run, through the real command line: every row is checked
before it costs anything (field types, prompt length, image size), every image kind is opened the
same way by every stage, and bad recipe values fail in one line with exit status 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import refine_rft
from refine_rft.cli import main as refine_rft_main
from refine_rft.parsing import LETTERS
from refine_rft_workshop import RECIPES as TINY_RECIPES
from refine_rft_workshop import tiny_instruct_path
from refine_rft_workshop.models import resolve_model_path as tiny
from refine_rft_workshop.synthetic import synthetic_questions
from refine_rft_workshop.testing.commands import run_in_process

SRC = Path(refine_rft.__file__).resolve().parents[1]
REPO = SRC.parent
RECIPE = TINY_RECIPES / "refine_rft.yaml"
MODEL = ["--model_name_or_path", str(tiny_instruct_path())]
# Prints the command's peak memory after it ends (the whole process: model, images, everything).
MEASURED = ("import resource, sys; from refine_rft.cli import main; status = main(sys.argv[1:]); "
            "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
            "sys.exit(status)")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``refine-rft ARGS`` in a fresh interpreter, as a user runs it, reporting its peak memory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", MEASURED, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def peak_mb(result: subprocess.CompletedProcess) -> float:
    line = [line for line in result.stderr.splitlines() if line.startswith("peak_rss_kb ")][-1]
    return int(line.split()[1]) / 1024


def one_line_error(stderr: str, status: int, command: str) -> str:
    assert status == 2, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith(f"refine-rft {command}: error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# --- Image kinds: one of each, opened alike by every stage ------------------------------------------------

def image_kinds(folder: Path) -> dict[str, Path]:
    """One image of each kind that a plain ``convert("RGB")`` gets wrong, and what it should look like."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    # 16-bit grey, a mid-grey ramp: a plain conversion clips every value above 255 to white.
    ramp = np.tile(np.linspace(16384, 49152, 64, dtype=np.uint16), (48, 1))
    Image.fromarray(ramp).save(paths.setdefault("16bit", folder / "grey16.png"))
    # A palette with a transparent colour: the transparent pixels hold black in the palette.
    palette = Image.new("P", (64, 48), 0)
    palette.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    palette.paste(1, (0, 0, 32, 48))
    palette.save(paths.setdefault("palette", folder / "palette.png"), transparency=0)
    # RGBA: the right half transparent, its hidden colour black.
    rgba = Image.new("RGBA", (64, 48), (30, 160, 30, 255))
    rgba.paste((0, 0, 0, 0), (32, 0, 64, 48))
    rgba.save(paths.setdefault("alpha", folder / "alpha.png"))
    # CMYK JPEG, pure cyan.
    Image.new("CMYK", (64, 48), (255, 0, 0, 0)).save(paths.setdefault("cmyk", folder / "cmyk.jpg"), quality=95)
    # A JPEG stored sideways (EXIF orientation 6: rotate 90 degrees clockwise to view): 64 wide, 48 high as stored,
    # 48 x 64 upright, red on the stored left edge, which is the top when upright.
    sideways = Image.new("RGB", (64, 48), (240, 240, 240))
    sideways.paste((220, 20, 20), (0, 0, 8, 48))
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(paths.setdefault("exif", folder / "exif.jpg"), quality=95, exif=exif)
    return paths


def check_semantics(kind: str, image: Image.Image) -> None:
    """What a viewer sees in each kind of image."""
    pixels = np.asarray(image, dtype=np.int64)
    assert image.mode == "RGB"
    if kind == "16bit":
        assert 80 < pixels.mean() < 176 and pixels.max() < 200  # mid grey, not all white
    elif kind == "palette":
        assert tuple(pixels[10, 10]) == (200, 30, 30) and tuple(pixels[10, 50]) == (255, 255, 255)
    elif kind == "alpha":
        assert tuple(pixels[10, 10]) == (30, 160, 30) and tuple(pixels[10, 50]) == (255, 255, 255)
    elif kind == "cmyk":
        red, green, blue = pixels.reshape(-1, 3).mean(axis=0)
        assert red < 40 and green > 200 and blue > 200  # cyan
    elif kind == "exif":
        assert image.size == (48, 64)
        assert pixels[:6, :, 0].mean() > 180 and pixels[:6, :, 1].mean() < 80  # the red edge is on top
        assert pixels[-6:, :, 1].mean() > 200


def question(qid: str, image: Path, **changes) -> dict:
    return {"id": qid, "dataset": "synthetic", "image": str(image), "label": "Common Finch",
            "options": ["Striped Finch", "Common Finch", "Long-billed Finch", "Fork-tailed Finch"], "answer": 1,
            "noun": "birds", **changes}


def test_every_image_kind_reaches_every_stage_as_the_same_upright_rgb_pixels(tmp_path):
    from refine_rft.data.images import open_image
    from refine_rft.evaluate.generate import _open_image, vllm_requests
    from refine_rft.judge.images import load_image
    from refine_rft.resolution import ImageResolution
    from refine_rft.train.data import grpo_rows, to_dataset

    paths = image_kinds(tmp_path)
    records = [question(kind, path) for kind, path in paths.items()]
    resolution = ImageResolution(min_pixels=28 * 28, max_pixels=56 * 56)

    class Processor:  # vLLM's requests need only the chat template
        def apply_chat_template(self, messages, **kwargs):
            return "<prompt>"

    training = to_dataset(grpo_rows(records, "cot"), resolution)
    training_unresized = to_dataset(grpo_rows(records, "cot"))
    served = vllm_requests(Processor(), records, "cot", resolution)
    for index, (kind, path) in enumerate(paths.items()):
        seen = open_image(path)
        check_semantics(kind, seen)
        fitted = resolution.fit(seen)
        same = {
            "train (GRPO/SFT dataset)": training[index]["image"],
            "eval and predict (hf)": _open_image(records[index], resolution),
            "eval (vllm)": served[index]["multi_modal_data"]["image"],
        }
        for stage, image in same.items():
            assert image.tobytes() == fitted.tobytes() and image.size == fitted.size, (kind, stage)
        # The judge gets the file path (refine-rft judge) or what the trainer decoded (the R_cot reward).
        for stage, image in {"judge (file)": load_image(str(path)), "judge (from training)":
                             load_image(training_unresized[index]["image"])}.items():
            assert image.tobytes() == seen.tobytes(), (kind, stage)


def test_large_images_are_reduced_on_decode_or_refused_before_decoding(tmp_path):
    from refine_rft.data.images import decode_limit, image_problem, open_image

    jpeg = tmp_path / "wide.jpg"
    Image.new("L", (8000, 4000), 90).save(jpeg, quality=80)
    reduced = open_image(jpeg, max_pixels=12544)
    assert reduced.size == (1000, 500)  # decoded at 1/8 scale: never 32 Mpx of pixels
    assert image_problem(str(jpeg), max_pixels=12544) is None
    png = tmp_path / "bomb.png"
    Image.new("L", (12000, 12000)).save(png)  # 144 Mpx in about 150 KB
    problem = image_problem(str(png))
    assert problem.startswith(f"image {png} is 12000 x 12000 pixels, more than the {decode_limit(None):,}"), problem
    with pytest.raises(ValueError, match="12000 x 12000 pixels"):
        open_image(png)


# --- Rows: checked when read, rejected with id, file, line and reason ---------------------------------------

def hostile_questions(folder: Path, good: dict) -> dict[str, dict]:
    Image.new("L", (12000, 12000)).save(folder / "huge.png")
    row = lambda qid, **changes: {**good, "id": qid, **changes}  # noqa: E731 - a table of rows
    long_name = "Finch" + "x" * 100_000
    return {
        "dataset-null": row("dataset-null", dataset=None),
        "noun-nan": row("noun-nan", noun=math.nan),
        "noun-list": row("noun-list", noun=["birds"]),
        "label-null": row("label-null", label=None),
        "options-duplicate": row("options-duplicate", options=[good["label"], good["label"]], answer=0),
        "options-empty-name": row("options-empty-name", options=[good["label"], " "], answer=0),
        "options-too-many": row("options-too-many", answer=0,
                                options=[good["label"], *(f"class {i}" for i in range(len(LETTERS)))]),
        "options-number": row("options-number", options=[good["label"], 7], answer=0),
        "option-100k-characters": row("option-100k-characters", options=[good["label"], long_name], answer=0),
        "image-12000x12000": row("image-12000x12000", image=str(folder / "huge.png")),
    }


REASONS = {
    "dataset-null": "field 'dataset' must be a non-empty string, got None",
    "noun-nan": "field 'noun' must be a non-empty string, got nan",
    "noun-list": "field 'noun' must be a non-empty string, got ['birds']",
    "label-null": "field 'label' must be a non-empty string, got None",
    "options-duplicate": "field 'options' names ['Common Finch'] more than once",
    "options-empty-name": f"field 'options' must be a list of 2 to {len(LETTERS)} non-empty class names",
    "options-too-many": f"field 'options' must be a list of 2 to {len(LETTERS)} non-empty class names",
    "options-number": f"field 'options' must be a list of 2 to {len(LETTERS)} non-empty class names",
    "option-100k-characters": "prompt of about",
    "image-12000x12000": "is 12000 x 12000 pixels, more than the",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("rows-data")
    return folder, synthetic_questions(folder, "test", per_class=1, num_classes=4)


@pytest.mark.end_to_end
def test_end_to_end_eval_rejects_each_bad_row_before_generation_and_answers_every_image_kind(data, tmp_path):
    folder, good = data
    hostile = hostile_questions(tmp_path, good[0])
    kinds = [question(f"kind-{kind}", path) for kind, path in image_kinds(tmp_path / "kinds").items()]
    questions = write_jsonl(tmp_path / "questions.jsonl", [*good[:2], *kinds, *hostile.values()])
    out = tmp_path / "eval"
    result = cli("eval", "--trust-remote-code", "--model", tiny("tiny:qwen2_vl"), "--data", questions, "--prompts", "choice", "--out", out,
                 "--batch-size", "16")
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"refine-rft eval: {len(hostile)} questions rejected" in result.stderr
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rejects} == set(hostile)
    for reject in rejects:
        assert REASONS[reject["id"]] in reject["reason"], reject
        assert reject["file"] == str(questions) and isinstance(reject["line"], int)
        assert len(reject["reason"]) < 600  # a reason names the value, it does not copy 100 KB of it
    answered = {json.loads(line)["id"] for line in (out / "predictions.jsonl").read_text().splitlines()}
    assert answered == {row["id"] for row in [*good[:2], *kinds]}
    # The 144 Mpx PNG was refused from its header and the 100,000-character prompt never built: the
    # command stays near the size of the tiny model (it used to grow by gigabytes).
    assert peak_mb(result) < 1500, peak_mb(result)


def test_train_refuses_bad_rows_before_loading_the_model(data, tmp_path):
    folder, good = data
    hostile = hostile_questions(tmp_path, good[0])
    chosen = ["noun-nan", "option-100k-characters", "image-12000x12000"]
    train_file = write_jsonl(tmp_path / "train.jsonl", [*good, *(hostile[q] for q in chosen)])
    result = run_in_process(refine_rft_main, ["train", "--config", RECIPE, *MODEL, "--train_file", train_file,
                                              "--output_dir", tmp_path / "run", "--max_steps", "1", "--report_to", "none"])
    line = one_line_error(result.stderr, result.returncode, "train")
    assert f"3 of {len(good) + 3} rows cannot be used: " in line
    for qid in chosen:
        assert f"{qid} ({train_file}:" in line and REASONS[qid] in line, (qid, line)
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_max_prompt_tokens_caps_the_prompt_of_a_training_run(data, tmp_path):
    folder, good = data
    train_file = write_jsonl(tmp_path / "train.jsonl", good)
    status = refine_rft_main(["train", "--config", str(RECIPE), *MODEL, "--train_file", str(train_file), "--output_dir",
                              str(tmp_path / "run"), "--max_prompt_tokens", "40", "--report_to", "none"])
    assert status == 2 and not list((tmp_path / "run").glob("checkpoint-*"))


# --- Recipe values: one line, exit 2, before anything is loaded ---------------------------------------------

BAD_VALUES = [
    (["--num_generations", "0"], "num_generations must be at least 2"),
    (["--num_generations", "3"], "must be divisible by num_generations (3)"),
    (["--temperature", "0"], "temperature must be > 0"),
    (["--lora_r", "0"], "lora_r must be between 1 and 4096, got 0"),
    (["--lora_r", "1000000000"], "lora_r must be between 1 and 4096, got 1000000000"),
    (["--learning_rate", "nan"], "learning_rate must be finite, got nan"),
    (["--learning_rate", "inf"], "learning_rate must be finite, got inf"),
    (["--learning_rate=-1e-5"], "learning_rate must be > 0 and < 1, got -1e-05"),
    (["--max_grad_norm", "-1"], "max_grad_norm must be >= 0, got -1.0"),
    (["--reward_weights", "nan", "1", "1"], "reward_weights must be finite, got nan in [nan, 1.0, 1.0]"),
    (["--reward_weights", "1", "-1", "1"], "reward_weights must be finite and >= 0"),
    (["--reward_weights", "0", "0", "0"], "reward_weights are all zero"),
    (["--beta", "-1"], "beta (the KL coefficient) must be >= 0, got -1.0"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_VALUES, ids=[" ".join(f) for f, _ in BAD_VALUES])
def test_bad_recipe_values_fail_in_one_line(tmp_path, capsys, flags, message):
    status = refine_rft_main(["train", "--config", str(RECIPE), *MODEL, "--train_file", str(tmp_path / "train.jsonl"),
                              "--output_dir", str(tmp_path / "run"), *flags])
    line = one_line_error(capsys.readouterr().err, status, "train")
    assert message in line, line
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(("text", "message"), [
    ("learning_rate: .nan\n", "learning_rate must be finite, got nan"),
    ("judge: {timeout: .inf}\n", "judge must be finite, got inf in {"),
    ("lora_r: 99999999999\n", "lora_r must be between 1 and 4096"),
])
def test_non_finite_and_out_of_range_recipe_values_fail_in_one_line(tmp_path, capsys, text, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"include: {RECIPE}\n{text}")
    status = refine_rft_main(["train", "--config", str(recipe), *MODEL, "--train_file", str(tmp_path / "t.jsonl"),
                              "--output_dir", str(tmp_path / "run")])
    assert message in one_line_error(capsys.readouterr().err, status, "train")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("include: 5\n", "'include' must be a path or a list of paths (relative to the recipe), got 5"),
    ("learning_rate: [1\nbeta: 0\n", "recipe.yaml:2:5: not valid YAML"),
    ("- just\n- a list\n", "must be a YAML mapping"),
])
def test_broken_recipe_files_fail_in_one_line(tmp_path, capsys, text, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    status = refine_rft_main(["train", "--config", str(recipe)])
    assert message in one_line_error(capsys.readouterr().err, status, "train")
