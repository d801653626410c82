"""Sketch to mockup: a drawn wireframe's boxes become the layout, the text written in them the text, and the
result is checked against the sketch."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from agent.backends.compose.fonts import load_font
from agent.interfaces.cli import main
from agent.loop.planning.sketch import read_sketch


def wobbly_rect(d: ImageDraw.ImageDraw, box: tuple[int, int, int, int], rng: random.Random) -> None:
    """A hand-drawn rectangle: each side a slightly shaky line."""
    x0, y0, x1, y1 = box
    pts = []
    for (ax, ay), (bx, by) in [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)),
                               ((x0, y1), (x0, y0))]:
        pts += [(ax + (bx - ax) * t / 8 + rng.uniform(-3, 3), ay + (by - ay) * t / 8 + rng.uniform(-3, 3))
                for t in range(9)]
    d.line([*pts, pts[0]], fill=(40, 40, 40), width=4, joint="curve")


@pytest.fixture
def wireframe(tmp_path: Path) -> Path:
    """A 800x1000 wireframe: a headline box, an image placeholder (a crossed box), a button."""
    rng = random.Random(3)
    img = Image.new("RGB", (800, 1000), (250, 249, 245))
    d = ImageDraw.Draw(img)
    wobbly_rect(d, (60, 60, 740, 260), rng)
    d.text((400, 160), "SUMMER SALE", fill=(30, 30, 30), font=load_font("lato-bold", 70), anchor="mm")
    wobbly_rect(d, (60, 320, 740, 760), rng)
    d.line((60, 320, 740, 760), fill=(60, 60, 60), width=3)
    d.line((740, 320, 60, 760), fill=(60, 60, 60), width=3)
    wobbly_rect(d, (240, 820, 560, 940), rng)
    d.text((400, 880), "SHOP NOW", fill=(30, 30, 30), font=load_font("lato-regular", 44), anchor="mm")
    path = tmp_path / "wireframe.png"
    img.save(path)
    return path


def test_a_wireframe_is_read_as_boxes_with_their_text(wireframe: Path) -> None:
    layout = read_sketch(Image.open(wireframe))
    assert [r.text for r in layout.regions] == ["SUMMER SALE", None, "SHOP NOW"]
    headline, picture, button = (r.box for r in layout.regions)
    assert abs(headline.x - 0.075) < 0.02 and abs(headline.y - 0.06) < 0.02 and abs(picture.h - 0.44) < 0.03
    assert button.y > 0.8 and 0.25 < button.x < 0.33


def test_run_with_a_sketch_follows_its_layout(wireframe: Path, tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "run"
    code = main(["run", 'A mockup of a shop page that says "WINTER SALE" and "BUY NOW"', "--sketch", str(wireframe),
                 "--out", str(run), "-q"])
    report = json.loads((run / "report.json").read_text())
    assert code == 0, report["summary"]
    plan = report["plan"]
    assert plan["aspect_ratio"] == "4:5" and plan["sketch"] is not None
    texts = {e["content"]: e["region"] for e in plan["text"]}
    assert texts["WINTER SALE"]["y"] < 0.1 and texts["BUY NOW"]["y"] > 0.8, "the brief's text in the sketch's boxes"
    assert len(plan["panels"]) == 1
    final_verdicts = next(c for c in report["candidates"] if c["id"] == report["final"]["candidate"])["verdicts"]
    structure = next(v for v in final_verdicts if v["critic"] == "structure")
    assert structure["passed"], "the structure critic checked the result against the sketch"
    layout = next(r for r in report["requirements"] if r["kind"] == "layout")
    assert layout["verified_by"] == "structure" and layout["status"] == "passed"
    final = np.asarray(Image.open(run / "final.png").convert("RGB")).astype(int)
    h, w = final.shape[:2]
    panel = final[int(0.35 * h):int(0.7 * h), int(0.15 * w):int(0.85 * w)]
    around = final[int(0.3 * h):int(0.32 * h), int(0.15 * w):int(0.85 * w)]
    assert np.abs(panel.mean(axis=(0, 1)) - around.mean(axis=(0, 1))).max() > 20, "the empty box is drawn as a panel"


def test_a_sketch_without_quoted_text_uses_the_words_written_in_it(wireframe: Path, tmp_path: Path) -> None:
    code = main(["run", "A clean mockup", "--sketch", str(wireframe), "--out", str(tmp_path / "run"), "-q"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert code == 0 and [e["content"] for e in report["plan"]["text"]] == ["SUMMER SALE", "SHOP NOW"]


def test_an_unreadable_sketch_is_bad_input(tmp_path: Path, corrupt_png: Path, capsys: Any) -> None:
    assert main(["run", "A mockup", "--sketch", str(corrupt_png), "--out", str(tmp_path / "run"), "-q"]) == 2
    assert "sketch" in capsys.readouterr().err
