"""Library API: `generate` / `agenerate` run the loop with a checkpointer (the run folder's SQLite file, or the
PostgreSQL database of `PixloopConfig.checkpointer`); `resume` continues one.

The CLI is a thin layer over these functions, so a pipeline gets the same behaviour
from Python as from the shell.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.backends import get_backend
from agent.interfaces.run_folder import (
    CHECKPOINT_DB,
    RUN_FILE,
    IfExists,
    choose_run_dir,
    clear_run,
    holds_run,
    resumable,
    run_in,
    saved_checkpointer,
)
from agent.loop.planning import planner_names
from agent.models import Brief, PixloopConfig, Requirement, Status, StopReason, public_config
from agent.models.brief import is_data_url
from agent.models.errors import BriefError, ImageInputError, RunFolderError, UnknownBackendError, UnknownCriticError
from agent.models.validation import format_validation_error
from agent.runtime.checkpoint import open_checkpointer
from agent.runtime.checkpoint_postgres import CHECKPOINTER_ENV, check_checkpointer
from agent.runtime.images import check_references, validate_image_file
from agent.runtime.lock import RunLock, refuse_if_in_use
from agent.runtime.paths import check_thread_id
from agent.runtime.secrets import mask_url
from agent.runtime.store import ArtifactStore
from critics import check_names

EventHandler = Callable[[str, dict[str, Any]], None]
T = TypeVar("T")


FAILURE_EXIT_CODES: dict[StopReason | None, int] = {"bad_input": 2, "internal_error": 1}
"""A failed run exits 4 (backend, planner, or a budget spent before any image), except for these."""


def exit_code(status: Status, stop_reason: StopReason | None) -> int:
    """0 passed, 3 below threshold (the best image is still written), 5 refused by the content policy (nothing is
    delivered), and for a failed run 2 bad input, 1 an internal error, 4 otherwise (the backend or the planner
    failed, or nothing could be made in time)."""
    if status == "passed":
        return 0
    if status == "below_threshold":
        return 3
    if status == "refused":
        return 5
    if status == "failed":
        return FAILURE_EXIT_CODES.get(stop_reason, 4)
    return 1


class RunResult(BaseModel):
    """What a run produced: status, stop reason, the final image and the full report."""

    thread_id: str
    run_dir: Path
    status: Status
    stop_reason: StopReason | None
    final_image: Path | None
    iterations: int
    report: dict[str, Any]
    error: str | None = None
    requirements: list[Requirement] = []
    """Each requirement of the brief, the critic that verified it, and its status (passed/failed/unverified)."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def unverified(self) -> list[Requirement]:
        """The requirements no critic verified (`passed` says nothing about these)."""
        return [r for r in self.requirements if r.status == "unverified"]

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for this result (see EXIT_CODES)."""
        return exit_code(self.status, self.stop_reason)


def make_brief(prompt: str, *, references: Iterable[str | Path] = (), required_text: Iterable[str] = (),
               aspect: str | None = None, size: str | None = None, thresholds: dict[str, float] | None = None,
               critics: Iterable[str] = (), seed: int = 0, max_iterations: int | None = None,
               max_seconds: float | None = None, max_cost: float | None = None, patience: int | None = None,
               source: str | Path | None = None, mask: str | Path | None = None,
               region: Iterable[int] | None = None, keep: str | None = None,
               sketch: str | Path | None = None) -> Brief:
    """Build and validate a Brief (reference, source and mask files included); raises BriefError naming the bad
    field. With a `source` the brief is an edit and the prompt its instruction."""
    budget = {k: v for k, v in {"max_iterations": max_iterations, "max_seconds": max_seconds,
                                "max_cost": max_cost, "patience": patience}.items() if v is not None}
    edit: dict[str, Any] = {k: v for k, v in {
        "source": _image_source(source), "mask": _image_source(mask),
        "region": tuple(region) if region is not None else None, "keep": keep,
        "sketch": _image_source(sketch)}.items() if v is not None}
    try:
        brief = Brief(prompt=prompt, references=[_image_source(r) for r in references],
                      required_text=list(required_text),
                      aspect_ratio=aspect, size=size, thresholds=thresholds or {}, critics=list(critics), seed=seed,
                      budget=budget, **edit)
    except ValidationError as e:
        raise BriefError(format_validation_error(e)) from None
    try:
        check_references([r for r in brief.references if not is_data_url(r)])
    except ImageInputError as e:
        raise BriefError(f"references: {e}") from None
    for name in ("source", "mask", "sketch"):
        value = getattr(brief, name)
        if value is not None and not value.startswith("data:"):
            try:
                validate_image_file(value)
            except ImageInputError as e:
                raise BriefError(f"{name}: {e}") from None
    return brief


def _image_source(value: str | Path | None) -> str | None:
    """An image argument as the Brief takes it: a data URL stays the string it is (a Path would fold the `//`
    its base64 may hold), anything else is a file path."""
    if value is None:
        return None
    return value if isinstance(value, str) and is_data_url(value) else str(Path(value))


def preflight(brief: Brief, config: PixloopConfig) -> None:
    """Checks that need the registries: backend exists, critics exist, the budget affords one image; and that the
    checkpointer is a PostgreSQL URL if there is one."""
    check_checkpointer(config.checkpointer)
    try:
        backend = get_backend(config.backend, config)
    except (UnknownBackendError, ValueError) as e:
        raise BriefError(str(e)) from None
    if config.planner not in planner_names():
        raise BriefError(f"unknown planner {config.planner!r}; known planners: {', '.join(planner_names())}")
    if config.planner == "llm" and not (config.llm_base_url and config.llm_model):
        raise BriefError("the llm planner needs --llm-base-url and --llm-model (an OpenAI-compatible chat endpoint)")
    try:
        check_names(brief.thresholds, "thresholds")
        check_names(brief.critics, "critics")
        if config.critics is not None:
            check_names(config.critics, "critics")
    except UnknownCriticError as e:
        raise BriefError(str(e)) from None
    cost = backend.capabilities.cost_per_image
    if brief.budget.max_cost is not None and brief.budget.max_cost < cost:
        raise BriefError(f"budget.max_cost {brief.budget.max_cost} is below the cost of one image "
                         f"on {config.backend} ({cost})")


def new_thread_id() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@asynccontextmanager
async def open_graph(run_dir: Path, checkpointer: str | None = None, *,
                     writer: str | None = None) -> AsyncIterator[Any]:
    """The pixloop graph compiled with the run's checkpointer: the run folder's SQLite file, or the PostgreSQL
    database `checkpointer` names (with `writer`, a thread id, this process holds that thread's lock there)."""
    from graphs.pixloop import build_pixloop_graph

    run_dir.mkdir(parents=True, exist_ok=True)
    async with open_checkpointer(checkpointer, run_dir, writer=writer) as saver:
        yield build_pixloop_graph(checkpointer=saver)


@asynccontextmanager
async def new_run_checkpointer(run_dir: Path, thread_id: str, config: PixloopConfig,
                               record: dict[str, Any]) -> AsyncIterator[Any]:
    """The checkpointer of a new run in `run_dir`, whose RunLock the caller holds: the run the folder held before
    (if_exists="overwrite") is removed and run.json (`record`) written. With PostgreSQL this process holds the
    thread's lock there, and the thread must be new there too (or the overwritten run's own, then deleted)."""
    held = holds_run(run_dir)
    url = config.checkpointer
    if held and url is None:
        clear_run(run_dir)  # before its SQLite file is opened again
    async with open_checkpointer(url, run_dir, writer=thread_id) as saver:
        if url is not None:
            same = held and run_in(run_dir) == thread_id and saved_checkpointer(run_dir) == mask_url(url)
            await claim_thread(saver, thread_id, url, replace=same)
            if held:
                clear_run(run_dir)
        (run_dir / RUN_FILE).write_text(json.dumps(record, indent=2, allow_nan=False))
        yield saver


async def claim_thread(saver: Any, thread_id: str, url: str, *, replace: bool) -> None:
    """A new run's thread in a shared database: refused when another run has it (RunFolderError), its checkpoints
    deleted when `replace` (the run it overwrites in its own folder)."""
    if await saver.aget_tuple({"configurable": {"thread_id": thread_id}}) is None:
        return
    if replace:
        await saver.adelete_thread(thread_id)
        return
    raise RunFolderError(f"run {thread_id!r} already has checkpoints in {mask_url(url)}: continue it with "
                         f"`--resume {thread_id} --out ITS_FOLDER --checkpointer URL`, or give another --thread-id")


def resume_checkpointer(config: PixloopConfig, given: str | None) -> PixloopConfig:
    """Where a resumed run's checkpoints are: its folder's SQLite file when it was started without a checkpointer;
    else `given`, then $PIXLOOP_CHECKPOINTER, then run.json's URL when it had no credentials to mask."""
    if config.checkpointer is None:
        if given:
            raise BriefError(f"the run keeps its checkpoints in its folder's {CHECKPOINT_DB}, not in "
                             f"{mask_url(given)}: resume it without --checkpointer")
        return config
    check_checkpointer(given)
    try:
        return restore_endpoints(config, checkpointer=given or os.environ.get(CHECKPOINTER_ENV) or None)
    except BriefError as e:
        raise BriefError(f"{e} (or set {CHECKPOINTER_ENV})") from None


async def _drive(graph: Any, inputs: Any, thread_id: str, config: PixloopConfig,
                 on_event: EventHandler | None) -> dict[str, Any]:
    cfg = {"configurable": {"thread_id": thread_id}, "recursion_limit": 10_000}
    async for chunk in graph.astream(inputs, cfg, context=config, stream_mode="updates", durability="sync"):
        for node, update in chunk.items():
            if on_event is not None and not node.startswith("__"):
                on_event(node, update or {})
    snapshot = await graph.aget_state(cfg)
    return dict(snapshot.values)


def _result(thread_id: str, run_dir: Path, values: dict[str, Any]) -> RunResult:
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    final = values.get("final")
    final_path = run_dir / f"final{Path(final.image.path).suffix}" if final else None
    return RunResult(thread_id=thread_id, run_dir=run_dir, status=values.get("status", "running"),
                     stop_reason=values.get("stop_reason"), final_image=final_path,
                     iterations=values.get("iteration", 0), report=report, error=values.get("error"),
                     requirements=values.get("requirements") or [])


async def arun(brief: Brief, config: PixloopConfig | None = None, *, out: str | Path | None = None,
               thread_id: str | None = None, on_event: EventHandler | None = None,
               if_exists: IfExists = "refuse") -> RunResult:
    """Run the loop for a validated Brief, as the only writer of its run folder.

    A folder that already holds a run is refused unless `if_exists` is "new" (a sub-folder named after the
    thread) or "overwrite" (that run's files are removed first)."""
    from graphs.pixloop import build_pixloop_graph

    config = config or PixloopConfig()
    preflight(brief, config)
    thread_id = thread_id or new_thread_id()
    run_dir = choose_run_dir(out, config.out_root, thread_id, if_exists)
    record = {"thread_id": thread_id, "config": public_config(config, mask_url), "brief": brief.model_dump(mode="json")}
    with RunLock(run_dir, thread_id) as lock:  # if_exists="overwrite" clears the folder once no other process writes it
        async with new_run_checkpointer(run_dir, thread_id, config, record) as saver:
            note_stale_lock(run_dir, lock)
            graph = build_pixloop_graph(checkpointer=saver)
            values = await _drive(graph, {"brief": brief, "run_dir": str(run_dir)}, thread_id, config, on_event)
    return _result(thread_id, run_dir, values)


def find_run_dir(thread_id: str, out: str | Path | None = None, out_root: str = "pixloop-out") -> Path:
    check_thread_id(thread_id, "--resume")
    run_dir = Path(out) if out else Path(out_root) / thread_id
    if not resumable(run_dir):
        refuse_if_in_use(run_dir)  # a run that has just started has its lock before its first checkpoint
        raise BriefError(f"no checkpointed run {thread_id!r} in {run_dir} (pass --out with the run's folder)")
    return run_dir


async def aresume(thread_id: str, out: str | Path | None = None, *, on_event: EventHandler | None = None,
                  base_url: str | None = None, llm_base_url: str | None = None,
                  checkpointer: str | None = None) -> RunResult:
    """Continue a run from its last checkpoint; finished candidates are reused, not regenerated. A run another
    process is still writing is refused (RunFolderError); a lock left by a killed process is taken over. A run
    checkpointed in PostgreSQL is read from `checkpointer`, else $PIXLOOP_CHECKPOINTER, else run.json's URL (when
    it had no password, which is never saved)."""
    run_dir = find_run_dir(thread_id, out)
    with RunLock(run_dir, thread_id) as lock:
        try:
            saved = json.loads((run_dir / RUN_FILE).read_text())
        except (OSError, ValueError) as e:
            raise BriefError(f"{run_dir / RUN_FILE} cannot be read ({e}); the run cannot be resumed") from None
        if saved.get("thread_id") != thread_id:
            raise BriefError(f"{run_dir} holds run {saved.get('thread_id')!r}, not {thread_id!r}")
        if saved.get("kind") == "document":
            raise BriefError(f"{run_dir} holds a document ({thread_id!r}): resume it with `pixloop story --resume "
                             f"{thread_id}` (or `aresume_story`)")
        config = PixloopConfig.model_validate(saved["config"])
        # secret options are never saved: a resumed run gets them from the environment (e.g. A1111_AUTH)
        config.options = {k: v for k, v in config.options.items() if v != "***"}
        config = restore_endpoints(config, base_url=base_url, llm_base_url=llm_base_url)
        config = resume_checkpointer(config, checkpointer)
        async with open_graph(run_dir, config.checkpointer, writer=thread_id) as graph:
            note_stale_lock(run_dir, lock)
            cfg = {"configurable": {"thread_id": thread_id}}
            snapshot = await graph.aget_state(cfg)
            if not snapshot.values:
                where = f" in {mask_url(config.checkpointer)}" if config.checkpointer else ""
                raise BriefError(f"run {thread_id!r} has no checkpoint yet{where}; start it again instead")
            values = dict(snapshot.values)
            if snapshot.next:
                values = await _drive(graph, None, thread_id, config, on_event)
    return _result(thread_id, run_dir, values)


def restore_endpoints(config: PixloopConfig, **given: str | None) -> PixloopConfig:
    """Endpoints given again on resume replace the saved ones; a saved one whose credentials were masked
    (they are never written) must be given again."""
    update = {}
    for field, value in given.items():
        saved = getattr(config, field)
        if value is not None:
            update[field] = value
        elif saved and "***" in saved:
            flag = "--" + field.replace("_", "-")
            raise BriefError(f"the run's {field} had credentials in it, which are never saved: resume with "
                             f"{flag} again")
    return config.model_copy(update=update)


def note_stale_lock(run_dir: Path, lock: RunLock) -> None:
    """Record in the run's events that this process took over the lock of one that died."""
    if lock.previous:
        ArtifactStore.for_dir(run_dir).log_event("lock_taken_over", stale=lock.previous)


async def agenerate(prompt: str, *, references: Iterable[str | Path] = (), required_text: Iterable[str] = (),
                    aspect: str | None = None, size: str | None = None, backend: str = "compose",
                    max_iterations: int | None = None, max_seconds: float | None = None,
                    max_cost: float | None = None, patience: int | None = None,
                    thresholds: dict[str, float] | None = None, critics: Iterable[str] = (), seed: int = 0,
                    out: str | Path | None = None, sketch: str | Path | None = None,
                    thread_id: str | None = None, config: PixloopConfig | None = None,
                    on_event: EventHandler | None = None, if_exists: IfExists = "refuse") -> RunResult:
    """Plan, generate, check and correct an image; returns the best candidate and its report.

    With a `sketch` (a drawing or wireframe) the layout follows its boxes and the structure critic checks it.
    Raises BriefError for invalid input. A backend failure returns status 'failed'.
    """
    brief = make_brief(prompt, references=references, required_text=required_text, aspect=aspect, size=size,
                       thresholds=thresholds, critics=critics, seed=seed, max_iterations=max_iterations,
                       max_seconds=max_seconds, max_cost=max_cost, patience=patience, sketch=sketch)
    config = config or PixloopConfig(backend=backend)
    return await arun(brief, config, out=out, thread_id=thread_id, on_event=on_event, if_exists=if_exists)


async def aedit(source: str | Path, instruction: str, *, mask: str | Path | None = None,
                region: Iterable[int] | None = None, keep: str | None = None,
                references: Iterable[str | Path] = (), backend: str = "compose",
                max_iterations: int | None = None, max_seconds: float | None = None, max_cost: float | None = None,
                patience: int | None = None, thresholds: dict[str, float] | None = None,
                critics: Iterable[str] = (), seed: int = 0, out: str | Path | None = None,
                thread_id: str | None = None, config: PixloopConfig | None = None,
                on_event: EventHandler | None = None, if_exists: IfExists = "refuse") -> RunResult:
    """Edit `source` as `instruction` says, changing only where intended, and check it: outside the mask nothing
    changed (preservation), every person of the source keeps their identity (face), the size and aspect held
    (spec). Where may change: `mask` (white = may change), `region` (x, y, width, height in pixels) or `keep`
    (subject, person, product, text: everything else may change); with none, the planner derives a mask from the
    instruction, saved as mask.png (and mask-preview.png) in the run folder. Raises BriefError for bad input."""
    brief = make_brief(instruction, references=references, thresholds=thresholds, critics=critics, seed=seed,
                       max_iterations=max_iterations, max_seconds=max_seconds, max_cost=max_cost,
                       patience=patience, source=source, mask=mask, region=region, keep=keep)
    config = config or PixloopConfig(backend=backend)
    return await arun(brief, config, out=out, thread_id=thread_id, on_event=on_event, if_exists=if_exists)


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, also where an event loop is already running in this
    thread (Jupyter, an async web handler calling the sync API): there it runs on its own loop in a worker
    thread, since `asyncio.run` would raise RuntimeError."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pixloop-sync") as pool:
        return pool.submit(asyncio.run, coro).result()


def edit(source: str | Path, instruction: str, **kwargs: Any) -> RunResult:
    """Synchronous `aedit` (same arguments); works inside a running event loop too (Jupyter)."""
    return run_blocking(aedit(source, instruction, **kwargs))


def generate(prompt: str, **kwargs: Any) -> RunResult:
    """Synchronous `agenerate` (same arguments); works inside a running event loop too (Jupyter)."""
    return run_blocking(agenerate(prompt, **kwargs))


def resume(thread_id: str, out: str | Path | None = None, **kwargs: Any) -> RunResult:
    """Synchronous `aresume`; works inside a running event loop too (Jupyter)."""
    return run_blocking(aresume(thread_id, out, **kwargs))
