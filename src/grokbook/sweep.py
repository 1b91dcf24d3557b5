"""Many independent runs at once, on Dask distributed: this machine's cores or a cluster.

A sweep is a list of *cells* (plain, picklable settings) and one function that turns a cell into
a result row. :func:`map_cells` runs the function on every cell:

- ``workers=0``: in this process, one cell after another (tests, debugging);
- ``workers=N``: a Dask ``LocalCluster`` of N worker processes with one thread each (small
  models use one core best; N processes use N cores), kept for the process's later sweeps
  (:func:`local_client`);
- ``scheduler="tcp://HOST:8786"``: an existing Dask cluster (for Slurm, start one with
  ``dask-jobqueue``'s ``SLURMCluster`` and pass its address; see the README).

Rows stream back as cells finish (``on_result`` is called with each, so a caller can save them
as they come and a killed sweep resumes where it stopped). A cell that raises does not stop the
others: it comes back as a :class:`CellError` naming the cell and the error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from grokbook.train import progress_enabled


@dataclass(frozen=True)
class CellError:
    """A cell whose function raised: the cell and the error as text."""

    cell: Any
    error: str

    def __str__(self) -> str:
        return f"cell {self.cell!r} failed: {self.error}"


WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
"""The environment a local worker process starts with: Dask's default, one thread per library,
without its ``MALLOC_TRIM_THRESHOLD_=65536``, which hands freed memory back to the system so
eagerly that training a Transformer of chapter 1 on one thread took 1.6 times as long (26.2
against 16.5 seconds, measured 2026-12-06)."""


def _one_thread(fn: Callable[[Any], Any], cell: Any) -> Any:
    """Run ``fn(cell)`` on one intra-op thread (each worker process owns one core)."""
    import torch

    torch.set_num_threads(1)
    return fn(cell)


def _guarded(fn: Callable[[Any], Any], cell: Any, threads: int | None) -> Any:
    try:
        return _one_thread(fn, cell) if threads == 1 else fn(cell)
    except Exception as error:  # one cell's failure is reported, the sweep goes on
        return CellError(cell, f"{type(error).__name__}: {error}")


_LOCAL: dict[int, Any] = {}


def local_client(workers: int):
    """A Dask client of a ``LocalCluster`` of ``workers`` one-thread processes, started the
    first time it is asked for and kept for the next sweep of this process (a chapter races
    several times; starting the processes takes seconds), closed when the process exits or a
    sweep is interrupted. A cluster already up with at least ``workers`` processes serves a
    smaller request. Its workers keep the environment of the moment they started (the run
    cache's folder, the CPU kernels) and the runs they finished."""
    larger = [n for n in _LOCAL if n >= workers]
    if larger:
        return _LOCAL[min(larger)][1]
    if workers not in _LOCAL:
        import atexit

        import dask
        from dask.distributed import Client, LocalCluster

        with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRONMENT}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
        if not _LOCAL:
            atexit.register(close_local_clients)
        _LOCAL[workers] = (cluster, Client(cluster))
    return _LOCAL[workers][1]


def close_local_clients() -> None:
    """Stop the local clusters :func:`local_client` started."""
    while _LOCAL:
        cluster, client = _LOCAL.popitem()[1]
        client.close()
        cluster.close()


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def check_options(workers: int | None, scheduler: str | None) -> None:
    """Refuse a bad ``workers`` or ``scheduler`` of :func:`map_cells` (before any work)."""
    if workers is not None and (not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    if scheduler is not None and not str(scheduler).startswith(("tcp://", "tls://", "inproc://")):
        raise ValueError(f"scheduler must be a Dask address such as tcp://HOST:8786, "
                         f"got {scheduler!r}")


def map_cells(fn: Callable[[Any], Any], cells: Sequence[Any], *, workers: int | None = None,
              scheduler: str | None = None, progress: bool | None = None, desc: str = "cells",
              on_result: Callable[[Any, Any], None] | None = None) -> list[Any]:
    """``[fn(cell) for cell in cells]``, run on Dask (see the module docstring); a failed cell
    gives a :class:`CellError` in its place. ``on_result(cell, result)`` is called in this
    process as each cell finishes, in the order they finish."""
    check_options(workers, scheduler)
    cells = list(cells)
    results: list[Any] = [None] * len(cells)
    bar = tqdm(total=len(cells), desc=desc, disable=not progress_enabled(progress), leave=False)

    def finish(index: int, result: Any) -> None:
        results[index] = result
        if on_result is not None:
            on_result(cells[index], result)
        bar.update()

    try:
        if not cells:
            return results
        if scheduler is None and workers == 0:
            for index, cell in enumerate(cells):
                finish(index, _guarded(fn, cell, None))
            return results
        from dask.distributed import Client, as_completed

        client = Client(scheduler) if scheduler is not None else local_client(
            workers or default_workers())
        futures = {}
        try:
            futures = {client.submit(_guarded, fn, cell, 1, pure=False): index
                       for index, cell in enumerate(cells)}
            for future in as_completed(futures):
                finish(futures[future], future.result())
        except BaseException:  # interrupted: no worker may go on training for nobody
            client.cancel(list(futures))
            if scheduler is None:
                close_local_clients()  # a running task cannot be stopped, only its process
            raise
        finally:
            if scheduler is not None:
                client.close()
        return results
    finally:
        bar.close()
