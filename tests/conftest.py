"""Fixtures shared by several test modules."""

import pytest

from grokbook import cache


@pytest.fixture
def disk_cache(tmp_path, monkeypatch):
    """A run cache of its own on disk (``$GROKBOOK_CACHE`` in a temporary folder), with the
    in-memory layer cleared before and after."""
    monkeypatch.setenv("GROKBOOK_CACHE", str(tmp_path / "cache"))
    cache._MEMORY.clear()
    yield tmp_path / "cache"
    cache._MEMORY.clear()
