"""What a critic is: an object with a `name`, an `info` that describes it, and `check(image, plan, context)`.

A plugin critic (a class or factory behind a `pixloop.critics` entry point) needs nothing else:

    from critics import CheckContext, CriticInfo, Verdict

    class Sharpness:
        name = "sharpness"
        info = CriticInfo(threshold=0.5, threshold_source="...", description="...")

        def check(self, image, plan, context: CheckContext) -> Verdict: ...

An optional `applies(plan) -> bool` overrides the default, which is "every input named in
`info.needs` is there" (and the plan has not disabled the critic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from PIL import Image

from agent.models import ImageRef, Plan, Strategy, Verdict
from agent.models.evidence import Evidence

if TYPE_CHECKING:
    from agent.runtime.store import ArtifactStore

Need = Literal["text", "person", "reference", "original", "mask"]
"""Inputs a critic can need: required text, a reference photo of a person, any reference, the original
image of an edit, the edit mask."""


@dataclass(frozen=True)
class CriticInfo:
    """Everything the loop needs to know about a critic besides running it; a critic module declares it once."""

    threshold: float
    """Default pass threshold in [0, 1] (a brief or `--threshold` overrides it per run)."""
    threshold_source: str
    """Where the threshold comes from: the calibration data and the measured numbers."""
    description: str = ""
    """One line: what the critic checks (shown by `pixloop critics`)."""
    weight: float = 1.0
    """Weight of its score in the best-candidate aggregate."""
    measured: bool = True
    """A measured critic outranks the VLM judge: the judge can never outvote it."""
    needs: tuple[Need, ...] = ()
    """Inputs without which it has nothing to check."""
    on_by_default: bool = False
    """Enabled in every run it applies to; otherwise only when a run asks for it (`--critic NAME`)."""
    strategies: tuple[Strategy, ...] = ("reprompt", "new_seed")
    """Correction strategies that address its failures, in the order to try them."""
    escalation: tuple[Strategy, ...] = ()
    """The order once a regeneration already addressed its failure (empty: keep `strategies`)."""
    evidence: type[Evidence] | None = None
    """The typed view of its evidence that the corrector reads (None: the corrector uses feedback only)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"CriticInfo.threshold must be in [0, 1], got {self.threshold}")


@dataclass
class CheckContext:
    """What a critic may need beyond the image: the store (to open references) and the candidate id."""

    candidate_id: str = "image"
    store: ArtifactStore | None = None
    references: list[ImageRef] = field(default_factory=list)
    original: ImageRef | None = None
    mask: ImageRef | None = None
    expected_mode: str | None = None
    expected_format: str | None = None


@runtime_checkable
class Critic(Protocol):
    """A critic: `name`, `info`, and a `check` that scores an image in [0, 1] against the plan's threshold."""

    name: str
    info: CriticInfo

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        """Score the image in [0,1] against the plan's threshold, with evidence and one line of feedback."""
        ...


class CriticBase:
    """Optional base for critics: `applies(plan)` from `info.needs` (the built-in critics use it)."""

    name: str
    info: CriticInfo

    def applies(self, plan: Plan) -> bool:
        """Whether the critic has anything to check: not disabled in the plan, and every input it needs is there."""
        spec = plan.checks.get(self.name) if plan is not None else None
        if spec is not None and not spec.enabled:
            return False
        return plan is None or needs_met(self.info.needs, plan)


def needs_met(needs: tuple[Need, ...], plan: Plan) -> bool:
    """Whether the plan has every input in `needs`."""
    have = {
        "text": any(el.content.strip() for el in plan.text),
        "person": any(s.kind == "person" for s in plan.subjects),
        "reference": bool(plan.subjects),
        "original": plan.source is not None,
        "mask": plan.mask is not None,
    }
    return all(have[n] for n in needs)


def threshold_for(name: str, info: CriticInfo, plan: Plan | None) -> float:
    """The threshold a plan sets for a critic, else the critic's default."""
    spec = plan.checks.get(name) if plan is not None else None
    return float(spec.threshold) if spec is not None else info.threshold


__all__ = ["CheckContext", "Critic", "CriticBase", "CriticInfo", "Need", "needs_met", "threshold_for"]
