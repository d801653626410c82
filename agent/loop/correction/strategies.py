"""The correction strategies: each one small function `(ctx, verdict) -> Action | None` (None: not applicable).

restyle_text, reprompt (exact text, spelled letter by letter, plus every other failing critic's feedback),
edit_region (masked edit of the faulty boxes: text, or an artifact confined to a region), typeset_text (set the
exact text in real fonts on the candidate, when the backend keeps misspelling), reanchor_identity (edit the face boxes with the references
re-sent, or re-generate anchored on them), new_seed, best_of_n, restart_from_best (when quality drifted
below an earlier candidate: repair that one instead), upscale (when the backend delivers less than asked).

One action fixes every failure it can at once: when every failure is local and the backend edits with
masks, ONE edit covers all their boxes (the mask is the union of the boxes, not their bounding box); when a
regeneration is needed anyway, it carries every failing critic's feedback, not only the worst one's.
"""

from __future__ import annotations

from typing import Any

from agent.backends.compose.fonts import heavier
from agent.loop.correction.context import CorrectionContext, StrategyFn, failing, make_action
from agent.loop.correction.diagnosis import (
    all_lines,
    all_local,
    artifacts_evidence,
    bad_elements,
    element_box,
    face_evidence,
    illegible,
    lines,
    local_boxes,
    repairs,
    text_evidence,
    too_small,
)
from agent.loop.correction.edits import restore_source, tighten_mask
from agent.loop.planning.design import contrasting_text
from agent.loop.selection import rank, regressions
from agent.models import Action, Strategy, Verdict
from agent.models.evidence import SpecEvidence

UPSCALE_FEEDBACK = "upscale the result to "
"""Start of the feedback line an action carries when its result is delivered upscaled (words for the model;
the decision itself is `Action.deliver_upscaled`)."""


def restyle_text(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Make text legible: each round escalates size, weight, contrast, outline, plate, calmer background."""
    if text_evidence(verdict) is None or not illegible(verdict):
        return None  # nothing is illegible (a misspelling is not fixed by a bolder font)
    step = sum(1 for a in ctx.history if a.strategy == "restyle_text")
    style = ctx.plan.style
    changes: dict[str, Any] = {}
    said: list[str] = []
    if style.text_scale < 0.9:
        changes["text_scale"] = round(min(0.9, max(style.text_scale * 1.35, style.text_scale + 0.15)), 3)
        said.append(f"enlarge text to {changes['text_scale']:.0%} of its box")
    target_font = heavier(style.font, 2 if step == 0 else 6)
    if target_font != style.font:
        changes["font"] = target_font
        said.append(f"change font {style.font} -> {target_font}")
    best_colour = contrasting_text(style.palette)
    if style.text_color.lower() != best_colour:
        changes["text_color"] = best_colour
        said.append(f"raise contrast: text colour {style.text_color} -> {best_colour}")
    if not style.text_outline:
        changes["text_outline"] = True
        said.append("outline the letters")
    if (step >= 1 or style.background in ("texture", "image")) and not style.text_plate:
        changes["text_plate"] = True
        said.append("set the text on a contrasting plate")
    if step >= 1 and style.background == "texture" and style.texture_strength > 0.2:
        changes["texture_strength"] = round(style.texture_strength * 0.4, 3)
        said.append("calm the background texture")
    if not said:
        return None
    others = [line for v in repairs(ctx) if v is not verdict for line in lines(v)]
    return make_action(ctx, "restyle_text", verdict, feedback=[verdict.feedback, *said, *others], style=changes,
                       prompt_addendum="Make the text large, bold and high-contrast: " + "; ".join(said) + ".")


def reprompt(ctx: CorrectionContext, verdict: Verdict) -> Action:
    """Re-prompt with precise feedback for every failing critic: exact text spelled out, what to keep."""
    said = all_lines(ctx, verdict) + ["Keep everything else unchanged."]
    return make_action(ctx, "reprompt", verdict, feedback=said, prompt_addendum=" ".join(said), seed=ctx.next_seed())


def edit_region(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """A masked edit of the faulty text boxes, or of the regions of an artifact confined to part of the image (a
    blurred area, a duplicated patch; it needs a backend that edits with a mask), and of every other local
    failure's boxes, so one edit fixes all."""
    if not ctx.capabilities.edit or local_boxes(ctx, verdict) is None:
        return None
    if text_evidence(verdict) is None and (artifacts_evidence(verdict) is None or not ctx.can_mask_edit):
        return None
    boxes = all_local(ctx)
    if boxes is None:
        return None  # something else needs a regeneration anyway; an edit would leave it broken
    said = all_lines(ctx, verdict) + ["Keep everything else unchanged."]
    return make_action(ctx, "edit_region", verdict, feedback=said, prompt_addendum="Fix only the masked areas: " +
                       " ".join(said), base_candidate_id=ctx.current.id, regions=boxes)


def typeset_text(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """The backend keeps misspelling: clear the text regions and set the exact text in real fonts."""
    bad = bad_elements(verdict)
    if not bad or all_local(ctx) is None:
        return None  # a regeneration is still needed for something else, and it would re-draw the text
    return make_action(ctx, "typeset_text", verdict, base_candidate_id=ctx.current.id,
                       elements=[e.id for e in bad if e.id], regions=[element_box(ctx, e) for e in bad],
                       feedback=[f'typeset "{e.expected}" exactly in its region' for e in bad])


def reanchor_identity(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Identity drift or an extra face: edit the face boxes with the references re-sent, or re-generate on them."""
    ev = face_evidence(verdict)
    if ev is None:
        return None
    said = [f"The face of {i.subject or 'the person'} must be the person in their reference photo: "
            "keep their identity, face shape and features exactly." for i in ev.identities if not i.same]
    if ev.extra_faces:
        said.append(f"Show only {len(ev.identities) or 'the referenced'} person(s): remove the extra face(s).")
    said = (said or [verdict.feedback]) + [line for v in repairs(ctx) if v is not verdict for line in lines(v)]
    boxes = all_local(ctx)
    if ctx.can_mask_edit and boxes and local_boxes(ctx, verdict) and ctx.attempts(verdict.critic,
                                                                                  "reanchor_identity") < 2:
        return make_action(ctx, "reanchor_identity", verdict, feedback=said, base_candidate_id=ctx.current.id,
                           regions=boxes, prompt_addendum="Fix only the masked areas: " + " ".join(said))
    return make_action(ctx, "reanchor_identity", verdict, feedback=said, prompt_addendum=" ".join(said),
                       seed=ctx.next_seed())


def upscale(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """The backend delivered fewer pixels than asked: upscale to the requested size (verified by spec)."""
    if not too_small(verdict):
        return None
    ev = SpecEvidence.model_validate(verdict.evidence)
    req = ev.requested or (ctx.plan.width, ctx.plan.height)
    w, h = ev.width or ctx.current.image.width, ev.height or ctx.current.image.height
    return make_action(ctx, "upscale", verdict, base_candidate_id=ctx.current.id, deliver_upscaled=True,
                       feedback=[f"{UPSCALE_FEEDBACK}{req[0]}x{req[1]} from {w}x{h} with high-quality resampling "
                                 "and sharpening"])


def new_seed(ctx: CorrectionContext, verdict: Verdict) -> Action:
    """Feedback is not helping (or there is none to give): draw again with another seed."""
    return make_action(ctx, "new_seed", verdict, seed=ctx.next_seed(), feedback=all_lines(ctx, verdict) or None,
                       prompt_addendum=" ".join(v.feedback for v in failing(ctx.verdicts)))


def best_of_n(ctx: CorrectionContext, verdict: Verdict, n: int = 3) -> Action | None:
    """Several drafts at once (as many as the cost budget still pays for); the best one continues."""
    if ctx.max_drafts is not None:
        n = min(n, ctx.max_drafts)
    if n < 2:
        return None  # one draw is a new seed
    return make_action(ctx, "best_of_n", verdict, seed=ctx.next_seed(), drafts=n,
                       feedback=all_lines(ctx, verdict) or None,
                       prompt_addendum=" ".join(v.feedback for v in failing(ctx.verdicts)))


def restart_from_best(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Quality drifted below an earlier candidate: repair that one (a masked edit of its local failures with
    a new seed, or a fresh draw from its plan) instead of chaining more corrections on a worse image."""
    if ctx.best is None or ctx.best.id == ctx.current.id:
        return None
    now, before = rank(ctx.verdicts), rank(ctx.best_verdicts)
    lost = regressions(now, before)
    on_best = ctx.on(ctx.best, ctx.best_verdicts)
    if not lost and (now.key() >= before.key() or not (ctx.can_mask_edit and all_local(on_best))):
        return None  # not worse, or worse but both need a fresh draw anyway: escalate (new seed, best-of-N)
    if lost and now.measured_passed > before.measured_passed and ctx.can_mask_edit and all_local(ctx):
        return None  # it broke something but fixed more, and one masked edit repairs the rest: repair it
    failing_best = failing(ctx.best_verdicts)
    target = failing_best[0] if failing_best else verdict
    why = f"{ctx.current.id} is worse than {ctx.best.id}" + (f" (it broke {', '.join(sorted(lost))})" if lost else "")
    upscaled_before = any(a.strategy == "upscale" and a.base_candidate_id == ctx.best.id for a in ctx.history)
    if not repairs(on_best) and ctx.allowed("upscale") and not upscaled_before:
        small = next((v for v in failing_best if too_small(v)), None)
        if small is not None:
            return upscale(on_best, small)  # the best only lacks pixels (and was not upscaled yet)
    text = next((v for v in failing_best if text_evidence(v) is not None), None)
    if text is not None and ctx.attempts(text.critic) >= 2 and ctx.allowed("typeset_text"):
        action = typeset_text(on_best, text)  # the backend keeps misspelling: typeset the best one's text
        if action is not None:
            return action.model_copy(update={"feedback": [why, *action.feedback]})
    boxes = all_local(on_best) if ctx.can_mask_edit else None
    said = all_lines(on_best, target) if failing_best else []
    return make_action(on_best, "restart_from_best", target, base_candidate_id=ctx.best.id, seed=ctx.next_seed(),
                       feedback=[why] + said, regions=boxes or [],
                       prompt_addendum=("Fix only the masked areas: " if boxes else "") + " ".join(said))


STRATEGY_FUNCTIONS: dict[Strategy, StrategyFn] = {
    "restyle_text": restyle_text, "reprompt": reprompt, "new_seed": new_seed, "best_of_n": best_of_n,
    "typeset_text": typeset_text, "reanchor_identity": reanchor_identity, "edit_region": edit_region,
    "restart_from_best": restart_from_best, "upscale": upscale, "restore_source": restore_source,
    "tighten_mask": tighten_mask,
}
"""Every strategy by name (the names `CriticInfo.strategies` and `PixloopConfig.strategies` use)."""

__all__ = ["STRATEGY_FUNCTIONS", "UPSCALE_FEEDBACK", "best_of_n", "edit_region", "new_seed", "reanchor_identity",
           "reprompt", "restart_from_best", "restyle_text", "typeset_text", "upscale"]
