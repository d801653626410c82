"""Corrections of an edit. An edit is never repaired by chaining edits (each pass of an edit model drifts a little
more): a failing edit is restored from the source where it should not have changed (`restore_source`, no backend
call: the source's pixels outside the mask, after undoing a shift or rescale), re-edited from the source with a
tighter mask that also protects the kept faces (`tighten_mask`), or re-edited from the source with another seed
(`new_seed`, which for an edit plan always starts from the source).
"""

from __future__ import annotations

from agent.loop.correction.context import CorrectionContext, StrategyFn, make_action
from agent.loop.correction.diagnosis import evidence_of
from agent.models import Action, Verdict
from agent.models.evidence import PreservationEvidence

EDIT_CRITICS = ("preservation", "face", "spec")
"""The critics that gate every edit; their failures get the edit corrections."""


def restore_source(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Put the source back where the mask keeps it (and undo a shift or rescale) on the current candidate."""
    plan = ctx.plan
    if plan.edit is None or plan.source is None or plan.mask is None or ctx.current.strategy == "restore_source":
        return None
    ev = evidence_of(verdict)
    if isinstance(ev, PreservationEvidence) and not ev.outside_changed():
        return None  # the outside is fine: restoring it changes nothing
    return make_action(ctx, "restore_source", verdict, base_candidate_id=ctx.current.id)


def tighten_mask(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Edit the source again with the mask eroded and the kept people's faces cut out of it."""
    plan = ctx.plan
    if plan.edit is None or plan.source is None or plan.mask is None or not ctx.capabilities.edit:
        return None
    if ctx.attempts(verdict.critic, "tighten_mask") >= 1:
        return None  # tightened once already: a new seed is next
    return make_action(ctx, "tighten_mask", verdict, seed=ctx.next_seed(),
                       prompt_addendum="change only the masked area; keep everything else, faces included, exactly")


def edit_plan(ctx: CorrectionContext, verdict: Verdict, new_seed: StrategyFn, reprompt: StrategyFn,
              ) -> list[StrategyFn] | None:
    """The order of strategies for a failing edit gate, or None when `verdict` is not one (or the plan no edit)."""
    if ctx.plan.edit is None or verdict.critic not in EDIT_CRITICS:
        return None
    ev = evidence_of(verdict)
    if isinstance(ev, PreservationEvidence) and ev.inside_unchanged() and not ev.outside_changed():
        return [reprompt, new_seed]  # the edit did not happen: ask again, from the source
    if verdict.critic == "spec":
        return [restore_source, new_seed]
    return [restore_source, tighten_mask, new_seed]


__all__ = ["EDIT_CRITICS", "edit_plan", "restore_source", "tighten_mask"]
