"""The document graph's policy: which images render when, how a character without references is anchored, and
which images the next round makes again."""

from __future__ import annotations

from pathlib import Path

from agent.loop.document.planning import image_brief, image_seed, ready_to_render, to_regenerate
from agent.loop.document.sheet import anchor_sheet, sheet_style
from agent.models import ImageOutcome, ImageRef
from agent.models.document import (
    Character,
    CharacterConsistency,
    CharacterSheet,
    ConsistencyReport,
    DocumentBrief,
    ImageCue,
    Section,
    SheetEntry,
    StyleDistance,
)


def doc(characters: list[Character], cues: list[tuple[str, list[str]]]) -> DocumentBrief:
    return DocumentBrief(characters=characters, sections=[
        Section(id=f"s{k}", blocks=[ImageCue(id=f"s{k}-i1", prompt=text, characters=names)])
        for k, (text, names) in enumerate(cues, 1)])


def outcome(image_id: str, status: str = "passed", sha: str = "a" * 64) -> ImageOutcome:
    ref = ImageRef(sha256=sha, path=f"images/{sha[:2]}/{sha}.png", width=8, height=8)
    return ImageOutcome(id=image_id, status=status, run_dir=f"runs/{image_id}/r1", image=ref)  # type: ignore[arg-type]


LEO = [Character(name="Leo")]
CUES = [("a sign", []), ("Leo waves", ["Leo"]), ("Leo bakes", ["Leo"]), ("Leo sleeps", ["Leo"])]


def test_a_character_without_references_renders_its_first_appearance_before_the_others() -> None:
    d = doc(LEO, CUES)
    sheet = CharacterSheet(characters=[SheetEntry(name="Leo")])
    ready = ready_to_render(d, sheet, [c.id for c in d.images], {})
    assert [c.id for c in ready] == ["s1-i1", "s2-i1"], "the anchor and the image without Leo go first"


def test_once_the_anchor_is_accepted_with_a_face_it_is_the_characters_reference(monkeypatch) -> None:
    import agent.loop.document.sheet as sheet_module

    monkeypatch.setattr(sheet_module, "shows_a_face", lambda path: True)
    d = doc(LEO, CUES)
    sheet = anchor_sheet(d, CharacterSheet(characters=[SheetEntry(name="Leo")]),
                         {"s2-i1": outcome("s2-i1")}, Path("/doc"))
    entry = sheet.characters[0]
    assert entry.origin == "first_image" and entry.image_id == "s2-i1" and entry.references
    brief = image_brief(d, d.images[2], sheet, Path("/doc"))
    assert brief.references == [str(Path("/doc") / entry.references[0].path)], "later pages are held to it"
    ready = ready_to_render(d, sheet, ["s3-i1", "s4-i1"], {"s2-i1": outcome("s2-i1")})
    assert [c.id for c in ready] == ["s3-i1", "s4-i1"]


def test_an_anchor_that_failed_releases_the_waiting_images_without_a_reference(monkeypatch) -> None:
    d = doc(LEO, CUES)
    sheet = CharacterSheet(characters=[SheetEntry(name="Leo")])
    done = {"s2-i1": outcome("s2-i1", status="below_threshold")}
    assert anchor_sheet(d, sheet, done, Path("/doc")).characters[0].origin == "none"
    assert [c.id for c in ready_to_render(d, sheet, ["s3-i1", "s4-i1"], done)] == ["s3-i1", "s4-i1"]


def test_only_the_minority_furthest_off_the_documents_look_is_made_again() -> None:
    d = doc([], [(f"page {k}", []) for k in range(5)])
    styles = [StyleDistance(id=c.id, palette_distance=dist, style_distance=0.5, passed=dist <= 14)
              for c, dist in zip(d.images, [30.0, 20.0, 16.0, 15.0, 3.0], strict=True)]
    report = ConsistencyReport(styles=styles, palette_threshold=14.0, style_threshold=1.5,
                               failing=[s.id for s in styles if not s.passed])
    again, reasons = to_regenerate(d, report, {c.id: outcome(c.id) for c in d.images})
    assert again == ["s1-i1", "s2-i1"], "at most (n-1)//2 of 5, the two furthest off"


def test_every_image_with_another_face_or_failing_its_own_checks_is_made_again() -> None:
    d = doc(LEO, CUES)
    report = ConsistencyReport(characters=[CharacterConsistency(name="Leo", failing=["s2-i1", "s4-i1"])],
                               failing=["s2-i1", "s4-i1"], reasons={"s2-i1": "face", "s4-i1": "face"})
    outcomes = {c.id: outcome(c.id) for c in d.images} | {"s1-i1": outcome("s1-i1", "below_threshold")}
    again, reasons = to_regenerate(d, report, outcomes)
    assert again == ["s1-i1", "s2-i1", "s4-i1"] and "own checks" in reasons["s1-i1"]


def test_each_image_and_round_gets_its_own_seed_and_the_sheet_one_palette() -> None:
    d = doc([], [("a", []), ("b", [])])
    seeds = {image_seed(d, c, r) for c in d.images for r in (1, 2)}
    assert len(seeds) == 4
    assert sheet_style(d) == sheet_style(d) and "colours" in sheet_style(d)
    assert sheet_style(d.model_copy(update={"style": "watercolour"})) == "watercolour"
