"""The teacher-MLLM judge (``backend: openai``): prompts an OpenAI-compatible endpoint with the
image and the response, parses its score, and caches what it paid for.

A reply without a usable score (missing, ambiguous or out of [0, 100]) earns one more request with
a reminder of the expected form; a second miss makes the judgement ``None``. Every request fences
the student's text with a fresh delimiter code (:func:`~refine_rft.judge.prompts.make_nonce`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict

from refine_rft.judge.base import Judge, require_fields
from refine_rft.judge.cache import JudgeCache, judgement_key
from refine_rft.judge.client import JudgeClient
from refine_rft.judge.config import JudgeConfig
from refine_rft.judge.group import GROUP_PROMPT_VERSION, group_messages, parse_group_scores
from refine_rft.judge.images import (DataUrlCache, bytes_hash, file_bytes, image_data_url, image_hash, load_image,
                                     own_data_url)
from refine_rft.judge.paper_prompt import PAPER_PROMPT_VERSION, paper_messages
from refine_rft.judge.prompts import (PROMPT_VERSION, RSC_REMINDER, SCORE_REMINDER, make_nonce, reasoning_messages,
                                      rsc_messages, with_reminder)
from refine_rft.judge.scoring import in_range, parse_rsc, parse_score
from refine_rft.judge.stats import JudgeStats

logger = logging.getLogger(__name__)

NEEDED = ("image", "options", "answer", "noun")


class TeacherJudge(Judge):
    """Judge with a teacher MLLM behind ``config.base_urls`` (see :class:`~refine_rft.judge.client.JudgeClient`)."""

    def __init__(self, config: JudgeConfig, stats: JudgeStats | None = None):
        super().__init__(config, stats)
        self.client = JudgeClient(config, self.stats)
        self.cache = JudgeCache(config.cache_path) if config.cache_path else None
        # The G completions of one prompt share its image: hash each picture once. PIL images are
        # keyed by id() and kept referenced here, so an id cannot be reused while it is a key. The
        # data URLs themselves are held once, by digest, in ``data_urls``.
        self._images: OrderedDict[object, tuple[object, str]] = OrderedDict()
        self._images_lock = threading.Lock()  # _prepare runs in worker threads
        self.data_urls = DataUrlCache()  # each picture encoded once, however many copies arrive
        self._pending: dict[tuple, asyncio.Task] = {}
        self._pending_loop: asyncio.AbstractEventLoop | None = None

    def _memoized(self, image, with_url: bool) -> tuple[str, str | None] | None:
        key = image if isinstance(image, str) else id(image)
        with self._images_lock:
            entry = self._images.get(key)
            if entry is None:
                return None
            self._images.move_to_end(key)
        url = self.data_urls.get(entry[1], self.config.max_image_side) if with_url else None
        return None if with_url and url is None else (entry[1], url)

    def _prepare(self, image, with_url: bool) -> tuple[str, str | None]:
        """(digest, data URL or None) of ``image``: a file by its bytes, sent as it is when it fits
        (no decode at all); anything else decoded, hashed by its pixels and JPEG-encoded
        (:mod:`refine_rft.judge.images`)."""
        key, side = image if isinstance(image, str) else id(image), self.config.max_image_side
        data = file_bytes(image)
        picture = None if data is not None else load_image(image)
        digest = bytes_hash(data) if data is not None else image_hash(picture)

        def make() -> str:
            if data is not None:
                return own_data_url(data, side) or image_data_url(load_image(image), side)
            return image_data_url(picture, side)

        url = self.data_urls.data_url(digest, make, side) if with_url else None
        with self._images_lock:
            self._images[key] = (image, digest)
            if len(self._images) > 1024:
                self._images.popitem(last=False)
        return digest, url

    async def _image(self, image, with_url: bool) -> tuple[str, str | None]:
        """(digest, data URL or None) of an image, prepared once per picture. With a cache, the
        data URL is made only on a miss: a cached rerun never re-encodes the images."""
        memoized = self._memoized(image, with_url)
        if memoized is not None:
            return memoized
        loop = asyncio.get_running_loop()
        if loop is not self._pending_loop:
            self._pending, self._pending_loop = {}, loop
        # The G completions of a prompt are judged at once: the first starts the work, the others
        # wait for it. Decoding and JPEG-encoding take milliseconds per photo: off the event loop.
        key = (image if isinstance(image, str) else id(image), with_url)
        if key not in self._pending:
            task = loop.create_task(asyncio.to_thread(self._prepare, image, with_url))
            task.add_done_callback(lambda _: self._pending.pop(key, None))
            self._pending[key] = task
        return await asyncio.shield(self._pending[key])

    async def _ask(self, messages: list[dict], max_tokens: int, parse, valid, reminder: str,
                   key: str | None = None, avoid: list[str] | None = None):
        """Ask; on an unusable reply ask once more with ``reminder``; return (parsed, reply) or (None, reply).
        ``key`` (the image digest) keeps a question's requests on one replica; ``avoid``: replicas
        that already failed this judgement."""
        reply = await self.client.chat(messages, max_tokens, key, list(avoid or ()))
        if reply is None:
            return None, None
        value = parse(reply)
        if valid(value):
            return value, reply
        self.stats.add(reminders=1)
        second = await self.client.chat(with_reminder(messages, reply, reminder), max_tokens, key)
        value = parse(second) if second is not None else None
        if valid(value):
            return value, second
        logger.warning("judge reply without a usable score, twice: %r / %r", reply[:200], (second or "")[:200])
        return None, second

    def _cached(self, key: str):
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            self.stats.add(cache_hits=1)
        return hit

    def _judged_text(self, response: str, parsed) -> str:
        # Fig. 3 shows the teacher the whole response o_i; the label-aware prompt its reasoning.
        return response if self.config.prompt == "paper" else super()._judged_text(response, parsed)

    def _reasoning_request(self, text: str, sample: dict) -> tuple[str, str, object]:
        """(prompt version, what the judgement depends on besides the image, messages(url) builder)."""
        nonce = make_nonce()
        if self.config.prompt == "paper":
            require_fields(sample, ("image",), "the teacher sees the image")
            return PAPER_PROMPT_VERSION, json.dumps(["reasoning-paper", text]), \
                lambda url: paper_messages(url, text, nonce=nonce)
        require_fields(sample, NEEDED, "the teacher sees the image, the options and the answer")
        options, answer = list(sample["options"]), int(sample["answer"])
        return PROMPT_VERSION, json.dumps(["reasoning", sample["noun"], options, answer, text]), \
            lambda url: reasoning_messages(url, sample["noun"], options, answer, text, nonce=nonce)

    async def _score_reasoning(self, text: str, sample: dict, avoid: list[str] | None = None) -> float | None:
        version, judged, build_messages = self._reasoning_request(text, sample)
        hashed, url = await self._image(sample["image"], with_url=self.cache is None)
        key = judgement_key(self.config.model, version, hashed, judged)
        if (hit := self._cached(key)) is not None:
            return hit["score"]
        if url is None:
            _, url = await self._image(sample["image"], with_url=True)
        messages = build_messages(url)
        score, reply = await self._ask(messages, self.config.max_tokens, parse_score, in_range, SCORE_REMINDER,
                                       key=hashed, avoid=avoid)
        if score is not None and self.cache is not None:
            self.cache.put(key, {"score": score, "reply": reply}, model=self.config.model)
        return score

    async def reasoning_scores(self, samples: list[dict]) -> list[float | None]:
        """R_cot of each sample; with ``group_judging``, one request per GRPO group: a run of
        consecutive samples with the same ``id`` (samples without one are judged alone)."""
        if not self.config.group_judging:
            return await super().reasoning_scores(samples)
        groups, start = [], 0
        for end in range(1, len(samples) + 1):
            ident = samples[start].get("id")
            if end == len(samples) or ident is None or samples[end].get("id") != ident:
                groups.append(samples[start:end])
                start = end
        results = await asyncio.gather(*(self._score_group(group) for group in groups))
        return [score for scores in results for score in scores]

    async def _score_group(self, samples: list[dict]) -> list[float | None]:
        prejudged = [self._prejudged(sample) for sample in samples]
        scores = [given for given, _ in prejudged]
        asked = [(index, text) for index, (given, text) in enumerate(prejudged) if given is None]
        judged, failing = None, []
        if len(asked) > 1:
            judged = await self._ask_group(samples[asked[0][0]], [text for _, text in asked], failing)
            if judged is None and failing and not self.client.others_up(failing):
                # The group request failed on every replica that may take it (after its retries):
                # G more requests to a failing replica would only fail too. The judgements fail.
                judged = [None] * len(asked)
            self.stats.add(group_fallbacks=judged is None)
        if judged is None:  # per response, never on a replica that just failed the group request
            judged = await asyncio.gather(*(self._score_reasoning(text, samples[i], failing) for i, text in asked))
        for (index, _), score in zip(asked, judged):
            scores[index] = score
            self._count(score is None)
        return scores

    async def _ask_group(self, sample: dict, texts: list[str], failing: list[str]) -> list[float] | None:
        """The group's scores from one request (or the cache), else ``None`` (the caller falls back).
        The replicas the request failed on are appended to ``failing``."""
        require_fields(sample, ("image",), "the teacher sees the image")
        hashed, url = await self._image(sample["image"], with_url=self.cache is None)
        key = judgement_key(self.config.model, GROUP_PROMPT_VERSION, hashed, json.dumps(["group", texts]))
        if (hit := self._cached(key)) is not None:
            return hit["scores"]
        if url is None:
            _, url = await self._image(sample["image"], with_url=True)
        messages = group_messages(url, texts, [make_nonce() for _ in texts])
        self.stats.add(group_requests=1)
        reply = await self.client.chat(messages, self.config.max_tokens + 8 * len(texts), hashed, failing)
        scores = parse_group_scores(reply, len(texts))
        if scores is not None and self.cache is not None:
            self.cache.put(key, {"scores": scores, "reply": reply}, model=self.config.model)
        return scores

    async def _score_rsc(self, sample: dict) -> dict | None:
        require_fields(sample, NEEDED, "the teacher sees the image, the question and the answer")
        hashed, url = await self._image(sample["image"], with_url=self.cache is None)
        style = sample.get("style") or "cot"
        judged = json.dumps(["rsc", sample["noun"], list(sample["options"]), int(sample["answer"]), style,
                             sample["response"]])
        key = judgement_key(self.config.model, PROMPT_VERSION, hashed, judged)
        if (hit := self._cached(key)) is not None:
            return hit
        if url is None:
            _, url = await self._image(sample["image"], with_url=True)
        messages = rsc_messages(url, sample["noun"], sample["options"], int(sample["answer"]), sample["response"],
                                style, nonce=make_nonce())
        result, _ = await self._ask(messages, self.config.rsc_max_tokens, parse_rsc, lambda r: r is not None,
                                    RSC_REMINDER, key=hashed)
        if result is not None and self.cache is not None:
            self.cache.put(key, result, model=self.config.model)
        return result

    def latest_failure(self) -> str:
        return self.client.last_failure

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.cache is not None:
            self.cache.close()
