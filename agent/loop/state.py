"""The loop's graph state: what a run starts from, what it carries between steps, and what it returns.

Lists grow by appending through LangGraph delta channels, so a checkpoint stores each new candidate,
verdict and action once instead of the whole history; images appear only as `ImageRef`s.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any, NotRequired

from langgraph.channels import DeltaChannel
from typing_extensions import TypedDict

from agent.models import Action, Brief, Candidate, ImageRef, Plan, Requirement, Status, StopReason, Verdict


def append_items(current: list[Any] | None, batches: Sequence[Any]) -> list[Any]:
    """Append-only reducer for delta channels: checkpoints store each new item once, not the whole list."""
    out = list(current or [])
    for batch in batches:
        out.extend(batch if isinstance(batch, list) else [batch])
    return out


def add_timings(a: dict[str, float] | None, b: dict[str, float] | None) -> dict[str, float]:
    """Reducer for per-step timings: seconds add up per step name."""
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[k] = out.get(k, 0.0) + v
    return out


class InputState(TypedDict):
    """What a run starts from (LangGraph Studio shows this as the input form)."""

    brief: Brief
    run_dir: NotRequired[str]


class OutputState(TypedDict, total=False):
    """What a run returns."""

    status: Status
    stop_reason: StopReason | None
    final: Candidate | None
    candidates: list[Candidate]
    verdicts: list[Verdict]
    actions: list[Action]
    requirements: list[Requirement]
    run_dir: str
    error: str | None


class LoopState(TypedDict, total=False):
    """The graph state. Lists grow by appending; images appear only as ImageRefs."""

    brief: Brief
    run_dir: str
    plan: Plan
    plan_ref: str
    references: list[ImageRef]
    draft: ImageRef | None
    iteration: int
    candidates: Annotated[list[Candidate], DeltaChannel(append_items)]
    verdicts: Annotated[list[Verdict], DeltaChannel(append_items)]
    actions: Annotated[list[Action], DeltaChannel(append_items)]
    best_id: str | None
    current_id: str | None
    stale_rounds: int
    elapsed_s: Annotated[float, operator.add]
    round_mark_s: float  # elapsed_s when the previous round was judged
    longest_round_s: float  # the longest round so far (the time rule projects the next one from it)
    cost_used: Annotated[float, operator.add]
    timings: Annotated[dict[str, float], add_timings]
    status: Status
    stop_reason: StopReason | None
    final: Candidate | None
    requirements: list[Requirement]
    error: str | None


class CriticTask(TypedDict):
    """Payload of one parallel critic branch (sent with Send); the plan travels by reference to stay small."""

    critic: str
    candidate_id: str
    image: ImageRef
    plan_ref: str
    run_dir: str
