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
if "PYTEST_XDIST_WORKER" in os.environ:
    # `make test` runs two workers on two cores: one thread each (chapter kernels inherit it),
    # which also checks that every claim holds with one thread.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
matplotlib.use("Agg")
