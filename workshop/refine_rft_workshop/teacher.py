"""The toy teacher: an imperfect R_cot teacher for the synthetic birds, served like a real one.

In the paper, R_cot comes from a teacher MLLM (InternVL3-38B) and the Reasoning-Answer scores from
another model (GPT-4.1-mini). The teacher is a proxy of the truth: it looks at the picture, may
misread it, cannot see every detail, and has tastes of its own. The toy teacher models exactly
that, with each imperfection a stated knob (:class:`ToyTeacher`):

- ``sees``: the traits it can see at all (default: all six). A claim about a trait it cannot see is
  neither true nor false to it: it is ignored, as a teacher ignores what it cannot check;
- ``misread``: how often it misreads a trait of a picture (0-1). A misread trait is read as another
  value of that trait, the same one every time it looks at that picture (a model's error on a
  picture is systematic, not noise that averages out over a GRPO group): a true claim about it
  then looks false, and one false claim looks true;
- ``verbosity``: what it rewards besides the truth: the share (0-1) of its score that pays for
  length, full at ``verbose_words`` words of reasoning, whatever they say (LLM judges' known
  preference for longer, fluent answers).

What it rewards otherwise is the attribute evaluator's rule (:mod:`refine_rft.judge.attributes`)
applied to what it *believes* the picture shows: 100 x (believed-true claims / all claims it can
check) x (0.5 + 0.5 x share of the look-alike species those claims rule out). The evaluator that
scores RSC after training sees every trait, never misreads and pays nothing for length: the two
agree on what good reasoning is and differ only by the knobs, which is the relation between a 38B
teacher and a stronger judge.

The teacher is served behind the OpenAI-compatible protocol (:class:`ToyTeacherServer`), and
training reaches it through the real teacher client with the paper's Fig. 3 prompt (``backend:
openai``): it gets the picture and the response, nothing else. It recognises the picture among the
training questions it was given (nearest thumbnail), which stands for the teacher's knowledge of
birds: the species and its look-alikes (the question's options are the nearest species).

>>> teacher = ToyTeacher(misread=0.0, verbosity=0.0)
>>> record = {"id": "q1", "attributes": {"wing_color": "crimson", "crest": "crested"},
...           "option_attributes": [{"wing_color": "crimson", "crest": "crested"},
...                                 {"wing_color": "black", "crest": "crested"}]}
>>> teacher.score("<think>Crimson wings.</think><answer>A</answer>", record)
100.0
>>> ToyTeacher(misread=1.0, verbosity=0.0).score("<think>Crimson wings.</think><answer>A</answer>", record)
0.0
"""

from __future__ import annotations

import hashlib
import io
import base64
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from refine_rft.errors import ConfigError
from refine_rft_workshop.synthetic import ATTRIBUTES

MODEL_NAME = "toy-teacher"
THUMBNAIL = 16  # side of the thumbnails by which the teacher recognises a picture
# Mean absolute pixel difference (0-255) of thumbnails above which a picture is unknown to it.
UNKNOWN_PICTURE = 24.0


@dataclass(frozen=True)
class ToyTeacher:
    """The toy teacher's knobs (module docstring); :meth:`settings` is what a run records."""

    misread: float = 0.2
    sees: tuple[str, ...] = field(default_factory=lambda: tuple(ATTRIBUTES))
    verbosity: float = 0.1
    verbose_words: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sees", tuple(self.sees))
        unknown = [name for name in self.sees if name not in ATTRIBUTES]
        checks = [(0.0 <= self.misread <= 1.0, f"misread must be in [0, 1], got {self.misread!r}"),
                  (0.0 <= self.verbosity <= 1.0, f"verbosity must be in [0, 1], got {self.verbosity!r}"),
                  (self.verbose_words >= 1, f"verbose_words must be >= 1, got {self.verbose_words!r}"),
                  (not unknown, f"sees: unknown traits {unknown}; traits: {', '.join(ATTRIBUTES)}")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"toy teacher: {message}")

    def settings(self) -> dict:
        """The knobs as a plain mapping, with the teacher's name (what run settings record).

        >>> ToyTeacher(misread=0.4).settings()["misread"]
        0.4
        """
        return {"model": MODEL_NAME, **asdict(self), "sees": list(self.sees)}

    def _misread(self, picture: str, attribute: str) -> tuple[bool, int]:
        digest = hashlib.sha256(f"{self.seed}:{picture}:{attribute}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        return draw < self.misread, int.from_bytes(digest[8:12], "big")

    def beliefs(self, record: dict) -> dict:
        """What the teacher believes the picture of ``record`` shows: the traits it sees, each
        misread with probability ``misread`` (decided once per picture and trait).

        >>> record = {"id": "q", "attributes": {"crest": "crested", "beak_shape": "long"}}
        >>> ToyTeacher(sees=("crest",), misread=0.0).beliefs(record)
        {'crest': 'crested'}
        >>> ToyTeacher(misread=1.0).beliefs(record)["crest"]
        'no crest'
        """
        believed = {}
        for attribute, value in record["attributes"].items():
            if attribute not in self.sees:
                continue
            misread, pick = self._misread(str(record["id"]), attribute)
            if misread:
                others = [v for v in ATTRIBUTES[attribute] if v != value]
                value = others[pick % len(others)]
            believed[attribute] = value
        return believed

    def score(self, response: str, record: dict) -> float:
        """The teacher's 0-100 score of ``response`` to the question ``record`` (module docstring)."""
        from refine_rft.judge.attributes import candidate_facts, claims, holds
        from refine_rft.parsing import parse_response

        parsed = parse_response(response)
        text = " ".join(part for part in (parsed.think, parsed.attribute) if part)
        believed = self.beliefs(record)
        options = record["option_attributes"]
        found = [fact for fact in claims(text, candidate_facts(record["attributes"], options,
                                                               {k: list(v) for k, v in ATTRIBUTES.items()}))
                 if fact.attribute in believed]
        true = [fact for fact in found if holds(fact, believed)]
        accuracy = len(true) / len(found) if found else 0.0
        answer = int(record.get("answer", 0))
        others = [table for index, table in enumerate(options) if index != answer]
        ruled_out = [table for table in others if any(not holds(fact, table) for fact in true)]
        helpfulness = len(ruled_out) / len(others) if others else 1.0
        truth = 100 * accuracy * (0.5 + 0.5 * helpfulness)
        length = 100 * min(1.0, len(re.findall(r"\w+", text)) / self.verbose_words)
        return round((1 - self.verbosity) * truth + self.verbosity * length, 4)


def _thumbnail(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.BILINEAR), dtype=np.float32)


class PictureIndex:
    """The training questions a teacher knows, found by their picture (nearest thumbnail)."""

    def __init__(self, records: list[dict]):
        self.records = records
        self.thumbnails = np.stack([_thumbnail(Image.open(r["image"])) for r in records]) if records else None

    def find(self, picture: Image.Image) -> dict | None:
        """The question whose picture this is, ``None`` for a picture the teacher does not know."""
        if self.thumbnails is None:
            return None
        distances = np.abs(self.thumbnails - _thumbnail(picture)).mean(axis=(1, 2, 3))
        best = int(distances.argmin())
        return self.records[best] if distances[best] <= UNKNOWN_PICTURE else None


def _request_picture(request: dict) -> Image.Image | None:
    for message in request.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                data = part["image_url"]["url"].split(",", 1)[1]
                return Image.open(io.BytesIO(base64.b64decode(data)))
    return None


class ToyTeacherServer:
    """The toy teacher on 127.0.0.1, speaking the chat-completions protocol (a context manager;
    ``server.url`` is its ``.../v1`` base URL). It answers the health check's sight question with
    the colour it sees, and each judgement with :meth:`ToyTeacher.score` of the fenced response
    against the question its picture belongs to (0 for a picture it does not know).

    Args:
        teacher: the knobs.
        questions: the training questions' JSONL file (pictures, attributes, options).
    """

    def __init__(self, teacher: ToyTeacher, questions: str | Path):
        from refine_rft.files import read_jsonl

        self.teacher = teacher
        self.index = PictureIndex(list(read_jsonl(Path(questions))))
        self.judged = 0

    def reply(self, request: dict) -> str:
        from refine_rft_workshop.testing.scripted_server import student_texts

        picture = _request_picture(request)
        record = self.index.find(picture) if picture is not None else None
        scores = [self.teacher.score(text, record) if record is not None else 0.0
                  for text in student_texts(request) or [""]]
        self.judged += 1
        if len(scores) > 1:  # a group judgement: one "k: score" line per response
            return "\n".join(f"{k}: {score:g}" for k, score in enumerate(scores, start=1))
        return f"{scores[0]:g}"

    def __enter__(self) -> ToyTeacherServer:
        from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer

        self._server = ScriptedJudgeServer(reply=self.reply, model=MODEL_NAME).__enter__()
        self.url = self._server.url
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()


def judge_settings(url: str) -> dict:
    """The recipe's ``judge:`` mapping that trains against the toy teacher at ``url``: the real
    teacher client, Fig. 3's prompt (picture and response only)."""
    return {"backend": "openai", "base_urls": [url], "model": MODEL_NAME, "prompt": "paper", "concurrency": 8,
            "timeout": 30.0}
