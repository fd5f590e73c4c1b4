"""The judge's configuration: which teacher, where it is served, and how hard to push it.

Recipes give it as a YAML mapping; :meth:`JudgeConfig.from_dict` rejects unknown keys by name, so
a typo ("concurency: 64") fails at start-up instead of silently running with the default.

The API key itself is never part of the configuration: only the *name* of the environment
variable that holds it, so that saved recipes and logs never contain a secret.
"""

from __future__ import annotations

import functools
import math
import os
import typing
from dataclasses import asdict, dataclass, field, fields

from refine_rft.errors import ConfigError, JudgeUnavailable
from refine_rft.judge.routing import ROUTINGS
from refine_rft.masking import register_secret
from refine_rft.recipes import json_mapping

BACKENDS = ("openai", "attributes")
PROMPTS = ("paper", "label_aware")


class JudgeConfigError(JudgeUnavailable, ValueError):
    """The endpoint refuses the configuration itself (key, model name or URL)."""


@dataclass
class JudgeConfig:
    """How to reach and use the teacher judge.

    Example:
        >>> config = JudgeConfig.from_dict({"backend": "openai", "base_urls": ["http://judge:8000/v1"],
        ...                                 "model": "OpenGVLab/InternVL3-38B", "concurrency": 64})
        >>> config.concurrency, config.timeout
        (64, 60.0)
        >>> JudgeConfig.from_dict({"concurency": 64})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        refine_rft.errors.ConfigError: judge config: unknown key 'concurency'; valid keys: backend, base_urls, model, ...
    """

    backend: str = field(default="openai", metadata={"help": "'openai' (any OpenAI-compatible endpoint: "
                                                             "vllm serve, hosted APIs) or 'attributes'.",
                                                     "choices": BACKENDS})
    base_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:8000/v1"],
                                 metadata={"help": "One or more judge replicas; a question's requests go to one "
                                                   "of them (rendezvous hashing of its image, see routing); "
                                                   "repeat --endpoint for each.",
                                           "aliases": ["--endpoint"], "metavar": "URL", "repeat": True})
    model: str = field(default="", metadata={"help": "Model name as the endpoint knows it."})
    prompt: str = field(default="paper", metadata={"help": "R_cot prompt of the teacher: 'paper' (Fig. 3 word for "
                                                           "word; the image and the whole response) or "
                                                           "'label_aware' (also the options and the true answer).",
                                                           "choices": PROMPTS})
    api_key_env: str = field(default="REFINE_RFT_JUDGE_API_KEY",
                             metadata={"help": "Name of the environment variable holding the API key "
                                               "(unset: 'EMPTY', which vllm serve accepts)."})
    timeout: float = field(default=60.0, metadata={"help": "Seconds before one request is abandoned."})
    max_retries: int = field(default=4, metadata={"help": "Retries on 429 / 5xx / timeouts / dropped "
                                                          "connections before a judgement counts as failed."})
    backoff_base: float = field(default=1.0, metadata={"help": "First backoff in seconds; doubles per retry."})
    backoff_max: float = field(default=30.0, metadata={"help": "Longest single backoff (also caps Retry-After)."})
    concurrency: int = field(default=32, metadata={"help": "Requests in flight at once over all replicas, "
                                                           "per training process."})
    max_image_side: int = field(default=768, metadata={"help": "Images are downscaled to this longest side."})
    max_tokens: int = field(default=16, metadata={"help": "Reply budget for the reasoning score."})
    rsc_max_tokens: int = field(default=400, metadata={"help": "Reply budget for the Reasoning-Answer JSON."})
    cache_path: str | None = field(default=None, metadata={"help": "sqlite file caching judgements (None: off).",
                                                           "aliases": ["--cache"]})
    reject_injections: bool = field(default=False, metadata={"help": "Score 0, without a call, responses the "
                                                                     "phrase screen flags (off: they are only "
                                                                     "counted, and the fence keeps them data)."})
    skip_untagged: bool = field(default=False, metadata={"help": "Score 0, without a call, responses with no "
                                                                 "complete <think> block (off: Eq. 2 asks the "
                                                                 "teacher about every completion)."})
    group_judging: bool = field(default=False, metadata={"help": "One teacher request per GRPO group (the image "
                                                                 "once, G fenced responses, G scores back); "
                                                                 "not the paper. Prompt 'paper' only."})
    max_failure_rate: float = field(default=0.5, metadata={"help": "Stop the run when more than this share of "
                                                                   "the last failure_window judgements failed "
                                                                   "(1.0: never)."})
    attribute_values: dict[str, list[str]] | str | None = field(
        default_factory=dict, metadata={"help": "Backend 'attributes': more values per attribute to read as claims "
                                                "(a false one counts against the response), beside the values the "
                                                "image and its options have; JSON on the command line)."})
    failure_window: int = field(default=64, metadata={"help": "How many of the latest judgements sent to the "
                                                              "endpoint the failure rule looks at."})
    routing: str = field(default="question", metadata={"help": "'question': a question's requests go to one "
                                                                 "replica (its rendezvous home unless that holds "
                                                                 "replica_capacity requests) and move only off a "
                                                                 "replica cooling down; 'request': the earlier "
                                                                 "per-request bounded-load rule (load_factor).",
                                                         "choices": ROUTINGS})
    replica_capacity: int = field(default=64, metadata={"help": "Requests in flight from this process that one "
                                                                "replica holds before new questions go to the next "
                                                                "(its vLLM --max-num-seqs, divided by the training "
                                                                "processes sharing it)."})
    load_factor: float = field(default=1.25, metadata={"help": "Routing 'request' only: a replica with more than "
                                                                "this times the average in flight (and more than "
                                                                "its share of concurrency) passes requests on."})
    replica_failures: int = field(default=3, metadata={"help": "Failures in a row (5xx, timeouts, drops) that "
                                                               "take a replica out; a refused connection takes "
                                                               "it out at once."})
    cooldown_s: float = field(default=30.0, metadata={"help": "Seconds a failing replica stays out before it "
                                                              "is re-probed with one request."})
    sight_check: bool = field(default=True, metadata={"help": "The health check asks the teacher to name the "
                                                              "colours of two plain images (off for tiny local "
                                                              "teachers that cannot)."})

    def __post_init__(self) -> None:
        if isinstance(self.api_key_env, str):
            register_secret(os.environ.get(self.api_key_env))  # masked from the first message on
        if isinstance(self.base_urls, str):
            self.base_urls = [self.base_urls]
        if isinstance(self.attribute_values, str):
            self.attribute_values = _json_mapping("attribute_values", self.attribute_values)
        self.attribute_values = {} if self.attribute_values is None else self.attribute_values
        check_types(self)
        for item in fields(self):  # NaN passes every comparison below; infinity is no timeout or rate
            value = getattr(self, item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"judge config: {item.name} must be a finite number (got {value!r})")
        self.base_urls = [str(url).rstrip("/") for url in self.base_urls]
        checks = [
            (self.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}"),
            (self.prompt in PROMPTS, "prompt", f"must be one of {', '.join(PROMPTS)}"),
            (not self.group_judging or self.prompt == "paper", "group_judging", "needs prompt 'paper'"),
            (self.backend != "openai" or bool(self.base_urls), "base_urls", "needs at least one URL"),
            (self.backend != "openai" or bool(self.model), "model", "is required for backend 'openai'"),
            (self.timeout > 0, "timeout", "must be > 0"),
            (self.max_retries >= 0, "max_retries", "must be >= 0"),
            (self.backoff_base >= 0 and self.backoff_max >= 0, "backoff_base", "backoffs must be >= 0"),
            (self.concurrency >= 1, "concurrency", "must be >= 1"),
            (self.max_image_side >= 16, "max_image_side", "must be >= 16"),
            (self.max_tokens >= 1 and self.rsc_max_tokens >= 1, "max_tokens", "must be >= 1"),
            (0.0 <= self.max_failure_rate <= 1.0, "max_failure_rate", "must be between 0 and 1"),
            (self.failure_window >= 1, "failure_window", "must be >= 1"),
            (self.routing in ROUTINGS, "routing", f"must be one of {', '.join(ROUTINGS)}"),
            (self.replica_capacity >= 1, "replica_capacity", "must be >= 1"),
            (self.load_factor >= 1.0, "load_factor", "must be >= 1"),
            (self.replica_failures >= 1, "replica_failures", "must be >= 1"),
            (self.cooldown_s >= 0, "cooldown_s", "must be >= 0"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(f"judge config: {name} {message} (got {getattr(self, name)!r})")

    @classmethod
    def from_dict(cls, values: dict | None) -> JudgeConfig:
        """Build from a plain mapping (a recipe's ``judge:`` section); unknown keys fail by name."""
        values = cls.check_keys(values)
        return cls(**values)

    @classmethod
    def check_keys(cls, values: dict | None) -> dict:
        """``values`` (a copy), or ``ConfigError`` naming an unknown key or an API key given as a setting."""
        values = dict(values or {})
        valid = [f.name for f in fields(cls)]
        for key in values:
            if key == "api_key":
                raise ConfigError("judge config: the API key is never configured; give the name of the "
                                 "environment variable that holds it in 'api_key_env'")
            if key not in valid:
                raise ConfigError(f"judge config: unknown key {key!r}; valid keys: {', '.join(valid)}")
        return values

    def to_dict(self) -> dict:
        """A plain mapping, safe to save: it names the key's variable, never the key."""
        return asdict(self)

    def api_key(self) -> str:
        """The API key from the environment (read at call time, never stored; masked as ``***`` in
        whatever a server says back: :mod:`refine_rft.masking`)."""
        key = os.environ.get(self.api_key_env)
        register_secret(key)
        return key or "EMPTY"


# A field's annotation -> the types its value may have (bool is an int to Python, not to a user).
_TYPES = {float: (int, float), int: (int,), bool: (bool,), str: (str,), str | None: (str, type(None)),
          list[str]: (list,), dict[str, list[str]] | str | None: (dict,)}
_NAMES = {float: "a number", int: "an integer", bool: "true or false", str: "a string", str | None: "a string or null",
          list[str]: "a URL or a list of URLs", dict[str, list[str]] | str | None: "a mapping"}


_hints = functools.cache(typing.get_type_hints)


def _json_mapping(name: str, text: str) -> dict:
    return json_mapping(text, f"judge config: {name} must be a mapping or a JSON object")


def check_types(config) -> None:
    """Refuse a setting of the wrong type in one line (``timeout: fast``), before any check compares it.

    >>> JudgeConfig.from_dict({"timeout": "fast"})
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: judge config: timeout must be a number, got 'fast'
    >>> JudgeConfig.from_dict({"concurrency": 2.5})
    Traceback (most recent call last):
    ...
    refine_rft.errors.ConfigError: judge config: concurrency must be an integer, got 2.5
    """
    # The annotations, not Field.type: a settings parser resolves (and narrows) Field.type in place.
    for name, hint in _hints(type(config)).items():
        value, allowed = getattr(config, name), _TYPES.get(hint)
        if allowed is None:
            continue
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        if hint == list[str] and not wrong:
            wrong = not all(isinstance(item, str) for item in value)
        if wrong:
            raise ConfigError(f"judge config: {name} must be {_NAMES[hint]}, got {value!r}")



# The paper's Reasoning-Answer judge (Sec. 5.1): GPT-4.1-mini through OpenAI's own endpoint, a different model
# from the R_cot teacher (InternVL3-38B), so that the trained model is not scored by the taste it was trained
# to please. `refine-rft judge` uses it unless a recipe's `rsc_judge:` or the flags say otherwise.
PAPER_RSC_JUDGE = {"backend": "openai", "base_urls": ["https://api.openai.com/v1"], "model": "gpt-4.1-mini",
                   "api_key_env": "OPENAI_API_KEY"}


def judge_name(values: dict | JudgeConfig | None) -> str | None:
    """Which judge a judge mapping (or :class:`JudgeConfig`) names: the model for ``backend: openai``,
    ``"attribute judge"`` for ``backend: attributes`` (it has no model: every such judge is the
    same rule), ``None`` for none. Two settings with the same name are the same judge.

    >>> judge_name({"backend": "openai", "model": "OpenGVLab/InternVL3-38B"}), judge_name({"backend": "attributes"})
    ('OpenGVLab/InternVL3-38B', 'attribute judge')
    >>> judge_name({"model": "gpt-4.1-mini"}), judge_name(None)
    ('gpt-4.1-mini', None)
    """
    if isinstance(values, JudgeConfig):
        values = values.to_dict()
    if not values:
        return None
    if values.get("backend", "openai") == "attributes":
        return "attribute judge"
    return str(values["model"]) if values.get("model") else None
