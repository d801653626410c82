"""Brief validation and canvas arithmetic: bad input is rejected with the field named."""

from __future__ import annotations

import pytest
from PIL import Image
from pydantic import ValidationError

from agent.interfaces.api import BriefError, make_brief
from agent.models import ASPECT_RATIOS, Box, Brief, canvas_size


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_canvas_size_keeps_long_side_and_ratio(ratio: str) -> None:
    a, b = (int(x) for x in ratio.split(":"))
    for tier, long_side in (("1K", 1024), ("2K", 2048), ("4K", 4096)):
        w, h = canvas_size(ratio, tier)
        assert max(w, h) == long_side
        assert min(w, h) % 8 == 0
        assert abs(w / h - a / b) / (a / b) < 0.02


def test_canvas_size_rejects_unknown_ratio() -> None:
    with pytest.raises(ValueError, match="unknown aspect ratio '7:3'"):
        canvas_size("7:3", "1K")


def test_empty_prompt_is_rejected_naming_the_field() -> None:
    with pytest.raises(BriefError, match=r"^prompt: prompt is empty"):
        make_brief("   ")


def test_unknown_aspect_ratio_is_rejected_naming_the_field() -> None:
    with pytest.raises(BriefError, match=r"aspect_ratio: .*got '7:3'"):
        make_brief("a poster", aspect="7:3")


def test_negative_budget_is_rejected_naming_the_field() -> None:
    with pytest.raises(BriefError, match=r"max_iterations: .*greater than or equal to 1.*got -1"):
        make_brief("a poster", max_iterations=-1)
    with pytest.raises(BriefError, match=r"max_cost: .*got -2"):
        make_brief("a poster", max_cost=-2)


def test_threshold_outside_unit_interval_is_rejected() -> None:
    with pytest.raises(BriefError, match=r"thresholds: threshold for 'ocr' is 1.5"):
        make_brief("a poster", thresholds={"ocr": 1.5})


def test_missing_reference_file_is_rejected(tmp_path) -> None:
    with pytest.raises(BriefError, match=r"references: references\[0\]: file not found: .*nope.png"):
        make_brief("a poster", references=[tmp_path / "nope.png"])


def test_corrupt_reference_file_is_rejected(corrupt_png) -> None:
    with pytest.raises(BriefError, match=r"references\[0\]: .*truncated or corrupt"):
        make_brief("a poster", references=[corrupt_png])


def test_non_image_reference_is_rejected(tmp_path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("not an image")
    with pytest.raises(BriefError, match=r"is not an image"):
        make_brief("a poster", references=[p])


def test_decompression_bomb_reference_is_rejected(tmp_path, monkeypatch) -> None:
    import agent.runtime.images as images

    p = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(p)
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)
    with pytest.raises(ValueError, match=r"9 MP, above the 1 MP limit"):
        images.validate_image_file(p, max_pixels=images.MAX_PIXELS)


def test_brief_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Brief(prompt="x", colour="red")  # type: ignore[call-arg]


def test_box_describes_its_position_in_words() -> None:
    assert Box(x=0.3, y=0.02, w=0.4, h=0.2).describe() == "top centre"
    assert Box(x=0.0, y=0.8, w=0.2, h=0.2).describe() == "bottom left"
    assert Box(x=0.4, y=0.4, w=0.2, h=0.2).describe() == "centre"


def test_make_brief_keeps_a_data_url_reference_byte_for_byte(tmp_path) -> None:
    import base64
    import io

    from PIL import Image

    from agent import make_brief

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (250, 250, 250)).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    url_with_slashes = url[:40] + "//" + url[40:]  # base64 may hold "//", which a Path would fold into "/"
    brief = make_brief("A portrait of this person", references=[url, url_with_slashes], source=url)

    assert brief.references == [url, url_with_slashes] and brief.source == url
