"""Stop rules: after each round, whether the loop stops and why (the first rule that holds wins).

All enabled critics pass; the iteration budget is spent; another round would overrun the time budget
(projected from the longest round so far, or the mean if that is longer, with a 25% margin: rounds
vary on a loaded machine and the budget is a promise, so the loop stops a round early rather than
late); the next image would overrun the cost budget; or `patience` rounds went by without a better
candidate. The best candidate is returned either way. A time or cost budget of None is no limit.
"""

from __future__ import annotations

from agent.models import Budget, StopReason

ROUND_MARGIN = 1.25  # the next round is assumed this much longer than the longest so far


def stop_reason(*, passed: bool, iteration: int, elapsed_s: float, cost_used: float, cost_next: float,
                stale_rounds: int, budget: Budget, longest_round_s: float = 0.0) -> StopReason | None:
    """Why the loop stops after this round, or None to correct and go on."""
    per_iteration = max(elapsed_s / max(1, iteration), longest_round_s) * ROUND_MARGIN
    if passed:
        return "passed"
    if iteration >= budget.max_iterations:
        return "max_iterations"
    if budget.max_seconds is not None and elapsed_s + per_iteration > budget.max_seconds:
        return "max_seconds"
    if budget.max_cost is not None and cost_used + cost_next > budget.max_cost:
        return "max_cost"
    if stale_rounds >= budget.patience:
        return "no_improvement"
    return None


def drafts_affordable(budget: Budget, cost_used: float, cost_per_image: float) -> int | None:
    """How many images the remaining cost budget pays for (None: no limit, images are free or the budget has
    none), at least one."""
    if cost_per_image <= 0 or budget.max_cost is None:
        return None
    return max(1, int((budget.max_cost - cost_used) // cost_per_image + 1e-9))


__all__ = ["ROUND_MARGIN", "drafts_affordable", "stop_reason"]
