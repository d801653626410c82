"""The invisible watermark survives what delivered images meet, names the run, and is absent where not embedded."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.backends.compose import render
from agent.models import Box, Plan, Style, TextElement
from agent.runtime.watermark import PAYLOAD_BITS, Detection, detect, embed, payload_for
from agent.runtime.watermark_codec import CODE_BITS, decode, encode

PHOTO = Path(__file__).resolve().parents[1] / "data" / "photos" / "kodim08_facade.png"
RUN = "thread-7f3a"


def flat_poster(size: int = 512, seed: int = 0, background: str = "solid") -> Image.Image:
    """A flat cream poster with a big dark headline and a line of body text: the mark's hardest case."""
    plan = Plan(prompt="test poster", width=size, height=size, aspect_ratio="1:1", size="1K",
                text=[TextElement(id="h", content="GRAND OPENING", region=Box(x=.06, y=.08, w=.88, h=.25)),
                      TextElement(id="b", content="Saturday at noon, free entry", role="body",
                                  region=Box(x=.1, y=.6, w=.8, h=.1))],
                style=Style(background=background, palette=["#f4efe6", "#1d2b4f", "#e4572e"], text_color="#1d2b4f"))
    return render(plan, seed)[0].convert("RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.fixture(scope="module")
def poster() -> Image.Image:
    return flat_poster()


@pytest.fixture(scope="module")
def marked(poster: Image.Image) -> Image.Image:
    return embed(poster, payload_for(RUN))


def test_the_mark_survives_jpeg_75_on_a_compose_poster(marked: Image.Image) -> None:
    found = detect(jpeg(marked, 75))
    assert found.present and found.payload == payload_for(RUN)


def test_the_mark_survives_a_half_size_resize(marked: Image.Image) -> None:
    half = marked.resize((marked.width // 2, marked.height // 2), Image.Resampling.LANCZOS)
    found = detect(half)
    assert found.present and found.payload == payload_for(RUN)


def test_a_10_percent_crop_keeps_the_mark(marked: Image.Image) -> None:
    w, h = marked.size  # 90% of each side kept, off centre: the tile scale and offset both change
    found = detect(marked.crop((round(.07 * w), round(.07 * h), round(.97 * w), round(.97 * h))))
    assert found.present and found.payload == payload_for(RUN)


def test_the_payload_read_back_is_the_runs(poster: Image.Image) -> None:
    a, b = payload_for("thread-a"), payload_for("thread-b")
    assert len(a) * 8 == PAYLOAD_BITS and a != b and payload_for("thread-a") == a
    assert RUN.encode() not in payload_for(RUN)  # a hash, not the id or the prompt
    found = detect(embed(poster, b))
    assert isinstance(found, Detection) and found.present
    assert found.payload == b and found.hex == b.hex() and found.confidence > 0.9


def test_a_photo_carries_the_mark_too() -> None:
    photo = Image.open(PHOTO).convert("RGB")
    marked = embed(photo, payload_for(RUN))
    diff = np.asarray(marked, np.float32) - np.asarray(photo, np.float32)
    assert 10 * np.log10(255**2 / np.mean(diff**2)) >= 38  # PSNR
    assert detect(jpeg(marked, 75)).payload == payload_for(RUN)


@pytest.mark.parametrize("kind", ["white", "cream", "black", "poster", "photo", "noise", "gradient"])
def test_an_unmarked_image_has_no_mark(kind: str) -> None:
    rng = np.random.default_rng(3)
    images = {
        "white": lambda: Image.new("RGB", (512, 512), "white"),
        "cream": lambda: Image.new("RGB", (640, 480), "#f4efe6"),
        "black": lambda: Image.new("RGB", (512, 384), "black"),
        "poster": lambda: flat_poster(seed=5, background="gradient"),
        "photo": lambda: Image.open(PHOTO).convert("RGB"),
        "noise": lambda: Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)),
        "gradient": lambda: Image.fromarray(np.tile(np.linspace(0, 255, 600, dtype=np.uint8), (400, 1))),
    }
    found = detect(images[kind]())
    assert not found.present and found.payload is None and found.hex is None


def test_embedding_changes_a_flat_poster_by_at_most_a_few_grey_levels(poster: Image.Image,
                                                                      marked: Image.Image) -> None:
    diff = np.abs(np.asarray(marked, np.int16) - np.asarray(poster, np.int16))
    assert diff.max() <= 4  # grey levels, any channel
    assert diff.mean() <= 2.0
    assert marked.size == poster.size and marked.mode == poster.mode


def test_alpha_and_grey_images_keep_their_mode(poster: Image.Image) -> None:
    rgba = poster.convert("RGBA")
    out = embed(rgba, payload_for(RUN))
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], np.asarray(rgba)[..., 3])
    assert embed(poster.convert("L"), payload_for(RUN)).mode == "L"


def test_the_code_corrects_weak_bits_and_rejects_a_wrong_crc() -> None:
    bits = encode(payload_for(RUN))
    soft = (2.0 * bits - 1.0) * 5
    soft[[3, 17]] *= -0.1  # two weak bits read wrong: the Chase search flips them back
    assert decode(soft)[0] == payload_for(RUN)
    soft = (2.0 * bits - 1.0) * 5
    soft[[3, 17, 30]] *= -1  # three confident errors: the CRC refuses instead of guessing
    assert decode(soft)[0] is None and soft.size == CODE_BITS
