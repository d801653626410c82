"""The corrector: failing verdicts in, one concrete Action out, and the plan change it implies.

Each strategy is a small function. `correct` picks the one the failing verdicts call for;
`apply_action` turns the action into the next plan revision that `generate` renders.
"""

from __future__ import annotations

from typing import Callable

from agent.backends.fonts import heavier
from agent.planner import contrasting_text
from agent.state import Action, Plan, Verdict

StrategyFn = Callable[[Plan, list[Verdict], list[Action], int], Action]


def _failing(verdicts: list[Verdict]) -> list[Verdict]:
    """Failing verdicts, worst first; a measured critic's failure is fixed before the VLM judge's."""
    from critics.vlm import OUTRANKED_BY

    failing = [v for v in verdicts if not v.passed]
    measured = any(v.critic in OUTRANKED_BY for v in failing)
    return sorted(failing, key=lambda v: (v.critic == "vlm" and measured, v.score))


def _reason(failing: list[Verdict]) -> str:
    return "; ".join(f"{v.critic} {v.score:.2f} < {v.threshold:.2f}: {v.feedback}" for v in failing)


def restyle_text(plan: Plan, failing: list[Verdict], history: list[Action], iteration: int) -> Action:
    """Make text legible: each round escalates size, weight, contrast, outline, plate, calmer background."""
    step = sum(1 for a in history if a.strategy == "restyle_text")
    style = plan.style
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
    if step >= 1 or style.background in ("texture", "image"):
        if not style.text_plate:
            changes["text_plate"] = True
            said.append("set the text on a contrasting plate")
    if step >= 1 and style.background == "texture" and style.texture_strength > 0.2:
        changes["texture_strength"] = round(style.texture_strength * 0.4, 3)
        said.append("calm the background texture")
    if not said:
        return new_seed(plan, failing, history, iteration)
    return Action(iteration=iteration, strategy="restyle_text", reason=_reason(failing),
                  feedback=[v.feedback for v in failing] + said, style=changes,
                  prompt_addendum="Make the text large, bold and high-contrast: " + "; ".join(said) + ".")


def new_seed(plan: Plan, failing: list[Verdict], history: list[Action], iteration: int) -> Action:
    """Nothing left to tune: try another seed with the feedback spelled out."""
    return Action(iteration=iteration, strategy="new_seed", reason=_reason(failing),
                  feedback=[v.feedback for v in failing], seed=1000 * iteration + len(history),
                  prompt_addendum=" ".join(v.feedback for v in failing))


def reprompt(plan: Plan, failing: list[Verdict], history: list[Action], iteration: int) -> Action:
    """Re-prompt with each critic's feedback for critics without a targeted fix."""
    return Action(iteration=iteration, strategy="reprompt", reason=_reason(failing),
                  feedback=[v.feedback for v in failing],
                  prompt_addendum=" ".join(v.feedback for v in failing))


STRATEGIES: dict[str, StrategyFn] = {
    "ocr": restyle_text,
}


def correct(plan: Plan, verdicts: list[Verdict], history: list[Action], iteration: int) -> Action:
    """Choose the next action from the current candidate's failing verdicts (worst first)."""
    failing = _failing(verdicts)
    if not failing:
        return new_seed(plan, [], history, iteration)
    strategy = STRATEGIES.get(failing[0].critic, reprompt)
    return strategy(plan, failing, history, iteration)


def apply_action(plan: Plan, action: Action) -> Plan:
    """The next plan revision: the action's style changes applied and validated."""
    style = plan.style.model_validate({**plan.style.model_dump(), **action.style})
    return plan.model_copy(update={"revision": plan.revision + 1, "style": style})


def rank(verdicts: list[Verdict]) -> tuple[int, float]:
    """Candidates compare by critics passed, then mean score."""
    if not verdicts:
        return (0, 0.0)
    return (sum(v.passed for v in verdicts), sum(v.score for v in verdicts) / len(verdicts))
