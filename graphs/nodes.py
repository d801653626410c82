"""The nodes of the pixloop loop: small functions from state to a partial update, and the routers between them.

plan -> generate -> check (one branch per critic per candidate, via Send) -> judge -> correct -> generate ...
-> finalize. Side effects go through the artifact store (files) and the backend registry (generation);
state carries ImageRefs only. The policy the nodes apply lives in `agent.loop` (planning, correction,
generation, selection, stop rules); the nodes only fetch what it needs and record what it decided.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Send

from agent.backends import get_backend
from agent.loop import selection
from agent.loop.correction import CorrectionContext, apply_action, correct
from agent.loop.coverage import assess, unverified
from agent.loop.delivery import deliver
from agent.loop.generation import from_draft, produce
from agent.loop.planning import generation_prompt, get_planner
from agent.loop.planning.edit import plan_edit
from agent.loop.planning.requirements import requirements_for
from agent.loop.planning.sketch import plan_from_sketch
from agent.loop.policy.screen import moderate, policy_for, screen_brief, screen_candidate, warm_image_screen
from agent.loop.report import build_report
from agent.loop.report_html import write_report_html
from agent.loop.state import CriticTask, LoopState
from agent.loop.stopping import drafts_affordable, stop_reason
from agent.models import (
    STRATEGIES,
    Action,
    Brief,
    Candidate,
    ImageRef,
    PixloopConfig,
    Plan,
    Status,
    StopReason,
    Verdict,
)
from agent.models.errors import (
    BackendError,
    ConfigError,
    CriticUnavailable,
    ImageInputError,
    InputError,
    PlanningError,
)
from agent.runtime.confine import Confinement
from agent.runtime.http import Deadline, deadline
from agent.runtime.images import decode_image_bytes
from agent.runtime.secrets import redact
from agent.runtime.store import ArtifactStore
from critics import CheckContext, get_critic
from graphs.intake import safe_run_dir, take_in, thread_of
from prompts import render


def _settings(runtime: Runtime[PixloopConfig] | None) -> PixloopConfig:
    ctx = getattr(runtime, "context", None)
    if ctx is None:
        return PixloopConfig()
    if isinstance(ctx, PixloopConfig):
        return ctx
    return PixloopConfig.model_validate(ctx if isinstance(ctx, dict) else dict(ctx))


def _brief(state: LoopState) -> Brief:
    b = state["brief"]
    return b if isinstance(b, Brief) else Brief.model_validate(b)


def _verdicts_for(state: LoopState, candidate_id: str) -> list[Verdict]:
    return [v for v in state.get("verdicts", []) if v.candidate_id == candidate_id]


def plan(state: LoopState, config: RunnableConfig, runtime: Runtime[PixloopConfig], *,
         confinement: Confinement | None = None) -> dict[str, Any]:
    """Check the input (graphs.intake), store the references and make the plan.

    A sync node on purpose: it only does file I/O and CPU work, which LangGraph runs in a worker
    thread (in an async node it would block the event loop; `langgraph dev` raises BlockingError)."""
    t0 = time.perf_counter()
    settings = _settings(runtime)
    try:
        intake = take_in(dict(state), config, settings, confinement)
    except InputError as e:
        run_dir = safe_run_dir(dict(state), config, settings, confinement)
        return _refused(ArtifactStore.for_dir(run_dir), {"run_dir": run_dir}, "bad_input", redact(str(e)), t0)
    brief, run_dir = intake.brief, intake.run_dir
    store = ArtifactStore.for_dir(run_dir)
    try:
        decision = screen_brief(policy_for(settings.policy), brief)
        if decision.allowed and settings.moderation_base_url:
            decision = moderate(settings.moderation_base_url, settings.moderation_model, brief)
    except ConfigError as e:
        return _refused(store, {"brief": brief, "run_dir": run_dir}, "bad_input", redact(str(e)), t0)
    store.log_event("policy", stage="brief", allowed=decision.allowed, verified=decision.verified,
                    rule=decision.rule_id, category=decision.category,
                    message=None if decision.allowed and decision.verified else decision.message)
    if not decision.allowed:
        return _refused(store, {"brief": brief, "run_dir": run_dir}, "policy", decision.message, t0)
    warm_image_screen()  # its model loads here, in the plan's time, not in the first round the budget projects
    references: list[ImageRef] = []
    try:
        references = [store.put_reference(source, f"references[{i}]") for i, source in enumerate(intake.references)]
        the_plan = get_planner(settings.planner, settings).plan(brief, references, store)
        if intake.sketch is not None:
            the_plan = plan_from_sketch(brief, the_plan, store.put_reference(intake.sketch, "sketch"), store)
        if intake.source is not None:
            source = store.put_reference(intake.source, "source")
            mask = store.put_reference(intake.mask, "mask") if intake.mask is not None else None
            the_plan = plan_edit(brief, the_plan, source, mask, store)
        draft = store.put_reference(intake.draft, "draft") if intake.draft is not None else None
    except PlanningError as e:
        message = str(e) if e.planner else f"{settings.planner} planner failed: {e}"
        return _refused(store, {"brief": brief, "references": references, "run_dir": run_dir}, "planning_error",
                        redact(message), t0)
    except InputError as e:
        return _refused(store, {"brief": brief, "references": references, "run_dir": run_dir}, "bad_input",
                        redact(str(e)), t0)
    if settings.critics is not None:
        the_plan.checks = {k: v for k, v in the_plan.checks.items() if k in settings.critics}
    the_plan.requirements = requirements_for(brief, the_plan)
    store.log_event("plan", aspect=the_plan.aspect_ratio, size=the_plan.size,
                    checks={k: c.threshold for k, c in the_plan.checks.items()},
                    requirements=[[r.kind, r.text, r.verified_by] for r in the_plan.requirements],
                    text=[e.content for e in the_plan.text], references=[r.sha256 for r in references])
    dt = time.perf_counter() - t0
    return {"brief": brief, "plan": the_plan, "plan_ref": store.put_document(the_plan.model_dump(mode="json"), "plans"),
            "references": references, "draft": draft, "run_dir": run_dir,
            "iteration": 0, "status": "running", "best_id": None, "current_id": None, "stale_rounds": 0,
            "stop_reason": None, "elapsed_s": dt, "timings": {"plan": dt}}


def _refused(store: ArtifactStore, update: dict[str, Any], reason: StopReason, message: str,
             t0: float) -> dict[str, Any]:
    """The plan step's update for a run that cannot start: failed, why, and straight to finalize."""
    store.log_event({"bad_input": "bad_input", "policy": "refused"}.get(reason, "planning_error"), error=message)
    dt = time.perf_counter() - t0
    return {**update, "iteration": 0, "status": "refused" if reason == "policy" else "failed", "stop_reason": reason,
            "error": message,
            "best_id": None, "stale_rounds": 0, "elapsed_s": dt, "timings": {"plan": dt}}


def route_after_plan(state: LoopState) -> Literal["generate", "finalize"]:
    return "finalize" if state.get("status") in ("failed", "refused") else "generate"


def _current_seed(state: LoopState) -> int:
    for action in reversed(state.get("actions", [])):
        if action.seed is not None:
            return action.seed
    return _brief(state).seed


BACKSTOP_GRACE_S = 1.0
"""A backend that ignores the deadline (no shared HTTP client) is cut off this long after it."""


async def generate(state: LoopState, runtime: Runtime[PixloopConfig]) -> dict[str, Any]:
    """Carry out the corrector's action (or the first render) and store the new candidate(s).

    File work runs in worker threads so the event loop (and `langgraph dev`) never blocks on it. The time
    budget left (`max_seconds` less the active seconds spent) bounds the backend call: it is the `deadline`
    the HTTP client fits its retries and timeouts into, and a backend that ignores it is cut off shortly
    after. A call that runs out of time stops the run with `max_seconds` (finalize delivers the best
    candidate so far); a failing one with `backend_error`.
    """
    t0 = time.perf_counter()
    settings = _settings(runtime)
    iteration = state.get("iteration", 0) + 1
    the_plan = state["plan"]
    actions = state.get("actions", [])
    action: Action | None = actions[-1] if actions else None
    seed = _current_seed(state)
    max_seconds = _brief(state).budget.max_seconds
    store, prompt, backend = await asyncio.to_thread(_prepare, state["run_dir"], the_plan, action, iteration, settings)
    left = None if max_seconds is None else max_seconds - state.get("elapsed_s", 0.0) - (time.perf_counter() - t0)
    if left is not None and left <= 0:
        return await _out_of_time(store, settings, iteration, max_seconds, left, "no time was left", t0)
    scope: Deadline | None = None
    backstop: asyncio.Timeout | None = None
    try:
        label = "the time budget" + (f" (max_seconds {max_seconds:g})" if max_seconds is not None else "")
        with deadline(left, label) as scope:
            async with asyncio.timeout(None if left is None else left + BACKSTOP_GRACE_S) as backstop:
                draft = state.get("draft") if iteration == 1 else None
                made = [await asyncio.to_thread(from_draft, store, draft, settings.backend, seed)] if draft else \
                    await produce(action, backend=backend, store=store, plan=the_plan, seed=seed, prompt=prompt,
                                  references=state.get("references", []),
                                  candidates={c.id: c for c in state.get("candidates", [])},
                                  answer_retries=settings.answer_retries)
        candidates = [
            await asyncio.to_thread(_record, store, p.original or p.image, dict(
                id=f"c{iteration}" + ("" if k == 0 else chr(ord("a") + k)), iteration=iteration, backend=p.backend,
                seed=p.seed, plan_revision=the_plan.revision, strategy=action.strategy if action else "initial",
                parent_id=p.parent_id, plan_ref=state.get("plan_ref"), seconds=round(p.seconds, 4), cost=p.cost,
                meta=p.meta))
            for k, p in enumerate(made)]
    except TimeoutError:
        if backstop is None or not backstop.expired():
            raise
        why = f"the backend ignored the deadline and was cut off after {time.perf_counter() - t0:.1f} s"
        return await _out_of_time(store, settings, iteration, max_seconds, left, why, t0)
    except (BackendError, ImageInputError) as e:
        if scope is not None and (scope.hit or scope.expired):
            return await _out_of_time(store, settings, iteration, max_seconds, left, f"{type(e).__name__}: {e}", t0)
        message = redact(f"{settings.backend} backend failed on iteration {iteration}: {type(e).__name__}: {e}")
        await asyncio.to_thread(store.log_event, "backend_error", iteration=iteration, error=message)
        dt = time.perf_counter() - t0
        return {"status": "failed", "stop_reason": "backend_error", "error": message,
                "elapsed_s": dt, "timings": {"generate": dt}}
    backend_s = max(p.seconds for p in made)
    dt = time.perf_counter() - t0
    return {"candidates": candidates, "iteration": iteration, "cost_used": sum(p.cost for p in made),
            "elapsed_s": dt, "timings": {"backend": backend_s, "generate": dt - backend_s}}


async def _out_of_time(store: ArtifactStore, settings: PixloopConfig, iteration: int, max_seconds: float | None,
                       left: float | None, why: str, t0: float) -> dict[str, Any]:
    """The generate step's update when the time budget ran out during (or before) the backend call."""
    budget = f"max_seconds {max_seconds:g}" if max_seconds is not None else "its deadline"
    message = redact(f"{settings.backend} backend did not deliver iteration {iteration} within the time budget "
                     f"({budget}; {max(0.0, left or 0.0):.1f} s were left): {why}")
    await asyncio.to_thread(store.log_event, "out_of_time", iteration=iteration, error=message)
    dt = time.perf_counter() - t0
    return {"stop_reason": "max_seconds", "error": message, "elapsed_s": dt, "timings": {"generate": dt}}


def _prepare(run_dir: str, the_plan: Plan, action: Action | None, iteration: int,
             settings: PixloopConfig) -> tuple[ArtifactStore, str, Any]:
    return ArtifactStore.for_dir(run_dir), _prompt_for(the_plan, action, iteration), get_backend(settings.backend, settings)


def _record(store: ArtifactStore, image: Any, fields: dict[str, Any]) -> Candidate:
    """Store the image (a provider's signed file as its bytes, unchanged), give it a friendly name and log the
    event; returns the validated Candidate."""
    if isinstance(image, bytes):
        ref = store.put_bytes(image, *decode_image_bytes(image, label="provider image").size)
    else:
        image = image if image.mode in ("RGB", "RGBA") else image.convert("RGB")
        ref = store.put_image(image)
    candidate = Candidate.model_validate({**fields, "image": ref})
    _link_candidate(store, candidate)
    store.log_event("generate", iteration=candidate.iteration, candidate=candidate.id, image=ref.sha256,
                    seed=candidate.seed, strategy=candidate.strategy, seconds=candidate.seconds)
    return candidate


def _prompt_for(the_plan: Plan, action: Action | None, iteration: int) -> str:
    """The backend prompt for this iteration (the correction template is a file, read on first use)."""
    prompt = generation_prompt(the_plan)
    if action is not None:
        prompt = render("correction", prompt=prompt, iteration=iteration,
                        feedback="\n".join(f"- {f}" for f in action.feedback))
    return prompt


def _link_candidate(store: ArtifactStore, candidate: Candidate) -> None:
    """A human-friendly name for each candidate (hard link into the content store)."""
    dest = store.root / "candidates" / f"{candidate.iteration:02d}-{candidate.id}{Path(candidate.image.path).suffix}"
    dest.parent.mkdir(exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        dest.hardlink_to(store.path(candidate.image))
    except OSError:
        shutil.copyfile(store.path(candidate.image), dest)


def dispatch_checks(state: LoopState) -> list[Send] | Literal["judge", "finalize"]:
    """One parallel branch per enabled critic; straight to finalize when generate failed or stopped the run
    (a backend failure, or the time budget ran out during the call)."""
    if state.get("status") == "failed" or state.get("stop_reason"):
        return "finalize"
    fresh = [c for c in state["candidates"] if c.iteration == state["iteration"]]
    names = [n for n, spec in state["plan"].checks.items() if spec.enabled]
    if not names:
        return "judge"
    return [
        Send("check", CriticTask(critic=n, candidate_id=c.id, image=c.image, plan_ref=state["plan_ref"],
                                 run_dir=state["run_dir"]))
        for c in fresh for n in names
    ]


@lru_cache(maxsize=32)
def _load_plan(run_dir: str, plan_ref: str) -> Plan:
    return Plan.model_validate(ArtifactStore.for_dir(run_dir).load_document(plan_ref))


def _compact(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence as it goes into checkpoints: no empty values, no profiling timings."""
    return {k: v for k, v in evidence.items() if v not in (None, [], {}, "") and k != "timings_ms"}


def run_critic(task: CriticTask) -> dict[str, Any]:
    """The `check` step: run one critic on one candidate; a crashing critic becomes a failing verdict."""
    t0 = time.perf_counter()
    name, candidate_id = task["critic"], task["candidate_id"]
    store = ArtifactStore.for_dir(task["run_dir"])
    the_plan = _load_plan(task["run_dir"], task["plan_ref"])
    threshold = the_plan.checks[name].threshold
    try:
        image = store.open(task["image"])
        verdict = get_critic(name).check(
            image, the_plan, CheckContext(candidate_id=candidate_id, store=store,
                                     references=[s.reference for s in the_plan.subjects],
                                     original=the_plan.source, mask=the_plan.mask))
        verdict = verdict.model_copy(update={"seconds": round(time.perf_counter() - t0, 4),
                                             "evidence": _compact(verdict.evidence)})
    except CriticUnavailable as e:  # its engine or endpoint cannot run: nothing verified, nothing failed
        verdict = Verdict.unavailable(name, candidate_id, threshold, redact(str(e)), round(time.perf_counter() - t0, 4))
    except Exception as e:  # noqa: BLE001 - a critic bug must not kill the run
        verdict = Verdict(critic=name, candidate_id=candidate_id, score=0.0, passed=False, threshold=threshold,
                          feedback=f"{name} critic failed: {e}", error=f"{type(e).__name__}: {e}",
                          seconds=round(time.perf_counter() - t0, 4))
    store.log_event("check", candidate=candidate_id, critic=name, status=verdict.status,
                    score=round(verdict.score, 4), passed=verdict.passed, threshold=verdict.threshold,
                    feedback=verdict.feedback)
    return {"verdicts": [verdict]}


def judge(state: LoopState, runtime: Runtime[PixloopConfig]) -> dict[str, Any]:
    """Join the critics: pick this iteration's best, keep the best so far, decide whether (and why) to stop."""
    t0 = time.perf_counter()
    settings = _settings(runtime)
    budget = _brief(state).budget
    fresh = [c for c in state["candidates"] if c.iteration == state["iteration"]]
    ranks = {c.id: selection.rank(_verdicts_for(state, c.id)) for c in fresh}
    current = max(fresh, key=lambda c: ranks[c.id].key())
    verdicts = _verdicts_for(state, current.id)
    critics_wall = max((v.seconds for c in fresh for v in _verdicts_for(state, c.id)), default=0.0)
    best_id = state.get("best_id")
    best_rank = selection.rank(_verdicts_for(state, best_id)) if best_id else None
    improved = selection.is_better(ranks[current.id], best_rank)
    if improved:
        best_id = current.id
    stale = 0 if improved else state.get("stale_rounds", 0) + 1
    passed = all(v.passed for v in verdicts if v.checked)  # an unavailable critic neither passes nor fails
    store = ArtifactStore.for_dir(state["run_dir"])
    refusal = _screen_fresh(store, settings, fresh, state)  # before the stop rule: its time is this round's
    elapsed = state.get("elapsed_s", 0.0) + critics_wall + (time.perf_counter() - t0)
    longest = max(state.get("longest_round_s", 0.0), elapsed - state.get("round_mark_s", 0.0))
    reason = stop_reason(passed=passed, iteration=state["iteration"], elapsed_s=elapsed, longest_round_s=longest,
                         cost_used=state.get("cost_used", 0.0),
                         cost_next=get_backend(settings.backend, settings).capabilities.cost_per_image,
                         stale_rounds=stale, budget=budget)
    if refusal is not None:  # never delivered: the run ends refused, naming the rule
        reason = "policy"
    store.log_event("judge", candidate=current.id, passed=passed, best=best_id, stop_reason=reason,
                    regressions=sorted(selection.regressions(ranks[current.id], best_rank)) if best_rank else [])
    dt = time.perf_counter() - t0
    update = {"best_id": best_id, "current_id": current.id, "stale_rounds": stale, "stop_reason": reason,
              "round_mark_s": elapsed, "longest_round_s": longest, "elapsed_s": critics_wall + dt,
              "timings": {"critics": critics_wall, "judge": dt}}
    return {**update, "error": refusal} if refusal is not None else update


def _screen_fresh(store: ArtifactStore, settings: PixloopConfig, fresh: list[Candidate],
                  state: LoopState) -> str | None:
    """The policy message of the first fresh candidate the content policy refuses (its read text or its
    pixels), else None; every decision is an audit event."""
    policy = policy_for(settings.policy)
    for c in fresh:
        decision = screen_candidate(policy, store.open(c.image), _verdicts_for(state, c.id))
        store.log_event("policy", stage="candidate", candidate=c.id, allowed=decision.allowed,
                        verified=decision.verified, rule=decision.rule_id, category=decision.category,
                        message=decision.message if not decision.allowed or not decision.verified else None)
        if not decision.allowed:
            return f"candidate {c.id}: {decision.message}"
    return None


def route_after_judge(state: LoopState) -> Literal["correct", "finalize"]:
    return "finalize" if state.get("stop_reason") else "correct"


def route_after_correct(state: LoopState) -> Literal["generate", "finalize"]:
    return "finalize" if state.get("status") == "failed" else "generate"


def correct_node(state: LoopState, runtime: Runtime[PixloopConfig]) -> dict[str, Any]:
    """Turn the current candidate's failing verdicts into an action and the next plan revision."""
    t0 = time.perf_counter()
    settings = _settings(runtime)
    by_id = {c.id: c for c in state["candidates"]}
    current = by_id[state.get("current_id") or state["candidates"][-1].id]
    best = by_id.get(state.get("best_id") or "")
    enabled = frozenset(settings.strategies) if settings.strategies is not None else frozenset(STRATEGIES)
    capabilities = get_backend(settings.backend, settings).capabilities
    max_drafts = drafts_affordable(_brief(state).budget, state.get("cost_used", 0.0), capabilities.cost_per_image)
    ctx = CorrectionContext(
        plan=state["plan"], current=current, verdicts=_verdicts_for(state, current.id),
        history=state.get("actions", []), iteration=state["iteration"] + 1,
        capabilities=capabilities, best=best, max_drafts=max_drafts,
        best_verdicts=_verdicts_for(state, best.id) if best else [], enabled=enabled)
    action = correct(ctx)
    store = ArtifactStore.for_dir(state["run_dir"])
    base_plan = state["plan"]
    if action.strategy == "restart_from_best" and best is not None and best.plan_ref:
        base_plan = _load_plan(state["run_dir"], best.plan_ref).model_copy(update={"revision": state["plan"].revision})
    new_plan = apply_action(base_plan, action)
    store.log_event("correct", strategy=action.strategy, reason=action.reason, addresses=action.addresses,
                    style=action.style, seed=action.seed, base=action.base_candidate_id,
                    regions=[b.as_tuple() for b in action.regions], drafts=action.drafts)
    plan_ref = store.put_document(new_plan.model_dump(mode="json"), "plans")
    dt = time.perf_counter() - t0
    return {"actions": [action], "plan": new_plan, "plan_ref": plan_ref, "elapsed_s": dt, "timings": {"correct": dt}}


def _thread_id() -> str | None:
    """The thread of the graph run this step belongs to (the watermark names it), or None outside one."""
    try:
        return thread_of(get_config())
    except RuntimeError:
        return None


def final_status(reason: StopReason | None, best: Candidate | None) -> Status:
    """The honest status of a run that stopped: passed only when the stop rule says so; failed when there is
    nothing to deliver or the input or pixloop itself failed; otherwise the best candidate is delivered below
    threshold (a budget ran out, or a later iteration's backend call failed after a candidate was made)."""
    if reason == "passed":
        return "passed"
    if reason == "policy":
        return "refused"
    if best is None or reason in ("bad_input", "internal_error"):
        return "failed"
    return "below_threshold"


def finalize(state: LoopState, runtime: Runtime[PixloopConfig]) -> dict[str, Any]:
    """Return the best candidate with an honest status; deliver final.png (watermark, metadata and, when asked,
    Content Credentials: `agent.loop.delivery`) and write report.json."""
    settings = _settings(runtime)
    store = ArtifactStore.for_dir(state["run_dir"])
    by_id = {c.id: c for c in state.get("candidates", [])}
    best = by_id.get(state.get("best_id") or "")
    reason = state.get("stop_reason")
    status = final_status(reason, best)
    plan_ = state.get("plan")
    requirements = assess(plan_.requirements, _verdicts_for(state, best.id) if best else []) if plan_ else []
    if status == "passed" and settings.strict and unverified(requirements):
        status, reason = "below_threshold", "unverified"  # strict: passed may not leave anything unchecked
    if status == "refused":
        best = None  # a run the policy refused delivers nothing, not even an earlier candidate
    if best is not None:
        edit_source = plan_.source if plan_ is not None and plan_.edit is not None else None
        deliver(store, best.image, f"final{Path(best.image.path).suffix}", config=settings, edit_source=edit_source,
                run_id=_thread_id() or Path(state["run_dir"]).name, references=state.get("references", []))
    if plan_ is not None and plan_.mask is not None and plan_.edit is not None:
        store.copy_to(plan_.mask, "mask.png")  # the edit's mask, derived or given, next to the result
        if plan_.edit.preview is not None:
            store.copy_to(plan_.edit.preview, "mask-preview.png")
    update = {"status": status, "final": best, "stop_reason": reason, "requirements": requirements}
    report = build_report({**state, **update}, settings)
    store.put_json("report.json", report)
    try:  # the visual report illustrates report.json; failing to draw it never fails the run
        write_report_html(store.root, report)
    except Exception as e:  # noqa: BLE001
        store.log_event("report_html_error", error=f"{type(e).__name__}: {e}"[:300])
    store.log_event("finalize", status=status, stop_reason=reason, final=best.id if best else None)
    return update
