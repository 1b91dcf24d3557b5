"""``History``: what a training run measured, saved as versioned strict JSON.

One convention for "never reached" everywhere: :meth:`History.first_epoch` returns the first
evaluated epoch at which a column reaches a threshold, or ``None``. Statistics over seeds treat
``None`` as *censored at the run's budget* (``grokbook.stats``), never as infinity.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grokbook.files import as_float, atomic_write, atomic_write_json, dumps, loads

METRICS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "weight_norm")
SCHEMA_VERSION = 1
STOP_REASONS = ("budget", "target", "callback", "diverged", "interrupted")


class UnknownColumn(KeyError, ValueError):
    """A column a History does not have (a ``KeyError`` for lookups, a ``ValueError`` for
    bad input, as every other bad argument)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class History:
    """What a training run measured, one entry per evaluation.

    ``epoch`` counts passes over the training set (with full batch, one optimizer step each);
    the other columns are measured at the parameters reached after that many epochs. ``extras``
    holds further measures (``name -> column``); ``config`` what the run was; ``seconds`` its
    wall time; ``stopped`` why it ended (one of ``STOP_REASONS``).
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    weight_norm: list[float] = field(default_factory=list)
    extras: dict[str, list[float]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: str = "budget"

    def __len__(self) -> int:
        return len(self.epoch)

    @property
    def budget(self) -> int:
        """The epochs the run was allowed: where a run that never got there is censored."""
        return int(self.config.get("epochs", self.epoch[-1] if self.epoch else 0))

    def column(self, name: str) -> list:
        """One measured column by name: a standard metric or an extra measure."""
        if name in METRICS:
            return getattr(self, name)
        if name in self.extras:
            return self.extras[name]
        raise UnknownColumn(f"no column {name!r}; columns: "
                            f"{', '.join([*METRICS, *self.extras])}")

    def first_epoch(self, column: str = "test_acc", threshold: float = 0.95) -> int | None:
        """The first evaluated epoch at which ``column`` is at least ``threshold``; None if the
        run never got there (exact to the evaluation interval)."""
        for epoch, value in zip(self.epoch, self.column(column)):
            if value >= threshold:
                return epoch
        return None

    def append(self, epoch: int, train_loss: float, train_acc: float, test_loss: float,
               test_acc: float, weight_norm: float) -> None:
        """Add one evaluation's standard metrics."""
        for name, value in zip(METRICS, (epoch, train_loss, train_acc, test_loss, test_acc,
                                         weight_norm)):
            getattr(self, name).append(value)

    def to_dict(self) -> dict[str, Any]:
        """The history as plain data, with its schema version."""
        return {"version": SCHEMA_VERSION, **{name: list(getattr(self, name)) for name in METRICS},
                "extras": {k: list(v) for k, v in self.extras.items()}, "config": self.config,
                "seconds": self.seconds, "stopped": self.stopped}

    @classmethod
    def from_dict(cls, data: Any, what: str = "history") -> History:
        """Rebuild a history from :meth:`to_dict`'s output, checking every key, type and
        length; anything else is one ``ValueError`` naming ``what`` and the problem."""
        if not isinstance(data, dict):
            raise ValueError(f"{what}: expected a JSON object, got {type(data).__name__}")
        expected = {"version", *METRICS, "extras", "config", "seconds", "stopped"}
        missing, unknown = expected - set(data), set(data) - expected
        if missing or unknown:
            raise ValueError(f"{what}: missing keys {sorted(missing)}, unknown keys "
                             f"{sorted(unknown)}; a history has {sorted(expected)}")
        if data["version"] != SCHEMA_VERSION:
            raise ValueError(f"{what}: schema version {data['version']!r}, this grokbook reads "
                             f"version {SCHEMA_VERSION}")
        columns: dict[str, list] = {}
        for name in METRICS:
            values = data[name]
            if not isinstance(values, list):
                raise ValueError(f"{what}: {name} must be a list, got {type(values).__name__}")
            if name == "epoch":
                if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                           for v in values):
                    raise ValueError(f"{what}: epoch must hold non-negative integers")
                if any(a >= b for a, b in zip(values, values[1:])):
                    raise ValueError(f"{what}: epoch must be strictly increasing, got "
                                     f"{values[:8]}{'...' if len(values) > 8 else ''}")
                columns[name] = list(values)
            else:
                columns[name] = [as_float(v, f"{what}: {name}") for v in values]
        extras = data["extras"]
        if not isinstance(extras, dict) or not all(isinstance(v, list) for v in extras.values()):
            raise ValueError(f"{what}: extras must map names to lists")
        extras = {str(k): [as_float(x, f"{what}: extras[{k!r}]") for x in v]
                  for k, v in extras.items()}
        lengths = {name: len(v) for name, v in {**columns, **extras}.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{what}: columns of unequal length {lengths}")
        if not isinstance(data["config"], dict):
            raise ValueError(f"{what}: config must be an object")
        if data["stopped"] not in STOP_REASONS:
            raise ValueError(f"{what}: stopped must be one of {STOP_REASONS}, "
                             f"got {data['stopped']!r}")
        return cls(**columns, extras=extras, config=data["config"],
                   seconds=as_float(data["seconds"], f"{what}: seconds"), stopped=data["stopped"])

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` atomically: strict JSON for ``.json``, NumPy's archive for
        ``.npz`` (read back without pickle)."""
        path = Path(path)
        if path.suffix == ".json":
            return atomic_write_json(path, self.to_dict())
        if path.suffix == ".npz":
            columns = {name: np.asarray(getattr(self, name)) for name in METRICS}
            columns.update({f"extras.{k}": np.asarray(v) for k, v in self.extras.items()})
            meta = dumps({k: v for k, v in self.to_dict().items()
                          if k in ("version", "config", "seconds", "stopped")})
            return atomic_write(path, lambda f: np.savez(f, **columns, meta=np.array(meta)))
        raise ValueError(f"path must end in .json or .npz, got {str(path)!r}")

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a history written by :meth:`save`, validated (see :meth:`from_dict`)."""
        path = Path(path)
        if path.suffix == ".json":
            return cls.from_dict(loads(path.read_bytes(), str(path)), str(path))
        if path.suffix == ".npz":
            try:
                with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as archive:
                    meta = loads(str(archive["meta"]), str(path))
                    data = {name: archive[name].tolist() for name in METRICS}
                    extras = {k.removeprefix("extras."): archive[k].tolist()
                              for k in archive.files if k.startswith("extras.")}
            except (OSError, KeyError, ValueError, EOFError) as error:
                raise ValueError(f"{path} is not a history archive: {error}") from None
            if not isinstance(meta, dict):
                raise ValueError(f"{path}: its metadata is not an object")
            return cls.from_dict({**meta, **data, "extras": extras}, str(path))
        raise ValueError(f"path must end in .json or .npz, got {str(path)!r}")

    def followed_by(self, later: History) -> History:
        """This run, then ``later``: a run that went on from this one's last parameters (after
        a change to the model, say). ``later``'s epochs are shifted by this run's last epoch and
        its first evaluation, a repeat of this run's last, is dropped; seconds add up."""
        if not self.epoch or not later.epoch:
            raise ValueError("both runs must have at least one evaluation")
        offset = self.epoch[-1]
        config = {**self.config, "followed_by": later.config,
                  "epochs": offset + later.budget}
        combined = History(config=config, seconds=self.seconds + later.seconds,
                           stopped=later.stopped)
        for name in METRICS:
            shift = offset if name == "epoch" else 0
            getattr(combined, name).extend(getattr(self, name))
            getattr(combined, name).extend(v + shift for v in getattr(later, name)[1:])
        for name in set(self.extras) & set(later.extras):
            combined.extras[name] = self.extras[name] + later.extras[name][1:]
        return combined

    def __repr__(self) -> str:
        last = (f", last epoch {self.epoch[-1]}, test {self.test_acc[-1]:.1%}"
                if self.epoch else "")
        return f"History({len(self)} evaluations{last}, stopped: {self.stopped})"




__all__ = ["METRICS", "SCHEMA_VERSION", "STOP_REASONS", "History", "UnknownColumn"]
