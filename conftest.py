"""Test-wide settings: everything runs at the ci profile, quietly, without a display.

Set here, at the repository root, so that they hold before nbval starts a kernel for a chapter
(the kernel inherits this environment): chapters re-execute at the `ci` profile, with the
run cache off.
"""

import os

import matplotlib

os.environ["GROKBOOK_PROFILE"] = "ci"
os.environ["GROKBOOK_PROGRESS"] = "0"
os.environ.setdefault("GROKBOOK_CACHE", "off")  # tests train; a test about the cache sets it
# A chapter's runs train one after another in its kernel, not on worker processes of their
# own (grokbook.engine.workers): `make test`'s xdist workers already fill the cores.
os.environ.setdefault("GROKBOOK_WORKERS", "0")
if "PYTEST_XDIST_WORKER" in os.environ:
    # `make test` runs two workers on two cores: one thread each (chapter kernels inherit it;
    # every single run trains on one thread anyway, grokbook.train.one_thread).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
matplotlib.use("Agg")

# The slowest test files, slowest first (seconds in `make test`, measured 2026-12-05). Two
# xdist workers take whole files (`--dist loadfile --no-loadscope-reorder`) in this order, and
# the rest after them, so that neither worker is left with a long chapter at the end.
SLOWEST_FIRST = (
    "book/05_cross_transfer.ipynb",
    "book/04_groktransfer.ipynb",
    "book/02_embeddings.ipynb",
    "book/07_progress.ipynb",
    "book/01_grokking.ipynb",
    "book/06_neuralgrok.ipynb",
    "tests/test_shootout.py",
    "tests/test_profiles.py",
    "tests/test_plots_and_widgets.py",
    "book/08_shootout.ipynb",
    "book/03_xor.ipynb",
    "tests/test_grids.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: a file's tests keep their order
