"""The correction policy: which strategy to try for the current candidate's failures, and the next plan.

`correct` picks one action from the failing verdicts (measured critics before the VLM judge), what was
already tried for each critic (`Action.addresses`), the critics' declared strategies (`CriticInfo`) and
what the backend can do (edit, mask, native size). `apply_action` gives the next plan revision. When the
backend delivers fewer pixels than planned, the fix is also delivered upscaled
(`Plan.deliver_at_planned_size`), so the size costs no extra round.
"""

from __future__ import annotations

from agent.loop.correction.context import CorrectionContext, StrategyFn, failing
from agent.loop.correction.diagnosis import (
    local_boxes,
    repairs,
    text_evidence,
    too_small,
    unreadable,
)
from agent.loop.correction.edits import edit_plan
from agent.loop.correction.strategies import (
    STRATEGY_FUNCTIONS,
    UPSCALE_FEEDBACK,
    edit_region,
    new_seed,
    reprompt,
    restart_from_best,
    restyle_text,
    typeset_text,
    upscale,
)
from agent.models import Action, Plan, Verdict
from agent.models.errors import UnknownCriticError
from critics import critic_info

DEFAULT_STRATEGIES: tuple[StrategyFn, ...] = (reprompt, new_seed)
"""For a verdict of a critic no registry holds."""


def _text_plan(ctx: CorrectionContext, verdict: Verdict) -> list[StrategyFn]:
    """Escalation for text failures: a masked edit repairs the text and keeps the rest, a re-prompt re-draws
    everything, typesetting sets the exact text when the backend keeps misspelling."""
    order: list[StrategyFn] = [restyle_text] if unreadable(ctx, verdict) else []
    last = ctx.last_attempt(verdict.critic)
    if last is None:
        order += [edit_region, reprompt] if ctx.can_mask_edit else [reprompt, edit_region]
    elif last == "typeset_text":
        order += [edit_region]  # typesetting did not do it (extra text, say): edit what is left
    elif ctx.plan.source is not None:
        order += [edit_region, typeset_text]  # an edit brief: typesetting would restyle the source's text
    elif last in ("edit_region", "restart_from_best", "reanchor_identity") or ctx.attempts(verdict.critic) >= 2:
        order += [typeset_text, edit_region]  # the backend keeps misspelling: set the text ourselves
    else:
        order += [edit_region, typeset_text]
    return order + [restyle_text, reprompt, new_seed]


def plan_for(ctx: CorrectionContext, verdict: Verdict) -> list[StrategyFn]:
    """Strategies to try for one failing verdict, most targeted first: the critic's declared order
    (`CriticInfo.strategies`, or `escalation` once a regeneration already addressed it); text failures
    follow their own escalation."""
    edit_order = edit_plan(ctx, verdict, new_seed, reprompt)
    if edit_order is not None:
        return edit_order
    if text_evidence(verdict) is not None:
        return _text_plan(ctx, verdict)
    try:
        info = critic_info(verdict.critic)
    except UnknownCriticError:
        return list(DEFAULT_STRATEGIES)
    names = info.strategies
    if info.escalation and ctx.attempts(verdict.critic, *info.strategies, *info.escalation, "reprompt") >= 1:
        names = info.escalation
    return [STRATEGY_FUNCTIONS[n] for n in names]


def order(ctx: CorrectionContext, verdicts: list[Verdict]) -> list[Verdict]:
    """Which failure picks the strategy. All local: the worst first (one edit covers them all). Some global:
    the first regeneration is led by the text or face failure, so it carries their precise feedback (a
    reprompt, or a re-anchored draw) along with the rest; once a regeneration has addressed the global
    failure and it persists, that failure leads (new_seed, then best_of_n), and the local ones are
    repaired in place afterwards."""
    local = [v for v in verdicts if local_boxes(ctx, v) is not None]
    glob = [v for v in verdicts if v not in local]
    if not glob:
        return verdicts
    if any(ctx.attempts(v.critic) for v in glob):
        return glob + local
    return local + glob


def _upscale_line(ctx: CorrectionContext) -> str | None:
    """The 'deliver upscaled' line when the backend delivers less than planned and upscaling is allowed."""
    if not ctx.allowed("upscale"):
        return None
    small = next((v for v in ctx.verdicts if too_small(v)), None)
    if small is None and not ctx.plan.deliver_at_planned_size:
        return None
    return f"{UPSCALE_FEEDBACK}{ctx.plan.width}x{ctx.plan.height} (the backend delivers fewer pixels)"


def _loop_verdict(ctx: CorrectionContext, feedback: str = "") -> Verdict:
    return Verdict(critic="loop", candidate_id=ctx.current.id, score=0, passed=False, threshold=1, feedback=feedback)


def _choose(ctx: CorrectionContext) -> Action:
    bad = failing(ctx.verdicts)
    if ctx.allowed("restart_from_best"):
        restart = restart_from_best(ctx, bad[0] if bad else _loop_verdict(ctx))
        if restart is not None:
            return restart
    todo = repairs(ctx)
    if not todo and ctx.allowed("upscale"):
        action = next((upscale(ctx, v) for v in bad if too_small(v)), None)
        if action is not None:
            return action
    for verdict in order(ctx, todo or bad):
        for strategy in plan_for(ctx, verdict):
            if not ctx.allowed(strategy.__name__):
                continue
            action = strategy(ctx, verdict)
            if action is not None:
                return action
    return new_seed(ctx, bad[0] if bad else _loop_verdict(ctx, "try again"))


def correct(ctx: CorrectionContext) -> Action:
    """The next action for the current candidate's failing verdicts (delivered upscaled when needed)."""
    action = _choose(ctx)
    line = _upscale_line(ctx)
    if line and action.strategy != "upscale":
        feedback = action.feedback if line in action.feedback else [*action.feedback, line]
        action = action.model_copy(update={"feedback": feedback, "deliver_upscaled": True})
    return action


def apply_action(plan: Plan, action: Action) -> Plan:
    """The next plan revision: the action's style changes applied and validated; an upscale (or an action
    delivered upscaled) makes every later image be delivered at the planned size."""
    style = plan.style.model_validate({**plan.style.model_dump(), **action.style})
    deliver = plan.deliver_at_planned_size or action.strategy == "upscale" or action.deliver_upscaled
    return plan.model_copy(update={"revision": plan.revision + 1, "style": style, "deliver_at_planned_size": deliver})


__all__ = ["apply_action", "correct", "order", "plan_for"]
