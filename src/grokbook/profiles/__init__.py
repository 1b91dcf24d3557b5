"""Every chapter's settings at three sizes: ``ci``, ``book`` and ``paper``.

One notebook, three sizes. ``ci`` is tiny (the tests re-run each chapter with it in seconds),
``book`` is what the rendered book shows and runs in minutes on a 2-core laptop CPU, ``paper``
is the papers' own settings, written for a GPU (it still starts on a CPU, slowly). A chapter's
claims must hold at every profile; only the resolution of its pictures changes.

One module per chapter (``profiles/grokking.py``, ...), each a frozen dataclass of typed
settings (``grokbook.config``) whose ``BOOK`` value is written once and whose ``CI`` and
``PAPER`` are differences from it (``config.replace``). A chapter reads its settings with
``profiles.load("grokking", profile)``; the profile defaults to ``$GROKBOOK_PROFILE``, else
``"book"``. An unknown chapter, profile or field is an error listing the known ones.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

PROFILE_NAMES = ("ci", "book", "paper")
CHAPTERS = ("grokking", "embeddings", "xor", "transfer", "cross")


def resolve(profile: str | None = None) -> str:
    """The profile to use: ``profile`` if given, else ``$GROKBOOK_PROFILE``, else ``"book"``."""
    name = profile if profile is not None else os.environ.get("GROKBOOK_PROFILE", "book")
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILE_NAMES)}")
    return name


def load(chapter: str, profile: str | None = None) -> Any:
    """The settings of ``chapter``'s experiments at ``profile`` (see :func:`resolve`)."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters with profiles: "
                         f"{', '.join(CHAPTERS)}")
    name = resolve(profile)
    module = importlib.import_module(f"grokbook.profiles.{chapter}")
    return module.PROFILES[name]
