"""`pixloop check`: critics on an existing image, as a table or JSON, with exit codes 0/3/2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from agent.backends.compose import render
from agent.interfaces.cli import main
from agent.models import Box, Plan, Style, TextElement, canvas_size


def poster(tmp_path: Path, text: str, name: str = "poster.png", aspect: str = "16:9") -> Path:
    w, h = canvas_size(aspect, "1K")
    plan = Plan(prompt="p", width=w, height=h, aspect_ratio=aspect, size="1K",
                text=[TextElement(id="headline", content=text, region=Box(x=0.1, y=0.3, w=0.8, h=0.4))],
                style=Style(background="solid", palette=["#1d2b4f", "#3f6fb5", "#f2c14e"], font="lato-black"))
    img, _ = render(plan, 0, None)
    path = tmp_path / name
    img.save(path)
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_passes_a_correct_poster_with_a_table(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, poster(tmp_path, "GRAND OPENING"), "--text", "GRAND OPENING", "--critics", "ocr")
    assert code == 0
    assert "ocr" in out and "pass" in out and "all critics passed" in out


def test_check_fails_a_misspelt_poster_naming_the_wrong_word(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, poster(tmp_path, "GRAND OPNING"), "--text", "GRAND OPENING", "--critics", "ocr",
                       "--json")
    assert code == 3
    result = json.loads(out)
    (ocr,) = result["critics"]
    assert set(ocr) >= {"name", "score", "passed", "threshold", "feedback", "evidence"}
    assert ocr["name"] == "ocr" and not ocr["passed"] and ocr["score"] < ocr["threshold"]
    assert "OPNING" in ocr["feedback"] and "OPENING" in ocr["feedback"]
    assert result["passed"] is False


def test_check_json_lists_every_applicable_critic_by_default(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, poster(tmp_path, "HELLO"), "--text", "HELLO", "--json")
    names = [c["name"] for c in json.loads(out)["critics"]]
    assert "ocr" in names and len(names) == len(set(names))
    assert code in (0, 3)


@pytest.mark.parametrize("extra, message", [
    (["--critics", "ocr"], "nothing for ocr to check"),
    (["--critics", "sharpness"], "unknown critic(s) sharpness"),
    (["--size", "big"], "--size: expected WIDTHxHEIGHT"),
    (["--aspect", "7:3"], "--aspect: unknown aspect ratio '7:3'"),
    (["--mask", "MASK"], "--mask needs --original"),
    (["--threshold", "ocr=1.5", "--text", "X"], "thresholds are scores in [0, 1]"),
    (["--reference", "/nonexistent/ref.jpg"], "file not found: /nonexistent/ref.jpg"),
])
def test_check_bad_input_exits_2_naming_the_problem(tmp_path, capsys, extra, message) -> None:
    image = poster(tmp_path, "HELLO")
    mask = tmp_path / "mask.png"
    Image.new("L", (8, 8), 255).save(mask)
    extra = [str(mask) if a == "MASK" else a for a in extra]
    code, _, err = run(capsys, image, *extra)
    assert code == 2 and message in err


def test_check_rejects_a_file_that_is_not_an_image(tmp_path, capsys) -> None:
    p = tmp_path / "report.png"
    p.write_text("hello")
    code, _, err = run(capsys, p)
    assert code == 2 and "is not an image" in err


def test_check_rejects_a_truncated_image(tmp_path, capsys, corrupt_png) -> None:
    code, _, err = run(capsys, corrupt_png)
    assert code == 2 and "truncated or corrupt" in err
