"""Is the judge able to judge? A health check before the first judgement.

**Health check** (:func:`check_endpoints`): before training starts or ``refine-rft judge`` sends its
first judgement, every replica in ``judge.base_urls`` gets, through the same client, key and
retries as the run:

1. **a real judgement** of a canned response about a small image, with the prompt the command will
   send and its real reply budget, parsed as the run parses it: training asks for R_cot
   (``judge.prompt``, ``judge.max_tokens``) and the reply must hold a usable score; ``refine-rft
   judge`` asks the Reasoning-Answer prompt (``judge.rsc_max_tokens``) and the reply must be the
   RSC JSON (an endpoint that answers a bare score passes the first and fails the second). An
   endpoint whose model cannot produce it (a wrong model, a prompt it does not follow, a reply
   budget too small) stops here, quoting what it said;
2. **a sight check** (``judge.sight_check``, on by default): two plain pictures, one red and one
   blue, and the question of their colour; the teacher must name each. This catches endpoints
   that answer 200 without ever seeing the image (a text-only model, a server that drops images).
   A tiny local teacher that cannot name colours can skip it with ``judge.sight_check: false``.

A refused key, an unknown model or a URL that does not answer stops everything at once with a message
naming the URL, the model and the key's environment variable.

How a refusal is recognised, whatever the status code: servers say "wrong key" and "wrong model"
with 401, 403 or 404, but gateways choose their own codes (LiteLLM answers a bad key with 400 "No
connected db." or an auth error, an unknown model with 400 "Invalid model name"). Reading error
texts would break with the next gateway release, so the decision never depends on the text: the
probe is a small, well-formed request, so *any* 4xx other than 408 / 409 / 429 can only mean the
configuration is refused. The text is used for one thing, the hint of which setting to look at
first (:func:`~refine_rft.judge.client.refusal_hint`); the message always names all three. 408 /
409 / 429 / 5xx, timeouts and refused connections are retried as judgements are; a replica that
still fails is unavailable.

The failure rules that apply during the run are :class:`~refine_rft.judge.failure.FailureRule`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading
import time

from PIL import Image

from refine_rft.errors import JudgeUnavailable
from refine_rft.judge.config import JudgeConfig, JudgeConfigError

logger = logging.getLogger(__name__)

# In every health-check request, so that logs and benchmarks can tell probes from judgements.
PROBE_TEXT = "Health check before judging starts."
PROBE_RESPONSE = (f"<think>{PROBE_TEXT} The picture is a plain red square with nothing else in it.</think>"
                  "<attribute>plain red colour</attribute><answer>A. A plain colour</answer>")
SIGHT_QUESTION = f"{PROBE_TEXT} What is the colour of this picture? Answer with one word."
# The two sight-check colours, and the words that name each.
SIGHT_COLOURS = {"red": ((220, 30, 30), ("red", "crimson", "scarlet")),
                 "blue": ((30, 60, 220), ("blue", "navy", "azure", "cobalt", "royal"))}


def plain_image(rgb: tuple[int, int, int], side: int = 32) -> Image.Image:
    """A ``side`` x ``side`` picture of one colour."""
    return Image.new("RGB", (side, side), rgb)


def probe_sample() -> dict:
    """The health check's judgement: a red picture and a short, well-formed response about it."""
    return {"id": "health-check", "image": plain_image(SIGHT_COLOURS["red"][0]), "response": PROBE_RESPONSE,
            "options": ["A plain colour", "A bird"], "answer": 0, "noun": "pictures"}


def sight_messages(colour: str) -> list[dict]:
    """The sight check's chat for one colour: the plain picture and :data:`SIGHT_QUESTION`."""
    from refine_rft.judge.images import image_data_url

    url = image_data_url(plain_image(SIGHT_COLOURS[colour][0]), 32)
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": SIGHT_QUESTION}]}]


def names_colour(reply: str, colour: str) -> bool:
    """Whether ``reply`` names ``colour`` and no other sight-check colour.

    >>> names_colour("Red.", "red"), names_colour("It is a bright crimson square", "red")
    (True, True)
    >>> names_colour("85", "red"), names_colour("Red or blue", "red"), names_colour("bored", "red")
    (False, False, False)
    """
    words = set(re.findall(r"[a-z]+", reply.lower()))
    named = {name for name, (_, synonyms) in SIGHT_COLOURS.items() if words & set(synonyms)}
    return named == {colour}


class _PinnedProbeClient:
    """What the health check's judge talks through: every chat goes to one replica with
    :meth:`~refine_rft.judge.client.JudgeClient.probe` (failures raise), and the replies are kept
    to be quoted."""

    def __init__(self, client, url: str):
        self.client, self.url, self.replies = client, url, []

    async def chat(self, messages: list[dict], max_tokens: int, key: str | None = None, tried=None) -> str:
        reply = await self.client.probe(self.url, messages, max_tokens)
        self.replies.append(reply)
        return reply

    @property
    def last_failure(self) -> str:
        return self.client.last_failure

    async def aclose(self) -> None:
        await self.client.aclose()


# What a command will ask the judge, hence what its health check asks: R_cot (training) or the
# Reasoning-Answer scores (``refine-rft judge``).
PROBED = ("reasoning", "rsc")


async def probe_replica(config: JudgeConfig, url: str, asks: str = "reasoning") -> float:
    """The health check of one replica (module docstring) for a command that ``asks`` ``"reasoning"``
    (R_cot) or ``"rsc"`` (Reasoning-Answer) judgements; seconds it took. Raises
    :class:`JudgeConfigError` or :class:`JudgeUnavailable` naming the replica."""
    if asks not in PROBED:
        raise ValueError(f"asks must be one of {', '.join(PROBED)}, got {asks!r}")
    from refine_rft.judge.client import JudgeClient
    from refine_rft.judge.teacher import TeacherJudge

    one = dataclasses.replace(config, base_urls=[url], cache_path=None, max_failure_rate=1.0)
    judge = TeacherJudge(one)
    pinned = _PinnedProbeClient(JudgeClient(one, judge.stats), url)
    judge.client = pinned
    started = time.perf_counter()
    try:
        if asks == "rsc":
            usable = await judge.rsc(probe_sample()) is not None
            wanted = "the Reasoning-Answer JSON (RSC_A, RSC_U, RSC_O) from the Reasoning-Answer prompt"
            budget = f"judge.rsc_max_tokens={config.rsc_max_tokens}"
        else:
            usable = await judge.reasoning_score(probe_sample()) is not None
            wanted = f"a usable score from the {config.prompt!r} prompt"
            budget = f"judge.max_tokens={config.max_tokens}"
        if not usable or not pinned.replies:
            said = " / ".join(repr(reply[:200]) for reply in pinned.replies) or "nothing"
            raise JudgeUnavailable(
                f"judge endpoint {url} answered the health check's judgement without {wanted} (it replied "
                f"{said}): is judge.model={config.model!r} a model that follows it, and {budget} enough "
                f"for its reply?")
        if config.sight_check:
            colours = list(SIGHT_COLOURS)
            replies = await asyncio.gather(*(pinned.chat(sight_messages(colour), 10) for colour in colours))
            wrong = [(colour, reply) for colour, reply in zip(colours, replies)
                     if not names_colour(reply, colour)]
            if wrong:
                said = "; ".join(f"a plain {colour} picture: {reply[:100]!r}" for colour, reply in wrong)
                raise JudgeUnavailable(
                    f"judge endpoint {url} failed the sight check ({said}): it does not seem to see the "
                    f"images (a text-only model, or a server that drops images?), so it cannot judge. For a "
                    f"small local teacher that cannot name colours, set judge.sight_check: false")
    finally:
        await judge.aclose()
    return time.perf_counter() - started


async def probe_endpoints(config: JudgeConfig, asks: str = "reasoning") -> dict[str, float]:
    """Probe every replica at once for a command that ``asks`` ``"reasoning"`` or ``"rsc"``
    judgements; seconds each took to pass (nothing to probe for the ``attributes`` backend). Raises
    one error naming every replica that failed (:class:`JudgeConfigError` if any refused the
    configuration)."""
    if config.backend != "openai":
        return {}
    results = await asyncio.gather(*(probe_replica(config, url, asks) for url in config.base_urls),
                                   return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    for error in errors:
        if not isinstance(error, JudgeUnavailable):
            raise error
    if errors:
        kind = JudgeConfigError if any(isinstance(e, JudgeConfigError) for e in errors) else JudgeUnavailable
        raise kind("; ".join(str(error) for error in errors))  # one line, every replica named
    return dict(zip(config.base_urls, results))


def check_endpoints(config: JudgeConfig, asks: str = "reasoning") -> dict[str, float]:
    """The health check (see the module docstring) from synchronous code, for a command that
    ``asks`` ``"reasoning"`` (training) or ``"rsc"`` judgements; nothing to check for the
    ``attributes`` backend. Returns the seconds each replica took to pass."""
    seconds = asyncio.run(probe_endpoints(config, asks))
    for url, took in seconds.items():
        logger.info("judge endpoint %s (model %s) passed the health check in %.2fs", url, config.model, took)
    return seconds
