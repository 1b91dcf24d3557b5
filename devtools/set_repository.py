"""Point the book at its repository: ``python devtools/set_repository.py URL``.

The repository's address is one setting, ``repository.url`` in ``_config.yml``: the repository
button, the Binder / Colab launch buttons and live code (Thebe) read it there. The chapters'
first cell installs ``grokbook`` from the same address when the package is missing (Colab,
Binder, a downloaded notebook); this script writes the address into both places, and
``tests/test_book_source.py`` fails when they disagree. A local clone works too
(``file:///path/to/clone``), which is how the downloaded-notebook check runs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "_config.yml"
SETTING = re.compile(r"^(repository:\n(?:  .*\n)*?  url: )(\S+)", re.M)
IN_CELL = re.compile(r'^(REPOSITORY = ")([^"]*)(")', re.M)


def configured_url(config: Path = CONFIG) -> str:
    """The repository URL that ``_config.yml`` sets."""
    match = SETTING.search(config.read_text())
    if match is None:
        raise ValueError(f"{config}: no `repository: url:` setting")
    return match.group(2)


def set_url(url: str, root: Path = ROOT) -> list[Path]:
    """Write ``url`` into ``_config.yml`` and every chapter's install cell; return the files."""
    if not re.match(r"^(https://|file://)\S+$", url):
        raise ValueError(f"url must start with https:// or file://, got {url!r}")
    config = root / "_config.yml"
    config.write_text(SETTING.sub(lambda m: m.group(1) + url, config.read_text(), count=1))
    changed = [config]
    for path in sorted((root / "book").glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        cell = next(c for c in notebook.cells if c.cell_type == "code")
        if not IN_CELL.search(cell.source):
            raise ValueError(f"{path}: the first code cell is not the install cell")
        cell.source = IN_CELL.sub(lambda m: m.group(1) + url + m.group(3), cell.source)
        nbformat.write(notebook, path)
        changed.append(path)
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for changed_path in set_url(sys.argv[1]):
        print(f"set {changed_path.relative_to(ROOT)}")
