"""What a reader meets, checked on the chapters' sources: the defects a reader found in the
rendered book (a control character in math, stray italics, a linkified file name, exercises
that were not exercise blocks, claims after the references, figures without captions or alt
text, lines wider than the column, a chapter that fails at ``import grokbook`` outside the
repository) must not come back. The browser check (``make check-html``) looks at the rendered
pages; these checks run in a second and point at the cell to fix."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

from grokbook import chapters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
import set_repository  # noqa: E402

CHAPTERS = chapters.list_chapters()
# Characters that fit the book's text column in the code font at the desktop width (the
# browser check fails on a code box that scrolls there; _static/grokbook.css sets the font).
CODE_COLUMNS = 88
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _prose(markdown: str) -> str:
    """Markdown without code (fenced, inline), math (display, inline) and directive options:
    the text that MyST parses for emphasis and links."""
    text = re.sub(r"(`{3,}|:{3,}).*?\1", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    return re.sub(r"\$[^$]*\$", " ", text)


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


@pytest.fixture(params=CHAPTERS, ids=lambda p: p.stem)
def notebook(request):
    return _read(request.param)


def test_no_control_characters(notebook):
    for index, cell in enumerate(notebook.cells):
        texts = [cell.source] + [o.get("text", "") for o in cell.get("outputs", [])]
        texts += [str(v) for o in cell.get("outputs", []) for k, v in o.get("data", {}).items()
                  if k.startswith("text/")]
        for text in texts:
            match = CONTROL.search(text)
            assert match is None, f"cell {index}: control character {match.group()!r}"


def test_prose_has_no_stray_emphasis_or_linkified_file_names(notebook):
    for index, cell in enumerate(notebook.cells):
        texts = [cell.source] if cell.cell_type == "markdown" else [
            str(o["data"]["text/markdown"]) for o in cell.get("outputs", [])
            if "text/markdown" in o.get("data", {})]
        texts += [cell.metadata.get("mystnb", {}).get("figure", {}).get("caption", "")]
        prose = _prose("\n".join(texts))
        star = re.search(r"\w\*\w", prose.replace(r"\*", ""))
        assert star is None, f"cell {index}: {star.group()!r} turns into italics: write a\\*b"
        name = re.search(r"\b[\w-]+\.(md|py|txt|yml|csv)\b", prose)
        assert name is None, f"cell {index}: {name.group()!r} is linkified: put it in backticks"


def test_first_code_cell_installs_grokbook_from_the_configured_repository(notebook):
    first = next(c for c in notebook.cells if c.cell_type == "code")
    match = set_repository.IN_CELL.search(first.source)
    assert match, "the first code cell must be the install cell"
    assert match.group(2) == set_repository.configured_url(), (
        "the install cell and _config.yml name different repositories: run "
        "devtools/set_repository.py")
    assert 'find_spec("grokbook") is None' in first.source
    assert "remove-cell" in _tags(first)


def test_chapter_opens_with_learning_goals(notebook):
    opening = notebook.cells[0]
    assert opening.cell_type == "markdown" and opening.source.startswith("# ")
    goals = opening.source.split("## Learning goals", 1)
    assert len(goals) == 2 and len(re.findall(r"^- ", goals[1], re.M)) >= 3


def test_exercises_are_blocks_with_hidden_solutions(notebook):
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "## Exercises" in text and "{admonition} Solution" not in text
    labels = re.findall(r"^:{3,}\{exercise\}.*\n:label: (\S+)", text, re.M)
    solutions = dict(re.findall(r"^:{3,}\{solution\} (\S+)\n:class: (\S+)", text, re.M))
    assert len(labels) >= 2
    for label in labels:
        assert solutions.get(label) == "dropdown", f"exercise {label}: no dropdown solution"


def test_claims_come_before_summary_exercises_and_references(notebook):
    heading = {}
    for index, cell in enumerate(notebook.cells):
        for title in re.findall(r"^## (.+)$", cell.source, re.M) if cell.cell_type == "markdown" \
                else []:
            heading.setdefault(title.strip(), index)
    claims = next(i for i, c in enumerate(notebook.cells) if "nbval-check-output" in _tags(c))
    assert heading["Claims checked"] == claims - 1
    assert claims < heading["Summary"] <= heading["Exercises"] <= heading["References"]
    assert heading["References"] == len(notebook.cells) - 1


def test_every_figure_has_a_caption_alt_text_and_hidden_plumbing(notebook):
    names = set()
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or not _images(cell):
            continue
        mystnb = cell.metadata.get("mystnb", {})
        figure, image = mystnb.get("figure", {}), mystnb.get("image", {})
        assert figure.get("caption", "").strip(), f"cell {index}: a figure without a caption"
        assert image.get("alt", "").strip(), f"cell {index}: a figure without alt text"
        assert "$" not in image["alt"] and "\\" not in image["alt"], f"cell {index}: TeX in alt"
        assert _images(cell) == 1, f"cell {index}: one figure per cell, so one caption fits"
        assert figure.get("name") and figure["name"] not in names
        names.add(figure["name"])
        if cell.source.count("\n") >= 4:
            assert _tags(cell) & {"hide-input", "remove-input"}, f"cell {index}: plumbing shown"


def test_lines_fit_the_column(notebook):
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or "remove-cell" in _tags(cell):
            continue
        lines = [] if "remove-input" in _tags(cell) else cell.source.splitlines()
        lines += [line for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                  for line in o.get("text", "").splitlines()]
        wide = [line for line in lines if len(line) > CODE_COLUMNS]
        assert not wide, f"cell {index}: {len(wide)} lines wider than {CODE_COLUMNS}: {wide[0]!r}"


def test_set_repository_rewrites_config_and_every_install_cell(tmp_path):
    import shutil

    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir()
    for path in CHAPTERS:
        shutil.copy(path, tmp_path / "book" / path.name)
    changed = set_repository.set_url("file:///tmp/a-clone", tmp_path)
    assert len(changed) == len(CHAPTERS) + 1
    assert set_repository.configured_url(tmp_path / "_config.yml") == "file:///tmp/a-clone"
    for path in CHAPTERS:
        first = next(c for c in _read(tmp_path / "book" / path.name).cells
                     if c.cell_type == "code")
        assert 'REPOSITORY = "file:///tmp/a-clone"' in first.source
    with pytest.raises(ValueError, match="url must start with"):
        set_repository.set_url("github.com/x", tmp_path)


def test_course_page_states_each_chapters_learning_goals_word_for_word():
    course = (ROOT / "book" / "course.md").read_text()
    for path in CHAPTERS:
        number = int(path.name[:2])
        section = course.split(f"## Chapter {number}.", 1)[1]
        listed = section.split("In this chapter you will\n\n", 1)[1].split("\n\n", 1)[0]
        opening = _read(path).cells[0].source.split("In this chapter you will\n\n", 1)[1]
        assert opening.split("\n\n", 1)[0].strip() == listed.strip(), path.stem


def test_glossary_terms_used_in_the_chapters_exist():
    glossary = (ROOT / "book" / "glossary.md").read_text()
    defined = set(re.findall(r"^(\S.*)$", glossary.split("```{glossary}", 1)[1], re.M))
    for path in CHAPTERS:
        text = "\n".join(c.source for c in _read(path).cells if c.cell_type == "markdown")
        used = re.findall(r"\{term\}`(?:[^`<]*<([^>]+)>|([^`]+))`", text)
        assert used, f"{path.stem} links no glossary term"
        for target, plain in used:
            assert (target or plain) in defined, f"{path.stem}: no glossary entry {target or plain}"


def test_the_slowest_first_order_names_files_that_exist():
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    root = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root)
    missing = [name for name in root.SLOWEST_FIRST if not (ROOT / name).is_file()]
    assert not missing, f"SLOWEST_FIRST in conftest.py names missing files: {missing}"
