"""A chapter downloaded as a notebook runs with nothing but Jupyter installed.

``python devtools/check_download.py [CHAPTER]`` (``make check-download``) does what a reader
does who downloads a chapter's ``.ipynb`` from the book and opens it on a fresh machine:

1. clones this repository's committed ``HEAD`` into a temporary folder (the "repository" the
   install cell points at: ``file://`` instead of the public address);
2. makes a fresh virtual environment holding only what runs a notebook (``nbclient``,
   ``ipykernel``), not ``grokbook`` nor its dependencies;
3. copies the chapter out of the repository, points its first cell at the clone (what
   ``devtools/set_repository.py`` does for the book) and executes it at the ``ci`` profile
   in that environment: the first cell must install ``grokbook`` from the clone, and every
   cell after it must run, the claims cell included.

Fails (exit 1) with the failing cell's error otherwise. It needs the package index that
``make install`` uses, and a few minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
import set_repository  # noqa: E402

RUNNER = ["nbclient", "ipykernel"]
CELL_SECONDS = 600  # the longest a cell may take at the ci profile
RUN_SECONDS = 900  # the whole chapter
ATTEMPTS = 2


def run(command: list[str], **options) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, **options)


def check(chapter: str = "01_grokking") -> float:
    """Run ``book/CHAPTER.ipynb`` as a downloaded notebook; return the seconds it took."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grokbook-download-") as folder:
        folder = Path(folder)
        clone = folder / "clone"
        run(["git", "clone", "--quiet", str(ROOT), str(clone)])
        venv = folder / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        python = venv / "bin" / "python"
        run([str(python), "-m", "pip", "install", "--quiet", *RUNNER])
        missing = subprocess.run([str(python), "-c", "import grokbook"], capture_output=True)
        if missing.returncode == 0:
            raise RuntimeError("the fresh environment already has grokbook: not a fair test")
        run([str(python), "-m", "ipykernel", "install", "--prefix", str(venv), "--name",
             "python3"])
        notebook = nbformat.read(clone / "book" / f"{chapter}.ipynb", as_version=4)
        first = next(c for c in notebook.cells if c.cell_type == "code")
        url = f"file://{clone}"
        first.source = set_repository.IN_CELL.sub(lambda m: m.group(1) + url + m.group(3),
                                                  first.source)
        downloaded = folder / "Downloads" / f"{chapter}.ipynb"
        downloaded.parent.mkdir()
        nbformat.write(notebook, downloaded)
        env = {**os.environ, "GROKBOOK_PROFILE": "ci", "GROKBOOK_CACHE": "off",
               "GROKBOOK_PROGRESS": "0", "JUPYTER_PATH": str(venv / "share" / "jupyter"),
               "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        env.pop("VIRTUAL_ENV", None)
        code = ("import nbformat, nbclient, sys\n"
                "nb = nbformat.read(sys.argv[1], as_version=4)\n"
                "nbclient.NotebookClient(nb, kernel_name='python3', timeout=CELL_SECONDS,\n"
                "                        shutdown_kernel='immediate',\n"
                "                        resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
                "print('executed', len(nb.cells), 'cells')\n").replace(
                    "CELL_SECONDS", str(CELL_SECONDS))
        command = [str(python), "-c", code, str(downloaded), str(downloaded.parent)]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                run(command, env=env, cwd=downloaded.parent, timeout=RUN_SECONDS)
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                # A Jupyter kernel over TCP now and then loses a reply and the client waits
                # forever (seen on this 2-core machine): a second try tells that apart from
                # a chapter that fails.
                print(f"attempt {attempt} failed: {error}", flush=True)
                if attempt == ATTEMPTS:
                    raise
    return time.perf_counter() - start


if __name__ == "__main__":
    seconds = check(*sys.argv[1:])
    print(f"the downloaded chapter ran in a fresh environment: {seconds:.0f} s")
