"""Fixtures shared by several test modules."""

import pytest
from hypothesis import settings

from grokbook import cache

# Property tests check properties, not speed: without a deadline, a test case slowed down by the
# other worker sharing the cores (or by a chapter's training) cannot fail the suite. Hypothesis'
# default 200 ms deadline failed a history round trip once at 275 ms under `make test`.
settings.register_profile("grokbook", deadline=None)
settings.load_profile("grokbook")


@pytest.fixture
def disk_cache(tmp_path, monkeypatch):
    """A run cache of its own on disk (``$GROKBOOK_CACHE`` in a temporary folder), with the
    in-memory layer cleared before and after."""
    monkeypatch.setenv("GROKBOOK_CACHE", str(tmp_path / "cache"))
    cache._MEMORY.clear()
    yield tmp_path / "cache"
    cache._MEMORY.clear()
