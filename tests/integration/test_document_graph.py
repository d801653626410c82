"""The document graph end to end on the offline backends: one loop per image, a character sheet, consistency
across images, regeneration of only the failing images, streamed events and the files a reader opens."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agent.interfaces.story import astory, astream_story
from agent.models import Budget, PixloopConfig
from agent.models.document import Character, DocumentBrief, DocumentEvent, ImageCue, Section, TextBlock

WORDS = ["OPEN", "BREAD", "CAKE", "CLOSED"]


def four_pages(character: str = "Mia", **fields: Any) -> DocumentBrief:
    sections = [Section(id=f"s{k}", title=f"Page {k}", blocks=[
        TextBlock(text=f"Page {k} of the story. {character} is at the bakery."),
        ImageCue(id=f"s{k}-i1", prompt=f'{character} smiles outside the bakery; the sign says "{word}"',
                 characters=[character], required_text=[word])])
        for k, word in enumerate(WORDS, 1)]
    return DocumentBrief(title="Mia's bakery", sections=sections, characters=[Character(name=character)], **fields)


def run(doc: DocumentBrief, tmp_path: Path, config: PixloopConfig, **kwargs: Any) -> tuple[Any, list[DocumentEvent]]:
    events: list[DocumentEvent] = []
    result = asyncio.run(astory(doc, config, out=tmp_path / "doc", thread_id="doc", on_event=events.append, **kwargs))
    return result, events


def rounds_of(result: Any) -> dict[str, int]:
    return {row["id"]: row["rounds"] for row in result.report["images"]}


def test_four_sections_with_one_character_reference_make_four_images_consistent_with_it(tmp_path, faces_dir):
    result, events = run(four_pages(), tmp_path, PixloopConfig(backend="compose"),
                         characters={"Mia": [faces_dir / "obama_1.jpg"]})

    assert result.status == "passed", result.report.get("consistency")
    assert sorted(result.images) == ["s1-i1", "s2-i1", "s3-i1", "s4-i1"]
    for outcome in result.images.values():
        assert outcome.verdicts.get("face") is True and outcome.verdicts.get("ocr") is True, outcome
    mia = result.report["consistency"]["characters"][0]
    assert mia["name"] == "Mia" and mia["labels"] == ["sheet", "s1-i1", "s2-i1", "s3-i1", "s4-i1"]
    assert mia["verified"] and not mia["failing"]
    assert all(p["passed"] for p in mia["pairs"]) and len(mia["pairs"]) == 10, "sheet and every pair of images"
    character_rows = [r for r in result.report["requirements"] if r["kind"] == "character"]
    assert character_rows and character_rows[0]["status"] == "passed"
    for name in ("story.md", "story.html", "report.json"):
        assert (tmp_path / "doc" / name).is_file()
    md = (tmp_path / "doc" / "story.md").read_text()
    assert md.count("![") == 4 and "Page 3 of the story. Mia is at the bakery." in md
    kinds = [e.event for e in events]
    assert kinds.count("text") == 4 and kinds.count("image_ready") == 4 and kinds[-1] == "done"
    assert kinds.index("image_ready") > max(i for i, k in enumerate(kinds) if k == "text"), "text comes first"


def drifting(**rates: float) -> PixloopConfig:
    options = {"profile": "clean", "identity_drift": 0.5, **rates}
    return PixloopConfig(backend="simulated", options=options)


def test_identity_drift_within_an_images_loop_is_corrected_there_and_the_others_keep_their_first_candidate(
        tmp_path, faces_dir):
    result, events = run(four_pages(), tmp_path, drifting(), characters={"Mia": [faces_dir / "obama_1.jpg"]})

    drifted = {e.image for e in events if e.event == "correction"}
    assert drifted and len(drifted) < 4, "the seed makes some images drift and not others"
    for outcome in result.images.values():
        assert (outcome.iterations > 1) == (outcome.id in drifted), outcome
    assert result.status == "passed" and set(rounds_of(result).values()) == {1}


def test_drift_left_by_an_exhausted_image_budget_is_regenerated_by_the_document_only_for_those_images(
        tmp_path, faces_dir):
    doc = four_pages(image_budget=Budget(max_iterations=1), max_rounds=3)
    result, events = run(doc, tmp_path, drifting(), characters={"Mia": [faces_dir / "obama_1.jpg"]})

    first = {e.image: e for e in events if e.event == "image_ready" and e.round == 1}
    drifted = {i for i, e in first.items() if e.verdicts.get("face") is False}
    assert drifted and len(drifted) < 4
    consistency = [e for e in events if e.event == "consistency"]
    assert not consistency[0].passed and set(consistency[0].failing) == drifted
    again = {e.image for e in events if e.event == "image_started" and e.round > 1}
    assert again == drifted, "only the drifting images are made again"
    for image_id, rounds in rounds_of(result).items():
        assert (rounds > 1) == (image_id in drifted)
        if image_id not in drifted:
            assert result.images[image_id].round == 1 and result.images[image_id].iterations == 1
    assert consistency[-1].passed and result.status == "passed"
    assert result.report["rounds"] == len(consistency) >= 2


def test_a_character_the_backend_draws_without_a_face_is_reported_unverified_not_remade(tmp_path):
    result, events = run(four_pages("Leo"), tmp_path, PixloopConfig(backend="compose"))

    assert result.status == "passed"
    leo = result.report["consistency"]["characters"][0]
    assert leo["verified"] is False and "not verified" in leo["note"]
    row = next(r for r in result.report["requirements"] if r["kind"] == "character")
    assert row["status"] == "unverified" and "Leo" in row["text"]
    assert "Leo looks the same" in " ".join(result.report["not_verified"])
    assert result.report["sheet"]["characters"][0]["origin"] == "none", "a faceless image anchors nobody"
    assert {e.round for e in events if e.event == "image_started"} == {1}


def test_bounded_concurrency_never_runs_more_loops_at_once_than_asked(tmp_path, faces_dir):
    async def collect() -> list[DocumentEvent]:
        return [e async for e in astream_story(four_pages(concurrency=1), PixloopConfig(backend="compose"),
                                               characters={"Mia": [faces_dir / "obama_1.jpg"]},
                                               out=tmp_path / "doc", thread_id="one")]

    running, most = 0, 0
    for event in asyncio.run(collect()):
        running += {"image_started": 1, "image_ready": -1}.get(event.event, 0)
        most = max(most, running)
    assert most == 1


def test_the_report_names_each_images_verdicts_iterations_and_the_total_cost(tmp_path, faces_dir):
    result, _ = run(four_pages(), tmp_path, PixloopConfig(backend="compose"),
                    characters={"Mia": [faces_dir / "obama_1.jpg"]})
    report = json.loads((tmp_path / "doc" / "report.json").read_text())
    assert report["kind"] == "document" and report["layout"] == "book"
    assert [row["id"] for row in report["images"]] == ["s1-i1", "s2-i1", "s3-i1", "s4-i1"]
    assert all(row["iterations"] >= 1 and row["verdicts"] for row in report["images"])
    assert report["cost"] == pytest.approx(sum(row["cost"] for row in report["images"]))
    assert report["cost"] > 0


def test_a_chat_model_writes_the_document_from_a_topic_and_every_cue_is_rendered(tmp_path, faces_dir):
    from agent.testing.fakes import FakeServer, FaultPlan
    from agent.testing.fakes.chat import create_app

    server = FakeServer(create_app(FaultPlan.parse([]))).start()
    try:
        config = PixloopConfig(backend="compose", llm_base_url=server.url + "/v1", llm_model="fake")
        result = asyncio.run(astory("a day at the bakery", config, pages=3, layout="storyboard",
                                    characters={"Mia": [faces_dir / "obama_1.jpg"]},
                                    out=tmp_path / "doc", thread_id="doc"))
    finally:
        server.stop()
    assert result.report["source"] == "llm" and result.report["layout"] == "storyboard"
    assert len(result.images) == 3 and result.status == "passed", result.report.get("consistency")
    assert all(o.verdicts.get("face") for o in result.images.values()), "Mia's photo is every page's reference"


def test_resuming_a_document_as_a_single_run_is_refused_and_names_the_story_command(tmp_path):
    from agent import BriefError, aresume

    result, _ = run(four_pages(), tmp_path, PixloopConfig(backend="compose"))
    assert result.status == "passed"

    with pytest.raises(BriefError, match=r"pixloop story --resume doc"):
        asyncio.run(aresume("doc", tmp_path / "doc"))
