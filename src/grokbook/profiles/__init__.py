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
``GROKBOOK_SEED_OFFSET=k`` (or ``load(..., seed_offset=k)``) shifts every list of seeds.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any

PROFILE_NAMES = ("ci", "book", "paper")
CHAPTERS = ("grokking", "embeddings", "xor", "transfer", "cross", "neuralgrok", "progress",
            "shootout")


def resolve(profile: str | None = None) -> str:
    """The profile to use: ``profile`` if given, else ``$GROKBOOK_PROFILE``, else ``"book"``."""
    name = profile if profile is not None else os.environ.get("GROKBOOK_PROFILE", "book")
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILE_NAMES)}")
    return name


def resolve_offset(seed_offset: int | None = None) -> int:
    """The seed offset to use: ``seed_offset`` if given, else ``$GROKBOOK_SEED_OFFSET``, else 0."""
    value: Any = seed_offset
    if value is None:
        text = os.environ.get("GROKBOOK_SEED_OFFSET", "0").strip()
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"GROKBOOK_SEED_OFFSET must be a non-negative integer, "
                             f"got {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise ValueError(f"seed_offset must be an integer in 0..1000000000, got {value!r}")
    return value


def shift_seeds(settings: Any, offset: int) -> Any:
    """``settings`` with every list of seeds shifted by ``offset``: fields named ``seeds`` or
    ``*_seeds`` holding integers, and the ``"seeds"`` entry of dict-valued fields."""
    if not offset:
        return settings
    changes = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name.endswith("seeds") and isinstance(value, (tuple, list)):
            changes[f.name] = type(value)(s + offset for s in value)
        elif isinstance(value, dict) and isinstance(value.get("seeds"), (tuple, list)):
            changes[f.name] = {**value, "seeds": type(value["seeds"])(
                s + offset for s in value["seeds"])}
    return dataclasses.replace(settings, **changes)


def seeds_of(settings: Any) -> set[int]:
    """Every seed ``settings`` lists (the fields :func:`shift_seeds` shifts)."""
    out: set[int] = set()
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name.endswith("seeds") and isinstance(value, (tuple, list)):
            out.update(value)
        elif isinstance(value, dict) and isinstance(value.get("seeds"), (tuple, list)):
            out.update(value["seeds"])
    return out


def load(chapter: str, profile: str | None = None, seed_offset: int | None = None,
         tuned: bool = True) -> Any:
    """The settings of ``chapter``'s experiments at ``profile`` (see :func:`resolve`), every
    list of seeds shifted by ``seed_offset`` (see :func:`resolve_offset`): the same chapter on
    other splits and initialisations, to check that its claims do not rest on its seeds.

    Chapters that compare methods (4, 5 and 6) train each at its tuned (lr, weight decay), read
    from the committed tuning table (``grokbook.tuning``); ``tuned=False`` gives the settings
    before tuning, which the tuning grid starts from. An offset that would make a chapter report
    a tuning seed is refused: tuning and reported seeds stay disjoint."""
    from grokbook.tuning import TUNING_SEEDS

    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters with profiles: "
                         f"{', '.join(CHAPTERS)}")
    name = resolve(profile)
    module = importlib.import_module(f"grokbook.profiles.{chapter}")
    settings = module.PROFILES[name]
    if tuned and hasattr(module, "tuned"):
        settings = module.tuned(settings)
    offset = resolve_offset(seed_offset)
    settings = shift_seeds(settings, offset)
    clash = sorted(seeds_of(settings) & set(TUNING_SEEDS))
    if clash:
        raise ValueError(f"seed_offset {offset} makes {chapter} report the tuning seeds "
                         f"{clash}; choose an offset that keeps its seeds away from "
                         f"{min(TUNING_SEEDS)}..{max(TUNING_SEEDS)}")
    return settings
