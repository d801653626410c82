"""Library API for illustrated documents: `astream_story` yields typed events as the document is made,
`astory` / `story` return the finished document, `aresume_story` continues a killed one.

The text comes from a Markdown script (a path to a `.md` file), a written `DocumentBrief`, or a topic (written
by the configured chat model, or by the Gemini backend's interleaved stream with `interleaved=True`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ValidationError

from agent.interfaces.api import (
    exit_code,
    new_run_checkpointer,
    new_thread_id,
    note_stale_lock,
    preflight,
    restore_endpoints,
    resume_checkpointer,
    run_blocking,
)
from agent.interfaces.run_folder import RUN_FILE, IfExists, choose_run_dir, resumable
from agent.loop.document.script import parse_script, read_script
from agent.models import Brief, ImageOutcome, PixloopConfig, Status, StopReason, public_config
from agent.models.document import LAYOUTS, DocumentBrief, DocumentEvent, read_event
from agent.models.errors import BriefError
from agent.models.validation import format_validation_error
from agent.runtime.checkpoint import open_checkpointer
from agent.runtime.images import validate_image_file
from agent.runtime.lock import RunLock, refuse_if_in_use
from agent.runtime.paths import check_thread_id
from agent.runtime.secrets import mask_url

StorySource = str | Path | DocumentBrief
DOCUMENT_OPTIONS = ("concurrency", "max_rounds", "max_cost", "thresholds", "seed", "aspect_ratio", "size", "style",
                    "image_budget")


class StoryResult(BaseModel):
    """A finished document: its status, files, per-image outcomes and report."""

    thread_id: str
    run_dir: Path
    status: Status
    stop_reason: StopReason | None = None
    markdown: Path | None = None
    html: Path | None = None
    images: dict[str, ImageOutcome] = {}
    report: dict[str, Any] = {}
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def exit_code(self) -> int:
        return exit_code(self.status, self.stop_reason)


def story_input(source: StorySource, *, characters: Mapping[str, Sequence[str | Path]] | None = None,
                pages: int | None = None, layout: str | None = None, interleaved: bool = False,
                **options: Any) -> dict[str, Any]:
    """The document graph's input for a source, checked: a `.md` path is a script, a DocumentBrief a document,
    any other text a topic. `options` override the document's settings (DOCUMENT_OPTIONS). BriefError says
    what is wrong."""
    if layout is not None and layout not in LAYOUTS:
        raise BriefError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    unknown = sorted(set(options) - set(DOCUMENT_OPTIONS))
    if unknown:
        raise BriefError(f"unknown document option(s) {', '.join(unknown)}; known: {', '.join(DOCUMENT_OPTIONS)}")
    refs: dict[str, list[str]] = {}
    for name, files in (characters or {}).items():
        for f in files:
            try:
                validate_image_file(f)
            except Exception as e:  # noqa: BLE001 - ImageInputError and OS errors name the file
                raise BriefError(f"--character {name}: {e}") from None
        refs[name] = [str(f) for f in files]
    state: dict[str, Any] = {"characters": refs, "options": {k: v for k, v in options.items() if v is not None}}
    if layout:
        state["layout"] = layout
    if isinstance(source, DocumentBrief):
        state["document"] = source
    elif _is_script(source):
        state.update(script=read_script(Path(source)), script_dir=str(Path(source).parent))
        # refused here, before a folder is made
        parse_script(state["script"], characters=refs, layout=layout, base=Path(source).parent)
    else:
        state.update(topic=str(source), pages=pages or 4, interleaved=interleaved)
    if pages is not None and "topic" not in state:
        raise BriefError("pages applies to a topic that a model writes; a script has as many pages as it has")
    return state


def _is_script(source: str | Path) -> bool:
    text = str(source)
    return isinstance(source, Path) or ("\n" not in text and text.lower().endswith((".md", ".markdown", ".txt")))


def _preflight(config: PixloopConfig, state: dict[str, Any]) -> None:
    try:
        preflight(Brief(prompt="document", thresholds=state["options"].get("thresholds") or {}), config)
    except ValidationError as e:
        raise BriefError(format_validation_error(e)) from None


class StoryRun:
    """A document about to be made: its folder and thread are known before its first event (the CLI prints them,
    `astory` reads the result from them); `events()` makes it."""

    def __init__(self, state: dict[str, Any] | None, run_dir: Path, thread_id: str, config: PixloopConfig):
        self.state, self.run_dir, self.thread_id, self.config = state, run_dir, thread_id, config

    async def events(self) -> AsyncIterator[DocumentEvent]:
        with RunLock(self.run_dir, self.thread_id) as lock:
            inputs: dict[str, Any] | None = None
            if self.state is not None:  # a new document: the folder's previous run (if_exists="overwrite") goes
                record = {"thread_id": self.thread_id, "kind": "document",
                          "config": public_config(self.config, mask_url)}
                opened = new_run_checkpointer(self.run_dir, self.thread_id, self.config, record)
                inputs = {**self.state, "run_dir": str(self.run_dir)}
            else:
                opened = open_checkpointer(self.config.checkpointer, self.run_dir, writer=self.thread_id)
            async with opened as saver:
                note_stale_lock(self.run_dir, lock)  # a killed writer's lock, taken over: said in events.jsonl
                async for event in _drive(inputs, saver, self.thread_id, self.config):
                    yield event

    def result(self) -> StoryResult:
        return story_result(self.thread_id, self.run_dir)


def prepare_story(source: StorySource, config: PixloopConfig | None = None, *,
                  characters: Mapping[str, Sequence[str | Path]] | None = None, pages: int | None = None,
                  layout: str | None = None, interleaved: bool = False, out: str | Path | None = None,
                  thread_id: str | None = None, if_exists: IfExists = "refuse", **options: Any) -> StoryRun:
    """Check everything a document needs before anything is made (BriefError says what is wrong) and choose its
    folder; `options` override the document's settings (DOCUMENT_OPTIONS)."""
    config = config or PixloopConfig()
    state = story_input(source, characters=characters, pages=pages, layout=layout, interleaved=interleaved,
                        **options)
    _preflight(config, state)
    if "topic" in state and not interleaved and not (config.llm_base_url and config.llm_model):
        raise BriefError("a topic needs a chat model to write the document (--llm-base-url and --llm-model), or the "
                         "gemini backend's interleaved output (--interleaved); or give a Markdown script (.md)")
    if interleaved and config.backend != "gemini":
        raise BriefError(f"--interleaved needs the gemini backend (got {config.backend!r})")
    thread_id = thread_id or new_thread_id()
    return StoryRun(state, choose_run_dir(out, config.out_root, thread_id, if_exists), thread_id, config)


def prepare_resume(thread_id: str, out: str | Path | None = None, *, base_url: str | None = None,
                   llm_base_url: str | None = None, checkpointer: str | None = None) -> StoryRun:
    """A killed document to continue from its checkpoint (endpoints whose credentials were masked in run.json must
    be given again; a PostgreSQL checkpointer's URL as `aresume` finds it)."""
    check_thread_id(thread_id, "--resume")
    run_dir = Path(out) if out else Path("pixloop-out") / thread_id
    if not resumable(run_dir):
        refuse_if_in_use(run_dir)
        raise BriefError(f"no checkpointed document {thread_id!r} in {run_dir} (pass --out with its folder)")
    try:
        saved = json.loads((run_dir / RUN_FILE).read_text())
        config = PixloopConfig.model_validate(saved["config"])
    except (OSError, ValueError, KeyError) as e:
        raise BriefError(f"{run_dir / RUN_FILE} cannot be read ({e}); the document cannot be resumed") from None
    if saved.get("thread_id") != thread_id or saved.get("kind") != "document":
        raise BriefError(f"{run_dir} holds run {saved.get('thread_id')!r}, not the document {thread_id!r}")
    config.options = {k: v for k, v in config.options.items() if v != "***"}
    config = restore_endpoints(config, base_url=base_url, llm_base_url=llm_base_url)
    return StoryRun(None, run_dir, thread_id, resume_checkpointer(config, checkpointer))


async def astream_story(source: StorySource, config: PixloopConfig | None = None,
                        **kwargs: Any) -> AsyncIterator[DocumentEvent]:
    """Make an illustrated document, yielding its events the moment they happen: every section's `text` first,
    then per image `image_started`, `correction`s and `image_ready` (with verdicts), a `consistency` per round
    and `done`. Arguments as `prepare_story`; story.md, story.html and report.json are in the document folder."""
    async for event in prepare_story(source, config, **kwargs).events():
        yield event


async def aresume_story(thread_id: str, out: str | Path | None = None, **kwargs: Any) -> AsyncIterator[DocumentEvent]:
    """Continue a killed document from its checkpoint: accepted images are kept, unfinished ones continue."""
    async for event in prepare_resume(thread_id, out, **kwargs).events():
        yield event


async def _drive(inputs: dict[str, Any] | None, saver: Any, thread_id: str,
                 config: PixloopConfig) -> AsyncIterator[DocumentEvent]:
    from graphs.document import build_document_graph

    cfg: RunnableConfig = {"configurable": {"thread_id": thread_id}, "recursion_limit": 10_000}
    if inputs is None and await saver.aget_tuple(cfg) is None:
        where = f" in {mask_url(config.checkpointer)}" if config.checkpointer else ""
        raise BriefError(f"document {thread_id!r} has no checkpoint yet{where}; start it again instead")
    graph = build_document_graph(checkpointer=saver)
    async for chunk in graph.astream(inputs, cfg, context=config, stream_mode="custom", durability="sync"):
        yield read_event(chunk)


def story_result(thread_id: str, run_dir: Path) -> StoryResult:
    """The finished document read back from its folder."""
    path = run_dir / "report.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    images: dict[str, ImageOutcome] = {}
    for row in report.get("images") or []:
        if row.get("image_ref"):
            images[row["id"]] = ImageOutcome.model_validate({
                "id": row["id"], "round": row.get("round", 1), "status": row["status"],
                "stop_reason": row.get("stop_reason"), "iterations": row.get("final_iterations", 0),
                "image": row["image_ref"], "run_dir": row["run_dir"], "verdicts": row.get("verdicts") or {},
                "scores": row.get("scores") or {}, "cost": row.get("cost", 0.0)})
    html, md = run_dir / "story.html", run_dir / "story.md"
    return StoryResult(thread_id=thread_id, run_dir=run_dir, status=report.get("status") or "failed",
                       stop_reason=report.get("stop_reason"), markdown=md if md.exists() else None,
                       html=html if html.exists() else None, images=images, report=report,
                       error=report.get("error"))


async def astory(source: StorySource, config: PixloopConfig | None = None, *,
                 on_event: Callable[[DocumentEvent], None] | None = None, **kwargs: Any) -> StoryResult:
    """Make an illustrated document and return it (events go to `on_event` as they happen); arguments as
    `prepare_story`."""
    run = prepare_story(source, config, **kwargs)
    async for event in run.events():
        if on_event is not None:
            on_event(event)
    return run.result()


def story(source: StorySource, config: PixloopConfig | None = None, **kwargs: Any) -> StoryResult:
    """Synchronous `astory` (same arguments)."""
    return run_blocking(astory(source, config, **kwargs))


__all__ = ["DOCUMENT_OPTIONS", "StoryResult", "StoryRun", "aresume_story", "astory", "astream_story", "prepare_resume",
           "prepare_story", "story", "story_input", "story_result"]
