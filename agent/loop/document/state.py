"""The document graph's state: its input (a script, a written document, a topic for a chat model, or an
interleaved stream's prompt), what it carries (the plan, the sheet, each image's outcome) and what it returns.

Images are never in the state: outcomes and the sheet hold `ImageRef`s into the document folder's store.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from langgraph.channels import DeltaChannel
from typing_extensions import TypedDict

from agent.loop.state import append_items
from agent.models import Brief, ImageOutcome, Status, StopReason
from agent.models.document import CharacterSheet, ConsistencyReport, DocumentBrief, Layout


def merge_outcomes(a: dict[str, ImageOutcome] | None, b: dict[str, ImageOutcome] | None) -> dict[str, ImageOutcome]:
    """Each image's latest outcome; a later round replaces an earlier one unless it brought no image."""
    out = dict(a or {})
    for key, new in (b or {}).items():
        old = out.get(key)
        if old is None or new.image is not None or old.image is None:
            out[key] = new
    return out


class DocumentInput(TypedDict, total=False):
    """What a document starts from (LangGraph Studio's input form): one of `script` (Markdown with image cues),
    `document` (a written DocumentBrief), or `topic` (written by the configured chat model, or by the Gemini
    backend's own interleaved stream with `interleaved`)."""

    script: str
    script_dir: str
    """Where the script's own image links resolve (a local run only)."""
    document: DocumentBrief
    topic: str
    pages: int
    layout: Layout
    characters: dict[str, list[str]]
    """Character name -> reference images (file paths under the input root on a server, or data URLs)."""
    interleaved: bool
    options: dict[str, Any]
    """Overrides of the document's settings: concurrency, max_rounds, max_cost, thresholds, seed, aspect_ratio,
    size, style, image_budget."""
    run_dir: str


class DocumentOutput(TypedDict, total=False):
    status: Status
    stop_reason: StopReason | None
    outcomes: dict[str, ImageOutcome]
    consistency: list[ConsistencyReport]
    sheet: CharacterSheet
    run_dir: str
    error: str | None


class DocumentState(DocumentInput, total=False):
    doc: DocumentBrief
    sheet: CharacterSheet
    started: float
    round: int
    pending: list[str]
    drafts: dict[str, str]
    """Image id -> an image the interleaved stream already made (a stored ImageRef path), checked first."""
    outcomes: Annotated[dict[str, ImageOutcome], merge_outcomes]
    history: Annotated[list[ImageOutcome], DeltaChannel(append_items)]
    consistency: Annotated[list[ConsistencyReport], DeltaChannel(append_items)]
    cost_used: Annotated[float, operator.add]
    status: Status
    stop_reason: StopReason | None
    error: str | None


class ImageTask(TypedDict):
    """One image's loop (sent with Send): the brief travels whole, it is small; images by path."""

    image: str
    section: str
    round: int
    brief: Brief
    run_dir: str
    doc_dir: str
    concurrency: int
    started: float
    extra: NotRequired[dict[str, Any]]


__all__ = ["DocumentInput", "DocumentOutput", "DocumentState", "ImageTask", "merge_outcomes"]
