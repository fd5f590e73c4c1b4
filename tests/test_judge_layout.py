"""The request layout a serving engine can cache, checked through a real Qwen-VL chat template.

The G requests of one question are sent through the real client to the scripted server; the bodies
it received are rendered by the embedded tiny instruct model's processor (Qwen-VL chat template,
image tokens expanded) and must agree token for token up to the response slot: system message,
instructions and image. Only the code and the fenced response differ.
"""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image

from refine_rft.judge import JudgeConfig
from refine_rft.judge.teacher import TeacherJudge
from refine_rft_workshop.testing.scripted_server import ScriptedJudgeServer, request_nonce

OPTIONS = ["Common Finch", "Crimson-winged Finch", "Hook-billed Finch", "Crested Finch"]
RESPONSES = ["<think>Crimson wings and a short beak.</think><attribute>crimson wings</attribute><answer>B</answer>",
             "<think>The tail is forked, the crest is full</think><answer>D</answer>",  # no <attribute>
             "no tags at all, B", "<think>cut off at the length lim"]  # untagged and truncated: judged too


@pytest.fixture(scope="module")
def processor():
    from transformers import AutoProcessor

    from refine_rft_workshop.instruct import INSTRUCT_DIR

    return AutoProcessor.from_pretrained(INSTRUCT_DIR, trust_remote_code=True)


def token_ids(processor, request: dict) -> list[int]:
    """The ids the teacher's engine would prefill for ``request``: template, then the image expanded."""
    images = [Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
              for message in request["messages"] if isinstance(message["content"], list)
              for part in message["content"] if part["type"] == "image_url"]
    text = processor.tokenizer.apply_chat_template(request["messages"], tokenize=False, add_generation_prompt=True)
    return list(processor(text=[text], images=images)["input_ids"][0])


def sent_requests(prompt: str, kind: str, images: list[Image.Image]) -> list[dict]:
    """The bodies the server got for every response to each image (one question per image)."""
    with ScriptedJudgeServer() as server:
        judge = TeacherJudge(JudgeConfig(base_urls=[server.url], model="teacher", prompt=prompt, max_retries=0))

        async def go():
            try:
                return await asyncio.gather(*(
                    (judge.reasoning_score if kind == "reasoning" else judge.rsc)(
                        {"id": f"q{i}", "image": image, "options": OPTIONS, "answer": 1, "noun": "birds",
                         "response": response})
                    for i, image in enumerate(images) for response in RESPONSES))
            finally:
                await judge.aclose()

        scores = asyncio.run(go())
    assert all(score is not None for score in scores)
    return server.requests


@pytest.mark.parametrize("prompt, kind", [("paper", "reasoning"), ("label_aware", "reasoning"),
                                          ("label_aware", "rsc")])
def test_a_questions_requests_share_every_token_up_to_the_response(processor, prompt, kind):
    images = [Image.new("RGB", (96, 80), (200, 30, 40)), Image.new("RGB", (96, 80), (20, 30, 200))]
    requests = sent_requests(prompt, kind, images)
    assert len(requests) == len(images) * len(RESPONSES)  # every response judged, tagged or not (Eq. 2)
    tokenizer = processor.tokenizer
    vision_end = tokenizer.convert_tokens_to_ids("<|vision_end|>")
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    by_question: dict[str, list[list[int]]] = {}
    afters: dict[str, str] = {}  # the per-request text of each question's first request
    for request in requests:
        image_url = request["messages"][1]["content"][1]["image_url"]["url"]
        by_question.setdefault(image_url, []).append(token_ids(processor, request))
        afters.setdefault(image_url, request["messages"][1]["content"][2]["text"].strip())
        assert request_nonce(request) not in str(request["messages"][0]) + request["messages"][1]["content"][0]["text"]
    assert len(by_question) == 2
    prefixes = []
    for url, ids in by_question.items():
        first = ids[0]
        for other in ids[1:]:
            common = next((i for i, (a, b) in enumerate(zip(first, other)) if a != b), min(len(first), len(other)))
            # The shared prefix covers system, instructions and the whole image ...
            assert first.index(vision_end) < common and first[:common].count(image_pad) >= 4
            # ... and ends inside the response slot: what follows starts the fenced response.
            middle = tokenizer.decode(first[first.index(vision_end) + 1:common]).strip()
            assert middle.startswith(("Response from the model:", "Student response:")) and afters[url].startswith(middle)
        prefixes.append(first[:first.index(vision_end) + 1])
    # Two questions with the same options and same-size images have the same tokens up to the image:
    # only the image's digest tells them apart, which is why an engine's block hash includes it.
    assert prefixes[0] == prefixes[1]


def test_the_teacher_cost_benchmark_runs_and_ends_with_its_ratio():
    """A small step through the benchmark as a user runs it (the real reward, router and client to
    scripted replicas); the full step is in docs/teacher.md."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "teacher_cost.py"), "--questions", "4",
                           "--group", "3", "--replicas", "2", "--in-flight", "8"],
                          capture_output=True, text=True, timeout=300, check=True)
    lines = done.stdout.strip().splitlines()
    assert "embedded tiny instruct tokenizer" in lines[0] and lines[1].startswith("strict physical minimum: ")
    rows = {line.split()[0]: line.split() for line in lines[3:5]}
    assert rows["new"][4] == "4/4"  # every question whole under routing by question
    assert re.search(r"4/4 questions whole, computed / strict minimum 1\.0\d\d", lines[-2])
    ratio = re.fullmatch(r"prefill computed / naive: ([0-9.]+)", lines[-1])
    assert ratio and float(ratio.group(1)) < 0.6  # 3 completions share one image each
