"""One settings path for every command: dataclasses, parsed by TRL's ``TrlParser``.

Each command declares its settings as dataclasses (help text in each field's ``metadata``) and
parses them with :class:`SettingsParser`, TRL's ``TrlParser`` (itself transformers'
``HfArgumentParser``): every field is a flag in both spellings (``--max_pixels`` and
``--max-pixels``), a ``True`` boolean also gets ``--no_NAME``, and ``--config FILE`` reads a YAML
file whose values replace the defaults, the flags winning over the file. What this module adds:

- ``include:`` in that file (:func:`refine_rft.recipes.load_recipe`) and its ``env:`` mapping;
- sections: one experiment file holds a training recipe and, under ``eval:``, ``judge:`` (the
  R_cot teacher), ``rsc_judge:`` (the Reasoning-Answer judge) and the other commands' names, the
  settings of those commands (:func:`section`);
- merged JSON mappings: ``--judge '{"base_urls": [...]}'`` changes those keys of the file's
  ``judge`` mapping and keeps the others;
- the value checks (:func:`check_values`), unknown keys refused with their closest valid name,
  and a bad flag answered in one line under the command's name, exit status 2::

      refine-rft eval: unknown flag --foo (see refine-rft eval --help)

A field's ``metadata`` may also say ``positional`` (an argument without a flag, such as the
predictions file of ``refine-rft judge``) and ``repeat`` (a list flag that may be given several
times, each adding to the list: ``--endpoint A --endpoint B``).

>>> from dataclasses import dataclass, field
>>> @dataclass
... class Demo:
...     max_pixels: int | None = field(default=None, metadata={"help": "largest image area"})
...     verify_images: bool = True
>>> parse("demo", [Demo], ["--max-pixels", "1003520", "--no-verify-images"])
(Demo(max_pixels=1003520, verify_images=False),)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from types import MappingProxyType

from trl.scripts.utils import TrlParser

from refine_rft.errors import ConfigError
from refine_rft.recipes import json_mapping, load_recipe, merge

# The sections of an experiment file that belong to one command each. Training reads the file's other
# keys, and a section only where its dataclasses have a field by that name (GRPO's `judge`).
SECTIONS = ("eval", "judge", "rsc_judge", "predict", "general_eval", "export", "report", "prepare")

# What TRL's string_to_bool reads as a boolean.
_BOOLEAN_WORDS = {"yes", "true", "t", "y", "1", "no", "false", "f", "n", "0"}

# Our metadata keys, read here and never passed on to argparse.
_OURS = ("positional", "repeat")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written (the commands' docstrings), defaults shown."""


class _Repeat(argparse.Action):
    """A list flag that may be given several times: the first use replaces the default, later
    ones add to it (``--endpoint A --endpoint B`` -> ``[A, B]``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        fresh = current is self.default or current is None
        setattr(namespace, self.dest, list(values) if fresh else [*current, *values])


class SettingsParser(TrlParser):
    """``TrlParser`` for one command (``prog``, e.g. ``"refine-rft eval"``); see the module docstring.

    Args:
        prog: the command as a user types it; it leads every error line.
        dataclass_types: the command's settings.
        description: the ``--help`` text (a module docstring).
        select: which part of a ``--config`` file is this command's: a section name
            (:func:`section`), a callable ``(values, where) -> dict``, or ``None`` for the whole
            file without the other commands' sections (training).
    """

    def __init__(self, prog: str, dataclass_types: Sequence[type], description: str | None = None,
                 select: str | Callable[[dict, str], dict] | None = None):
        super().__init__(list(dataclass_types), prog=prog, description=description, allow_abbrev=False,
                         formatter_class=_Formatter)
        self.add_argument("--config", metavar="FILE", default=None,
                          help="a YAML file of these settings (`include:` and `env:` allowed)"
                               + (f"; its `{select}:` section where it has one" if isinstance(select, str) else "")
                               + "; flags override it")
        self.select = select
        # What the settings file gave and the flags give, for error messages (set by parse).
        self._from_file: dict = {}
        self._given: set[str] = set()
        self._where = "the settings"
        self.config_file: str | None = None  # the --config file of the last parse (an input of the command)

    @staticmethod
    def _parse_dataclass_field(parser, field):
        meta = field.metadata
        if meta.get("positional"):
            kwargs = {"help": meta.get("help"), "metavar": meta.get("metavar", field.name.upper())}
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
            if getattr(field.type, "__origin__", None) is list:
                kwargs.update(nargs="+", type=field.type.__args__[0])
            else:
                kwargs["type"] = field.type
            parser.add_argument(field.name, **kwargs)
            return
        if any(key in meta for key in _OURS):
            field = copy.copy(field)
            field.metadata = MappingProxyType({**{k: v for k, v in meta.items() if k not in _OURS},
                                               **({"action": _Repeat} if meta.get("repeat") else {})})
        TrlParser._parse_dataclass_field(parser, field)

    def error(self, message: str):
        """One line under the command's name, exit status 2 (argparse would print its whole usage); a
        value from the settings file that its flag's type refuses is a ``ConfigError`` naming the file."""
        found = re.match(r"argument (--[\w-]+)\S*: (.*)$", message)
        action = self._option_string_actions.get(found.group(1)) if found else None
        if action is not None and action.dest in self._from_file and action.dest not in self._given:
            value = self._from_file[action.dest]
            kind = re.match(r"invalid (float|int) value", found.group(2))
            raise ConfigError(f"{self._where}: {action.dest} must be "
                              f"{'a number' if kind.group(1) == 'float' else 'an integer'}, got {value!r}" if kind else
                              f"{self._where}: {action.dest}: {found.group(2)}")
        print(f"{self.prog}: {_short(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    def given(self, argv: Sequence[str]) -> set[str]:
        """The settings (field names) that ``argv`` gives as flags.

        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Demo:
        ...     max_pixels: int | None = None
        ...     overwrite: bool = False
        >>> sorted(SettingsParser("demo", [Demo]).given(["--max-pixels=9", "--overwrite"]))
        ['max_pixels', 'overwrite']
        """
        actions = self._option_string_actions
        return {actions[arg.split("=", 1)[0]].dest for arg in argv
                if arg.startswith("--") and arg.split("=", 1)[0] in actions}

    def parse(self, argv: Sequence[str] | None = None, *, config: str | os.PathLike | dict | None = None,
              overrides: dict | None = None, defaults: dict | None = None) -> tuple:
        """The command's dataclasses from ``defaults``, then the ``--config`` file (or ``config``: a path
        or a mapping), then ``overrides``, then the flags in ``argv``; value checks run before the
        dataclasses are built. Raises :class:`ConfigError` for a bad file or value; a bad flag exits 2."""
        argv = list(sys.argv[1:] if argv is None else argv)
        argv, path = self._pop_config(argv)
        self.config_file = path
        values = dict(defaults or {})
        where = "the settings"
        if path is not None or config is not None:
            source = path if path is not None else config
            loaded = dict(source) if isinstance(source, dict) else load_recipe(source)
            where = "the settings" if isinstance(source, dict) else str(source)
            _set_env(loaded.pop("env", None), where)
            values = merge(values, self._section(loaded, where))
        values = merge(values, overrides or {})
        _set_env(values.pop("env", None), "the settings")
        values, argv = self._merge_mapping_flags(values, argv)
        argv = self._explicit_booleans(argv)
        self._from_file, self._given, self._where = values, self.given(argv), where
        self._refuse_unknown(self.set_defaults_with_config(**values), where)
        # An unknown flag is named before anything else argparse would say (a missing argument):
        # it is usually the reason the others look missing (a misspelt required flag).
        unknown = [flag for flag in (arg.split("=", 1)[0] for arg in argv if arg.startswith("--"))
                   if flag != "--" and flag not in self._option_string_actions]
        if unknown:
            self.error(f"unknown flag {unknown[0]}")
        namespace, rest = self.parse_known_args(argv)
        if rest:
            flags = [arg for arg in rest if arg.startswith("-")]
            self.error(f"unknown flag {flags[0].split('=', 1)[0]}" if flags else f"unexpected argument {rest[0]!r}")
        check_values(vars(namespace))
        try:
            outputs = self.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
        except ConfigError:
            raise
        except ValueError as error:  # TRL's own checks (a batch that num_generations does not divide)
            raise ConfigError(" ".join(str(error).split())) from None
        return tuple(output for output in outputs if dataclasses.is_dataclass(output))

    def _pop_config(self, argv: list[str]) -> tuple[list[str], str | None]:
        path = None
        rest = []
        items = iter(argv)
        for arg in items:
            if arg == "--config":
                path = next(items, None)
                if path is None or path.startswith("--"):
                    self.error("--config needs a file")
            elif arg.startswith("--config="):
                path = arg.split("=", 1)[1]
            else:
                rest.append(arg)
        return rest, path

    def _explicit_booleans(self, argv: list[str]) -> list[str]:
        """``--overwrite PREDICTIONS`` means ``--overwrite true PREDICTIONS``: a boolean flag takes a value
        (``--overwrite false``), but only a word that is one (argparse would take the positional).

        >>> from dataclasses import dataclass, field
        >>> @dataclass
        ... class Demo:
        ...     runs: list[str] = field(metadata={"positional": True})
        ...     overwrite: bool = False
        >>> SettingsParser("demo", [Demo]).parse(["--overwrite", "r1", "r2"])
        (Demo(runs=['r1', 'r2'], overwrite=True),)
        """
        out = []
        for index, arg in enumerate(argv):
            out.append(arg)
            action = self._option_string_actions.get(arg)
            following = argv[index + 1] if index + 1 < len(argv) else None
            if (action is not None and action.nargs == "?" and action.const is True and following is not None
                    and not following.startswith("-") and following.lower() not in _BOOLEAN_WORDS):
                out.append("true")
        return out

    def _fields(self) -> dict[str, dataclasses.Field]:
        return {f.name: f for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.init}

    def _section(self, values: dict, where: str) -> dict:
        if callable(self.select):
            return self.select(values, where)
        if isinstance(self.select, str):
            return section(values, self.select, where, self._fields())
        own = self._fields()
        return {key: value for key, value in values.items() if key in own or key not in SECTIONS}

    def _merge_mapping_flags(self, values: dict, argv: list[str]) -> tuple[dict, list[str]]:
        """``--judge '{"base_urls": [...]}'`` merged into the file's ``judge`` mapping instead of
        replacing it, so a command line changes one judge setting (the teacher's URL) and keeps the rest."""
        rest = []
        index = 0
        while index < len(argv):
            flag, equals, inline = argv[index].partition("=")
            name = flag[2:].replace("-", "_") if flag.startswith("--") else None
            if name is not None and isinstance(values.get(name), dict) and (equals or index + 1 < len(argv)):
                value = json_mapping(inline if equals else argv[index + 1], f"{flag} must be a JSON object")
                values = merge(values, {name: value})
                index += 1 if equals else 2
                continue
            rest.append(argv[index])
            index += 1
        return values, rest

    def _refuse_unknown(self, remaining: list[str], where: str) -> None:
        names = [item[2:] for item in remaining[::2]]
        if not names:
            return
        valid = list(self._fields())
        hints = [f"{name!r}" + (f" (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(
            name, valid, n=1)) else "") for name in names]
        raise ConfigError(f"{where}: unknown key{'s' if len(names) > 1 else ''} {', '.join(hints)}; see "
                          f"'{self.prog} --help' for the valid ones")


def section(values: dict, name: str, where: str, fields: dict | Sequence[str]) -> dict:
    """The ``name:`` section of a ``--config`` file's ``values``; or, in a file without it, the file
    itself when it holds any of the command's ``fields`` (a plain settings file, whose other keys
    are then named as unknown); or ``ConfigError`` for a file with nothing for the command.

    >>> section({"learning_rate": 1e-5, "eval": {"out": "runs/eval"}}, "eval", "exp.yaml", ["out"])
    {'out': 'runs/eval'}
    >>> section({"out": "runs/eval"}, "eval", "eval.yaml", ["out"])
    {'out': 'runs/eval'}
    >>> section({"learning_rate": 1e-5}, "eval", "exp.yaml", ["out"])
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: exp.yaml has no 'eval:' section (and none of the command's settings)
    """
    if name in values:
        if not isinstance(values[name], dict):
            raise ConfigError(f"{where}: '{name}' must be a mapping of settings, got {values[name]!r}")
        return dict(values[name])
    if set(fields) & set(values):
        return values
    raise ConfigError(f"{where} has no '{name}:' section (and none of the command's settings)")


def parse(prog: str, dataclass_types: Sequence[type], argv: Sequence[str] | None = None, *,
          description: str | None = None, select: str | Callable | None = None, **kwargs) -> tuple:
    """``SettingsParser(prog, dataclass_types, description, select).parse(argv, **kwargs)``."""
    return SettingsParser(prog, dataclass_types, description, select).parse(argv, **kwargs)


def _set_env(env, where: str) -> None:
    if env is None:
        return
    if not isinstance(env, dict):
        raise ConfigError(f"{where}: 'env' must be a mapping of variable names to values, got {env!r}")
    for key, value in env.items():
        os.environ[str(key)] = str(value)


def _short(message: str) -> str:
    """argparse's messages, shorter: one spelling of each flag, "unknown flag" for unrecognized ones.

    >>> _short("the following arguments are required: --train_file/--train-file, --out")
    'missing --train_file, --out'
    >>> _short("argument --batch_size/--batch-size: invalid int value: 'x'")
    "--batch_size: invalid int value: 'x'"
    """
    message = message.replace("the following arguments are required:", "missing")
    return re.sub(r"(--[\w-]+)(/--[\w-]+)+", r"\1", message.removeprefix("argument "))


# The largest LoRA rank accepted: at or above the model's width (3,584 for Qwen2-VL-7B, 4,096 for Qwen3-VL-8B)
# the adapter is no longer low-rank, and a typo (lora_r: 640000) would try to allocate gigabytes per layer.
MAX_LORA_RANK = 4096


def _any(value) -> bool:
    return True


# name -> (lower test, upper test, the rule in words): numbers a recipe or a flag may set.
RANGES: dict[str, tuple[Callable, Callable, str]] = {
    "learning_rate": (lambda v: v > 0, lambda v: v < 1, "> 0 and < 1"),
    "lora_r": (lambda v: v >= 1, lambda v: v <= MAX_LORA_RANK, f"between 1 and {MAX_LORA_RANK}"),
    "lora_alpha": (lambda v: v > 0, _any, "> 0"),
    "lora_dropout": (lambda v: v >= 0, lambda v: v < 1, ">= 0 and < 1"),
    "weight_decay": (lambda v: v >= 0, _any, ">= 0"),
    "max_grad_norm": (lambda v: v >= 0, _any, ">= 0"),
    "warmup_ratio": (lambda v: v >= 0, lambda v: v <= 1, "between 0 and 1"),
    "top_p": (lambda v: v > 0, lambda v: v <= 1, "> 0 and <= 1"),
    "per_device_train_batch_size": (lambda v: v >= 1, _any, ">= 1"),
    "gradient_accumulation_steps": (lambda v: v >= 1, _any, ">= 1"),
    "max_completion_length": (lambda v: v >= 1, _any, ">= 1"),
    "num_train_epochs": (lambda v: v > 0, _any, "> 0"),
    "max_steps": (lambda v: v == -1 or v >= 1, _any, "-1 (use num_train_epochs) or >= 1"),
}


def _non_finite(value):
    """The first NaN or infinity in ``value`` (a number, or a list or mapping of them), else ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((bad for item in items if (bad := _non_finite(item)) is not None), None)


def check_values(values: dict) -> None:
    """Refuse, in one line naming the key and the value, values TRL would crash on or train with
    silently wrong (a NaN reward weight: TRL's ``nansum`` drops that reward without a word).
    ``values`` are the parsed settings by name; keys a command does not have are not checked.

    >>> check_values({"num_generations": 4, "temperature": 1.0, "beta": 0.0, "reward_weights": [1, 0]})
    >>> check_values({"learning_rate": float("nan")})
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: learning_rate must be finite, got nan
    >>> check_values({"use_peft": True, "lora_r": 10**9})
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: lora_r must be between 1 and 4096, got 1000000000
    """
    def number(name: str) -> float | None:
        value = values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return value

    for name, value in values.items():  # NaN passes every comparison; infinity is no budget or rate
        bad = _non_finite(value)
        if bad is not None:
            raise ConfigError(f"{name} must be finite, got {bad!r}" + ("" if bad is value else f" in {value!r}"))
    for name, (low, high, rule) in RANGES.items():
        value = number(name)
        if value is not None and not (low(value) and high(value)):
            raise ConfigError(f"{name} must be {rule}, got {value!r}")
    if (generations := number("num_generations")) is not None and generations < 2:
        raise ConfigError(f"num_generations must be at least 2 (GRPO compares the completions of a group), "
                          f"got {generations}")
    if (temperature := number("temperature")) is not None and not 0 < temperature < math.inf:
        raise ConfigError(f"temperature must be > 0 (at 0 every completion of a group is the same and GRPO "
                          f"learns nothing), got {temperature}")
    if (beta := number("beta")) is not None and not 0 <= beta < math.inf:
        raise ConfigError(f"beta (the KL coefficient) must be >= 0, got {beta}")
    if values.get("use_peft") and (rank := number("lora_r")) is not None and rank < 1:
        raise ConfigError(f"lora_r (the LoRA rank) must be >= 1, got {rank}")
    weights = values.get("reward_weights")
    if weights is not None:
        if not isinstance(weights, (list, tuple)) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise ConfigError(f"reward_weights must be a list of numbers, got {weights!r}")
        if not all(0 <= w < math.inf for w in weights):
            raise ConfigError(f"reward_weights must be finite and >= 0, got {list(weights)}")
        if weights and not any(weights):
            raise ConfigError(f"reward_weights are all zero ({list(weights)}): no reward would be learned")

