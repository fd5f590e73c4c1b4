"""The demo's stages follow the guard every command follows: a stage folder made with other settings
is refused, naming the change, never silently deleted; ``--overwrite`` starts it afresh; a stage begun
with the same settings is left to its commands, which resume themselves. The demo keeps no record of
its own of what is done (``tests/test_demo.py`` reruns a finished demo)."""

from __future__ import annotations

import pytest

from refine_rft.errors import SettingsChanged
from refine_rft_workshop.demo.pipeline import _guard, build_parser


def test_a_stage_made_with_other_settings_is_refused_then_overwritten(tmp_path):
    folder = tmp_path / "data"
    _guard(folder, {"seed": 0, "classes": 8}, overwrite=False)
    (folder / "train.jsonl").write_text("{}\n")  # begun, or finished: the command knows which
    _guard(folder, {"seed": 0, "classes": 8}, overwrite=False)  # the same settings: left as it is
    assert (folder / "train.jsonl").is_file()
    with pytest.raises(SettingsChanged, match=r"seed 0 -> 1.*--overwrite"):
        _guard(folder, {"seed": 1, "classes": 8}, overwrite=False)
    assert (folder / "train.jsonl").is_file()  # nothing deleted
    _guard(folder, {"seed": 1, "classes": 8}, overwrite=True)
    assert not (folder / "train.jsonl").exists()  # started afresh
    assert sorted(p.name for p in folder.iterdir()) == ["demo_settings.json"]  # the guard's record, no marker


def test_the_demo_takes_overwrite():
    assert build_parser().parse_args(["--overwrite"]).overwrite and not build_parser().parse_args([]).overwrite
