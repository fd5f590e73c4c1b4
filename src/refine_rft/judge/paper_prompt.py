"""The paper's R_cot prompt (``judge.prompt: paper``): Fig. 3 of ReFine-RFT, word for word.

The teacher sees Fig. 3's instructions, the image where Fig. 3 says ``<Image>`` and the model's
whole response o_i (Eq. 2) where it says ``<Response>``: no options, no answer. Fig. 3's words are
kept exactly, including its "<attributes>" tag name (the policy writes ``<attribute>``).

The injection defences of :mod:`refine_rft.judge.prompts` are added around those words, never in
them: the response sits between delimiter lines carrying a fresh code per request (any look-alike in
the response is blanked), and a system message, which Fig. 3 does not have, states the delimiter
rule. The system message is the same in every request and Fig. 3's text up to ``<Image>`` is the
same for every question, so a serving engine caches system, instructions and image once per
question: only the fenced response, after the image, differs (:func:`~refine_rft.judge.prompts.layout_messages`).

The label-aware prompt (``judge.prompt: label_aware``, :func:`~refine_rft.judge.prompts.reasoning_messages`)
shows the options and the true answer instead; each prompt has its own cache version.

>>> messages = paper_messages("data:,", "<think>Red wings.</think>", nonce="0123456789abcdef")
>>> messages[0]["content"] == PAPER_SYSTEM, messages[1]["content"][2]["text"].startswith(RESPONSE_SLOT)
(True, True)
"""

from __future__ import annotations

from refine_rft.judge.prompts import DELIMITER_RULE, fenced, layout_messages, prompt_text

# v2: constant system message; the code and the response after the image.
PAPER_PROMPT_VERSION = "refine-rft-judge-paper-v2"

# Fig. 3, verbatim; the image and the response are the two slots.
FIG3_INSTRUCTIONS = (
    "You are tasked with evaluating the reasoning provided by a model in identifying an object from an image. "
    "Based on the image and the reasoning content between the <think> and <attributes> tags, assess whether the "
    "reasoning is factually correct, relevant, and helpful for identifying the object. Output only a score "
    "between 0 and 100 (number only, no additional text):\n"
    "- 100 means the reasoning is completely accurate, relevant, and helpful for classification.\n"
    "- 0 means the reasoning is completely inaccurate or irrelevant.\n"
    "- Values between 0 and 100 reflect partial correctness or partial relevance."
)
IMAGE_SLOT, RESPONSE_SLOT = "\n\nImage: ", "\n\nResponse from the model: "

# The defence, outside Fig. 3's words: the same in every request.
PAPER_SYSTEM = "You grade the response of a model to an image recognition question. " + DELIMITER_RULE


def paper_messages(image_url: str, response: str, nonce: str | None = None) -> list[dict]:
    """The chat for one R_cot judgement with Fig. 3's prompt: the constant system defence, then one
    user turn of Fig. 3's text with the image in its slot and the whole ``response``, fenced with the
    code ``nonce`` (fresh when ``None``), in the other."""
    return layout_messages(PAPER_SYSTEM, FIG3_INSTRUCTIONS + IMAGE_SLOT, image_url,
                           RESPONSE_SLOT + fenced(response, nonce))


def paper_text(response: str, nonce: str) -> str:
    """The whole prompt as text, the image shown as ``<Image>`` (snapshotted in
    ``tests/snapshots/judge_reasoning_paper.txt``)."""
    return prompt_text(paper_messages("", response, nonce))
