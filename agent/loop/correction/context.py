"""What a correction strategy may look at (`CorrectionContext`), and how an action is built from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.backends.base import Capabilities
from agent.models import STRATEGIES, Action, Candidate, Plan, Strategy, Verdict
from critics import is_measured


@dataclass
class CorrectionContext:
    """Everything a strategy may look at; built by the graph's correct node."""

    plan: Plan
    current: Candidate
    verdicts: list[Verdict]
    history: list[Action]
    iteration: int
    capabilities: Capabilities = field(default_factory=Capabilities)
    best: Candidate | None = None
    best_verdicts: list[Verdict] = field(default_factory=list)
    enabled: frozenset[str] = frozenset(STRATEGIES)
    max_drafts: int | None = None
    """How many images the remaining cost budget pays for (None: not limited); best_of_n draws no more."""

    def allowed(self, strategy: str) -> bool:
        return strategy in self.enabled

    def attempts(self, critic: str, *strategies: str) -> int:
        """How many earlier actions addressed this critic's failure (with one of these strategies, if given)."""
        return sum(1 for a in self.history if critic in a.addresses and (not strategies or a.strategy in strategies))

    def last_attempt(self, critic: str) -> Strategy | None:
        """The strategy of the latest action that addressed this critic's failure."""
        return next((a.strategy for a in reversed(self.history) if critic in a.addresses), None)

    def next_seed(self) -> int:
        return 1000 * self.iteration + 17 * len(self.history) + 1

    @property
    def can_mask_edit(self) -> bool:
        return self.capabilities.edit and self.capabilities.mask

    def on(self, candidate: Candidate, verdicts: list[Verdict]) -> CorrectionContext:
        """The same context looking at another candidate (restart_from_best repairs the best one)."""
        return CorrectionContext(plan=self.plan, current=candidate, verdicts=verdicts, history=self.history,
                                 iteration=self.iteration, capabilities=self.capabilities, enabled=self.enabled,
                                 max_drafts=self.max_drafts)


StrategyFn = Callable[[CorrectionContext, Verdict], "Action | None"]


def failing(verdicts: list[Verdict]) -> list[Verdict]:
    """Failing verdicts, worst first; a measured critic's failure is fixed before the VLM judge's."""
    bad = [v for v in verdicts if v.checked and not v.passed]  # an unavailable critic is not a failure to fix
    measured = any(is_measured(v.critic) for v in bad)
    return sorted(bad, key=lambda v: (not is_measured(v.critic) and measured, v.score))


def _reason(verdicts: list[Verdict]) -> str:
    return "; ".join(f"{v.critic} {v.score:.2f} < {v.threshold:.2f}: {v.feedback}" for v in verdicts)


def make_action(ctx: CorrectionContext, strategy: Strategy, verdict: Verdict, **fields: Any) -> Action:
    """An action that addresses `verdict` first, then every other failing verdict (its reason says so in words,
    its `addresses` as data)."""
    chain = [verdict] + [v for v in failing(ctx.verdicts) if v is not verdict]
    feedback = fields.pop("feedback", None) or [v.feedback for v in chain if v.feedback]
    return Action(iteration=ctx.iteration, strategy=strategy, reason=_reason(chain), feedback=feedback,
                  addresses=list(dict.fromkeys(v.critic for v in chain)),
                  scores_before={v.critic: round(v.score, 4) for v in ctx.verdicts}, **fields)


__all__ = ["CorrectionContext", "StrategyFn", "failing", "make_action"]
