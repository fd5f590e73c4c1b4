"""The documentation stays findable and whole: a short README, every command documented, every page
reachable from the README, every relative link (and its ``#anchor``) pointing at something that exists,
and every module of both packages in ARCHITECTURE.md's map."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from refine_rft.cli import COMMANDS
from refine_rft_workshop.cli import COMMANDS as WORKSHOP_COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, ARCHITECTURE, *DOCS]
README_MAX_LINES = 250

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)


def prose(path: Path) -> str:
    """The page without its fenced code blocks (a ``#`` comment in a shell block is not a heading)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading.

    >>> slug("Reasoning-Answer scores: `refine-rft judge`")
    'reasoning-answer-scores-refine-rft-judge'
    >>> slug("Image resolution, in each model's terms")
    'image-resolution-in-each-models-terms'
    >>> slug("R_cot in training")
    'r_cot-in-training'
    """
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def relative_links(path: Path) -> list[tuple[str, Path, str]]:
    """``(link, target file, anchor)`` for each relative link of a page (web and mail links left out)."""
    links = []
    for link in LINK.findall(prose(path)):
        if re.match(r"[a-z]+:", link):
            continue
        file_part, _, anchor = link.partition("#")
        target = (path.parent / file_part).resolve() if file_part else path
        links.append((link, target, anchor))
    return links


def mentioned(text: str, program: str, command: str) -> bool:
    return re.search(rf"{re.escape(program)} {re.escape(command)}(?![\w-])", text) is not None


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_says_what_it_is_before_any_table():
    text = README.read_text(encoding="utf-8")
    first_paragraph = text.index("**refine-rft**")
    assert first_paragraph < text.index("\n|"), "the 'what is this' paragraph must come before any table"


@pytest.mark.parametrize(("program", "command"), [("refine-rft", name) for name in COMMANDS]
                         + [("refine-rft-workshop", name) for name in WORKSHOP_COMMANDS])
def test_every_command_is_documented(program, command):
    documented = [page.name for page in [README, *DOCS] if mentioned(page.read_text(encoding="utf-8"),
                                                                      program, command)]
    assert documented, f"`{program} {command}` is in no page of README.md or docs/"


def test_every_docs_page_is_reachable_from_the_readme():
    reached, todo = set(), [README.resolve()]
    while todo:
        page = todo.pop()
        if page in reached or page.suffix != ".md" or not page.is_file():
            continue
        reached.add(page)
        todo += [target for _, target, _ in relative_links(page)]
    unreached = [page.name for page in DOCS if page.resolve() not in reached]
    assert not unreached, f"docs pages linked from nowhere the README leads to: {unreached}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_point_at_files_and_headings(page):
    broken = []
    for link, target, anchor in relative_links(page):
        if not target.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and target.suffix == ".md":
            anchors = {slug(heading) for heading in HEADING.findall(prose(target))}
            if anchor not in anchors:
                broken.append(f"{link} (no heading #{anchor} in {target.name})")
    assert not broken, f"{page.name}: broken links: {broken}"


def package_members(package: Path) -> list[str]:
    """A package's modules and subfolders (sub-packages and data folders), as ARCHITECTURE.md names them."""
    members = [path.stem for path in package.glob("*.py") if path.stem != "__init__"]
    members += [path.name for path in package.iterdir() if path.is_dir() and not path.name.startswith(("_", "."))]
    return sorted(members)


@pytest.mark.parametrize("package", [ROOT / "src" / "refine_rft", ROOT / "workshop" / "refine_rft_workshop"],
                         ids=lambda package: package.name)
def test_architecture_maps_every_module(package):
    text = ARCHITECTURE.read_text(encoding="utf-8")
    missing = [name for name in package_members(package)
               if f"`{name}`" not in text and f"`{name}/`" not in text]
    assert not missing, f"ARCHITECTURE.md's module map lacks {package.name}: {missing}"
