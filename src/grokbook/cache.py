"""The run cache: load a finished run instead of training it again.

Every run of the experiments layer is stored under a key that hashes everything that decides its
result: its full settings, its seed, how it was started (a transfer's source run, say), the
package's *code version* (a hash of the code, docstrings and comments left out, of every source
file of ``grokbook`` that can change what a run computes, and the torch version) and what of the
machine changes its rounding (:func:`machine`: the device, the CPU model, its kernel set, the
thread count), so
an entry is never stale: change any line of training code and old entries are simply not found
(editing a docstring, a figure or a chapter's profile keeps them). An entry is two files, written
atomically: ``KEY.npz`` with the model's tensors (read back with ``allow_pickle=False``) and
``KEY.json`` with the History, the spec and the tensors' SHA-256, written last. A file that does
not parse, does not match its key or its checksum is reported and recomputed, never trusted.

Where: ``$GROKBOOK_CACHE`` (a folder, or ``off``), else ``.cache/grokbook`` in the repository
when the package runs from a checkout, else ``~/.cache/grokbook``. The tests run with it off.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import io
import os
import shutil
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grokbook.config import fingerprint
from grokbook.files import atomic_write_bytes, atomic_write_json, loads
from grokbook.history import History

FORMAT = 1
PACKAGE = Path(__file__).resolve().parent


# Modules that only show, check or launch runs and never change what a run computes: editing a
# figure's style must not retrain the book. tests/test_cache.py checks that training never
# imports them.
PRESENTATION = ("bench.py", "chapters.py", "claims.py", "cli.py", "foresight.py", "kernel.py",
                "leaderboard.py", "plots.py", "tables.py", "widgets.py")
# Modules that only choose which runs to do, or store them: a run's settings are in its key
# (profiles and the tuning table pick them, a sweep and the engine schedule them), and the
# stored format has its own number (FORMAT). Editing a chapter's profile must not retrain the
# other chapters.
SELECTION = ("cache.py", "engine.py", "grids.py", "profiles/", "regime.py", "sweep.py",
             "tuning.py")


@cache
def code_version() -> str:
    """A hash of the package's training source files (all but :data:`PRESENTATION` and
    :data:`SELECTION`), as code (:func:`code_of`), and the torch version: part of every key."""
    digest = hashlib.sha256(torch.__version__.encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        if not is_training_source(path.relative_to(PACKAGE).as_posix()):
            continue
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(code_of(path.read_bytes()))
    return digest.hexdigest()[:16]


class _NoDocstrings(ast.NodeTransformer):
    def visit_Expr(self, node: ast.Expr) -> ast.Expr | None:
        """A statement that is only a string (a docstring, an attribute's doc) does nothing."""
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        return node


def code_of(source: bytes) -> bytes:
    """What of a source file can change a run: its syntax tree without docstrings, so that
    editing a docstring, a comment or the layout of training code keeps every cached run (the
    tree comes from this Python's parser; another Python version may give other keys)."""
    return ast.dump(_NoDocstrings().visit(ast.parse(source))).encode()


def is_training_source(name: str) -> bool:
    """Whether the package file ``name`` (relative, ``/``-separated) can change what a run
    computes, and so belongs to :func:`code_version`."""
    return name not in PRESENTATION and not any(
        name == entry or entry.endswith("/") and name.startswith(entry) for entry in SELECTION)


def location() -> Path | None:
    """The cache folder, or None when the cache is off (``GROKBOOK_CACHE=off``)."""
    setting = os.environ.get("GROKBOOK_CACHE", "").strip()
    if setting.lower() in ("off", "0", "none", "false"):
        return None
    if setting:
        return Path(setting).expanduser()
    checkout = PACKAGE.parents[1]
    if (checkout / "pyproject.toml").exists() and (checkout / "book").is_dir():
        return checkout / ".cache" / "grokbook"
    return Path.home() / ".cache" / "grokbook"


@cache
def cpu_fields(*names: str) -> dict[str, str]:
    """The first value of each of ``names`` in Linux's ``/proc/cpuinfo`` (``model name``,
    ``cpu family``, ``model``...), leaving out those it lacks (every one off Linux)."""
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = (part.strip() for part in line.partition(":"))
            if name in names and value and name not in found:
                found[name] = value
    except OSError:
        pass
    return found


def cpu_model() -> str:
    """The CPU's model as Linux reports it (``/proc/cpuinfo``'s ``model name``), else what
    :mod:`platform` knows (macOS, Windows, ARM boards without a model name)."""
    import platform

    return (cpu_fields("model name").get("model name") or platform.processor()
            or platform.machine())


def machine() -> dict[str, Any]:
    """What besides the settings and the code decides a run's last bits, and so is part of
    every key: the device kind training picks (``train.resolve_device("auto")``), and on a CPU
    its model (the BLAS library picks its kernels by the CPU it finds, whatever
    ``ATEN_CPU_CAPABILITY`` says: a stack member matched its run alone to the bit on the
    AVX-512 CPU this book was written on, not on an AMD EPYC with AVX2), the kernel set torch
    dispatches to (``ATEN_CPU_CAPABILITY``: default, AVX2, AVX-512) and the number of threads
    (a sum split over two threads rounds differently). A run cached on two threads is then not
    served to a one-thread process, whose own run would differ, nor one cached on one CPU
    model to another sharing the cache folder (a cluster's home): the cache never changes a
    result, it only saves recomputing it."""
    if torch.cuda.is_available():
        return {"device": "cuda", "gpu": torch.cuda.get_device_name()}
    return {"device": "cpu", "cpu": cpu_model(),
            "kernel": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


def key(spec: dict[str, Any]) -> str:
    """The cache key of a run described by ``spec`` (settings, seed, start) at this code, on
    this machine's device, CPU model, kernel set and thread count (:func:`machine`)."""
    return fingerprint({"spec": spec, "code": code_version(), "format": FORMAT,
                        "machine": machine()})


@dataclass
class Entry:
    """A cached run: its History and its model's tensors (None if none were stored)."""

    history: History
    state: dict[str, torch.Tensor] | None


def _paths(root: Path, run_key: str) -> tuple[Path, Path]:
    folder = root / run_key[:2]
    return folder / f"{run_key}.json", folder / f"{run_key}.npz"


def _state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{name: t.detach().cpu().numpy() for name, t in state.items()})
    return buffer.getvalue()


# Runs finished in this process, by key, whether or not the disk cache is on: a recipe that
# needs a run twice (a weak model behind several targets) trains it once.
_MEMORY: dict[str, Entry] = {}


def _copy(entry: Entry) -> Entry:
    state = None if entry.state is None else {k: v.clone() for k, v in entry.state.items()}
    return Entry(copy.deepcopy(entry.history), state)


def load(run_key: str) -> Entry | None:
    """The entry stored under ``run_key``, or None (missing, or corrupt: a corrupt entry is
    reported with a warning and ignored, so the run is recomputed). Runs finished in this
    process are found even with the disk cache off."""
    if run_key in _MEMORY:
        return _copy(_MEMORY[run_key])
    root = location()
    if root is None:
        return None
    meta_path, state_path = _paths(root, run_key)
    if not meta_path.exists():
        return None
    try:
        meta = loads(meta_path.read_bytes(), str(meta_path))
        if not isinstance(meta, dict) or meta.get("key") != run_key \
                or meta.get("format") != FORMAT:
            raise ValueError("it does not belong to this key or format")
        history = History.from_dict(meta.get("history"), f"{meta_path} history")
        state = None
        if meta.get("state_sha256") is not None:
            raw = state_path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != meta["state_sha256"]:
                raise ValueError(f"{state_path.name} does not match its checksum")
            with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
                state = {name: torch.from_numpy(archive[name].copy()) for name in archive.files}
    except (OSError, ValueError, KeyError, EOFError) as error:
        warnings.warn(f"run cache: ignoring the entry {meta_path} ({error}); the run is "
                      "trained again", stacklevel=2)
        return None
    return Entry(history, state)


def remember(run_key: str, history: History, state: dict[str, torch.Tensor] | None) -> None:
    """Keep a run finished in another process (a worker that stored it on disk, if the cache
    is on) as if it had finished in this one, so that :func:`load` finds it here too."""
    _MEMORY[run_key] = _copy(Entry(history, state))


def store(run_key: str, history: History, state: dict[str, torch.Tensor] | None,
          spec: dict[str, Any]) -> None:
    """Store a finished run under ``run_key`` (nothing when the cache is off). The tensors go
    first, the JSON that vouches for them last, each atomically."""
    remember(run_key, history, state)
    root = location()
    if root is None:
        return
    meta_path, state_path = _paths(root, run_key)
    checksum = None
    if state is not None:
        raw = _state_bytes(state)
        atomic_write_bytes(state_path, raw)
        checksum = hashlib.sha256(raw).hexdigest()
    atomic_write_json(meta_path, {"key": run_key, "format": FORMAT, "code": code_version(),
                                  "spec": spec, "history": history.to_dict(),
                                  "state_sha256": checksum})
    checkpoint_path(run_key).unlink(missing_ok=True)


def checkpoint_path(run_key: str) -> Path | None:
    """Where a run that is still training keeps its checkpoint (None with the cache off);
    :func:`store` removes it once the run is finished."""
    root = location()
    return None if root is None else root / "checkpoints" / f"{run_key}.npz"


def info() -> dict[str, Any]:
    """Where the cache is, how many entries it holds and their size on disk."""
    root = location()
    if root is None:
        return {"location": None, "entries": 0, "bytes": 0}
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return {"location": str(root),
            "entries": sum(p.suffix == ".json" and p.parent.name != "checkpoints" for p in files),
            "bytes": sum(p.stat().st_size for p in files)}


def clear() -> int:
    """Delete every entry; return how many there were."""
    _MEMORY.clear()
    root = location()
    if root is None or not root.exists():
        return 0
    entries = info()["entries"]
    shutil.rmtree(root)
    return entries
