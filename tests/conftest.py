"""Shared fixtures: paths to the repo and to ../shared/data, small generated images, and a real PostgreSQL server
(`postgres_url`, from tests/postgres.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from postgres import postgres_url  # noqa: F401 - the fixture, registered here (tests/ is on sys.path for conftest)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PIXLOOP_SHARED", REPO.parent / "shared"))
FACES = SHARED / "data" / "faces"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not FACES.exists():
        pytest.skip(f"face photos not found at {FACES}")
    return FACES


@pytest.fixture
def product_png(tmp_path: Path) -> Path:
    """A red mug-like shape on a white background."""
    img = Image.new("RGB", (400, 300), "white")
    d = ImageDraw.Draw(img)
    d.ellipse((120, 60, 280, 240), fill=(200, 30, 30))
    path = tmp_path / "product.png"
    img.save(path)
    return path


@pytest.fixture
def corrupt_png(tmp_path: Path) -> Path:
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), "blue").save(good)
    data = good.read_bytes()
    path = tmp_path / "corrupt.png"
    path.write_bytes(data[: len(data) // 2])
    return path


def same_image_delivered(final: Path, candidate: Path) -> None:
    """`final` is `candidate` as pixloop delivers it: same size, pixels within the invisible watermark's few grey
    levels, and the watermark present."""
    import numpy as np

    from agent.runtime.watermark import detect

    a, b = Image.open(final).convert("RGB"), Image.open(candidate).convert("RGB")
    assert a.size == b.size
    diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    assert diff.max() <= 12 and diff.mean() <= 4, (int(diff.max()), float(diff.mean()))
    assert detect(a).present, "the delivered image carries the run's watermark"


@pytest.fixture
def delivered_from():
    return same_image_delivered
