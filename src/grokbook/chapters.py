"""Find the book's chapters and execute them at a profile with papermill.

A chapter reads its profile from ``$GROKBOOK_PROFILE``, so executing one sets that variable for
the kernel instead of injecting a parameters cell: the executed notebook stays identical in
shape to the committed one. Papermill's per-cell timing metadata is stripped afterwards; the
widget state that nbclient saves is kept, so the rendered page shows the widgets. Executing a
chapter in place (``make book``) records its wall time in ``book/data/runtimes.csv``, the table
the book's runtimes page shows, and every claim its claims cell checked, with the figures it
measured, in ``book/data/claims.csv``, the table of the claims page.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

import nbformat

from grokbook import cache
from grokbook.files import atomic_write_bytes
from grokbook.profiles import resolve

BOOK_DIR = Path(__file__).resolve().parents[2] / "book"
KERNEL = "python3"
RUNTIMES = BOOK_DIR / "data" / "runtimes.csv"
RUNTIME_COLUMNS = ("chapter", "profile", "seconds", "runs_trained", "cache", "date", "machine")
CLAIMS = BOOK_DIR / "data" / "claims.csv"
CLAIM_COLUMNS = ("chapter", "profile", "seed_offset", "claim", "holds", "measured", "date")
CELL_TIMEOUT = 3600
"""Seconds one cell may run before the execution fails: the longest cell at ``book`` (a race
of methods over seeds, cold) takes minutes; a kernel that died without a word would otherwise
leave ``make book`` waiting forever. (A reply the client's poll missed is found within half a
second: ``grokbook.kernel``.)"""


def list_chapters(book_dir: Path = BOOK_DIR) -> list[Path]:
    """The chapter notebooks (``NN_name.ipynb``) in reading order."""
    return sorted(p for p in Path(book_dir).glob("*.ipynb") if re.match(r"\d\d_", p.name))


def find_chapter(chapter: str, book_dir: Path = BOOK_DIR) -> Path:
    """A chapter by number (``"1"``, ``"01"``), by name (``"grokking"``) or by path."""
    path = Path(chapter)
    if path.suffix == ".ipynb" and path.exists():
        return path
    chapters = list_chapters(book_dir)
    for candidate in chapters:
        number, name = candidate.stem.split("_", 1)
        if chapter.isdigit() and int(chapter) == int(number) or chapter in (name, candidate.stem):
            return candidate
    known = ", ".join(p.stem for p in chapters) or f"none in {book_dir}"
    raise ValueError(f"unknown chapter {chapter!r}; chapters: {known}")


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip papermill's per-cell and notebook metadata and execution timings; keep the rest."""
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3",
                                       "language": "python"}
    return notebook


def execute(chapter: str | Path, profile: str | None = None, output: str | Path | None = None,
            progress: bool = False, cell_times: str | Path | None = None) -> Path:
    """Execute one chapter at ``profile`` and write it, cleaned, to ``output``.

    ``output`` None writes the chapter back in place (what ``make book`` does). At ``ci`` the
    run cache is off unless ``$GROKBOOK_CACHE`` says otherwise. ``cell_times``: a CSV file
    that gets one row per code cell (chapter, profile, cell number, cell id, seconds, the
    cell's first line), appended, to find where a chapter spends its time. Raises papermill's
    ``PapermillExecutionError`` when a cell fails, a claims cell included.
    """
    import papermill

    from grokbook.kernel import KernelManager

    path = find_chapter(str(chapter))
    profile = resolve(profile)
    output = Path(output) if output is not None else path
    output.parent.mkdir(parents=True, exist_ok=True)
    previous = {key: os.environ.get(key) for key in
                ("GROKBOOK_PROFILE", "GROKBOOK_PROGRESS", "GROKBOOK_CACHE", "GROKBOOK_CLAIMS_LOG")}
    claims_log = Path(tempfile.mkstemp(prefix="grokbook-claims-", suffix=".jsonl")[1])
    os.environ["GROKBOOK_PROFILE"] = profile
    os.environ["GROKBOOK_PROGRESS"] = "0"
    os.environ["GROKBOOK_CLAIMS_LOG"] = str(claims_log)
    if profile == "ci" and previous["GROKBOOK_CACHE"] is None:
        os.environ["GROKBOOK_CACHE"] = "off"  # ci runs check the code as it is: never a cache
    try:
        entries = cache.info()["entries"]
        start = time.perf_counter()
        notebook = papermill.execute_notebook(
            str(path), None, kernel_name=KERNEL, cwd=str(path.parent), progress_bar=progress,
            execution_timeout=CELL_TIMEOUT, kernel_manager_class=KernelManager,
        )
        seconds = time.perf_counter() - start
        trained = cache.info()["entries"] - entries
        state = "off" if cache.location() is None else "warm" if trained == 0 else "cold"
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        claimed = claims_log.read_text()
        claims_log.unlink()
        if previous["GROKBOOK_CLAIMS_LOG"]:  # the caller's own log gets the lines too
            with open(previous["GROKBOOK_CLAIMS_LOG"], "a") as file:
                file.write(claimed)
    if cell_times is not None:
        write_cell_times(notebook, path.stem, profile, Path(cell_times))
    nbformat.write(clean(notebook), str(output))
    if output.resolve() == path.resolve():
        record_runtime(path.stem, profile, seconds, trained if state != "off" else None, state)
        record_claims(path.stem, profile, [json.loads(line) for line in claimed.splitlines()])
    return output


CELL_TIME_COLUMNS = ("chapter", "profile", "cell", "id", "seconds", "first_line")


def write_cell_times(notebook: nbformat.NotebookNode, chapter: str, profile: str,
                     path: Path) -> None:
    """Append each code cell's seconds, from papermill's timing metadata, to the CSV ``path``
    (written whole, atomically; a header when the file is new)."""
    rows = []
    for number, cell in enumerate(notebook.cells):
        timing = cell.metadata.get("papermill", {})
        if cell.cell_type != "code" or timing.get("duration") is None:
            continue
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        rows.append({"chapter": chapter, "profile": profile, "cell": number,
                     "id": cell.get("id", ""), "seconds": f"{float(timing['duration']):.2f}",
                     "first_line": first[:80]})
    earlier = path.read_text() if path.exists() else ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CELL_TIME_COLUMNS, lineterminator="\n")
    if not earlier:
        writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, (earlier + out.getvalue()).encode())


def machine() -> str:
    """A short description of this machine for the runtimes table."""
    import torch

    from grokbook.cache import cpu_model

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{platform.machine()} ({cpu_model()}), {os.cpu_count()} cores{gpu}, torch "
            f"{torch.__version__} on {torch.get_num_threads()} threads")


def record_runtime(chapter: str, profile: str, seconds: float, runs_trained: int | None,
                   cache_state: str, table: Path = RUNTIMES) -> None:
    """Put one chapter's measured wall time into ``table``, replacing its earlier row for the
    same profile and cache state (``cold``: it trained runs, ``warm``: it loaded every run,
    ``off``: no cache; a cold and a warm run are both kept), written atomically;
    ``runs_trained`` is None when the run cache was off."""
    rows = []
    if table.exists():
        with open(table, newline="") as file:
            rows = [{column: row.get(column) or "" for column in RUNTIME_COLUMNS}
                    for row in csv.DictReader(file)
                    if (row.get("chapter"), row.get("profile"), row.get("cache"))
                    != (chapter, profile, cache_state) and row.get("seconds")]
    rows.append({"chapter": chapter, "profile": profile, "seconds": f"{seconds:.0f}",
                 "runs_trained": "" if runs_trained is None else str(runs_trained),
                 "cache": cache_state, "date": datetime.date.today().isoformat(),
                 "machine": machine()})
    rows.sort(key=lambda row: (row["chapter"], row["profile"], row["cache"]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RUNTIME_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(table, out.getvalue().encode())


def record_claims(chapter: str, profile: str, claims: list[dict], table: Path = CLAIMS) -> None:
    """Put the claims one execution of ``chapter`` checked (``{"claim", "holds", "figures"}``
    as :func:`grokbook.claims.check` logs them) into ``table``, replacing the chapter's earlier
    rows for ``profile``, written atomically: the claims page shows what each claim measured."""
    from grokbook.profiles import resolve_offset

    rows = []
    if table.exists():
        with open(table, newline="") as file:
            rows = [{column: row.get(column) or "" for column in CLAIM_COLUMNS}
                    for row in csv.DictReader(file)
                    if (row.get("chapter"), row.get("profile")) != (chapter, profile)]
    today = datetime.date.today().isoformat()
    rows += [{"chapter": chapter, "profile": profile, "seed_offset": str(resolve_offset()),
              "claim": item["claim"], "holds": "yes" if item["holds"] else "no",
              "measured": " ".join(str(item.get("figures", "")).split()), "date": today}
             for item in claims]
    rows.sort(key=lambda row: (row["chapter"], row["profile"]))  # stable: a chapter's order
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CLAIM_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(table, out.getvalue().encode())
