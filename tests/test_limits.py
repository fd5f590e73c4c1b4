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
