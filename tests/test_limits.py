"""Limits of the machine and odd files through the real commands (in-process): a file-size limit, a full
disk or quota, each naming the file in one line; the torn row such a stop leaves is dropped on rerun."""

from __future__ import annotations

import errno
import json
import resource

import pytest

from refine_rft import files
from refine_rft.cli import main as refine_rft
from refine_rft.prompts import answer_text
from refine_rft_workshop.synthetic import attribute_phrase, synthetic_questions


@pytest.fixture
def predictions(tmp_path):
    rows = []
    for row in synthetic_questions(tmp_path / "data", "test", per_class=2, num_classes=4):
        traits = ", ".join(attribute_phrase(a, v) for a, v in row["attributes"].items())
        rows.append({**row, "style": "cot", "response": f"<think>The bird has {traits}.</think><attribute>"
                     f"{traits}</attribute><answer>{answer_text(row['options'], row['answer'])}</answer>"})
    path = tmp_path / "run" / "predictions.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"refine-rft {command}: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_file_size_limit_names_the_file_and_the_torn_row_is_dropped_on_rerun(predictions, capsys):
    scores = predictions.parent / "judge_scores.jsonl"
    args = ["judge", str(predictions), "--backend", "attributes", "--out", str(scores)]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1500, hard))  # as `ulimit -f` would; Python ignores SIGXFSZ
    try:
        status = refine_rft(args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert status == 2
    assert error_line(capsys, "judge") == f"refine-rft judge: error: File too large: {scores}"
    assert scores.stat().st_size == 1500 and not scores.read_bytes().endswith(b"\n")  # a torn last row
    assert refine_rft(args) == 0  # the rerun drops the torn row and judges the rest
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == len({row["id"] for row in rows}) == 8


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_or_quota_names_the_file(predictions, capsys, monkeypatch, code):
    def full(handle):
        raise OSError(code, "full")

    monkeypatch.setattr(files.os, "fsync", full)
    scores = predictions.parent / "judge_scores.jsonl"
    assert refine_rft(["judge", str(predictions), "--backend", "attributes", "--out", str(scores)]) == 2
    assert error_line(capsys, "judge").endswith(f"error: full: {scores}.lock")  # the first file it writes


def test_a_full_disk_while_writing_the_report_names_the_page(predictions, tmp_path, capsys, monkeypatch):
    real = files.os.fdopen

    class Full:
        def __init__(self, handle):
            self.file = real(handle, "w", encoding="utf-8")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fdopen", lambda handle, *a, **k: Full(handle))
    assert refine_rft(["report", str(predictions.parent), "--out", str(tmp_path / "report")]) == 2
    line = error_line(capsys, "report")
    assert line.startswith("refine-rft report: error: No space left on device: ") and "report" in line
    assert not [p for p in (tmp_path / "report").rglob("*") if p.name.endswith(".tmp")]  # no temporary left


def test_report_tells_a_deleted_prediction_from_a_changed_response(predictions, tmp_path, capsys):
    run = predictions.parent
    scores = run / "judge_scores.jsonl"
    assert refine_rft(["judge", str(predictions), "--backend", "attributes", "--out", str(scores)]) == 0
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    report = ["report", str(run), "--out", str(tmp_path / "report")]
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows[1:]))  # one prediction deleted
    assert refine_rft(report) == 2
    line = error_line(capsys, "report")
    assert f"1 judged a prediction no longer in it, deleted or renamed (first: {rows[0]['id']!r}" in line
    assert "changed since" not in line
    rows[1]["response"] += " Also a finch."  # and one response changed
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows[1:]))
    assert refine_rft(report) == 2
    line = error_line(capsys, "report")
    assert f"1 judged a response that has changed since (first: {rows[1]['id']!r}" in line and "deleted" in line


def judge_attributes(predictions, *extra) -> int:
    return refine_rft(["judge", str(predictions), "--backend", "attributes", "--out",
                       str(predictions.parent / "judge_scores.jsonl"), *extra])


def rejects(predictions) -> list[dict]:
    path = predictions.parent / "judge_scores.rejects.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_utf8_byte_order_mark_is_accepted(predictions):
    predictions.write_bytes(b"\xef\xbb\xbf" + predictions.read_bytes())
    assert judge_attributes(predictions) == 0 and rejects(predictions) == []


def test_utf16_is_refused_in_one_line_and_a_latin1_row_is_rejected_alone(predictions, capsys):
    text = predictions.read_text()
    predictions.write_bytes(text.encode("utf-16"))
    assert judge_attributes(predictions) == 2
    assert error_line(capsys, "judge").endswith(f"{predictions}: UTF-16 text; JSON Lines files are UTF-8: "
                                                "save it as UTF-8")
    lines = text.splitlines()
    row = json.loads(lines[2])
    row["response"] = row["response"].replace("The bird", "Th\u00e9 bird")
    latin1 = json.dumps(row, ensure_ascii=False).encode("latin-1")
    predictions.write_bytes("\n".join(lines[:2]).encode() + b"\n" + latin1 + b"\n" + "\n".join(lines[3:]).encode()
                            + b"\n")
    assert judge_attributes(predictions) == 1
    (reject,) = rejects(predictions)
    assert reject["line"] == 3 and reject["reason"].startswith("not UTF-8 text (byte 0xe9 at column")


def test_a_50_mb_single_line_is_one_rejected_row(predictions):
    with predictions.open("a") as out:
        out.write('{"id": "huge", "response": "' + "x" * (50 << 20))  # no closing quote, brace or newline
    assert judge_attributes(predictions) == 1
    (reject,) = rejects(predictions)
    assert reject["line"] == 9 and reject["reason"].startswith("not valid JSON") and len(reject["reason"]) < 200


def test_each_image_fault_has_its_own_words(predictions, tmp_path):
    import os

    from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer

    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    faults = tmp_path / "faults"
    faults.mkdir()
    os.mkfifo(faults / "fifo.png")
    (faults / "x.png").mkdir()
    (faults / "dangling.png").symlink_to(faults / "gone.png")
    (faults / "text.png").write_text("not a picture")
    images = {"fifo.png": "is a FIFO (named pipe), not an image file", "x.png": "is a folder, not an image file",
              "dangling.png": f"is a symbolic link to {faults / 'gone.png'}, which does not exist",
              "missing.png": "image not found: ", "text.png": "unreadable image "}
    for row, name in zip(rows, images):
        row["image"] = str(faults / name)
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with ScriptedJudgeServer() as server:
        assert refine_rft(["judge", str(predictions), "--endpoint", server.url, "--model", "teacher", "--out",
                           str(predictions.parent / "judge_scores.jsonl")]) == 1
    reasons = {reject["id"]: reject["reason"] for reject in rejects(predictions)}
    for row, (name, words) in zip(rows, images.items()):
        assert words in reasons[row["id"]] and name in reasons[row["id"]], reasons[row["id"]]


def test_base_to_new_with_one_class_is_refused_in_one_line(tmp_path, capsys):
    from PIL import Image

    for split in ("train", "test"):
        folder = tmp_path / "birds" / split / "Finch"
        folder.mkdir(parents=True)
        Image.new("RGB", (8, 8), "red").save(folder / "a.png")
    out = tmp_path / "out" / "train.jsonl"
    status = refine_rft(["prepare", "folder", "--root", str(tmp_path / "birds"), "--split", "train",
                         "--base-to-new", "--out", str(out)])
    assert status == 2 and "a base-to-new split needs at least 2 classes, got 1" in error_line(capsys, "prepare")
    assert not out.parent.exists()


def test_every_output_honours_the_umask(predictions, tmp_path):
    """judge (scores, settings, summary, lock) and report (tables, plots, page) under umask 027."""
    import os
    import stat

    old = os.umask(0o027)
    try:
        assert judge_attributes(predictions) == 0
        assert refine_rft(["report", str(predictions.parent), "--out", str(tmp_path / "report" / "new")]) == 0
    finally:
        os.umask(old)
    written = [p for p in (*predictions.parent.iterdir(), *(tmp_path / "report").rglob("*")) if p != predictions]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in written}
    assert len(modes) > 8 and all(mode == (0o750 if p.is_dir() else 0o640) for p, mode in zip(written, modes.values()))


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Excel writes a BOM before the header: the 'path' column is still found."""
    from PIL import Image

    from refine_rft.data.readers import read_split

    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8), "red").save(tmp_path / name)
    (tmp_path / "train.csv").write_bytes(b"\xef\xbb\xbfpath,label\na.png,Finch\nb.png,Tit\n")
    assert sorted(example.label for example in read_split("csv", tmp_path, "train").examples) == ["Finch", "Tit"]
