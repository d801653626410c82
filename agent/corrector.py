"""The corrector: failing verdicts in, one concrete Action out.

Each strategy is one small function `(ctx, verdict) -> Action`. `correct` picks one from the
worst failing verdict (measured critics before the VLM judge), what was already tried, and what
the backend can do (edit, mask, native size). `apply_action` gives the next plan revision.

Strategies: restyle_text, reprompt (exact text, spelled letter by letter), edit_region (targeted
edit of the faulty region), typeset_text (set the exact text in real fonts on the candidate),
reanchor_identity (re-send references / edit the face region), new_seed, best_of_n,
restart_from_best (when quality drifted), upscale (when the backend delivers less than asked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from agent.backends.base import Capabilities
from agent.backends.fonts import heavier
from agent.planner import contrasting_text
from agent.selection import rank, regressions
from agent.state import STRATEGIES, Action, Candidate, Plan, Verdict


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

    def allowed(self, strategy: str) -> bool:
        return strategy in self.enabled

    def attempts(self, critic: str, *strategies: str) -> int:
        """How many earlier actions targeted this critic (with one of these strategies, if given)."""
        return sum(1 for a in self.history if a.reason.startswith(critic + " ")
                   and (not strategies or a.strategy in strategies))

    def next_seed(self) -> int:
        return 1000 * self.iteration + 17 * len(self.history) + 1


StrategyFn = Callable[[CorrectionContext, Verdict], "Action | None"]


def _failing(verdicts: list[Verdict]) -> list[Verdict]:
    """Failing verdicts, worst first; a measured critic's failure is fixed before the VLM judge's."""
    from critics.vlm import OUTRANKED_BY

    failing = [v for v in verdicts if not v.passed]
    measured = any(v.critic in OUTRANKED_BY for v in failing)
    return sorted(failing, key=lambda v: (v.critic == "vlm" and measured, v.score))


def _reason(failing: list[Verdict]) -> str:
    return "; ".join(f"{v.critic} {v.score:.2f} < {v.threshold:.2f}: {v.feedback}" for v in failing)


def _action(ctx: CorrectionContext, strategy: str, verdict: Verdict, **fields) -> Action:
    failing = [verdict] + [v for v in _failing(ctx.verdicts) if v is not verdict]
    feedback = fields.pop("feedback", None) or [v.feedback for v in failing if v.feedback]
    return Action(iteration=ctx.iteration, strategy=strategy, reason=_reason(failing), feedback=feedback,  # type: ignore[arg-type]
                  scores_before={v.critic: round(v.score, 4) for v in ctx.verdicts}, **fields)


# --------------------------------------------------------------------------- evidence helpers


def _bad_elements(verdict: Verdict) -> list[dict]:
    out = []
    for e in verdict.evidence.get("elements", []):
        accuracy = min(1 - float(e.get("cer", 1.0)), float(e.get("word_accuracy", 0.0)))
        if accuracy < verdict.threshold:
            out.append(e)
    return out


def _spell(word: str) -> str:
    return "-".join(word)


def _element_box(ctx: CorrectionContext, element: dict) -> list[int]:
    """Where to edit for one text element: its planned region, widened to cover what OCR saw."""
    planned = next((t.region for t in ctx.plan.text if t.id == element.get("id")), None)
    w, h = ctx.current.image.width, ctx.current.image.height
    boxes = []
    if planned is not None:
        boxes.append(list(planned.to_pixels(w, h)))
    if element.get("box"):
        boxes.append([int(v) for v in element["box"]])
    if not boxes:
        return [0, 0, w, h]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return [max(0, x0), max(0, y0), min(w, x1), min(h, y1)]


def _union(boxes: list[list[int]]) -> list[int]:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _spelled_feedback(verdict: Verdict) -> list[str]:
    """Exact text in quotes, letter by letter for the words OCR read wrong."""
    lines = []
    for e in _bad_elements(verdict):
        expected = e.get("expected", "")
        if e.get("read"):
            lines.append(f'The {e.get("id", "text")} must read exactly "{expected}" (it read "{e["read"]}").')
        else:
            lines.append(f'The {e.get("id", "text")} "{expected}" is missing or illegible: set it large and clear.')
        for read, want in e.get("wrong_words", []) or []:
            if want:
                lines.append(f'Spell "{want}" letter by letter: {_spell(want)}' + (f' (not "{read}")' if read else "") + ".")
    extra = [x.get("text", x) if isinstance(x, dict) else x for x in verdict.evidence.get("extra_text", [])]
    if extra:
        lines.append("Remove any other text: " + ", ".join(f'"{t}"' for t in extra[:3]) + ".")
    lines.append("Keep everything else unchanged.")
    return lines


# --------------------------------------------------------------------------- strategies


def restyle_text(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Make text legible: each round escalates size, weight, contrast, outline, plate, calmer background."""
    step = sum(1 for a in ctx.history if a.strategy == "restyle_text")
    style = ctx.plan.style
    changes: dict = {}
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
    return _action(ctx, "restyle_text", verdict, feedback=[verdict.feedback, *said], style=changes,
                   prompt_addendum="Make the text large, bold and high-contrast: " + "; ".join(said) + ".")


def reprompt(ctx: CorrectionContext, verdict: Verdict) -> Action:
    """Re-prompt with precise feedback: exact text in quotes, misread words spelled out, what to keep."""
    lines = _spelled_feedback(verdict) if verdict.critic == "ocr" else [verdict.feedback, "Keep everything else unchanged."]
    return _action(ctx, "reprompt", verdict, feedback=lines, prompt_addendum=" ".join(lines), seed=ctx.next_seed())


def edit_region(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Send the candidate back with an instruction about the faulty region (and a mask where taken)."""
    if not ctx.capabilities.edit:
        return None
    if verdict.critic == "ocr":
        bad = _bad_elements(verdict)
        if not bad:
            return None
        region = _union([_element_box(ctx, e) for e in bad])
        lines = _spelled_feedback(verdict)
    else:
        return None
    instruction = "Fix only this region: " + " ".join(lines)
    return _action(ctx, "edit_region", verdict, feedback=lines, prompt_addendum=instruction,
                   base_candidate_id=ctx.current.id, region=region)


def typeset_text(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """The backend keeps misspelling: clear the text regions and set the exact text in real fonts."""
    bad = _bad_elements(verdict)
    if verdict.critic != "ocr" or not bad:
        return None
    ids = [e["id"] for e in bad if e.get("id")]
    return _action(ctx, "typeset_text", verdict, base_candidate_id=ctx.current.id, elements=ids,
                   region=_union([_element_box(ctx, e) for e in bad]),
                   feedback=[f'typeset "{e.get("expected")}" exactly in its region' for e in bad])


def reanchor_identity(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Identity drift: edit the face region with the references re-sent, or re-generate anchored on them."""
    if verdict.critic != "face":
        return None
    identities = verdict.evidence.get("identities", [])
    drifted = [i for i in identities if not i.get("same")]
    extra = verdict.evidence.get("extra_faces", [])
    lines = []
    for i in drifted:
        lines.append(f"The face of {i.get('subject', 'the person')} must be the person in their reference photo: "
                     "keep their identity, face shape and features exactly.")
    if extra:
        lines.append(f"Show only {len(identities) or 'the referenced'} person(s): remove the extra face(s).")
    lines = lines or [verdict.feedback]
    boxes = [i["box"] for i in drifted if i.get("box")] + [list(b) for b in extra]
    if ctx.capabilities.edit and boxes and ctx.attempts("face", "reanchor_identity") == 0:
        w, h = ctx.current.image.width, ctx.current.image.height
        x0, y0, x1, y1 = _union([list(map(int, b)) for b in boxes])
        pad = int(0.25 * max(x1 - x0, y1 - y0))
        region = [max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)]
        return _action(ctx, "reanchor_identity", verdict, feedback=lines, base_candidate_id=ctx.current.id,
                       region=region, prompt_addendum="Fix only this region: " + " ".join(lines))
    return _action(ctx, "reanchor_identity", verdict, feedback=lines, prompt_addendum=" ".join(lines),
                   seed=ctx.next_seed())


def upscale(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """The backend delivered fewer pixels than asked: upscale to the requested size (verified by spec)."""
    if verdict.critic != "spec":
        return None
    ev = verdict.evidence
    req = ev.get("requested") or [ctx.plan.width, ctx.plan.height]
    w, h = ev.get("width", ctx.current.image.width), ev.get("height", ctx.current.image.height)
    rel = float((ev.get("aspect_ratio") or {}).get("rel_error", 0.0) or 0.0)
    if max(w, h) >= 0.98 * max(req) or ev.get("blank") or rel > 0.02:
        return None
    return _action(ctx, "upscale", verdict, base_candidate_id=ctx.current.id,
                   feedback=[f"upscale {w}x{h} to {req[0]}x{req[1]} with high-quality resampling and sharpening"])


def new_seed(ctx: CorrectionContext, verdict: Verdict) -> Action:
    """Feedback is not helping (or there is none to give): draw again with another seed."""
    return _action(ctx, "new_seed", verdict, seed=ctx.next_seed(),
                   prompt_addendum=" ".join(v.feedback for v in _failing(ctx.verdicts)))


def best_of_n(ctx: CorrectionContext, verdict: Verdict, n: int = 3) -> Action:
    """Several drafts at once; the best one continues."""
    return _action(ctx, "best_of_n", verdict, seed=ctx.next_seed(), drafts=n,
                   prompt_addendum=" ".join(v.feedback for v in _failing(ctx.verdicts)))


def restart_from_best(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Quality drifted below an earlier candidate: go back to it instead of chaining more edits."""
    if ctx.best is None or ctx.best.id == ctx.current.id:
        return None
    lost = regressions(rank(ctx.verdicts), rank(ctx.best_verdicts))
    if not lost and rank(ctx.verdicts).key() >= rank(ctx.best_verdicts).key():
        return None
    failing_best = _failing(ctx.best_verdicts)
    target = failing_best[0] if failing_best else verdict
    why = f"{ctx.current.id} is worse than {ctx.best.id}" + (f" (it broke {', '.join(sorted(lost))})" if lost else "")
    return _action(ctx, "restart_from_best", target, base_candidate_id=ctx.best.id, seed=ctx.next_seed(),
                   feedback=[why] + [v.feedback for v in failing_best],
                   prompt_addendum=" ".join(v.feedback for v in failing_best))


# --------------------------------------------------------------------------- policy


def _plan_for(ctx: CorrectionContext, verdict: Verdict) -> list[StrategyFn]:
    """Strategies to try for one failing verdict, most targeted first."""
    if verdict.critic == "ocr":
        bad = _bad_elements(verdict)
        unreadable = bool(bad) and all(not e.get("read") for e in bad)
        tries = ctx.attempts("ocr")
        order: list[StrategyFn] = []
        if unreadable:
            order.append(restyle_text)
        if tries == 0:
            order += [reprompt]
        elif tries == 1:
            order += [edit_region, typeset_text]
        else:
            order += [typeset_text, edit_region]
        return order + [restyle_text, reprompt, new_seed]
    if verdict.critic == "face":
        return [reanchor_identity, new_seed]
    if verdict.critic == "spec":
        return [upscale, new_seed]
    if verdict.critic == "artifacts":
        if ctx.attempts("artifacts", "new_seed", "best_of_n") >= 1:
            return [best_of_n, new_seed]
        return [new_seed]
    return [reprompt, new_seed]


def correct(ctx: CorrectionContext) -> Action:
    """The next action for the current candidate's failing verdicts."""
    failing = _failing(ctx.verdicts)
    if ctx.allowed("restart_from_best"):
        restart = restart_from_best(ctx, failing[0] if failing else Verdict(
            critic="loop", candidate_id=ctx.current.id, score=0, passed=False, threshold=1))
        if restart is not None:
            return restart
    for verdict in failing:
        for strategy in _plan_for(ctx, verdict):
            name = strategy.__name__
            if not ctx.allowed(name):
                continue
            action = strategy(ctx, verdict)
            if action is not None:
                return action
    seed_verdict = failing[0] if failing else Verdict(critic="loop", candidate_id=ctx.current.id, score=0,
                                                      passed=False, threshold=1, feedback="try again")
    return new_seed(ctx, seed_verdict)


def apply_action(plan: Plan, action: Action) -> Plan:
    """The next plan revision: the action's style changes applied and validated."""
    style = plan.style.model_validate({**plan.style.model_dump(), **action.style})
    return plan.model_copy(update={"revision": plan.revision + 1, "style": style})


__all__ = ["CorrectionContext", "apply_action", "best_of_n", "correct", "edit_region", "new_seed", "reanchor_identity",
           "reprompt", "restart_from_best", "restyle_text", "typeset_text", "upscale"]
