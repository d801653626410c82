"""Progress notifications for long tool calls, from the loop's `on_event` updates and a document's events.

The library calls `on_event` synchronously from inside the graph's stream; a notification is an async send. The
relay queues each one and a single task sends them in order, so a slow client never stalls the loop, and the
tool awaits the queue's end before it answers: every notification arrives before the result. Progress counts
iterations (`iteration / max_iterations`) and grows with every step, as the MCP spec asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from agent.interfaces.cli.story import describe
from agent.interfaces.progress import describe_update
from agent.models.document import ConsistencyEvent, DocumentEvent, DoneEvent, ImageReadyEvent

Send = Callable[[float, float | None, str | None], Awaitable[None]]
"""`Context.report_progress`: (progress, total, message)."""

STEPS = {"plan": ("planning", 0.0), "generate": ("generating", 0.3), "check": ("checking", 0.5),
         "judge": ("judging", 0.8), "correct": ("correcting", 0.9), "finalize": ("finishing", 1.0)}
"""Each graph node: the word a progress message uses, and how far into its iteration it is."""
STEP = 0.001
"""The least a notification moves progress on, where a step repeats (one `check` update per critic)."""


class ProgressRelay:
    """Sends (progress, total, message) triples in order, from synchronous callbacks, as long as it is open."""

    def __init__(self, send: Send):
        self.send = send
        self.queue: asyncio.Queue[tuple[float, float | None, str] | None] = asyncio.Queue()
        self.last = -1.0
        self.task: asyncio.Task[None] | None = None

    def push(self, progress: float, total: float | None, message: str) -> None:
        value = max(progress, self.last + STEP)
        self.last = value
        self.queue.put_nowait((round(value, 4), total, message))

    async def _pump(self) -> None:
        while (item := await self.queue.get()) is not None:
            await self.send(*item)

    async def __aenter__(self) -> ProgressRelay:
        self.task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self.task is not None
        if error is not None:
            self.task.cancel()
            return
        self.queue.put_nowait(None)
        await self.task


class LoopProgress:
    """The `on_event` callback of one image run: each graph step becomes "iteration N: checking (...)"."""

    def __init__(self, relay: ProgressRelay, max_iterations: int):
        self.relay = relay
        self.total = float(max_iterations)
        self.iteration = 0

    def __call__(self, node: str, update: dict[str, Any]) -> None:
        self.iteration = int(update.get("iteration") or self.iteration)
        word, share = STEPS.get(node, (node, 0.0))
        done = update.get("status") not in (None, "running")  # finalize, or a plan refused: the run ends
        self.total = max(self.total, float(self.iteration))
        value = self.total if done else max(self.iteration - 1, 0) + share
        line = describe_update(node, update)
        detail = f" ({' '.join(line.split()[1:])})" if line else ""
        self.relay.push(value, self.total, f"iteration {max(self.iteration, 1)}: {word}{detail}")


class DocumentProgress:
    """The `on_event` callback of a document: progress counts finished images out of those the script asks for
    (more when a consistency round remakes some), plus one unit for the consistency check and the files at the
    end; every event's line is the message."""

    def __init__(self, relay: ProgressRelay, images: int | None):
        self.relay = relay
        self.total = float(images + 1) if images else None
        self.ready = 0

    def __call__(self, event: DocumentEvent) -> None:
        if isinstance(event, ImageReadyEvent):
            self.ready += 1
            if self.total is not None:
                self.total = max(self.total, float(self.ready + 1))
        value = float(self.ready)
        if isinstance(event, ConsistencyEvent):
            value += 0.5
        if isinstance(event, DoneEvent):
            value = self.total or value + 1
        self.relay.push(value, self.total, describe(event))


__all__ = ["DocumentProgress", "LoopProgress", "ProgressRelay", "STEPS"]
