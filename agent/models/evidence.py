"""Typed views of critics' evidence, for code that decides from it (the corrector, the prompt rewriter).

A verdict's `evidence` is the critic's JSON-ready detail, shown as it is in reports. A critic that wants
the loop to act on its evidence declares one of these models in its `CriticInfo.evidence`; the loop reads
the evidence through it (`read_evidence`), never by dict keys. Unknown keys are ignored, so a critic can
report more than the loop reads.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agent.models.plan import PixelBox
from agent.models.run import Verdict


class Evidence(BaseModel):
    """Base of the typed evidence views: lenient (extra keys ignored), read-only."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class TextReading(Evidence):
    """How one required text element was read."""

    id: str | None = None
    expected: str = ""
    read: str = ""
    cer: float = 1.0
    word_accuracy: float = 0.0
    box: PixelBox | None = None
    wrong_words: list[tuple[str, str]] = Field(default_factory=list, description="(read, expected) pairs")

    @property
    def accuracy(self) -> float:
        return min(1.0 - self.cer, self.word_accuracy)


class ReadLine(Evidence):
    """A line of text OCR read that no required element claims."""

    text: str = ""
    box: PixelBox | None = None


class TextEvidence(Evidence):
    """What the OCR critic read: each required element, extra lines, and which extra lines are invented text."""

    elements: list[TextReading] = Field(default_factory=list)
    extra_text: list[ReadLine] = Field(default_factory=list)
    invented_text: list[str] = Field(default_factory=list)

    def bad_elements(self, threshold: float) -> list[TextReading]:
        """Elements read with an accuracy below the threshold."""
        return [e for e in self.elements if e.accuracy < threshold]

    def unwanted_lines(self) -> list[ReadLine]:
        """Text read that the plan does not ask for: the critic's invented text, else every extra line."""
        invented = set(self.invented_text)
        return [x for x in self.extra_text if x.text in invented] if invented else list(self.extra_text)


class IdentityMatch(Evidence):
    """One reference identity matched (or not) to a face in the image."""

    subject: str | None = None
    box: PixelBox | None = None
    same: bool = False


class FaceEvidence(Evidence):
    """What the face critic found: each reference identity and the faces nobody asked for."""

    identities: list[IdentityMatch] = Field(default_factory=list)
    extra_faces: list[PixelBox] = Field(default_factory=list)


class ReferenceMatch(Evidence):
    """One reference object searched for in the image: found or not, where, and how alike."""

    subject: str | None = None
    reference: int | None = Field(None, description="the reference's number (1-based, the order given)")
    name: str | None = Field(None, description="what the feedback calls it (a file name or the subject id)")
    found: bool = False
    box: PixelBox | None = None
    similarity: float = 0.0
    inliers: int = 0
    colour: float | None = Field(None, description="colour similarity of the located region (None: not located)")
    method: str | None = Field(None, description="'features' (local features + RANSAC) or 'template' (low-texture "
                                                 "search by colour and silhouette)")
    detail: str = Field("", description="one line: where it was found, or why it was not")


class ReferenceEvidence(Evidence):
    """What the reference critic found: each product reference, found or not."""

    references: list[ReferenceMatch] = Field(default_factory=list)

    def missing(self, threshold: float) -> list[ReferenceMatch]:
        """References not found, or found with a similarity below the threshold."""
        return [r for r in self.references if not r.found or r.similarity < threshold]


class RatioReading(Evidence):
    rel_error: float | None = None


class SpecEvidence(Evidence):
    """Delivered size against the request."""

    requested: tuple[int, int] | None = None
    width: int | None = None
    height: int | None = None
    aspect_ratio: RatioReading = Field(default_factory=RatioReading)
    blank: bool = False

    def too_small(self) -> bool:
        """Only the size is wrong: the ratio holds (within 2%), the image is not blank, the long side is short."""
        if not (self.requested and self.width and self.height):
            return False
        return (max(self.width, self.height) < 0.98 * max(self.requested) and not self.blank
                and float(self.aspect_ratio.rel_error or 0.0) <= 0.02)


class ArtifactsEvidence(Evidence):
    """What the artifact critic found wrong, and where: the failing sub-checks' pixel boxes (a blurred region,
    a duplicated patch and its copy, blown highlights), or the whole image for a global fault (noise, JPEG)."""

    style: str | None = None
    worst: str | None = None
    regions: list[PixelBox] = Field(default_factory=list)
    region_share: float | None = Field(None, description="share of the image the regions cover (None: unknown)")
    heatmap: str | None = None

    def local_regions(self, width: int, height: int, max_share: float) -> list[PixelBox] | None:
        """The regions when they cover less than `max_share` of a `width` x `height` image (a masked edit can
        repair them), else None (a global fault: regenerate)."""
        if not self.regions or width <= 0 or height <= 0:
            return None
        share = self.region_share
        if share is None:  # no share reported: the boxes' summed area bounds their union from above
            share = sum(max(0, b.x1 - b.x0) * max(0, b.y1 - b.y0) for b in self.regions) / float(width * height)
        return list(self.regions) if share < max_share else None


class PreservationEvidence(Evidence):
    """What the preservation critic measured: with a mask, whether the outside was kept and the inside changed
    (each scored, 0.5 at its limit); without one, whether the layout was kept."""

    mode: str | None = None
    scores: dict[str, float] = Field(default_factory=dict, description="'outside', 'inside' (mask) or 'layout'")
    resized: bool | None = None
    aspect_changed: bool | None = None
    worst_region: PixelBox | None = None
    diff_map: str | None = None

    def outside_changed(self, limit: float = 0.5) -> bool:
        """Something outside the mask changed (a spill, a shift, a rescale): the source can restore it."""
        return self.scores.get("outside", 1.0) < limit or bool(self.resized)

    def inside_unchanged(self, limit: float = 0.5) -> bool:
        """The edit did not happen where the mask allows it."""
        return self.scores.get("inside", 1.0) < limit


class StructureRegion(Evidence):
    """One box of the sketch and how the candidate keeps it: found in place, moved (offset as a share of the
    canvas's width and height), or missing."""

    index: int
    name: str = ""
    box: PixelBox | None = Field(None, description="where the aligned sketch puts it, in the candidate's pixels")
    found: bool = False
    score: float = 0.0
    offset: list[float] | None = Field(None, description="[dx, dy] to where it was found, share of width/height")
    moved_to: PixelBox | None = None


class StructureEvidence(Evidence):
    """What the structure critic measured against the sketch: edge correspondence both ways, the global
    alignment, and each sketch box found, moved or missing."""

    scores: dict[str, float] = Field(default_factory=dict, description="'edges', 'regions'")
    edge_recall: float | None = None
    edge_precision: float | None = None
    regions: list[StructureRegion] = Field(default_factory=list)
    overlay: str | None = None

    def drifted(self) -> list[StructureRegion]:
        """The sketch boxes the candidate does not keep in place (moved or missing)."""
        return [r for r in self.regions if not r.found]


E = TypeVar("E", bound=Evidence)


def read_evidence(verdict: Verdict, model: type[E]) -> E:
    """The verdict's evidence through a typed view."""
    return model.model_validate(verdict.evidence)


__all__ = ["ArtifactsEvidence", "Evidence", "FaceEvidence", "IdentityMatch", "PreservationEvidence", "ReadLine",
           "RatioReading", "ReferenceEvidence", "ReferenceMatch", "SpecEvidence", "StructureEvidence", "StructureRegion",
           "TextEvidence", "TextReading", "read_evidence"]
