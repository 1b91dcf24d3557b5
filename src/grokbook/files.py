"""Files written atomically and read back strictly: no result is lost to a failed write.

Every file the package writes (a History, a run-cache entry, a table) goes to a temporary file
in the target's folder, is flushed to disk, then renamed over the target: a crash or a full disk
mid-write leaves the previous file as it was. JSON is written strict (no bare ``NaN`` or
``Infinity``, which other JSON readers reject): non-finite floats become the strings ``"nan"``,
``"inf"`` and ``"-inf"`` and are turned back into floats where a reader expects numbers.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it to
    ``path``. On any error the temporary file is removed and ``path`` is left untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write {path}: a part of its folder "
                                 "is a file, not a folder", str(path.parent)) from None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def writable_folder(path: str | Path, what: str = "folder") -> Path:
    """Check, before any work that will write there, that ``path`` is a folder (or one that
    can be made) that takes files; otherwise a ``ValueError`` naming ``what``."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file; it must name a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"{what} {str(path)!r} cannot be written: "
                         f"{error.strerror or error}") from None
    return folder


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda file: file.write(data))


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Strict JSON of ``value``: non-finite floats as ``"nan"``, ``"inf"``, ``"-inf"``."""
    return json.dumps(_strict(value), allow_nan=False, sort_keys=True)


def atomic_write_json(path: str | Path, value: Any) -> Path:
    """Write ``value`` as strict JSON to ``path`` atomically."""
    return atomic_write_bytes(path, dumps(value).encode())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: bare {name}")


def loads(text: str | bytes, what: str = "file") -> Any:
    """Parse strict JSON; a bare ``NaN``/``Infinity`` or nesting deeper than Python's recursion
    limit is a ``ValueError`` naming ``what``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} is not valid JSON: {error}") from None


def as_float(value: Any, what: str) -> float:
    """A number read back from strict JSON (``"nan"``/``"inf"``/``"-inf"`` included)."""
    if isinstance(value, str) and value in NON_FINITE:
        return NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)
