"""What a run produces: candidates, the critics' verdicts, the corrector's actions, and the run's outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agent.models.base import ImageRef, Model
from agent.models.plan import PixelBox

Status = Literal["running", "passed", "below_threshold", "failed", "refused"]
StopReason = Literal[
    "passed", "unverified", "max_iterations", "max_seconds", "max_cost", "no_improvement", "bad_input",
    "planning_error", "backend_error", "internal_error", "policy",
]
"""Why a run stopped: it passed (or, with `strict`, every check passed but some requirement is `unverified`);
a budget ran out; corrections stopped helping; or something failed: the input (bad_input), the planner, the
backend, or pixloop itself (internal_error, a bug: the report has the error)."""
Strategy = Literal[
    "restyle_text", "reprompt", "new_seed", "best_of_n", "typeset_text", "reanchor_identity",
    "edit_region", "restart_from_best", "upscale", "restore_source", "tighten_mask",
]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]
CandidateStrategy = Strategy | Literal["initial"]
"""How a candidate was made: the first render of the plan, or the strategy of the action that made it."""


class Candidate(Model):
    """One generated image and how it was made."""

    id: str
    iteration: int = Field(ge=1)
    image: ImageRef
    backend: str
    seed: int
    plan_revision: int
    strategy: CandidateStrategy | None = None
    parent_id: str | None = Field(None, description="the candidate an edit, typeset or upscale started from")
    plan_ref: str | None = Field(None, description="the plan revision it was made from (artifact path)")
    seconds: float = 0.0
    cost: float = 0.0
    meta: dict[str, Any] = Field(default_factory=dict)


VerdictStatus = Literal["checked", "unavailable"]
"""`checked`: the critic judged the image (its score and `passed` hold). `unavailable`: its engine or endpoint
could not run, so nothing was verified: it neither passes nor fails the image, the loop does not regenerate
for it, and the report names the requirement that went unverified and why (`error`)."""


class Verdict(Model):
    """A critic's judgement of one candidate: a score in [0,1] against a threshold, with evidence.

    `evidence` is the critic's JSON-ready detail (what reports show); code that decides from it reads it
    through the critic's typed evidence model (`agent.models.evidence`)."""

    critic: str
    candidate_id: str
    score: float = Field(ge=0, le=1)
    passed: bool
    threshold: float = Field(ge=0, le=1)
    status: VerdictStatus = "checked"
    evidence: dict[str, Any] = Field(default_factory=dict)
    feedback: str = ""
    seconds: float = 0.0
    error: str | None = None

    @model_validator(mode="after")
    def _pass_matches_score(self) -> Verdict:
        if self.error is not None and self.passed:
            raise ValueError("a verdict with an error cannot pass")
        if self.status == "unavailable" and self.passed:
            raise ValueError("an unavailable critic verified nothing: its verdict cannot pass")
        return self

    @property
    def checked(self) -> bool:
        """The critic ran and judged the image (an unavailable critic verified nothing)."""
        return self.status == "checked"

    @classmethod
    def unavailable(cls, critic: str, candidate_id: str, threshold: float, why: str,
                    seconds: float = 0.0) -> Verdict:
        """The verdict of a critic that could not run: nothing verified, nothing failed."""
        return cls(critic=critic, candidate_id=candidate_id, score=0.0, passed=False, threshold=threshold,
                   status="unavailable", feedback=f"{critic} could not run: {why}", error=why[:500],
                   seconds=seconds)


class Action(Model):
    """What the corrector decided to do next, and why."""

    iteration: int = Field(ge=1, description="the iteration this action produces")
    strategy: Strategy
    reason: str
    addresses: list[str] = Field(default_factory=list,
                                 description="critics whose failing verdicts this action addresses, the one that "
                                             "chose the strategy first")
    feedback: list[str] = Field(default_factory=list)
    style: dict[str, Any] = Field(default_factory=dict, description="style fields to change")
    prompt_addendum: str = ""
    seed: int | None = None
    base_candidate_id: str | None = Field(None, description="edit/typeset/upscale this candidate instead of generating")
    regions: list[PixelBox] = Field(default_factory=list, description="pixel boxes a targeted edit may change")
    elements: list[str] = Field(default_factory=list, description="text element ids to typeset")
    drafts: int = Field(1, ge=1, le=8, description="candidates to draw this iteration (best-of-N)")
    deliver_upscaled: bool = Field(False, description="the result is resampled to the planned size (the backend "
                                                      "delivers fewer pixels)")
    scores_before: dict[str, float] = Field(default_factory=dict, description="critic scores that triggered it")
