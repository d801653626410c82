"""Best-candidate selection: a weighted aggregate of critic scores behind hard gates.

- A measured critic's failure cannot be outvoted by the VLM judge: candidates rank first by
  whether every critic passed, then by how many measured critics passed, then by the weighted
  mean score.
- Regression guard: a candidate that fails a critic the current best passes is never "better",
  whatever its aggregate — a correction that breaks what worked is not progress.
- So the loop never returns a candidate worse than one it has already seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.state import Verdict

MEASURED = frozenset({"ocr", "face", "artifacts", "spec", "preservation"})
WEIGHTS: dict[str, float] = {"ocr": 3.0, "face": 3.0, "spec": 2.0, "preservation": 2.0, "artifacts": 1.5, "vlm": 1.0}


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
    if not verdicts:
        return Rank(True, 0, 0.0, frozenset())
    total = sum(WEIGHTS.get(v.critic, 1.0) for v in verdicts)
    aggregate = sum(WEIGHTS.get(v.critic, 1.0) * v.score for v in verdicts) / total
    passed = frozenset(v.critic for v in verdicts if v.passed)
    return Rank(all(v.passed for v in verdicts), sum(1 for c in passed if c in MEASURED), round(aggregate, 6), passed)


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


def score_changes(before: list[Verdict], after: list[Verdict]) -> dict[str, float]:
    """Per-critic score change from one candidate to the next (for the report)."""
    old = {v.critic: v.score for v in before}
    return {v.critic: round(v.score - old[v.critic], 4) for v in after if v.critic in old}
