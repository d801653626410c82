"""The run report (report.json), built from graph state only, so a resumed run reports the same as an
unbroken one. Nothing secret is in state, so nothing secret reaches the report.
"""

from __future__ import annotations

from typing import Any

from agent.loop.coverage import describe_unverified
from agent.models import Action, Candidate, PixloopConfig, Verdict

REPORT_VERSION = 1


def _verdict_row(v: Verdict) -> dict[str, Any]:
    row = {"critic": v.critic, "status": v.status, "score": round(v.score, 4) if v.checked else None,
           "threshold": v.threshold, "passed": v.passed, "feedback": v.feedback, "seconds": v.seconds,
           "evidence": v.evidence}
    if v.error:
        row["error"] = v.error
    return row


def explain(status: str, reason: str | None, best: Candidate | None, verdicts: list[Verdict]) -> str:
    """One sentence saying why the run passed or what still fails."""
    typeset = " Its text was typeset by pixloop (the backend kept misspelling it)." \
        if best is not None and best.strategy == "typeset_text" else ""
    upscaled = " It was upscaled from the backend's smaller image." if best is not None and best.strategy == "upscale" else ""
    if status == "passed":
        names = ", ".join(f"{v.critic} {v.score:.2f}>={v.threshold:.2f}" for v in verdicts if v.checked) \
            or "no checks enabled"
        return f"{best.id if best else 'candidate'} passed every check ({names}).{typeset}{upscaled}"
    failing = [v for v in verdicts if v.checked and not v.passed]
    detail = "; ".join(f"{v.critic} {v.score:.2f}<{v.threshold:.2f}: {v.feedback}" for v in failing)
    why = {"max_iterations": "the iteration budget ran out", "max_seconds": "the time budget ran out",
           "max_cost": "the cost budget ran out", "no_improvement": "corrections stopped improving the image",
           "planning_error": "the brief could not be planned", "backend_error": "the backend failed",
           "unverified": "every check passed, but strict mode requires every requirement to be verified",
           "bad_input": "the input was refused", "internal_error": "pixloop failed (an internal error)",
           "policy": "the content policy refused it (nothing is delivered)",
           }.get(reason or "", reason or "stopped")
    if reason == "policy":
        return f"Stopped because {why}."
    best_txt = f" Best candidate {best.id} still fails: {detail}" if best and detail else ""
    return f"Stopped because {why}.{best_txt}"


def _action_row(action: Action, candidates: list[Candidate], verdicts: list[Verdict]) -> dict[str, Any]:
    """An action plus what it changed: per-critic score deltas of the candidates it produced."""
    row: dict[str, Any] = action.model_dump(mode="json", exclude_defaults=False)
    made = [c for c in candidates if c.iteration == action.iteration]
    after: dict[str, float] = {}
    for c in made:
        scores = {v.critic: v.score for v in verdicts if v.candidate_id == c.id}
        if sum(scores.values()) >= sum(after.values()):
            after = scores
    row["score_changes"] = {k: round(after[k] - v, 4) for k, v in action.scores_before.items() if k in after}
    row["candidates"] = [c.id for c in made]
    return row


def build_report(state: dict[str, Any], settings: PixloopConfig) -> dict[str, Any]:
    """Everything a person or pipeline needs to know about a run, JSON-ready."""
    candidates: list[Candidate] = state.get("candidates", [])
    verdicts: list[Verdict] = state.get("verdicts", [])
    best: Candidate | None = state.get("final")
    plan = state.get("plan")
    best_verdicts = [v for v in verdicts if best and v.candidate_id == best.id]
    timings = {k: round(v, 4) for k, v in (state.get("timings") or {}).items()}
    return {
        "version": REPORT_VERSION,
        "status": state.get("status"),
        "stop_reason": state.get("stop_reason"),
        "summary": explain(state.get("status", ""), state.get("stop_reason"), best, best_verdicts),
        "error": state.get("error"),
        "iterations": state.get("iteration", 0),
        "typeset": bool(best is not None and best.strategy == "typeset_text"),
        "final": {"candidate": best.id, "path": f"final{best.image.path[best.image.path.rfind('.'):]}",
                  "width": best.image.width, "height": best.image.height} if best else None,
        "backend": settings.backend,
        "planner": settings.planner,
        "brief": state["brief"].model_dump(mode="json") if state.get("brief") is not None
        and hasattr(state["brief"], "model_dump") else state.get("brief"),
        "plan": plan.model_dump(mode="json", exclude={"subjects": {"__all__": {"reference"}}}) if plan else None,
        "thresholds": {k: {"threshold": c.threshold, "source": c.source} for k, c in plan.checks.items()} if plan else {},
        "candidates": [
            {"id": c.id, "iteration": c.iteration, "path": c.image.path, "sha256": c.image.sha256,
             "width": c.image.width, "height": c.image.height, "seed": c.seed, "strategy": c.strategy,
             "backend": c.backend, "parent": c.parent_id,
             "backend_seconds": c.seconds, "cost": c.cost, "meta": c.meta,
             "verdicts": [_verdict_row(v) for v in verdicts if v.candidate_id == c.id]}
            for c in candidates
        ],
        "actions": [_action_row(a, candidates, verdicts) for a in state.get("actions", [])],
        "edit": {**plan.edit.model_dump(mode="json", exclude={"preview"}), "mask": "mask.png",
                 "preview": "mask-preview.png" if plan.edit.preview is not None else None,
                 "source": plan.source.path if plan.source else None}
        if plan is not None and plan.edit is not None else None,
        "requirements": [r.model_dump(mode="json") for r in state.get("requirements") or []],
        "unverified": describe_unverified(state.get("requirements") or []),
        "cost_used": round(state.get("cost_used", 0.0), 4),
        "elapsed_seconds": round(state.get("elapsed_s", 0.0), 4),
        "timings": timings,
    }
