"""`astream_run`: one run as an async iterator of typed events (`agent.models.run_events`).

The loop reports each graph step to `arun`'s `on_event` callback, on the event loop that drives it; here each
step becomes zero or more typed events, put on a queue the iterator reads. The run itself is `arun`, unchanged:
same run folder, checkpoints, lock and result, and its `FinishedEvent` comes last. Breaking out of the loop
early cancels the run (its checkpoints stay: `resume` continues it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.interfaces.api import RunResult, arun, make_brief
from agent.interfaces.run_folder import IfExists
from agent.models import Brief, PixloopConfig
from agent.models.run_events import (
    CandidateEvent,
    CorrectingEvent,
    FinishedEvent,
    JudgedEvent,
    PlannedEvent,
    RunEvent,
    VerdictEvent,
)


def events_of(node: str, update: dict[str, Any], t: float) -> list[RunEvent]:
    """The typed events one graph step's update stands for (none for a step with nothing to report)."""
    if node == "plan" and update.get("plan") is not None:
        p = update["plan"]
        return [PlannedEvent(t=t, width=p.width, height=p.height, text=[e.content for e in p.text],
                             checks={k: c.threshold for k, c in p.checks.items()}, edit=p.edit is not None)]
    if node == "generate":
        return [CandidateEvent(t=t, id=c.id, iteration=c.iteration, strategy=c.strategy, backend=c.backend,
                               seconds=c.seconds, cost=c.cost, path=c.image.path)
                for c in update.get("candidates") or []]
    if node == "check":
        return [VerdictEvent(t=t, candidate_id=v.candidate_id, critic=v.critic, checked=v.checked, passed=v.passed,
                             score=v.score, threshold=v.threshold, feedback=v.feedback)
                for v in update.get("verdicts") or []]
    if node == "judge" and "current_id" in update:
        return [JudgedEvent(t=t, iteration=_iteration(update.get("current_id")), current_id=update.get("current_id"),
                            best_id=update.get("best_id"), stop_reason=update.get("stop_reason"))]
    if node == "correct":
        return [CorrectingEvent(t=t, iteration=a.iteration, strategy=a.strategy, reason=a.reason,
                                addresses=list(a.addresses)) for a in update.get("actions") or []]
    return []


def _iteration(candidate_id: str | None) -> int:
    """A candidate id is `c<iteration>` plus a letter for extra drafts."""
    digits = "".join(ch for ch in (candidate_id or "")[1:] if ch.isdigit())
    return int(digits) if digits else 0


def finished(result: RunResult, t: float) -> FinishedEvent:
    return FinishedEvent(t=t, status=result.status, stop_reason=result.stop_reason, iterations=result.iterations,
                         final_image=result.final_image, run_dir=result.run_dir, error=result.error)


async def astream_run(brief: Brief | str, config: PixloopConfig | None = None, *, out: str | Path | None = None,
                      thread_id: str | None = None, if_exists: IfExists = "refuse",
                      **brief_fields: Any) -> AsyncIterator[RunEvent]:
    """Run the loop and yield its events as they happen, the `FinishedEvent` last.

    `brief` is a validated Brief, or a prompt made into one with `brief_fields` (the arguments of `make_brief`:
    required_text, references, source, mask, size, max_iterations, ...). Bad input raises BriefError before the
    first event."""
    if isinstance(brief, str):
        brief = make_brief(brief, **brief_fields)
    elif brief_fields:
        raise TypeError(f"brief fields {sorted(brief_fields)} are only for a prompt, not a Brief")
    queue: asyncio.Queue[RunEvent] = asyncio.Queue()
    t0 = time.perf_counter()

    def on_event(node: str, update: dict[str, Any]) -> None:
        for event in events_of(node, update, round(time.perf_counter() - t0, 4)):
            queue.put_nowait(event)

    task = asyncio.create_task(arun(brief, config, out=out, thread_id=thread_id, on_event=on_event,
                                    if_exists=if_exists))
    try:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
            else:
                getter.cancel()
        yield finished(task.result(), round(time.perf_counter() - t0, 4))
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


__all__ = ["astream_run", "events_of", "finished"]
