"""Bad image inputs on the command line: every one is exit code 2 and a one-line message naming the file.

Each corruption is given to each image argument (`check IMAGE`, `check --reference`, `check --original`,
`check --mask`, `run --reference`) of a real `pixloop` subprocess: never a traceback, never a hang.
"""

from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow

PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]
HANG_TIMEOUT = 20
"""Seconds before a command that should fail at once counts as hanging (the CLI starts in ~1 s)."""


def pixloop(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([*PIXLOOP, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pixloop {' '.join(map(str, args))} hung for {timeout}s instead of refusing the input")


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((160, 120), 64).convert("RGB").save(buf, fmt)  # noise: truncation cuts pixel data
    return buf.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG header declaring a size, with one row of pixel data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + bytes(3 * width))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _corruptions() -> dict[str, tuple[bytes, str]]:
    png, jpg, webp, gif = (_encoded(f) for f in ("PNG", "JPEG", "WEBP", "GIF"))
    return {
        "truncated.png": (png[: len(png) // 2], "is truncated or corrupt"),
        "truncated.jpg": (jpg[: len(jpg) // 2], "is truncated or corrupt"),
        "truncated.webp": (webp[: len(webp) // 2], "is truncated or corrupt"),
        "truncated.gif": (gif[: len(gif) // 2], "is truncated or corrupt"),
        "header-only.jpg": (b"\xff\xd8\xff\xe0\xff\xff", "is truncated or corrupt"),
        "png-magic-then-noise.png": (b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(3000),
                                     "is truncated or corrupt"),
        "zero-bytes.png": (b"", "is empty"),
        "notes.png": (b"meeting notes, not a picture\n", "is not an image"),
        "huge-declared.png": (_png_declaring(100_000, 100_000), "is too large"),
        "layers.psd": (b"8BPS\x00\x01" + bytes(40), "unsupported format"),
    }


CORRUPTIONS = _corruptions()


def _arguments(kind: str, bad: Path, good: Path) -> list[str | Path]:
    return {
        "check IMAGE": ["check", bad],
        "check --reference": ["check", good, "--reference", bad],
        "check --original": ["check", good, "--original", bad],
        "check --mask": ["check", good, "--original", good, "--mask", bad],
        "run --reference": ["run", "a poster for the spring fair", "--reference", bad, "-q"],
    }[kind]


ARGUMENTS = ["check IMAGE", "check --reference", "check --original", "check --mask", "run --reference"]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.png"
    Image.new("RGB", (320, 240), (40, 90, 160)).save(path)
    return path


def assert_refused(proc: subprocess.CompletedProcess[str], bad: Path, expected: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("pixloop: error:")]
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0] and expected in lines[0], lines[0]


@pytest.mark.parametrize("argument", ARGUMENTS)
@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupt_image_is_exit_2_with_a_message_naming_the_file(name, argument, good, tmp_path) -> None:
    data, expected = CORRUPTIONS[name]
    bad = tmp_path / name
    bad.write_bytes(data)
    proc = pixloop(*_arguments(argument, bad, good), cwd=tmp_path)
    assert_refused(proc, bad, expected)
    if argument == "run --reference":
        assert "references[0]: " in proc.stderr


def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "camera.png"
        os.mkfifo(path)
        return path
    if kind == "directory":
        path = tmp_path / "photos.png"
        path.mkdir()
        return path
    return Path("/dev/zero")


SPECIAL = {"fifo": "is a named pipe (FIFO), not an image file", "directory": "is a directory, not an image file",
           "device": "is a device, not an image file"}


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs POSIX special files")
@pytest.mark.parametrize("argument", ARGUMENTS)
@pytest.mark.parametrize("kind", list(SPECIAL))
def test_a_fifo_directory_or_device_fails_fast_instead_of_hanging(kind, argument, good, tmp_path) -> None:
    bad = _special(kind, tmp_path)
    proc = pixloop(*_arguments(argument, bad, good), cwd=tmp_path, timeout=HANG_TIMEOUT)
    assert_refused(proc, bad, SPECIAL[kind])


@pytest.mark.parametrize("text, problem", [("", "text 1 is empty"), ("   ", "text 1 is only whitespace")])
def test_an_empty_text_names_the_text_option(text, problem, good, tmp_path) -> None:
    proc = pixloop("check", good, "--text", text, cwd=tmp_path)
    assert "Traceback" not in proc.stderr and "content" not in proc.stderr, proc.stderr
    assert proc.returncode == 2
    assert f"pixloop: error: --text: {problem}" in proc.stderr


def test_a_second_empty_text_is_named_by_its_position(good, tmp_path) -> None:
    proc = pixloop("check", good, "--text", "SALE", "--text", "", cwd=tmp_path)
    assert proc.returncode == 2 and "--text: text 2 is empty" in proc.stderr, proc.stderr
