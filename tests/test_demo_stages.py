"""The demo's stages follow the guard every command follows: a stage folder made with other settings
is refused, naming the change, never silently deleted; ``--overwrite`` starts it afresh; a stage begun
with the same settings resumes where it stopped."""

from __future__ import annotations

import pytest

from refine_rft.errors import SettingsChanged
from refine_rft_workshop.demo.pipeline import _mark_done, _must_run, build_parser


def test_a_stage_made_with_other_settings_is_refused_then_overwritten(tmp_path):
    folder = tmp_path / "data"
    assert _must_run(folder, {"seed": 0, "classes": 8}, overwrite=False)
    (folder / "train.jsonl").write_text("{}\n")  # begun, not finished
    assert _must_run(folder, {"seed": 0, "classes": 8}, overwrite=False)  # the same settings: resumes
    assert (folder / "train.jsonl").is_file()
    with pytest.raises(SettingsChanged, match=r"seed 0 -> 1.*--overwrite"):
        _must_run(folder, {"seed": 1, "classes": 8}, overwrite=False)
    assert (folder / "train.jsonl").is_file()  # nothing deleted
    assert _must_run(folder, {"seed": 1, "classes": 8}, overwrite=True)
    assert not (folder / "train.jsonl").exists()  # started afresh


def test_a_finished_stage_is_skipped(tmp_path):
    folder = tmp_path / "eval"
    assert _must_run(folder, {"model": "m"}, overwrite=False)
    _mark_done(folder, {"model": "m"})
    assert not _must_run(folder, {"model": "m"}, overwrite=False)


def test_the_demo_takes_overwrite():
    assert build_parser().parse_args(["--overwrite"]).overwrite and not build_parser().parse_args([]).overwrite
