"""``refine-rft judge``: Reasoning-Answer (RSC) scores for a predictions file.

    refine-rft judge runs/eval/predictions.jsonl --endpoint http://judge:8000/v1 \\
        --model OpenGVLab/InternVL3-38B --out runs/eval/judge_scores.jsonl
    refine-rft judge runs/eval/predictions.jsonl --backend attributes --out runs/eval/judge_scores.jsonl
    refine-rft judge runs/eval/predictions.jsonl --config recipes/qwen2vl7b/refine_rft.yaml --out ...
    refine-rft judge runs/eval/predictions.jsonl --out ...     # the paper's GPT-4.1-mini (OPENAI_API_KEY)

The Reasoning-Answer judge is not the R_cot teacher: ``--config RECIPE`` takes the recipe's ``rsc_judge:``
section (the paper recipes: GPT-4.1-mini through OpenAI's endpoint), and without ``--config``,
``--endpoint`` or ``--model`` the command uses the paper's GPT-4.1-mini too
(:data:`~refine_rft.judge.config.PAPER_RSC_JUDGE`). When the judge is the very model that gave R_cot
in the training of the model being judged (read from the run's saved recipe, which the predictions'
``run_settings.json`` leads to; two attribute judges count as one), the command warns: that judge
favours the model trained to please it.

Each predictions row of the chosen styles (default: ``cot``) gets one score row, appended as it is
judged; a rerun skips what is done, retries what failed and judges again the rows whose response
changed (see
:mod:`refine_rft.judge.reasoning_answer`, the library this command runs). At the end, a per-dataset
summary is printed and written next to the scores as ``<SCORES>.summary.json``. Rows that cannot
be judged are listed in ``<SCORES>.rejects.jsonl`` and the command then exits with status 1; a
rerun with other settings than those in ``<SCORES>.settings.json`` refuses unless ``--overwrite``.

Exit status: 0 when every row is scored; 1 when rows were rejected or some judgements failed (their
count is printed, and a rerun retries them); 2 when nothing could be judged as configured: bad
settings or input, or a judge that cannot judge (refused key or model, unreachable URL, too many
failures; see :mod:`refine_rft.judge.health`).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from refine_rft.data.records import RSC_KEYS, report_rejects
from refine_rft.errors import ConfigError
from refine_rft.files import refuse_output_over_input
from refine_rft.judge.config import PAPER_RSC_JUDGE, JudgeConfig, judge_name
from refine_rft.judge.provenance import training_teacher
from refine_rft.judge.reasoning_answer import score_reasoning_answers, scores_outputs
from refine_rft.settings import SettingsParser

PROG = "refine-rft judge"


@dataclass
class JudgeRun:
    """What to judge and where the scores go; how to judge is :class:`JudgeConfig` (every field a flag:
    ``--endpoint`` for ``base_urls``, ``--cache`` for ``cache_path``, ``--no-reject-injections``, ...)."""

    predictions: Path = field(metadata={"positional": True, "metavar": "PREDICTIONS",
                                        "help": "predictions JSONL (from refine-rft eval)"})
    out: Path = field(metadata={"help": "scores JSONL (appended; resumable)"})
    styles: str = field(default="cot", metadata={"help": "comma-separated styles to judge"})
    overwrite: bool = field(default=False, metadata={
        "help": "start the scores afresh (needed when the predictions, backend, model or prompt change)"})


def judge_section(values: dict, where: str) -> dict:
    """The judge settings of a ``--config`` file: its ``rsc_judge:`` section (the Reasoning-Answer
    judge), else its ``judge:`` section (the R_cot teacher), else the file itself when it holds judge
    settings, else nothing (``{}``: a recipe that sets no judge, the SFT recipes, say).

    >>> judge_section({"judge": {"model": "teacher"}, "rsc_judge": {"model": "gpt-4.1-mini"}}, "r.yaml")
    {'model': 'gpt-4.1-mini'}
    >>> judge_section({"learning_rate": 1e-5}, "sft.yaml")
    {}
    """
    for name in ("rsc_judge", "judge"):
        if name in values:
            if not isinstance(values[name], dict):
                raise ConfigError(f"{where}: '{name}' must be a mapping of judge settings, got {values[name]!r}")
            return JudgeConfig.check_keys(values[name])
    # A file with any judge key is a judge settings file: its other keys are typos, named here.
    judge_keys = {spec.name for spec in fields(JudgeConfig)}
    return JudgeConfig.check_keys(values) if judge_keys & set(values) else {}


def _flag_value(argv: list[str], flag: str) -> str | None:
    """The last value ``argv`` gives ``flag``.

    >>> _flag_value(["--backend", "openai", "--backend=attributes"], "--backend")
    'attributes'
    """
    found = None
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith(flag + "="):
            found = arg.split("=", 1)[1]
    return found


def parse_args(argv: list[str] | None = None) -> tuple[JudgeRun, JudgeConfig]:
    """The command's settings: the ``--config`` file's judge settings (:func:`judge_section`), or the
    paper's GPT-4.1-mini when neither ``--config`` nor an endpoint or model is given; then the flags."""
    return _parse(argv)[1:]


def _parse(argv: list[str] | None) -> tuple[SettingsParser, JudgeRun, JudgeConfig]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = SettingsParser(PROG, [JudgeRun, JudgeConfig], __doc__, select=judge_section)
    given = parser.given(argv)
    paper = not ({"config", "base_urls", "model"} & given) and _flag_value(argv, "--backend") in (None, "openai")
    return (parser, *parser.parse(argv, defaults=dict(PAPER_RSC_JUDGE) if paper else None))


def warn_if_judge_is_the_teacher(config: JudgeConfig, predictions: Path) -> bool:
    """Warn when the Reasoning-Answer judge is the judge that gave R_cot in training (the same model,
    or both the attribute judge); whether it did."""
    found = training_teacher(predictions)
    if found is None or found[0] != judge_name(config):
        return False
    teacher, run = found
    print(f"refine-rft judge: warning: the Reasoning-Answer judge {teacher!r} is the teacher that gave R_cot "
          f"when {run} was trained; it favours the model trained to please it. The paper judges with another "
          f"model ({PAPER_RSC_JUDGE['model']}): see the recipe's rsc_judge, or --model/--endpoint",
          file=sys.stderr)
    return True


def print_summary(summary: dict[str, dict]) -> None:
    print(f"{'dataset':<16}{'n':>7}" + "".join(f"{key:>9}" for key in RSC_KEYS))
    for name, values in summary.items():
        print(f"{name:<16}{values['n']:>7}" + "".join(f"{values[key]:>9.2f}" for key in RSC_KEYS))


def main(argv: list[str] | None = None) -> int:
    parser, args, config = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    styles = [style.strip() for style in args.styles.split(",") if style.strip()]
    # The settings file is an input too (the predictions are checked where they are read).
    refuse_output_over_input([("--config", parser.config_file)], scores_outputs(args.out))
    warn_if_judge_is_the_teacher(config, args.predictions)
    result = score_reasoning_answers(args.predictions, args.out, config, styles, progress=True,
                                     overwrite=args.overwrite)
    changed = f", re-judged {result.rejudged} whose response changed" if result.rejudged else ""
    print(f"judged {result.judged} responses ({result.already_scored} already scored in {args.out}{changed})",
          file=sys.stderr)
    if result.dropped:
        print(f"removed {result.dropped} scores of rows no longer in {args.predictions}", file=sys.stderr)
    print_summary(result.summary)
    counters = ", ".join(f"{name.removeprefix('judge/')}={value:g}" for name, value in result.stats.items())
    print(f"judge: {counters}", file=sys.stderr)
    if result.failures:
        print(f"refine-rft judge: {result.failures} of {result.failures + result.judged} responses could not be "
              f"judged (not written to {args.out}); rerun the same command to retry them", file=sys.stderr)
    rejected = report_rejects("judge", result.rejects_path, "rows") if result.rejects_path else 0
    return 1 if result.failures or rejected else 0
