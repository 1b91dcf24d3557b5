"""Input checks shared by the package: bad input gets a clear error naming the parameter."""

from __future__ import annotations

import os


def check_int(name: str, value: object, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


MAX_SEED = 2**63 - 1


def check_seed(value: object, name: str = "seed") -> None:
    """Raise ``ValueError`` unless ``value`` is an integer in ``0..2**63 - 1`` (what torch's
    generators accept)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in 0..{MAX_SEED}, got {value!r}")


def available_memory(device=None) -> int:
    """Bytes of memory a run on ``device`` may at most use: the GPU's for a CUDA device, this
    machine's physical memory otherwise."""
    if device is not None and getattr(device, "type", str(device)).startswith("cuda"):
        import torch
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no bound known
        return 2**63


def check_memory(needed: int, what: str, device=None) -> None:
    """Refuse work whose memory estimate ``needed`` exceeds 80% of the memory of ``device``
    (default: this machine's), with the estimate in the message: a clear error instead of a
    crashed machine. ``GROKBOOK_MEMORY_CHECK=off`` lifts the bound."""
    if os.environ.get("GROKBOOK_MEMORY_CHECK", "on").lower() == "off":
        return
    total = available_memory(device)
    if needed > 0.8 * total:
        where = "this GPU" if device is not None and str(device).startswith("cuda") \
            else "this machine"
        raise ValueError(f"{what} needs about {needed / 2**30:.1f} GiB of memory, more than 80% "
                         f"of {where}'s {total / 2**30:.1f} GiB; choose a smaller size (or set "
                         "GROKBOOK_MEMORY_CHECK=off to try anyway)")
