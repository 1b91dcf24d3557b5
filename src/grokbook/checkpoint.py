"""Checkpoints: a run's whole state on disk, so an interrupted run resumes bit for bit.

A checkpoint holds the model's tensors, the optimizer's state, the gradient transform's and the
measures' state (objects with ``state_dict``/``load_state_dict``), the minibatch generator's
state, the History so far and the loop's counters. It is one ``.npz`` file, written atomically
(``grokbook.files``) and read back with ``allow_pickle=False``: nested state is flattened into
named arrays plus a strict-JSON description, so loading never runs code.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grokbook.files import atomic_write, dumps, loads

FORMAT = 1


def _flatten(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, torch.Tensor):
        name = f"t{len(arrays)}"
        arrays[name] = value.detach().cpu().numpy()
        return {"__tensor__": name, "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, dict):
        return {"__dict__": [[_flatten(k, arrays), _flatten(v, arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"__list__": [_flatten(v, arrays) for v in value],
                "tuple": isinstance(value, tuple)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint")


def _unflatten(value: Any, arrays) -> Any:
    if isinstance(value, dict) and "__tensor__" in value:
        tensor = torch.from_numpy(arrays[value["__tensor__"]].copy())
        return tensor.to(getattr(torch, value["dtype"]))
    if isinstance(value, dict) and "__dict__" in value:
        return {_unflatten(k, arrays): _unflatten(v, arrays) for k, v in value["__dict__"]}
    if isinstance(value, dict) and "__list__" in value:
        items = [_unflatten(v, arrays) for v in value["__list__"]]
        return tuple(items) if value["tuple"] else items
    return value


def save(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts and lists of tensors and plain values) atomically."""
    arrays: dict[str, np.ndarray] = {}
    description = dumps({"format": FORMAT, "state": _flatten(state, arrays)})
    return atomic_write(path, lambda f: np.savez(f, __description__=np.array(description),
                                                 **arrays))


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; anything else is one ``ValueError``."""
    path = Path(path)
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a grokbook checkpoint: {error}") from None
    if "__description__" not in arrays:
        raise ValueError(f"{path} is not a grokbook checkpoint: no description")
    description = loads(str(arrays.pop("__description__")), str(path))
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {description!r:.40} is not {FORMAT}")
    try:
        return _unflatten(description["state"], arrays)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: a damaged checkpoint ({error})") from None
