"""A self-contained HTML report: tables, plots and sample questions, images embedded as base64.

For a seeded sample of questions it shows the image, the options (true one marked), each run's
response under each prompt with whether it scored, and the judge's RSC scores and feedback:
what a reader looks at to believe that a model's reasoning is real.

Every text that comes from a file (run names, ids, options, responses, feedback, scores) is
HTML-escaped: a model's output or a hand-edited file cannot add markup or script to the page.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path

from refine_rft.data.records import RSC_KEYS, seeded_rng
from refine_rft.evaluate.score import parsed_choice
from refine_rft.prompts import LETTERS, STYLES
from refine_rft.report.runs import Run
from refine_rft.report.tables import STYLE_LABELS, Table, _cell

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 3px solid #3b6ea5; padding-bottom: .2em; }
table.t { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 14px; }
table.t th, table.t td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
table.t th { background: #e8eef6; } table.t td:first-child { text-align: left; font-weight: 600; }
img.plot { max-width: 100%; border: 1px solid #ddd; margin: .5em 0; }
.q { display: flex; gap: 1.2em; border: 1px solid #ccc; border-radius: 6px; padding: 1em; margin: 1em 0; }
.q > div:first-child { flex: none; width: 200px; }
.q img { width: 160px; height: 160px; image-rendering: pixelated; border: 1px solid #999; }
.truth { color: #11763b; font-weight: 700; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: .4em; margin: .2em 0; font-size: 13px; }
.ok { color: #11763b; } .bad { color: #b3261e; } .judge { font-size: 13px; color: #444; }
"""


def table_html(table: Table) -> str:
    """An HTML ``<table>`` with the table's flattened header."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header())
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v, 'md'))}</td>" for v in row) + "</tr>"
                   for row in table.rows)
    caption = "".join(f"<p class='caption'>{html.escape(line)}</p>" for line in table.caption)
    return f"<h3>{html.escape(table.title)}</h3><table class='t'><tr>{head}</tr>{body}</table>{caption}"


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """``data:`` URI of bytes (how images are embedded, so the file stands alone).

    >>> data_uri(b"hi")
    'data:image/png;base64,aGk='
    """
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_uri(path: str, size: int = 160) -> str | None:
    """A PNG thumbnail of an image file as a data URI, ``None`` if the file is missing."""
    from refine_rft.data.images import open_image

    if not os.path.isfile(path):
        return None
    image = open_image(path)  # as every stage opens it: upright, 16-bit and alpha handled
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return data_uri(buffer.getvalue())


def sample_questions(runs: Sequence[Run], k: int, seed: int = 0) -> list[dict]:
    """``k`` question records, seeded, preferring ids that every run answered."""
    records: dict[str, dict] = {}
    for run in runs:
        for row in run.predictions:
            records.setdefault(row["id"], row)
    answered = [set(p["id"] for p in run.predictions) for run in runs if run.predictions]
    common = sorted(set.intersection(*answered)) if answered else []
    pool = common or sorted(records)
    picked = sorted(pool, key=lambda qid: seeded_rng(seed, qid).random())[:k]
    return [records[qid] for qid in picked]


def _question_html(record: dict, runs: Sequence[Run]) -> str:
    uri = image_uri(record["image"])  # resolved when the run was loaded
    image = f"<img src='{uri}' alt='question image'>" if uri else "<p><em>image not found</em></p>"
    options = "".join(
        f"<li class='{'truth' if i == record['answer'] else ''}'>{LETTERS[i]}. {html.escape(str(o))}</li>"
        for i, o in enumerate(record["options"]))
    parts = [f"<div class='q'><div>{image}<ol type='A' style='list-style:none;padding:0'>{options}</ol>"
             f"<small>{html.escape(str(record['id']))}</small></div><div style='flex:1'>"]
    for run in runs:
        rows = {p["style"]: p for p in run.predictions if p["id"] == record["id"]}
        if not rows:
            continue
        parts.append(f"<h4>{html.escape(run.name)}</h4>")
        for style in [s for s in STYLES if s in rows]:
            row = rows[style]
            choice = parsed_choice(style, row["response"], row["options"])
            verdict = ("<span class='ok'>✓ correct</span>" if choice == row["answer"] else
                       "<span class='bad'>✗ unparseable</span>" if choice is None else "<span class='bad'>✗ wrong</span>")
            parts.append(f"<div><b>{STYLE_LABELS[style]}</b> {verdict}<pre>{html.escape(str(row['response']))}</pre>")
            judged = run.judge.get((record["id"], style))
            if judged:
                scores = ", ".join(f"{k} {html.escape(_cell(judged.get(k), 'md'))}" for k in RSC_KEYS)
                notes = [judged.get(f"{k}_feedback") for k in RSC_KEYS] + [judged.get("feedback")]
                feedback = " ".join(html.escape(str(n)) for n in notes if n)
                parts.append(f"<div class='judge'>Judge: {scores}. {feedback}</div>")
            parts.append("</div>")
    parts.append("</div></div>")
    return "".join(parts)


def build_html(runs: Sequence[Run], tables: Sequence[Table], plots: Sequence[Path], samples: int = 6,
               seed: int = 0, title: str = "ReFine-RFT evaluation report") -> str:
    """The whole report as one HTML string (no external files)."""
    body = [f"<h1>{html.escape(title)}</h1>",
            "<p>Runs: " + ", ".join(f"<b>{html.escape(r.name)}</b>" for r in runs) + "</p>", "<h2>Tables</h2>"]
    body += [table_html(t) for t in tables] or ["<p>No scores found.</p>"]
    if plots:
        body.append("<h2>Plots</h2>")
        body += [f"<img class='plot' src='{data_uri(Path(p).read_bytes())}' alt='{html.escape(Path(p).stem)}'>"
                 for p in plots]
    questions = sample_questions(runs, samples, seed)
    if questions:
        body.append(f"<h2>Sample questions ({len(questions)})</h2>")
        body += [_question_html(record, runs) for record in questions]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
