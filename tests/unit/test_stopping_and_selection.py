"""Stop rules and best-candidate selection, as pure functions."""

from __future__ import annotations

import pytest

from agent.loop.selection import is_better, rank, regressions
from agent.loop.stopping import drafts_affordable, stop_reason
from agent.models import Budget, Verdict

BUDGET = Budget(max_iterations=4, max_seconds=60, max_cost=1.0, patience=2)


def stop(**kw: object) -> str | None:
    args = {"passed": False, "iteration": 1, "elapsed_s": 1.0, "cost_used": 0.0, "cost_next": 0.1,
            "stale_rounds": 0, "budget": BUDGET, **kw}
    return stop_reason(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "reason"), [
    ({"passed": True, "iteration": 4}, "passed"),
    ({"iteration": 4}, "max_iterations"),
    ({"iteration": 2, "elapsed_s": 41.0}, "max_seconds"),
    ({"cost_used": 0.95}, "max_cost"),
    ({"stale_rounds": 2}, "no_improvement"),
    ({}, None),
])
def test_the_first_stop_rule_that_holds_wins(kw: dict[str, object], reason: str | None) -> None:
    assert stop(**kw) == reason


def test_the_time_rule_projects_one_more_round_from_the_mean_so_far_with_a_margin() -> None:
    assert stop(iteration=3, elapsed_s=40.0) is None  # 40 + 13.3 * 1.25 < 60
    assert stop(iteration=3, elapsed_s=44.0) == "max_seconds"  # 44 + 14.7 * 1.25 > 60, though 44 + 14.7 < 60


def test_the_time_rule_projects_from_the_longest_round_when_rounds_vary() -> None:
    assert stop(iteration=3, elapsed_s=30.0, longest_round_s=20.0) is None  # 30 + 20 * 1.25 < 60
    assert stop(iteration=3, elapsed_s=30.0, longest_round_s=25.0) == "max_seconds"  # 30 + 25 * 1.25 > 60


def test_drafts_are_limited_to_what_the_remaining_budget_pays_for() -> None:
    assert drafts_affordable(BUDGET, cost_used=0.5, cost_per_image=0.2) == 2
    assert drafts_affordable(BUDGET, cost_used=0.99, cost_per_image=0.2) == 1
    assert drafts_affordable(BUDGET, cost_used=0.0, cost_per_image=0.0) is None


def v(critic: str, score: float, threshold: float = 0.5) -> Verdict:
    return Verdict(critic=critic, candidate_id="c", score=score, passed=score >= threshold, threshold=threshold)


def test_a_measured_critic_passing_outranks_any_judge_score() -> None:
    text_ok = rank([v("ocr", 0.95, 0.9), v("vlm", 0.1, 0.6)])
    judge_ok = rank([v("ocr", 0.5, 0.9), v("vlm", 1.0, 0.6)])
    assert text_ok.key() > judge_ok.key() and not is_better(judge_ok, text_ok)


def test_a_candidate_that_breaks_what_the_best_passed_never_replaces_it() -> None:
    best = rank([v("ocr", 0.95, 0.9), v("artifacts", 0.4)])
    new = rank([v("ocr", 0.6, 0.9), v("artifacts", 1.0)])
    assert regressions(new, best) == {"ocr"} and not is_better(new, best)


def test_the_weighted_mean_uses_each_critics_declared_weight() -> None:
    r = rank([v("ocr", 1.0), v("artifacts", 0.0)])
    assert r.aggregate == pytest.approx(3.0 / 4.5)
