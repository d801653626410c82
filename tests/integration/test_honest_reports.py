"""Reports say what was and was not verified; a critic that cannot run is not a failing image; one face
detector decides whether a reference is a person, for the planner and the face critic alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agent import generate
from agent.interfaces.cli import main
from agent.loop.planning import RulePlanner, looks_like_person
from agent.loop.planning.requirements import prompt_phrases
from agent.models import PixloopConfig
from agent.runtime.store import ArtifactStore
from critics import get_critic

BICYCLE = "A red bicycle leaning on a marble counter with a sign that says 'OPEN'"


def by_text(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["text"]: r for r in report["requirements"]}


def test_a_brief_becomes_requirements_each_with_the_critic_that_verifies_it() -> None:
    assert prompt_phrases(BICYCLE) == [("content", "red bicycle"), ("content", "marble counter")]
    assert prompt_phrases('A poster that says "HELLO"') == []
    assert prompt_phrases("Three cats sleeping on a red sofa, cinematic lighting") == [
        ("count", "Three cats"), ("content", "red sofa"), ("style", "cinematic lighting")]


def test_the_bicycle_brief_passes_what_was_checked_and_names_what_was_not(tmp_path: Path, capsys: Any) -> None:
    code = main(["run", BICYCLE, "--out", str(tmp_path / "run"), "-q"])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    reqs = by_text(report)
    assert code == 0 and report["status"] == "passed"
    assert reqs["OPEN"] == {"text": "OPEN", "kind": "text", "verified_by": "ocr", "ref": "headline",
                            "status": "passed", "detail": ""}
    assert reqs["1:1 1K (1024x1024)"]["status"] == "passed" and reqs["1:1 1K (1024x1024)"]["verified_by"] == "spec"
    for phrase in ("red bicycle", "marble counter"):
        assert reqs[phrase]["kind"] == "content" and reqs[phrase]["status"] == "unverified"
        assert reqs[phrase]["verified_by"] is None and "no critic checks scene content" in reqs[phrase]["detail"]
    assert len([r for r in report["requirements"] if r["status"] == "unverified"]) == 2
    assert "not verified: 'red bicycle', 'marble counter' — no critic checks scene content; configure the VLM judge" \
        in out


def test_strict_turns_an_unverified_requirement_into_below_threshold(tmp_path: Path, capsys: Any) -> None:
    code = main(["run", BICYCLE, "--strict", "--out", str(tmp_path / "run"), "-q"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert code == 3 and report["status"] == "below_threshold" and report["stop_reason"] == "unverified"
    assert (tmp_path / "run" / "final.png").exists()
    assert main(["run", 'A poster that says "HELLO"', "--strict", "--out", str(tmp_path / "plain"), "-q"]) == 0


def test_the_library_result_lists_unverified_requirements(tmp_path: Path) -> None:
    result = generate(BICYCLE, out=tmp_path / "run", config=PixloopConfig(strict=False))
    assert result.passed and [r.text for r in result.unverified] == ["red bicycle", "marble counter"]


def test_an_unreachable_vlm_judge_is_unavailable_not_a_failure_and_nothing_is_regenerated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXLOOP_VLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    monkeypatch.setenv("PIXLOOP_VLM_MODEL", "judge")
    monkeypatch.setenv("PIXLOOP_VLM_OPTIONS", "")
    result = generate('A bold clean poster that says "HELLO"', out=tmp_path / "run", max_iterations=3)
    report = result.report
    (vlm,) = [v for v in report["candidates"][0]["verdicts"] if v["critic"] == "vlm"]
    assert vlm["status"] == "unavailable" and vlm["score"] is None and vlm["error"]
    assert result.status == "passed" and result.iterations == 1, "no regeneration for a judge that cannot run"
    style = [r for r in report["requirements"] if r["kind"] == "style"]
    assert style and all(r["status"] == "unverified" and r["verified_by"] == "vlm" and "vlm could not run" in
                         r["detail"] for r in style)


def test_check_reports_an_unavailable_critic_without_failing_the_image(tmp_path: Path, capsys: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXLOOP_VLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("PIXLOOP_VLM_MODEL", "judge")
    Image.linear_gradient("L").convert("RGB").save(tmp_path / "img.png")  # not blank: spec passes
    code = main(["check", str(tmp_path / "img.png"), "--critics", "spec,vlm", "--json"])
    result = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in result["critics"]}
    assert code == 0 and result["passed"] and result["unverified"] == ["vlm"]
    assert rows["vlm"]["status"] == "unavailable" and rows["spec"]["status"] == "checked"


def test_one_detector_decides_whether_a_reference_is_a_person(tmp_path: Path, faces_dir: Path,
                                                             product_png: Path) -> None:
    from skimage import data

    store = ArtifactStore(tmp_path)
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    Image.fromarray(data.camera()).save(tmp_path / "camera.png")
    files = [faces_dir / "obama_1.jpg", product_png, tmp_path / "coffee.png", tmp_path / "camera.png"]
    face = get_critic("face")
    for f in files:
        ref = store.put_file(f)
        assert looks_like_person(store, ref) == face.shows_a_person(store, ref), f  # type: ignore[attr-defined]
    refs = [store.put_file(f) for f in files]
    plan = RulePlanner().plan(__import__("agent").make_brief("a poster", references=files), refs, store)
    kinds = {s.id: s.kind for s in plan.subjects}
    assert kinds["person1"] == "person" and kinds["product2"] == "product" and kinds["product3"] == "product"
    # every person the planner placed has a face the critic can match: the identity check is passable
    for s in plan.subjects:
        if s.kind == "person":
            assert face.shows_a_person(store, s.reference)  # type: ignore[attr-defined]
