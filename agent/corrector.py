"""The corrector: failing verdicts in, one concrete Action out.

Each strategy is one small function `(ctx, verdict) -> Action | None`. `correct` picks one from the
current candidate's failing verdicts (measured critics before the VLM judge), what was already tried,
and what the backend can do (edit, mask, native size). `apply_action` gives the next plan revision.

One action fixes every failure it can at once:

- a failure is *local* when a masked edit of some boxes can repair it (a misspelt, missing or extra
  text, a drifted face, an extra face) and *global* otherwise (blur/noise/blocking, a wrong aspect
  ratio, a missing person, unreadable styling, a broken edit);
- when every failure is local and the backend edits with masks, ONE edit covers all their boxes (the
  mask is the union of the boxes, not their bounding box): `edit_region` for text, `reanchor_identity`
  for faces; a masked edit repairs what it covers and keeps the rest, where a regeneration re-draws
  (and may break) everything;
- when a regeneration is needed anyway, its correction carries every failing critic's feedback (text
  spelled out letter by letter, the face, the artifacts, the size), not only the worst one's;
- when the backend delivers fewer pixels than planned, the fix is also delivered upscaled (the plan
  notes `UPSCALE_NOTE` and generation resamples every later image), so the size costs no extra round.

Strategies: restyle_text, reprompt (exact text, spelled letter by letter, plus every other failing
critic's feedback), edit_region (masked edit of the faulty boxes), typeset_text (set the exact text in
real fonts on the candidate, when the backend keeps misspelling), reanchor_identity (edit the face
boxes with the references re-sent, or re-generate anchored on them), new_seed, best_of_n,
restart_from_best (when quality drifted below an earlier candidate: repair that one instead),
upscale (when the backend delivers less than asked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from agent.backends.base import Capabilities
from agent.backends.fonts import heavier
from agent.planner import contrasting_text
from agent.selection import rank, regressions
from agent.state import STRATEGIES, Action, Candidate, Plan, Verdict

UPSCALE_NOTE = "deliver upscaled: "
"""Prefix of the plan note that makes generation resample every later image to the planned size."""
UPSCALE_FEEDBACK = "upscale the result to "
"""Prefix of the feedback line an action carries when its result is to be delivered upscaled."""
WEAK_FONTS = ("lato-hairline", "lato-thin", "lato-light")
MIN_TEXT_CONTRAST = 3.0
"""WCAG contrast ratio below which planned text counts as hard to read (AA for large text is 3:1)."""


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
        pattern = re.compile(rf"(?:^|; ){re.escape(critic)} \d+\.\d\d < \d+\.\d\d:")
        return sum(1 for a in self.history if pattern.search(a.reason)
                   and (not strategies or a.strategy in strategies))

    def last_attempt(self, critic: str) -> str | None:
        """The strategy of the latest action that addressed this critic's failure."""
        pattern = re.compile(rf"(?:^|; ){re.escape(critic)} \d+\.\d\d < \d+\.\d\d:")
        return next((a.strategy for a in reversed(self.history) if pattern.search(a.reason)), None)

    def next_seed(self) -> int:
        return 1000 * self.iteration + 17 * len(self.history) + 1

    @property
    def can_mask_edit(self) -> bool:
        return self.capabilities.edit and self.capabilities.mask


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
    """An action whose reason names `verdict` first, then every other failing verdict."""
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


def _extra_text(verdict: Verdict) -> list[dict]:
    """Text OCR read that the plan does not ask for (the critic's invented text, else every extra line)."""
    extra = [x for x in verdict.evidence.get("extra_text", []) if isinstance(x, dict)]
    invented = set(verdict.evidence.get("invented_text") or [])
    return [x for x in extra if x.get("text") in invented] if invented else extra


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


def _pad(ctx: CorrectionContext, box: list[int], share: float) -> list[int]:
    w, h = ctx.current.image.width, ctx.current.image.height
    x0, y0, x1, y1 = (int(v) for v in box)
    p = int(share * max(x1 - x0, y1 - y0))
    return [max(0, x0 - p), max(0, y0 - p), min(w, x1 + p), min(h, y1 + p)]


def _flat(boxes: list[list[int]]) -> list[int]:
    """Several boxes as one `Action.region` list: [x0, y0, x1, y1, x0, y0, x1, y1, ...]."""
    return [int(v) for b in boxes for v in b]


def _spelled_feedback(verdict: Verdict) -> list[str]:
    """Exact text in quotes, letter by letter for the words OCR read wrong, and the extra text to remove."""
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
    extra = [x.get("text", "") for x in _extra_text(verdict)]
    if extra:
        lines.append("Remove the extra text that is not in the plan: " + ", ".join(f'"{t}"' for t in extra[:3]) + ".")
    return lines


def _contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    def lum(c: str) -> float:
        ch = [int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _weak_style(plan: Plan) -> bool:
    """Whether the planned text styling itself makes text hard to read (small, thin, low contrast, busy)."""
    s = plan.style
    contrast = min((_contrast(s.text_color, c) for c in s.palette[:2]), default=21.0)
    return (s.text_scale < 0.5 or s.font in WEAK_FONTS or (contrast < MIN_TEXT_CONTRAST and not s.text_plate)
            or (s.background == "texture" and s.texture_strength > 0.6 and not s.text_plate))


def _too_small(verdict: Verdict) -> bool:
    """A spec failure that is only about size: the ratio is right and the image is not blank."""
    if verdict.critic != "spec" or verdict.passed:
        return False
    ev = verdict.evidence
    req = ev.get("requested")
    w, h = ev.get("width"), ev.get("height")
    rel = float((ev.get("aspect_ratio") or {}).get("rel_error", 0.0) or 0.0)
    return bool(req and w and h) and max(w, h) < 0.98 * max(req) and not ev.get("blank") and rel <= 0.02


def _local_boxes(ctx: CorrectionContext, verdict: Verdict) -> list[list[int]] | None:
    """Pixel boxes a masked edit of the current candidate can repair this failure in; None if it is global."""
    if verdict.critic == "ocr":
        bad = _bad_elements(verdict)
        if bad and all(not e.get("read") for e in bad) and _weak_style(ctx.plan):
            return None  # unreadable because of the styling: restyle and re-render
        boxes = [_element_box(ctx, e) for e in bad]
        boxes += [_pad(ctx, list(map(int, x["box"])), 0.1) for x in _extra_text(verdict) if x.get("box")]
        return boxes or None
    if verdict.critic == "face":
        identities = verdict.evidence.get("identities", [])
        if not identities:
            return None  # no evidence to place an edit: re-generate anchored on the references
        w, h = ctx.current.image.width, ctx.current.image.height
        regions = {s.id: list(s.region.to_pixels(w, h)) for s in ctx.plan.subjects}
        boxes = []
        for i in identities:
            if i.get("same"):
                continue
            if i.get("box"):
                boxes.append(_pad(ctx, i["box"], 0.25))
            elif i.get("subject") in regions:
                boxes.append(regions[i["subject"]])  # no face found: re-draw the person's planned region
            else:
                return None
        boxes += [_pad(ctx, list(b), 0.25) for b in verdict.evidence.get("extra_faces", [])]
        return boxes or None
    return None


def _repairs(ctx: CorrectionContext) -> list[Verdict]:
    """The failures an action must repair: all failing verdicts except a too-small size (upscaling fixes that)."""
    return [v for v in _failing(ctx.verdicts) if not _too_small(v)]


def _all_local(ctx: CorrectionContext) -> list[list[int]] | None:
    """The boxes of every failure when all of them are local (a masked edit fixes them all), else None."""
    boxes: list[list[int]] = []
    for v in _repairs(ctx):
        local = _local_boxes(ctx, v)
        if local is None:
            return None
        boxes += local
    return boxes or None


def _lines(ctx: CorrectionContext, verdict: Verdict) -> list[str]:
    """Precise feedback for one verdict: spelled-out text for OCR, the critic's own line otherwise."""
    if verdict.critic == "ocr":
        return _spelled_feedback(verdict) or [verdict.feedback]
    return [verdict.feedback] if verdict.feedback else []


def _all_lines(ctx: CorrectionContext, first: Verdict) -> list[str]:
    """Feedback for every failure to repair, `first`'s lines first."""
    out = _lines(ctx, first)
    for v in _repairs(ctx):
        if v is not first:
            out += [line for line in _lines(ctx, v) if line not in out]
    return out


# --------------------------------------------------------------------------- strategies


def restyle_text(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Make text legible: each round escalates size, weight, contrast, outline, plate, calmer background."""
    if verdict.critic != "ocr" or not any(not e.get("read") for e in _bad_elements(verdict)):
        return None  # nothing is illegible (a misspelling is not fixed by a bolder font)
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
    others = [line for v in _repairs(ctx) if v is not verdict for line in _lines(ctx, v)]
    return _action(ctx, "restyle_text", verdict, feedback=[verdict.feedback, *said, *others], style=changes,
                   prompt_addendum="Make the text large, bold and high-contrast: " + "; ".join(said) + ".")


def reprompt(ctx: CorrectionContext, verdict: Verdict) -> Action:
    """Re-prompt with precise feedback for every failing critic: exact text spelled out, what to keep."""
    lines = _all_lines(ctx, verdict) + ["Keep everything else unchanged."]
    return _action(ctx, "reprompt", verdict, feedback=lines, prompt_addendum=" ".join(lines), seed=ctx.next_seed())


def edit_region(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """A masked edit of the faulty text boxes (and of every other local failure's boxes, so one edit fixes all)."""
    if not ctx.capabilities.edit or verdict.critic != "ocr" or _local_boxes(ctx, verdict) is None:
        return None
    boxes = _all_local(ctx)
    if boxes is None:
        return None  # something else needs a regeneration anyway; an edit would leave it broken
    lines = _all_lines(ctx, verdict) + ["Keep everything else unchanged."]
    return _action(ctx, "edit_region", verdict, feedback=lines, prompt_addendum="Fix only the masked areas: " +
                   " ".join(lines), base_candidate_id=ctx.current.id, region=_flat(boxes))


def typeset_text(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """The backend keeps misspelling: clear the text regions and set the exact text in real fonts."""
    bad = _bad_elements(verdict)
    if verdict.critic != "ocr" or not bad or _all_local(ctx) is None:
        return None  # a regeneration is still needed for something else, and it would re-draw the text
    ids = [e["id"] for e in bad if e.get("id")]
    return _action(ctx, "typeset_text", verdict, base_candidate_id=ctx.current.id, elements=ids,
                   region=_flat([_element_box(ctx, e) for e in bad]),
                   feedback=[f'typeset "{e.get("expected")}" exactly in its region' for e in bad])


def reanchor_identity(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Identity drift or an extra face: edit the face boxes with the references re-sent, or re-generate on them."""
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
    lines = (lines or [verdict.feedback]) + [line for v in _repairs(ctx) if v is not verdict
                                             for line in _lines(ctx, v)]
    boxes = _all_local(ctx)
    edits = ctx.attempts("face", "reanchor_identity")
    if ctx.can_mask_edit and boxes and _local_boxes(ctx, verdict) and edits < 2:
        return _action(ctx, "reanchor_identity", verdict, feedback=lines, base_candidate_id=ctx.current.id,
                       region=_flat(boxes), prompt_addendum="Fix only the masked areas: " + " ".join(lines))
    return _action(ctx, "reanchor_identity", verdict, feedback=lines, prompt_addendum=" ".join(lines),
                   seed=ctx.next_seed())


def upscale(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """The backend delivered fewer pixels than asked: upscale to the requested size (verified by spec)."""
    if not _too_small(verdict):
        return None
    ev = verdict.evidence
    req = ev.get("requested") or [ctx.plan.width, ctx.plan.height]
    w, h = ev.get("width", ctx.current.image.width), ev.get("height", ctx.current.image.height)
    return _action(ctx, "upscale", verdict, base_candidate_id=ctx.current.id,
                   feedback=[f"{UPSCALE_FEEDBACK}{req[0]}x{req[1]} from {w}x{h} with high-quality resampling "
                             "and sharpening"])


def new_seed(ctx: CorrectionContext, verdict: Verdict) -> Action:
    """Feedback is not helping (or there is none to give): draw again with another seed."""
    return _action(ctx, "new_seed", verdict, seed=ctx.next_seed(), feedback=_all_lines(ctx, verdict) or None,
                   prompt_addendum=" ".join(v.feedback for v in _failing(ctx.verdicts)))


def best_of_n(ctx: CorrectionContext, verdict: Verdict, n: int = 3) -> Action | None:
    """Several drafts at once (as many as the cost budget still pays for); the best one continues."""
    if ctx.max_drafts is not None:
        n = min(n, ctx.max_drafts)
    if n < 2:
        return None  # one draw is a new seed
    return _action(ctx, "best_of_n", verdict, seed=ctx.next_seed(), drafts=n, feedback=_all_lines(ctx, verdict) or None,
                   prompt_addendum=" ".join(v.feedback for v in _failing(ctx.verdicts)))


def restart_from_best(ctx: CorrectionContext, verdict: Verdict) -> Action | None:
    """Quality drifted below an earlier candidate: repair that one (a masked edit of its local failures with
    a new seed, or a fresh draw from its plan) instead of chaining more corrections on a worse image."""
    if ctx.best is None or ctx.best.id == ctx.current.id:
        return None
    now, before = rank(ctx.verdicts), rank(ctx.best_verdicts)
    lost = regressions(now, before)
    on_best = CorrectionContext(plan=ctx.plan, current=ctx.best, verdicts=ctx.best_verdicts, history=ctx.history,
                                iteration=ctx.iteration, capabilities=ctx.capabilities, enabled=ctx.enabled,
                                max_drafts=ctx.max_drafts)
    if not lost and (now.key() >= before.key() or not (ctx.can_mask_edit and _all_local(on_best))):
        return None  # not worse, or worse but both need a fresh draw anyway: escalate (new seed, best-of-N)
    if lost and now.measured_passed > before.measured_passed and ctx.can_mask_edit and _all_local(ctx):
        return None  # it broke something but fixed more, and one masked edit repairs the rest: repair it
    failing_best = _failing(ctx.best_verdicts)
    target = failing_best[0] if failing_best else verdict
    why = f"{ctx.current.id} is worse than {ctx.best.id}" + (f" (it broke {', '.join(sorted(lost))})" if lost else "")
    upscaled_before = any(a.strategy == "upscale" and a.base_candidate_id == ctx.best.id for a in ctx.history)
    if not _repairs(on_best) and ctx.allowed("upscale") and not upscaled_before:
        small = next((v for v in failing_best if _too_small(v)), None)
        if small is not None:
            return upscale(on_best, small)  # the best only lacks pixels (and was not upscaled yet)
    ocr = next((v for v in failing_best if v.critic == "ocr"), None)
    if ocr is not None and ctx.attempts("ocr") >= 2 and ctx.allowed("typeset_text"):
        action = typeset_text(on_best, ocr)  # the backend keeps misspelling: typeset the best one's text
        if action is not None:
            return action.model_copy(update={"feedback": [why, *action.feedback]})
    boxes = _all_local(on_best) if ctx.can_mask_edit else None
    lines = _all_lines(on_best, target) if failing_best else []
    return _action(on_best, "restart_from_best", target, base_candidate_id=ctx.best.id, seed=ctx.next_seed(),
                   feedback=[why] + lines, region=_flat(boxes) if boxes else None,
                   prompt_addendum=("Fix only the masked areas: " if boxes else "") + " ".join(lines))


# --------------------------------------------------------------------------- policy


def _plan_for(ctx: CorrectionContext, verdict: Verdict) -> list[StrategyFn]:
    """Strategies to try for one failing verdict, most targeted first."""
    if verdict.critic == "ocr":
        bad = _bad_elements(verdict)
        unreadable = bool(bad) and all(not e.get("read") for e in bad) and _weak_style(ctx.plan)
        order: list[StrategyFn] = [restyle_text] if unreadable else []
        last = ctx.last_attempt("ocr")
        if last is None:
            # a masked edit repairs the text and keeps the rest; a re-prompt re-draws everything
            order += [edit_region, reprompt] if ctx.can_mask_edit else [reprompt, edit_region]
        elif last == "typeset_text":
            order += [edit_region]  # typesetting did not do it (extra text, say): edit what is left
        elif ctx.plan.source is not None:
            order += [edit_region, typeset_text]  # an edit brief: typesetting would restyle the source's text
        elif last in ("edit_region", "restart_from_best", "reanchor_identity") or ctx.attempts("ocr") >= 2:
            order += [typeset_text, edit_region]  # the backend keeps misspelling: set the text ourselves
        else:
            order += [edit_region, typeset_text]
        return order + [restyle_text, reprompt, new_seed]
    if verdict.critic == "face":
        return [reanchor_identity, new_seed]
    if verdict.critic == "spec":
        return [upscale, new_seed]
    if verdict.critic == "artifacts":
        if ctx.attempts("artifacts", "new_seed", "best_of_n", "reprompt") >= 1:
            return [best_of_n, new_seed]
        return [new_seed]
    return [reprompt, new_seed]


def _order(ctx: CorrectionContext, verdicts: list[Verdict]) -> list[Verdict]:
    """Which failure picks the strategy. All local: the worst first (one edit covers them all). Some global:
    the first regeneration is led by the text or face failure, so it carries their precise feedback (a
    reprompt, or a re-anchored draw) along with the rest; once a regeneration has addressed the global
    failure and it persists, that failure leads (new_seed, then best_of_n), and the local ones are
    repaired in place afterwards."""
    local = [v for v in verdicts if _local_boxes(ctx, v) is not None]
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
    small = next((v for v in ctx.verdicts if _too_small(v)), None)
    if small is None and not any(n.startswith(UPSCALE_NOTE) for n in ctx.plan.notes):
        return None
    return f"{UPSCALE_FEEDBACK}{ctx.plan.width}x{ctx.plan.height} (the backend delivers fewer pixels)"


def _choose(ctx: CorrectionContext) -> Action:
    failing = _failing(ctx.verdicts)
    if ctx.allowed("restart_from_best"):
        restart = restart_from_best(ctx, failing[0] if failing else Verdict(
            critic="loop", candidate_id=ctx.current.id, score=0, passed=False, threshold=1))
        if restart is not None:
            return restart
    repairs = _repairs(ctx)
    if not repairs and ctx.allowed("upscale"):
        action = next((upscale(ctx, v) for v in failing if _too_small(v)), None)
        if action is not None:
            return action
    for verdict in _order(ctx, repairs or failing):
        for strategy in _plan_for(ctx, verdict):
            if not ctx.allowed(strategy.__name__):
                continue
            action = strategy(ctx, verdict)
            if action is not None:
                return action
    seed_verdict = failing[0] if failing else Verdict(critic="loop", candidate_id=ctx.current.id, score=0,
                                                      passed=False, threshold=1, feedback="try again")
    return new_seed(ctx, seed_verdict)


def correct(ctx: CorrectionContext) -> Action:
    """The next action for the current candidate's failing verdicts (delivered upscaled when needed)."""
    action = _choose(ctx)
    line = _upscale_line(ctx)
    if line and action.strategy != "upscale" and line not in action.feedback:
        action = action.model_copy(update={"feedback": [*action.feedback, line]})
    return action


def apply_action(plan: Plan, action: Action) -> Plan:
    """The next plan revision: the action's style changes applied and validated; an upscale (or an action
    delivered upscaled) makes every later image be delivered at the planned size."""
    style = plan.style.model_validate({**plan.style.model_dump(), **action.style})
    notes = list(plan.notes)
    wants = action.strategy == "upscale" or any(f.startswith(UPSCALE_FEEDBACK) for f in action.feedback)
    if wants and not any(n.startswith(UPSCALE_NOTE) for n in notes):
        notes.append(f"{UPSCALE_NOTE}the backend delivers fewer pixels than {plan.width}x{plan.height}; "
                     "images are resampled to the planned size")
    return plan.model_copy(update={"revision": plan.revision + 1, "style": style, "notes": notes})


__all__ = ["UPSCALE_NOTE", "CorrectionContext", "apply_action", "best_of_n", "correct", "edit_region", "new_seed",
           "reanchor_identity", "reprompt", "restart_from_best", "restyle_text", "typeset_text", "upscale"]
