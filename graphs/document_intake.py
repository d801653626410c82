"""Where a document's text comes from, checked before anything renders: a Markdown script, a written
DocumentBrief, a topic written by the configured chat model, or the Gemini backend's own interleaved stream of
text and images (whose text reaches the reader as it streams, and whose images become drafts the loop checks
first).

Everything wrong here is bad input (or a planning failure for a chat model that fails) and ends the document
`failed` with a report, not an exception. On a server the run folder and the characters' reference files are
confined like a single run's.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from agent.backends.gemini import InterleavedImage, InterleavedText, stream_interleaved
from agent.llm.factory import client_from_config
from agent.loop.document.script import parse_script
from agent.models import PixloopConfig
from agent.models.document import Character, DocumentBrief, ImageCue, Section, TextBlock, TextEvent
from agent.models.errors import InputError
from agent.models.validation import format_validation_error
from agent.runtime.confine import Confinement
from agent.runtime.images import load_input_bytes
from agent.runtime.store import ArtifactStore
from graphs.intake import default_run_dir, thread_of

QUOTED = re.compile(r"[\"“”]([^\"“”]{1,80})[\"“”]")
Emit = Callable[[Any], Awaitable[None]]
"""Sends an event to the reader (awaitable: it also appends to the document's events file, off the event loop)."""


@dataclass
class DocumentIntake:
    """A checked document: its brief, its folder, each character's reference sources, the interleaved drafts."""

    doc: DocumentBrief
    run_dir: str
    references: dict[str, list[str]]
    drafts: dict[str, str] = field(default_factory=dict)
    streamed: bool = False
    """The text events were already sent while the interleaved stream arrived."""


def document_dir(state: dict[str, Any], config: RunnableConfig | None, settings: PixloopConfig,
                 confinement: Confinement | None) -> str:
    if confinement is not None:
        return str(confinement.run_dir(state.get("run_dir"), thread_of(config)))
    return str(state.get("run_dir") or default_run_dir(config, settings.out_root))


def _characters(state: dict[str, Any], confinement: Confinement | None) -> dict[str, list[str]]:
    raw = state.get("characters") or {}
    if not isinstance(raw, dict):
        raise InputError("characters must map each name to a list of reference images")
    out: dict[str, list[str]] = {}
    for name, sources in raw.items():
        sources = [sources] if isinstance(sources, str) else list(sources or [])
        out[str(name)] = [confinement.reference(s, f"character {name}") if confinement else str(s) for s in sources]
    return out


async def take_in_document(state: dict[str, Any], config: RunnableConfig | None, settings: PixloopConfig,
                           confinement: Confinement | None, emit: Emit) -> DocumentIntake:
    """The checked document with the input's `options` applied, or InputError / PlanningError / a backend error
    saying what is wrong."""
    intake = await _take_in(state, config, settings, confinement, emit)
    options = state.get("options") or {}
    if options:
        try:
            intake.doc = DocumentBrief.model_validate({**intake.doc.model_dump(), **options})
        except ValidationError as e:
            raise InputError(f"options: {format_validation_error(e)}") from None
    return intake


async def _take_in(state: dict[str, Any], config: RunnableConfig | None, settings: PixloopConfig,
                   confinement: Confinement | None, emit: Emit) -> DocumentIntake:
    run_dir = document_dir(state, config, settings, confinement)
    given = [k for k in ("script", "document", "topic") if state.get(k)]
    if len(given) != 1:
        raise InputError("give exactly one of script (Markdown with image cues), document, or topic"
                         + (f" (got {', '.join(given)})" if given else ""))
    if state.get("document") or state.get("script"):  # file checks: in a worker thread, never on the event loop
        return await asyncio.to_thread(_written, state, run_dir, confinement)
    references = await asyncio.to_thread(_characters, state, confinement)
    layout = state.get("layout")
    pages = int(state.get("pages") or 4)
    if not 1 <= pages <= 24:
        raise InputError(f"pages {pages}: give 1 to 24")
    if state.get("interleaved"):
        return await _interleaved(str(state["topic"]), pages, layout or "book", settings, run_dir, references, emit)
    if not (settings.llm_base_url and settings.llm_model):
        raise InputError("a topic needs a chat model to write the document (--llm-base-url and --llm-model), or "
                         "the gemini backend's interleaved output (--interleaved); or give a Markdown script")
    from agent.loop.document.writer import write_document  # only a topic needs the chat model's writer

    chat = client_from_config(settings)
    try:
        doc = await write_document(str(state["topic"]), pages=pages, layout=layout or "book", chat=chat,
                                   characters=references)
    finally:
        await chat.aclose()
    return DocumentIntake(doc, run_dir, references)


def _written(state: dict[str, Any], run_dir: str, confinement: Confinement | None) -> DocumentIntake:
    """A document the user wrote: a DocumentBrief, or a Markdown script (image links resolve next to the script
    locally; on a server, nowhere)."""
    references = _characters(state, confinement)
    layout = state.get("layout")
    if state.get("document"):
        try:
            raw = state["document"]
            doc = raw if isinstance(raw, DocumentBrief) else DocumentBrief.model_validate(raw)
        except ValidationError as e:
            raise InputError(f"document: {format_validation_error(e)}") from None
        return DocumentIntake(_with_layout(doc, layout), run_dir, _merge_refs(doc, references))
    base = Path(state["script_dir"]) if state.get("script_dir") and confinement is None else None
    doc = parse_script(str(state["script"]), characters=references, layout=layout, base=base,
                       local_files=confinement is None)
    return DocumentIntake(doc, run_dir, references)


def _with_layout(doc: DocumentBrief, layout: Any) -> DocumentBrief:
    return doc.model_copy(update={"layout": layout}) if layout else doc


def _merge_refs(doc: DocumentBrief, given: dict[str, list[str]]) -> dict[str, list[str]]:
    return {c.name: given.get(c.name, []) + [str(r) for r in c.references] for c in doc.characters}


async def _interleaved(topic: str, pages: int, layout: Any, settings: PixloopConfig, run_dir: str,
                       references: dict[str, list[str]], emit: Emit) -> DocumentIntake:
    """Consume the Gemini backend's interleaved stream: each text part is a section's text, sent to the reader
    at once; each image that follows it is stored as that section's draft."""
    if settings.backend != "gemini":
        raise InputError(f"interleaved output needs the gemini backend (this run uses {settings.backend!r})")
    store = await asyncio.to_thread(ArtifactStore.for_dir, run_dir)
    ref_bytes = await asyncio.to_thread(_reference_bytes, references)
    prompt = (f"Write an illustrated {layout} in {pages} parts about: {topic}. For each part write its text, then "
              "draw its picture; put any words the picture must show in double quotes in the text.")
    sections: list[Section] = []
    drafts: dict[str, str] = {}
    text = ""
    async for part in stream_interleaved(prompt, settings, references=ref_bytes):
        if isinstance(part, InterleavedText):
            text += part.text
            continue
        assert isinstance(part, InterleavedImage)
        sid = f"s{len(sections) + 1}"
        section = _streamed_section(sid, text, references)
        label = f"streamed image {part.index + 1}"
        ref = await asyncio.to_thread(_store_draft, store, part.data, label)
        drafts[section.images[0].id] = ref.path
        sections.append(section)
        await emit(TextEvent(section=sid, text=section.text))
        text = ""
    if text.strip() and sections:  # closing words after the last picture belong to the last section
        sections[-1].blocks.append(TextBlock(text=text.strip()))
    if not sections:
        raise InputError("the interleaved stream brought no image")
    doc = DocumentBrief(title=topic[:120], sections=sections, layout=layout, source="interleaved",
                        characters=[Character(name=n) for n in references])
    return DocumentIntake(doc, run_dir, references, drafts=drafts, streamed=True)


def _reference_bytes(references: dict[str, list[str]]) -> list[bytes]:
    """The characters' images as bytes for the request (data URLs decoded, files read)."""
    out = []
    for sources in references.values():
        for src in sources:
            if src.startswith("data:"):
                out.append(base64.b64decode(src.partition(",")[2]))
            else:
                out.append(Path(src).read_bytes())
    return out


def _store_draft(store: ArtifactStore, data: bytes, label: str) -> Any:
    return store.put_input(load_input_bytes(data, label), label)


def _streamed_section(sid: str, text: str, references: dict[str, list[str]]) -> Section:
    words = text.strip()
    names = [n for n in references if re.search(rf"\b{re.escape(n)}\b", words, re.IGNORECASE)]
    cue = ImageCue(id=f"{sid}-i1", prompt=words or f"the picture of part {sid[1:]}", caption=words[:200],
                   required_text=[m.strip() for m in QUOTED.findall(words)], characters=names)
    return Section(id=sid, blocks=[TextBlock(text=words), cue] if words else [cue])


__all__ = ["DocumentIntake", "document_dir", "take_in_document"]
