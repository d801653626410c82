"""Domain models: what the user asks for, the plan, what a run produces, and the errors pixloop raises.

Pydantic only, no LangGraph: every other layer builds on these (graph state types live in
`agent.loop.state`).
"""

from __future__ import annotations

from agent.models.base import ImageRef, Model
from agent.models.brief import (
    ASPECT_RATIOS,
    LONG_SIDE,
    SIZE_TIERS,
    AspectRatio,
    Brief,
    Budget,
    SizeTier,
    canvas_size,
    nearest_aspect_ratio,
)
from agent.models.config import PixloopConfig, public_config
from agent.models.document import (
    LAYOUTS,
    Character,
    CharacterConsistency,
    CharacterSheet,
    ConsistencyReport,
    DocumentBrief,
    DocumentEvent,
    ImageCue,
    ImageOutcome,
    Layout,
    PairScore,
    Section,
    SheetEntry,
    StyleDistance,
    TextBlock,
)
from agent.models.edit import EDIT_KEEPS, EditKeep, EditKind, EditSpec, MaskOrigin
from agent.models.errors import (
    BackendError,
    BriefError,
    ConfigError,
    CriticError,
    CriticUnavailable,
    ImageInputError,
    InputError,
    LLMError,
    PixloopError,
    PlanningError,
    ServiceError,
    UnknownBackendError,
    UnknownCriticError,
    UnknownNameError,
    UnknownPlannerError,
)
from agent.models.evidence import FaceEvidence, SpecEvidence, TextEvidence, read_evidence
from agent.models.plan import Box, CheckSpec, PixelBox, Plan, Style, Subject, TextElement
from agent.models.requirements import Requirement, RequirementKind, RequirementStatus
from agent.models.run import (
    STRATEGIES,
    Action,
    Candidate,
    CandidateStrategy,
    Status,
    StopReason,
    Strategy,
    Verdict,
    VerdictStatus,
)

CHECKPOINTED_MODELS: tuple[type, ...] = (
    Box, PixelBox, Budget, Brief, ImageRef, TextElement, Subject, Style, CheckSpec, Plan, Candidate, Verdict, Action,
    Requirement, EditSpec, TextBlock, ImageCue, Section, Character, DocumentBrief, SheetEntry, CharacterSheet,
    ImageOutcome, PairScore, CharacterConsistency, StyleDistance, ConsistencyReport,
)
"""The models graph state holds; the checkpointer's msgpack allow-list is built from this."""

__all__ = [
    "LAYOUTS", "Character", "CharacterConsistency", "CharacterSheet", "ConsistencyReport", "DocumentBrief",
    "DocumentEvent", "ImageCue", "ImageOutcome", "Layout", "PairScore", "Section", "SheetEntry", "StyleDistance",
    "TextBlock",
    "EDIT_KEEPS", "EditKeep", "nearest_aspect_ratio", "EditKind", "EditSpec", "MaskOrigin",
    "ASPECT_RATIOS", "CHECKPOINTED_MODELS", "LONG_SIDE", "SIZE_TIERS", "STRATEGIES", "Action", "AspectRatio",
    "BackendError", "Box", "Brief", "BriefError", "Budget", "Candidate", "CandidateStrategy", "CheckSpec",
    "ConfigError", "CriticError", "CriticUnavailable", "FaceEvidence", "ImageInputError", "ImageRef", "InputError",
    "LLMError", "Model", "PixelBox", "PixloopConfig", "PixloopError", "Plan", "PlanningError", "Requirement",
    "RequirementKind", "RequirementStatus", "ServiceError", "SizeTier", "SpecEvidence", "Status", "StopReason",
    "Strategy", "Style", "Subject", "TextElement", "TextEvidence", "UnknownBackendError", "UnknownCriticError",
    "UnknownNameError", "UnknownPlannerError", "Verdict", "VerdictStatus", "canvas_size", "public_config",
    "read_evidence",
]
