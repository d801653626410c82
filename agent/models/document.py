"""Illustrated documents: what the user asks for (a script of sections with image cues, characters, a layout),
what the document graph builds (the character and style sheet), what each image's loop returned, the
cross-image consistency it measured, and the typed events it streams while it works.

Pydantic only. The text of a document is kept exactly as written; each image cue becomes one run of the
pixloop loop (`ImageCue.brief` is built by `agent.loop.document.planning`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from agent.models.base import ImageRef, Model
from agent.models.brief import AspectRatio, Budget, ReferenceSource, SizeTier
from agent.models.requirements import Requirement
from agent.models.run import Status, StopReason

Layout = Literal["book", "comic", "storyboard", "tutorial"]
LAYOUTS: tuple[str, ...] = Layout.__args__  # type: ignore[attr-defined]
DocumentSource = Literal["script", "llm", "interleaved"]
NAME = re.compile(r"^[A-Za-z][\w .'-]{0,39}$")


class TextBlock(Model):
    """Text of a section, kept as written (Markdown)."""

    kind: Literal["text"] = "text"
    text: str


class ImageCue(Model):
    """One image of the document: what it shows, who is in it, the text it must contain."""

    kind: Literal["image"] = "image"
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", description="unique in the document, e.g. s2-i1")
    prompt: str = Field(min_length=1, description="what the image shows (the cue's words)")
    characters: list[str] = Field(default_factory=list, description="named characters that appear in it")
    required_text: list[str] = Field(default_factory=list, description="text that must appear verbatim")
    aspect_ratio: AspectRatio | None = None
    caption: str = Field("", description="the cue as written, shown under the image")


def _block_kind(value: Any) -> str:
    """A block's kind, also when a checkpoint left out the default-valued `kind` field: an image cue has a prompt."""
    if isinstance(value, dict):
        return str(value.get("kind") or ("image" if "prompt" in value else "text"))
    return str(getattr(value, "kind", "text"))


Block = Annotated[Annotated[TextBlock, Tag("text")] | Annotated[ImageCue, Tag("image")], Discriminator(_block_kind)]


class Section(Model):
    """A page, step or panel: its blocks in reading order."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    title: str = ""
    blocks: list[Block] = Field(default_factory=list)

    @property
    def images(self) -> list[ImageCue]:
        return [b for b in self.blocks if isinstance(b, ImageCue)]

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if isinstance(b, TextBlock))


class Character(Model):
    """A named character; without references its first accepted image becomes its reference."""

    name: str
    references: list[ReferenceSource] = Field(default_factory=list)
    description: str = ""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not NAME.match(v.strip()):
            raise ValueError(f"character name {v!r}: use letters, digits, spaces, . ' - (at most 40)")
        return v.strip()


class DocumentBrief(Model):
    """A whole illustrated document: sections of text and image cues, its characters, and how to check it."""

    title: str = ""
    sections: list[Section] = Field(min_length=1)
    characters: list[Character] = Field(default_factory=list)
    layout: Layout = "book"
    style: str = Field("", description="style words every image shares (e.g. 'watercolour, soft light')")
    aspect_ratio: AspectRatio | None = None
    size: SizeTier | None = None
    image_budget: Budget = Field(default_factory=lambda: Budget(max_iterations=3),
                                 description="each image's own loop budget")
    max_cost: float | None = Field(None, ge=0, description="the whole document's cost budget (None: no limit)")
    max_rounds: int = Field(2, ge=1, le=5, description="consistency rounds: 1 renders once, each further round "
                                                       "regenerates only the images that failed")
    concurrency: int = Field(2, ge=1, le=16, description="images rendered at the same time")
    thresholds: dict[str, float] = Field(default_factory=dict, description="per-critic pass thresholds")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    source: DocumentSource = "script"

    @model_validator(mode="after")
    def _consistent(self) -> DocumentBrief:
        ids = [s.id for s in self.sections] + [c.id for s in self.sections for c in s.images]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"section and image ids must be unique; repeated: {', '.join(dup)}")
        known = {c.name.lower() for c in self.characters}
        names = [c.name.lower() for c in self.characters]
        if len(set(names)) != len(names):
            raise ValueError("each character may be named once")
        for cue in self.images:
            unknown = [n for n in cue.characters if n.lower() not in known]
            if unknown:
                raise ValueError(f"image {cue.id} names unknown character(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(c.name for c in self.characters) or 'none'}")
        return self

    @property
    def images(self) -> list[ImageCue]:
        return [c for s in self.sections for c in s.images]

    def character(self, name: str) -> Character:
        return next(c for c in self.characters if c.name.lower() == name.lower())


class SheetEntry(Model):
    """A character on the sheet: its reference images (given, or its first accepted image)."""

    name: str
    references: list[ImageRef] = Field(default_factory=list)
    origin: Literal["given", "first_image", "none"] = "none"
    image_id: str | None = Field(None, description="the accepted image that became the reference")


class CharacterSheet(Model):
    """What every image of the document must agree with."""

    characters: list[SheetEntry] = Field(default_factory=list)
    palette: list[str] = Field(default_factory=list, description="the document's palette (hex), from its first images")
    style: str = ""

    def entry(self, name: str) -> SheetEntry | None:
        return next((e for e in self.characters if e.name.lower() == name.lower()), None)


class ImageOutcome(Model):
    """What one image's loop returned, in one round of the document."""

    id: str
    round: int = 1
    status: Status
    stop_reason: StopReason | None = None
    iterations: int = 0
    image: ImageRef | None = Field(None, description="the final image, in the document's store")
    run_dir: str = Field(description="the image's own run folder, relative to the document folder")
    verdicts: dict[str, bool] = Field(default_factory=dict, description="critic -> passed, of the final candidate")
    scores: dict[str, float] = Field(default_factory=dict)
    requirements: list[Requirement] = Field(default_factory=list)
    cost: float = 0.0
    seconds: float = 0.0
    error: str | None = None


class PairScore(Model):
    """One cell of a consistency matrix."""

    a: str
    b: str
    similarity: float | None = Field(None, description="None: a face was not found in one of them")
    passed: bool


class CharacterConsistency(Model):
    """One character across the document: every appearance against the sheet and against the others."""

    name: str
    images: list[str] = Field(default_factory=list, description="ids of the images it appears in")
    labels: list[str] = Field(default_factory=list, description="matrix rows/columns: 'sheet' first when it has one")
    matrix: list[list[float | None]] = Field(default_factory=list, description="similarities, labels x labels")
    pairs: list[PairScore] = Field(default_factory=list)
    threshold: float = 0.0
    failing: list[str] = Field(default_factory=list, description="images that do not show the same character")
    verified: bool = True
    note: str = ""


class StyleDistance(Model):
    """An image's palette and style distance from the rest of the document."""

    id: str
    palette: list[str] = Field(default_factory=list)
    palette_distance: float = Field(description="mean Lab distance of its palette to the document's (0 = same)")
    style_distance: float = Field(description="distance of its colour/texture statistics to the median image")
    passed: bool


class ConsistencyReport(Model):
    """The cross-image step's findings for one round."""

    round: int = 1
    characters: list[CharacterConsistency] = Field(default_factory=list)
    styles: list[StyleDistance] = Field(default_factory=list)
    palette_threshold: float = 0.0
    style_threshold: float = 0.0
    failing: list[str] = Field(default_factory=list, description="image ids to regenerate, each once")
    reasons: dict[str, str] = Field(default_factory=dict, description="image id -> why it failed")
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failing


# ----------------------------------------------------------------------------------------------- events

class _Event(Model):
    t: float = Field(0.0, description="seconds since the document started")


class TextEvent(_Event):
    """A section's text, ready to read (it comes before its images)."""

    event: Literal["text"] = "text"
    section: str
    title: str = ""
    text: str


class ImageStartedEvent(_Event):
    event: Literal["image_started"] = "image_started"
    image: str
    section: str
    round: int = 1
    prompt: str = ""


class ImageReadyEvent(_Event):
    """An image's loop finished: its verdicts, and where the image is."""

    event: Literal["image_ready"] = "image_ready"
    image: str
    section: str
    round: int = 1
    status: Status
    iterations: int
    path: str | None = Field(None, description="the image file, relative to the document folder")
    verdicts: dict[str, bool] = Field(default_factory=dict)


class CorrectionEvent(_Event):
    """An image's loop is correcting a candidate."""

    event: Literal["correction"] = "correction"
    image: str
    round: int = 1
    strategy: str
    reason: str = ""


class ConsistencyEvent(_Event):
    event: Literal["consistency"] = "consistency"
    round: int
    passed: bool
    failing: list[str] = Field(default_factory=list, description="images unlike the sheet or the others")
    reasons: dict[str, str] = Field(default_factory=dict)
    regenerate: list[str] = Field(default_factory=list, description="images the next round makes again")


class DoneEvent(_Event):
    event: Literal["done"] = "done"
    status: Status
    images: int
    rounds: int
    cost: float
    path: str | None = Field(None, description="story.html, relative to the document folder")


DocumentEvent = Annotated[TextEvent | ImageStartedEvent | ImageReadyEvent | CorrectionEvent | ConsistencyEvent
                          | DoneEvent, Field(discriminator="event")]


def read_event(data: dict[str, Any]) -> DocumentEvent:
    """A streamed event (e.g. from `stream_mode="custom"`) back as its typed model."""
    from pydantic import TypeAdapter

    return TypeAdapter(DocumentEvent).validate_python(data)


__all__ = [
    "LAYOUTS", "Block", "Character", "CharacterConsistency", "CharacterSheet", "ConsistencyEvent", "ConsistencyReport",
    "CorrectionEvent", "DocumentBrief", "DocumentEvent", "DocumentSource", "DoneEvent", "ImageCue", "ImageOutcome",
    "ImageReadyEvent", "ImageStartedEvent", "Layout", "PairScore", "Section", "SheetEntry", "StyleDistance",
    "TextBlock", "TextEvent", "read_event",
]
