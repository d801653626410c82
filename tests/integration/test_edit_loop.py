"""Edits change only what was asked: `pixloop edit`, `edit()` and the graph's brief with a source; every edit is
gated (preservation, face identity, spec) and a failing edit is corrected from the source."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from agent import edit
from agent.interfaces.cli import main
from agent.models import Brief, PixloopConfig
from agent.runtime.confine import Confinement
from critics.preservation.pixels import ssim_map
from graphs import build_pixloop_graph

PORTRAIT = "alex_lacamoire_1.jpg"


@pytest.fixture
def portrait(faces_dir: Path, tmp_path: Path) -> Path:
    """A real portrait, 746x1024 (one face)."""
    return faces_dir / PORTRAIT


def report_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "report.json").read_text())


def verdicts_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    final = report["final"]["candidate"]
    cand = next(c for c in report["candidates"] if c["id"] == final)
    return {v["critic"]: v for v in cand["verdicts"]}


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def final_candidate(run: Path, report: dict[str, Any]) -> Path:
    """The final candidate as the loop made it; final.png is the same image with the invisible watermark."""
    return run / next(c["path"] for c in report["candidates"] if c["id"] == report["final"]["candidate"])


def test_edit_with_a_region_changes_only_that_box_and_saves_its_mask(portrait: Path, tmp_path: Path,
                                                                     capsys: Any) -> None:
    run = tmp_path / "run"
    code = main(["edit", str(portrait), "make this corner blue", "--region", "0,0,240,200", "--out", str(run), "-q"])
    report = report_of(run)
    assert code == 0, report["summary"]
    assert Image.open(run / "final.png").size == Image.open(portrait).size
    assert Image.open(run / "mask.png").getbbox() == (0, 0, 240, 200)
    assert (run / "mask-preview.png").exists()
    assert report["edit"]["mask_origin"] == "region" and report["edit"]["kind"] in ("region", "restyle")
    before, after = rgb(portrait), rgb(final_candidate(run, report))  # the watermark is added on delivery
    outside = np.ones(before.shape[:2], bool)
    outside[:216, :256] = False  # the box and its feather band
    assert np.abs(after - before)[outside].max() == 0, "nothing outside the region may change"
    assert np.abs(after - before)[:200, :240].mean() > 10, "the region changed"
    v = verdicts_of(report)
    assert v["preservation"]["passed"] and v["spec"]["passed"] and v["face"]["passed"]
    assert "mask: the user's region 0,0,240,200" in capsys.readouterr().out


def test_a_background_edit_derives_a_mask_that_keeps_the_person(portrait: Path, tmp_path: Path) -> None:
    result = edit(portrait, "put him in front of a deep blue studio background", out=tmp_path / "run")
    report = result.report
    assert result.passed, report["summary"]
    assert report["edit"]["mask_origin"] == "derived" and report["edit"]["kind"] == "background"
    assert 0.2 < report["edit"]["mask_share"] < 0.9
    mask = np.asarray(Image.open(result.run_dir / "mask.png"))
    face = verdicts_of(report)["face"]
    x0, y0, x1, y1 = face["evidence"]["identities"][0]["box"]
    assert (mask[y0:y1, x0:x1] == 0).mean() > 0.9, "the face is kept, not edited"
    assert face["evidence"]["identities"][0]["same"]
    before, after = rgb(portrait), rgb(final_candidate(result.run_dir, report))
    grey = [cv2.cvtColor(a.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255 for a in (before, after)]
    assert ssim_map(grey[0][y0:y1, x0:x1], grey[1][y0:y1, x0:x1]).mean() >= 0.9, "the face region is preserved"
    changed = np.abs(after - before).max(axis=2) > 24
    assert changed[mask > 0].mean() > 0.5, "the background changed"
    kinds = {r["verified_by"] for r in report["requirements"] if r["status"] == "passed"}
    assert {"preservation", "face", "spec"} <= kinds


def test_edit_inputs_that_cannot_work_are_refused_with_exit_2(portrait: Path, tmp_path: Path, capsys: Any) -> None:
    small = tmp_path / "small_mask.png"
    Image.new("L", (10, 10), 255).save(small)
    assert main(["edit", str(portrait), "make it blue", "--mask", str(small), "--out", str(tmp_path / "a"), "-q"]) == 2
    assert "mask: it is 10x10 but the source is 746x1024" in capsys.readouterr().err
    assert main(["edit", str(portrait), "make it blue", "--region", "5000,5000,10,10",
                 "--out", str(tmp_path / "b"), "-q"]) == 2
    assert "lies outside the 746x1024 source" in capsys.readouterr().err
    assert main(["edit", str(tmp_path / "missing.png"), "make it blue", "--out", str(tmp_path / "c"), "-q"]) == 2
    assert "source" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["edit", str(portrait), "x", "--region", "0,0,5,5", "--keep", "person"])
    assert e.value.code == 2


def test_a_server_client_edits_an_image_it_sends_as_a_data_url(portrait: Path, tmp_path: Path) -> None:
    data = "data:image/jpeg;base64," + base64.b64encode(portrait.read_bytes()).decode()
    graph = build_pixloop_graph(confinement=Confinement(output_root=tmp_path / "out"))
    brief = Brief(prompt="make this corner blue", source=data, region=(0, 0, 200, 200))
    out = asyncio.run(graph.ainvoke({"brief": brief}, {"configurable": {"thread_id": "edit-1"}},
                                    context=PixloopConfig()))
    assert out["status"] == "passed"
    assert (tmp_path / "out" / "edit-1" / "mask.png").exists()
    refused = asyncio.run(graph.ainvoke({"brief": Brief(prompt="x", source=str(portrait), keep="person")},
                                        {"configurable": {"thread_id": "edit-2"}}, context=PixloopConfig()))
    assert refused["status"] == "failed" and "source" in refused["error"]


@pytest.mark.parametrize("failure", ["edit_spill", "edit_shift"])
def test_an_edit_that_spills_or_shifts_is_restored_from_the_source(portrait: Path, tmp_path: Path,
                                                                   failure: str) -> None:
    config = PixloopConfig(backend="simulated", options={"profile": "clean", failure: 1.0, "edit_artifacts": 0.0})
    result = edit(portrait, "make this corner blue", region=(0, 0, 240, 200), out=tmp_path / "run",
                  config=config, max_iterations=3)
    report = result.report
    first = report["candidates"][0]
    assert failure in first["meta"]["simulated"]["injected"]
    failed = {v["critic"] for v in first["verdicts"] if not v["passed"]}
    assert failed & {"preservation", "spec"}, "the critics see the spill or shift"
    assert report["actions"][0]["strategy"] == "restore_source"
    assert result.passed, report["summary"]
    final = next(c for c in report["candidates"] if c["id"] == report["final"]["candidate"])
    assert final["backend"] == "restore-source" and final["parent"] == first["id"]
    before, after = rgb(portrait), rgb(final_candidate(result.run_dir, report))
    outside = np.ones(before.shape[:2], bool)
    outside[:230, :270] = False
    assert np.abs(after - before)[outside].mean() < 1.0


def test_a_tightened_mask_is_eroded_and_keeps_the_faces_out() -> None:
    from agent.loop.edit_repair import tightened_mask
    from agent.models import PixelBox

    mask = Image.new("L", (400, 300), 0)
    mask.paste(255, (100, 50, 300, 250))
    face = PixelBox(x0=180, y0=100, x1=220, y1=140)
    tight = np.asarray(tightened_mask(mask, [face])) > 0
    assert tight[150, 200 - 60] and not tight[52, 150], "eroded at the edge, kept inside"
    assert not tight[95:145, 175:225].any(), "the face (and a guard around it) may not change"
    assert not tight[:, :100].any() and not tight[:, 300:].any()
    whole_face = PixelBox(x0=90, y0=40, x1=310, y1=260)
    assert np.array_equal(np.asarray(tightened_mask(mask, [whole_face])) > 0, np.asarray(mask) > 0), \
        "nothing left to edit: the original mask"
