"""A Jupyter kernel manager whose client never waits for a message that has already arrived.

An asyncio ZMQ poll can miss the arrival of a message while the event loop is busy with others
(a widget's burst of comm messages on IOPub; jupyter/nbclient#312). The poll then sleeps for its
whole timeout though the reply is in the socket: an hour for one of a chapter's cells
(``chapters.CELL_TIMEOUT``), forever for nbclient's IOPub wait, which has none. Chapter 8's
leaderboard widget hit it often on a loaded 2-core machine. :class:`SlicedPollChannel` waits in
short slices instead, and each new poll finds a message already there; papermill gets it
through ``kernel_manager_class=KernelManager`` (``grokbook.chapters.execute``).
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

POLL_SLICE = 0.5
"""Seconds one poll of a channel may sleep before it looks at the socket again."""


class SlicedPollChannel(AsyncZMQSocketChannel):
    """A channel whose :meth:`get_msg` polls in slices of :data:`POLL_SLICE` seconds up to its
    timeout (None: for ever), so a missed wake-up costs at most one slice."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else deadline - time.monotonic()
            try:
                return await super().get_msg(timeout=max(0.0, min(POLL_SLICE, left)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class KernelClient(AsyncKernelClient):
    """nbclient's asynchronous client with :class:`SlicedPollChannel` for replies and output."""

    shell_channel_class = Type(SlicedPollChannel)
    iopub_channel_class = Type(SlicedPollChannel)


class KernelManager(AsyncKernelManager):
    """nbclient's asynchronous kernel manager, handing out :class:`KernelClient`."""

    client_class = DottedObjectName("grokbook.kernel.KernelClient")
    client_factory = Type(KernelClient)
