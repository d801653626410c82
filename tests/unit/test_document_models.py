"""The document models: what a bad document is told, and that graph state survives the checkpointer."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.models import CHECKPOINTED_MODELS, Budget
from agent.models.document import (
    Character,
    CharacterConsistency,
    CharacterSheet,
    ConsistencyReport,
    DocumentBrief,
    ImageCue,
    ImageOutcome,
    PairScore,
    Section,
    SheetEntry,
    StyleDistance,
    TextBlock,
    read_event,
)
from agent.runtime.checkpoint import MSGPACK_ALLOWLIST, CompressedSerializer


def doc(**fields: object) -> DocumentBrief:
    return DocumentBrief(title="T", characters=[Character(name="Mia")], sections=[
        Section(id="s1", blocks=[TextBlock(text="Hello."), ImageCue(id="s1-i1", prompt="Mia waves",
                                                                   characters=["Mia"], required_text=["OPEN"])])],
        **fields)


def test_a_cue_naming_an_unknown_character_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown character.*Leo.*known: Mia"):
        DocumentBrief(characters=[Character(name="Mia")], sections=[
            Section(id="s1", blocks=[ImageCue(id="s1-i1", prompt="Leo", characters=["Leo"])])])


def test_repeated_ids_are_refused() -> None:
    cue = ImageCue(id="s1-i1", prompt="x")
    with pytest.raises(ValidationError, match="repeated: s1-i1"):
        DocumentBrief(sections=[Section(id="s1", blocks=[cue]), Section(id="s2", blocks=[cue])])


def test_every_document_model_in_graph_state_survives_the_checkpointer_equal() -> None:
    serde = CompressedSerializer(allowed_msgpack_modules=MSGPACK_ALLOWLIST)
    values = [
        doc(image_budget=Budget(max_iterations=2), layout="comic"),
        CharacterSheet(characters=[SheetEntry(name="Mia", origin="none")], palette=["#102030"], style="teal"),
        ImageOutcome(id="s1-i1", status="passed", run_dir="runs/s1-i1/r1", verdicts={"ocr": True}),
        ConsistencyReport(round=2, characters=[CharacterConsistency(
            name="Mia", images=["s1-i1"], labels=["sheet", "s1-i1"], matrix=[[1.0, 0.5], [0.5, 1.0]],
            pairs=[PairScore(a="sheet", b="s1-i1", similarity=0.5, passed=True)])],
            styles=[StyleDistance(id="s1-i1", palette_distance=3.0, style_distance=0.4, passed=True)]),
    ]
    for value in values:
        assert type(value) in CHECKPOINTED_MODELS
        back = serde.loads_typed(serde.dumps_typed(value))
        assert back == value and type(back) is type(value)
    back = serde.loads_typed(serde.dumps_typed(values[0]))
    assert isinstance(back.sections[0].blocks[1], ImageCue), "the cue's kind survives leaving out defaults"


def test_a_streamed_event_reads_back_as_its_type() -> None:
    event = read_event({"event": "image_ready", "image": "s1-i1", "section": "s1", "status": "passed",
                        "iterations": 2, "t": 1.5})
    assert type(event).__name__ == "ImageReadyEvent" and event.iterations == 2
    with pytest.raises(ValidationError):
        read_event({"event": "nonsense"})
