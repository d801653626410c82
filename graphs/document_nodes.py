"""The document graph's nodes: plan the document, render each image with the pixloop loop as a subgraph,
collect (anchor the sheet, rewrite the story), check consistency across images, finalize.

Every node tells the reader what happened as a typed event (`agent.models.document`), sent with LangGraph's
stream writer (`stream_mode="custom"`) and logged to the document's events.jsonl. Images render as parallel
`Send` tasks; a per-document semaphore bounds how many loops run at once, so the bound holds whoever drives
the graph (the library, the CLI, `langgraph dev`).

The single place where every document image passes before it is accepted is `accept_image` (content policy
and provenance steps belong there).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import Send

from agent.loop.document.consistency import check_document
from agent.loop.document.planning import appearances, document_status, image_brief, ready_to_render, to_regenerate
from agent.loop.document.render import write_story
from agent.loop.document.report import document_report
from agent.loop.document.sheet import anchor_sheet, build_sheet, style_from_images, with_palette
from agent.loop.document.state import DocumentState, ImageTask
from agent.loop.policy.screen import policy_for
from agent.models import ImageOutcome, PixloopConfig, StopReason
from agent.models.document import (
    ConsistencyEvent,
    ConsistencyReport,
    CorrectionEvent,
    DocumentBrief,
    DoneEvent,
    ImageReadyEvent,
    ImageStartedEvent,
    TextEvent,
)
from agent.models.errors import InputError, PlanningError, ServiceError
from agent.runtime.confine import Confinement
from agent.runtime.secrets import redact
from agent.runtime.store import ArtifactStore, write_atomic
from graphs.document_intake import document_dir, take_in_document
from graphs.intake import thread_of
from graphs.pixloop import build_pixloop_graph

_SLOTS: dict[tuple[str, int], asyncio.Semaphore] = {}
_LIVE = threading.Lock()
_LAST_T: dict[str, float] = {}
_CLOCK = threading.Lock()


def _settings(runtime: Runtime[PixloopConfig] | None) -> PixloopConfig:
    ctx = runtime.context if runtime is not None else None
    if ctx is None:
        return PixloopConfig()
    return ctx if isinstance(ctx, PixloopConfig) else PixloopConfig.model_validate(dict(ctx))


def emitter(run_dir: str, started: float) -> Any:
    """A function that stamps an event with `t`, streams it (custom mode) and logs it to events.jsonl."""
    try:
        write = get_stream_writer()
    except RuntimeError:  # outside a graph run (a unit test calling a node)
        def write(_: Any) -> None:
            return None
    key = str(Path(run_dir))
    stores: list[ArtifactStore] = []

    def emit(event: Any) -> None:
        with _CLOCK:  # strictly increasing t per document, whichever task or thread emits
            t = max(round(time.time() - started, 6), _LAST_T.get(key, -1.0) + 1e-6)
            _LAST_T[key] = t
        event = event.model_copy(update={"t": round(t, 6)})
        data = event.model_dump(mode="json")
        write(data)
        if not stores:
            stores.append(ArtifactStore.for_dir(run_dir))
        stores[0].log_event(f"doc_{data['event']}", **{k: v for k, v in data.items() if k != "event"})
    return emit


def async_emitter(run_dir: str, started: float) -> Any:
    """`emitter` for async nodes: the file append runs in a worker thread, never on the event loop."""
    emit = emitter(run_dir, started)

    async def aemit(event: Any) -> None:
        await asyncio.to_thread(emit, event)
    return aemit


async def plan_document(state: DocumentState, config: RunnableConfig, runtime: Runtime[PixloopConfig], *,
                        confinement: Confinement | None = None) -> dict[str, Any]:
    """Read the document (script, brief, topic or interleaved stream), store the characters' references on the
    sheet, and send every section's text to the reader before any image is made."""
    started = time.time()
    settings = _settings(runtime)
    try:
        run_dir = await asyncio.to_thread(document_dir, dict(state), config, settings, confinement)
    except InputError as e:
        run_dir = str(confinement.default_run_dir(thread_of(config))) if confinement else "pixloop-out/invalid"
        return _failed(run_dir, started, "bad_input", str(e))
    emit = async_emitter(run_dir, started)
    try:
        intake = await take_in_document(dict(state), config, settings, confinement, emit)
        store = await asyncio.to_thread(ArtifactStore.for_dir, run_dir)
        sheet = await asyncio.to_thread(build_sheet, intake.doc, store, intake.references)
        if intake.drafts and not intake.doc.style:  # the model drew in its own style: name it, corrections keep it
            drafts = [Path(run_dir) / path for path in intake.drafts.values()]
            sheet = await asyncio.to_thread(style_from_images, sheet, drafts)
    except InputError as e:
        return _failed(run_dir, started, "bad_input", str(e))
    except PlanningError as e:
        return _failed(run_dir, started, "planning_error", str(e))
    except ServiceError as e:
        return _failed(run_dir, started, "backend_error", f"{type(e).__name__}: {e}")
    doc = intake.doc
    refusal = await asyncio.to_thread(_screen_text, doc, settings)
    if refusal is not None:
        return _failed(run_dir, started, "policy", refusal)
    if not intake.streamed:
        for section in doc.sections:
            await emit(TextEvent(section=section.id, title=section.title, text=section.text))
    await asyncio.to_thread(store.put_json, "document.json", doc.model_dump(mode="json"))
    return {"doc": doc, "sheet": sheet, "run_dir": run_dir, "started": started, "round": 1, "status": "running",
            "pending": [c.id for c in doc.images], "drafts": intake.drafts, "stop_reason": None, "error": None}


def _screen_text(doc: DocumentBrief, settings: PixloopConfig) -> str | None:
    """The document's own text through the content policy (each image's cue is screened by its loop)."""
    policy = policy_for(settings.policy)
    for section in doc.sections:
        decision = policy.check_text(f"{section.title}\n{section.text}", "prompt")
        if not decision.allowed:
            return f"section {section.id}: {decision.message}"
    return None


def _failed(run_dir: str, started: float, reason: Any, message: str) -> dict[str, Any]:
    return {"run_dir": run_dir, "started": started, "status": "refused" if reason == "policy" else "failed",
            "stop_reason": reason,
            "error": redact(message), "round": 0, "pending": []}


def _to_render(state: DocumentState) -> list[str]:
    outcomes = state.get("outcomes") or {}
    return [i for i in state.get("pending", []) if (o := outcomes.get(i)) is None or o.round < state["round"]]


def _over_budget(state: DocumentState) -> bool:
    cap = state["doc"].max_cost
    return cap is not None and state.get("cost_used", 0.0) >= cap


def route_images(state: DocumentState) -> list[Send] | Literal["consistency", "finalize_document"]:
    """Send the images that can render now, each to its own loop; none left: check consistency."""
    if state.get("status") in ("failed", "refused"):
        return "finalize_document"
    todo = _to_render(state)
    if not todo or _over_budget(state):
        return "consistency"
    doc, sheet, doc_dir = state["doc"], state["sheet"], Path(state["run_dir"])
    ready = ready_to_render(doc, sheet, todo, state.get("outcomes") or {})
    sections = {c.id: s.id for s in doc.sections for c in s.images}
    drafts = state.get("drafts") or {}
    sends = []
    for cue in ready or [c for c in doc.images if c.id in todo]:
        brief = image_brief(doc, cue, sheet, doc_dir, state["round"])
        if state["round"] == 1 and cue.id in drafts:
            brief = brief.model_copy(update={"draft": str(doc_dir / drafts[cue.id])})
        sends.append(Send("image", ImageTask(
            image=cue.id, section=sections[cue.id], round=state["round"], brief=brief, doc_dir=str(doc_dir),
            run_dir=str(doc_dir / "runs" / cue.id / f"r{state['round']}"), concurrency=doc.concurrency,
            started=state["started"])))
    return sends


def _slot(doc_dir: str, size: int) -> asyncio.Semaphore:
    key = (doc_dir, size)
    if key not in _SLOTS:
        _SLOTS[key] = asyncio.Semaphore(size)
    return _SLOTS[key]


async def render_image(task: ImageTask, config: RunnableConfig, runtime: Runtime[PixloopConfig]) -> dict[str, Any]:
    """One image: the pixloop loop as a subgraph (checkpointed in the document's checkpointer, so a killed
    document resumes each image where it was); its corrections are streamed as they happen. An unexpected error
    fails this image, not the document."""
    settings = _settings(runtime)
    emit = async_emitter(task["doc_dir"], task["started"])
    done = await asyncio.to_thread(finished_outcome, task)
    if done is not None:  # killed after the image was accepted, before the document's checkpoint: not made again
        await emit(_ready(task, done))
        return {"outcomes": {done.id: done}, "history": [done], "cost_used": done.cost}
    async with _slot(task["doc_dir"], task["concurrency"]):
        await emit(ImageStartedEvent(image=task["image"], section=task["section"], round=task["round"],
                               prompt=task["brief"].prompt))
        t0 = time.perf_counter()
        try:
            values = await _run_loop(task, config, settings, emit)
        except Exception as e:  # noqa: BLE001 - one image's failure is reported in the document
            values = {"status": "failed", "stop_reason": "internal_error",
                      "error": redact(f"the loop of image {task['image']} failed: {type(e).__name__}: {e}")}
        try:
            outcome = await asyncio.to_thread(accept_image, task, values, time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - e.g. its final image was changed on disk: this image fails
            outcome = ImageOutcome(id=task["image"], round=task["round"], status="failed",
                                   stop_reason="internal_error", run_dir=str(Path(task["run_dir"]).relative_to(
                                       task["doc_dir"])), error=redact(f"{type(e).__name__}: {e}"))
        await emit(_ready(task, outcome))
    return {"outcomes": {outcome.id: outcome}, "history": [outcome], "cost_used": outcome.cost}


def _ready(task: ImageTask, outcome: ImageOutcome) -> ImageReadyEvent:
    return ImageReadyEvent(image=task["image"], section=task["section"], round=task["round"], status=outcome.status,
                           iterations=outcome.iterations, verdicts=outcome.verdicts,
                           path=outcome.image.path if outcome.image else None)


def finished_outcome(task: ImageTask) -> ImageOutcome | None:
    """The outcome this task already accepted (its file is written before the task's result is checkpointed)."""
    path = Path(task["doc_dir"]) / "runs" / task["image"] / "outcome.json"
    if not path.is_file():
        return None
    try:
        outcome = ImageOutcome.model_validate_json(path.read_text())
    except ValueError:
        return None
    same_run = outcome.round == task["round"] and outcome.run_dir == str(Path(task["run_dir"]).relative_to(
        task["doc_dir"]))
    stored = outcome.image is None or (Path(task["doc_dir"]) / outcome.image.path).is_file()
    return outcome if same_run and stored else None


async def _run_loop(task: ImageTask, config: RunnableConfig, settings: PixloopConfig, emit: Any) -> dict[str, Any]:
    loop = build_pixloop_graph(name=f"image-{task['image']}")
    values: dict[str, Any] = {}
    async for mode, chunk in loop.astream({"brief": task["brief"], "run_dir": task["run_dir"]}, config,
                                          context=settings, stream_mode=["updates", "values"]):
        data: dict[str, Any] = chunk if isinstance(chunk, dict) else {}
        if mode == "values":
            values = dict(data)
            continue
        for action in (data.get("correct") or {}).get("actions") or []:
            await emit(CorrectionEvent(image=task["image"], round=task["round"], strategy=action.strategy,
                                 reason=action.reason))
    return values


def accept_image(task: ImageTask, values: dict[str, Any], seconds: float) -> ImageOutcome:
    """The one place every document image passes before the document takes it: the image its loop delivered (with
    that loop's provenance steps and policy checks) is copied into the document's store."""
    doc_store, run_store = ArtifactStore.for_dir(task["doc_dir"]), ArtifactStore.for_dir(task["run_dir"])
    final = values.get("final")
    image = None
    if final is not None:  # the image as its loop delivered it (watermark, metadata, credentials), byte for byte
        ref = final.image
        delivered = Path(task["run_dir"]) / f"final{Path(ref.path).suffix}"
        data = delivered.read_bytes() if delivered.is_file() else run_store.read_bytes(ref)
        image = doc_store.put_bytes(data, ref.width, ref.height, ref.mime)
    verdicts = [v for v in values.get("verdicts", []) if final is not None and v.candidate_id == final.id]
    outcome = ImageOutcome(
        id=task["image"], round=task["round"], status=values.get("status", "failed"),
        stop_reason=values.get("stop_reason"), iterations=len({c.iteration for c in values.get("candidates", [])}),
        image=image, run_dir=str(Path(task["run_dir"]).relative_to(task["doc_dir"])),
        verdicts={v.critic: v.passed for v in verdicts}, scores={v.critic: round(v.score, 3) for v in verdicts},
        requirements=values.get("requirements") or [], cost=sum(c.cost for c in values.get("candidates", [])),
        seconds=round(seconds, 3), error=values.get("error"))
    try:
        live_story(Path(task["doc_dir"]), outcome)
    except (OSError, ValueError) as e:  # the live story is a courtesy: the outcome goes on to the document anyway
        doc_store.log_event("story_rewrite_failed", image=outcome.id, error=redact(f"{type(e).__name__}: {e}"))
    return outcome


def live_story(doc_dir: Path, outcome: ImageOutcome) -> None:
    """Rewrite story.md/story.html the moment an image is ready (not only after its wave): each image leaves its
    outcome next to its run folders, and the story is drawn from all of them."""
    with _LIVE:  # one writer at a time: a reader never sees another image's outcome half-written
        write_atomic(doc_dir / "runs" / outcome.id / "outcome.json", outcome.model_dump_json().encode())
        doc = DocumentBrief.model_validate(json.loads((doc_dir / "document.json").read_text()))
        ready = {}
        for cue in doc.images:
            path = doc_dir / "runs" / cue.id / "outcome.json"
            if path.is_file():
                ready[cue.id] = ImageOutcome.model_validate_json(path.read_text())
        write_story(doc, ready, doc_dir, live=True)


def collect(state: DocumentState) -> dict[str, Any]:
    """After a wave of images: anchor characters without references on their first accepted image, and
    rewrite the story so a reader sees each section as it completes."""
    if state.get("status") in ("failed", "refused"):
        return {}
    outcomes = state.get("outcomes") or {}
    sheet = anchor_sheet(state["doc"], state["sheet"], outcomes, Path(state["run_dir"]))
    sheet = with_palette(sheet, [Path(state["run_dir"]) / o.image.path for o in outcomes.values() if o.image])
    write_story(state["doc"], state.get("outcomes") or {}, Path(state["run_dir"]), sheet=sheet, live=True)
    return {"sheet": sheet}


def consistency(state: DocumentState) -> dict[str, Any]:
    """Every character against the sheet and its other appearances, palette and style across images; the
    images that fail (or failed their own checks) are sent again in the next round, while rounds and budget
    last."""
    doc, outcomes, doc_dir = state["doc"], state.get("outcomes") or {}, Path(state["run_dir"])
    emit = emitter(state["run_dir"], state["started"])
    images = {i: doc_dir / o.image.path for i, o in outcomes.items() if o.image is not None}
    sheet_files = {e.name: [doc_dir / r.path for r in e.references] for e in state["sheet"].characters}
    report = check_document(appearances(doc), images, sheet_files, round=state["round"])
    failing, reasons = to_regenerate(doc, report, outcomes)
    again = bool(failing) and state["round"] < doc.max_rounds and not _over_budget(state)
    emit(ConsistencyEvent(round=state["round"], passed=report.passed, failing=report.failing,
                          reasons=report.reasons, regenerate=failing if again else []))
    update: dict[str, Any] = {"consistency": [report]}
    if again:
        update.update(round=state["round"] + 1, pending=failing)
        ArtifactStore.for_dir(state["run_dir"]).log_event("doc_regenerate", round=state["round"] + 1,
                                                           images=failing, reasons=reasons)
    else:
        update["pending"] = []
    return update


def route_after_consistency(state: DocumentState) -> list[Send] | Literal["finalize_document"]:
    if not state.get("pending"):
        return "finalize_document"
    sends = route_images(state)
    return sends if isinstance(sends, list) else "finalize_document"


def finalize_document(state: DocumentState) -> dict[str, Any]:
    """The document's verdict, story.md, story.html and report.json."""
    run_dir = state.get("run_dir") or "pixloop-out"
    emit = emitter(run_dir, state.get("started") or time.time())
    store = ArtifactStore.for_dir(run_dir)
    doc: DocumentBrief | None = state.get("doc")
    outcomes = state.get("outcomes") or {}
    reports: list[ConsistencyReport] = state.get("consistency") or []
    reason: StopReason | None
    if doc is None:
        status = "refused" if state.get("status") == "refused" else "failed"
        reason = state.get("stop_reason") or "bad_input"
        html = None
    else:
        status = document_status(doc, outcomes, reports[-1] if reports else None)
        reason = state.get("stop_reason") or ("max_cost" if _over_budget(state) and status != "passed" else None)
        _, html = write_story(doc, outcomes, Path(run_dir), consistency=reports[-1] if reports else None,
                              sheet=state.get("sheet"))
    final = {**state, "status": status, "stop_reason": reason}
    store.put_json("report.json", document_report(final))
    emit(DoneEvent(status=status, images=sum(1 for o in outcomes.values() if o.image), cost=state.get("cost_used", 0.0),
                   rounds=max(1, state.get("round") or 0), path=html.name if html else None))
    for key in [k for k in _SLOTS if k[0] == str(Path(run_dir))]:
        _SLOTS.pop(key, None)
    _LAST_T.pop(str(Path(run_dir)), None)  # a long-lived server keeps no per-document state past its end
    return {"status": status, "stop_reason": reason}


__all__ = ["accept_image", "collect", "consistency", "emitter", "finalize_document", "plan_document",
           "render_image", "route_after_consistency", "route_images"]
