"""Best-candidate selection: a weighted aggregate of critic scores behind hard gates.

- A measured critic's failure cannot be outvoted by the VLM judge: candidates rank first by
  whether every critic passed, then by how many measured critics passed, then by the weighted
  mean score (weights and "measured" come from each critic's `CriticInfo`).
- Regression guard: a candidate that fails a critic the current best passes is never "better",
  whatever its aggregate — a correction that breaks what worked is not progress.
- So the loop never returns a candidate worse than one it has already seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.models import Verdict
from critics import is_measured, weight


@dataclass(frozen=True)
class Rank:
    """Sortable quality of one candidate."""

    all_passed: bool
    measured_passed: int
    aggregate: float
    passed: frozenset[str]

    def key(self) -> tuple[bool, int, float]:
        return (self.all_passed, self.measured_passed, self.aggregate)


def rank(verdicts: list[Verdict]) -> Rank:
    verdicts = [v for v in verdicts if v.checked]  # an unavailable critic judged nothing: it does not rank
    if not verdicts:
        return Rank(True, 0, 0.0, frozenset())
    weights = {v.critic: weight(v.critic) for v in verdicts}
    total = sum(weights[v.critic] for v in verdicts)
    aggregate = sum(weights[v.critic] * v.score for v in verdicts) / total
    passed = frozenset(v.critic for v in verdicts if v.passed)
    return Rank(all(v.passed for v in verdicts), sum(1 for c in passed if is_measured(c)), round(aggregate, 6), passed)


def regressions(new: Rank, best: Rank) -> set[str]:
    """Critics the best candidate passes and the new one fails."""
    return set(best.passed - new.passed)


def is_better(new: Rank, best: Rank | None) -> bool:
    """Whether `new` should replace `best`: strictly higher rank and no regression."""
    if best is None:
        return True
    if regressions(new, best):
        return False
    return new.key() > best.key()
