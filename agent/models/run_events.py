"""The typed events of one run, as `astream_run` yields them (documents have their own, in `document`).

Each carries `t`, seconds since the run started, non-decreasing. They are small: names, scores and paths,
never images. A consumer matches on the `event` field (a Literal), never on text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from agent.models.base import Model
from agent.models.run import Status, StopReason


class _RunEvent(Model):
    t: float = Field(0.0, description="seconds since the run started")


class PlannedEvent(_RunEvent):
    """The plan: canvas, required text, and the critics that will check every candidate."""

    event: Literal["planned"] = "planned"
    width: int
    height: int
    text: list[str] = Field(default_factory=list)
    checks: dict[str, float] = Field(default_factory=dict, description="critic -> threshold")
    edit: bool = False


class CandidateEvent(_RunEvent):
    """A candidate image was made (the image is in the run folder, at `path`)."""

    event: Literal["candidate"] = "candidate"
    id: str
    iteration: int
    strategy: str
    backend: str
    seconds: float
    cost: float = 0.0
    path: str


class VerdictEvent(_RunEvent):
    """One critic's verdict on one candidate."""

    event: Literal["verdict"] = "verdict"
    candidate_id: str
    critic: str
    checked: bool = True
    passed: bool
    score: float
    threshold: float
    feedback: str = ""


class JudgedEvent(_RunEvent):
    """A round ended: the round's best, the run's best, and why the run stops (None: it corrects)."""

    event: Literal["judged"] = "judged"
    iteration: int
    current_id: str | None
    best_id: str | None
    stop_reason: StopReason | None = None


class CorrectingEvent(_RunEvent):
    """The corrector chose the next step, and why."""

    event: Literal["correcting"] = "correcting"
    iteration: int
    strategy: str
    reason: str
    addresses: list[str] = Field(default_factory=list)


class FinishedEvent(_RunEvent):
    """The run ended (always the last event)."""

    event: Literal["finished"] = "finished"
    status: Status
    stop_reason: StopReason | None
    iterations: int
    final_image: Path | None
    run_dir: Path
    error: str | None = None


RunEvent = Annotated[PlannedEvent | CandidateEvent | VerdictEvent | JudgedEvent | CorrectingEvent | FinishedEvent,
                     Field(discriminator="event")]

__all__ = ["CandidateEvent", "CorrectingEvent", "FinishedEvent", "JudgedEvent", "PlannedEvent", "RunEvent",
           "VerdictEvent"]
