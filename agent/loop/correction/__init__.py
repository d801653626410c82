"""The corrector: failing verdicts in, one concrete Action out (`correct`), and the next plan (`apply_action`)."""

from __future__ import annotations

from agent.loop.correction.context import CorrectionContext, StrategyFn, failing, make_action
from agent.loop.correction.policy import apply_action, correct, plan_for
from agent.loop.correction.strategies import (
    STRATEGY_FUNCTIONS,
    UPSCALE_FEEDBACK,
    best_of_n,
    edit_region,
    new_seed,
    reanchor_identity,
    reprompt,
    restart_from_best,
    restyle_text,
    typeset_text,
    upscale,
)

__all__ = [
    "STRATEGY_FUNCTIONS", "UPSCALE_FEEDBACK", "CorrectionContext", "StrategyFn", "apply_action", "best_of_n",
    "correct", "edit_region", "failing", "make_action", "new_seed", "plan_for", "reanchor_identity", "reprompt",
    "restart_from_best", "restyle_text", "typeset_text", "upscale",
]
