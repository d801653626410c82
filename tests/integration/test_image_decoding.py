"""Image decoding with limits (`agent.runtime.images`, `ArtifactStore.put_file`) on real, broken files.

Every bad input is an ImageInputError naming the file and what is wrong; special files are refused before
anything opens them; references are stored byte for byte within the cap and reduced (and logged) above it;
the peak memory of decoding the largest accepted image, measured in a subprocess, stays under 1 GiB.
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from agent.models.errors import ImageInputError, InputError
from agent.runtime import images
from agent.runtime.images import (
    INPUT_MAX_SIDE,
    MAX_PIXELS,
    check_references,
    checked_image_path,
    decode_image_bytes,
    load_image,
    load_input_image,
    validate_image_file,
)
from agent.runtime.store import ArtifactStore

# ---------------------------------------------------------------------------------------------- crafted files


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def flat_png(width: int, height: int, *, orientation: int | None = None, rows: int | None = None) -> bytes:
    """An RGBA PNG of one colour, written row by row (a 50 MP one is ~200 KB and costs no memory to make);
    `rows` stops the pixel data early (a declared size with no data behind it)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr)]
    if orientation is not None:
        out.append(_chunk(b"eXIf", _exif(orientation)[6:]))  # the chunk holds the TIFF data, without "Exif\0\0"
    z = zlib.compressobj(9)
    row = b"\x00" + bytes((200, 30, 30, 255)) * width
    idat = b"".join(z.compress(row) for _ in range(height if rows is None else rows)) + z.flush()
    out += [_chunk(b"IDAT", idat), _chunk(b"IEND", b"")]
    return b"".join(out)


def _encoded(fmt: str, size: tuple[int, int] = (160, 120), **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 64).convert("RGB").save(buf, fmt, **kw)  # noise: truncation cuts pixel data
    return buf.getvalue()


def corruptions() -> dict[str, tuple[bytes, str]]:
    """file name -> (bytes, what the message must say)."""
    png, jpg, webp, gif = (_encoded(f) for f in ("PNG", "JPEG", "WEBP", "GIF"))
    rng = random.Random(7)
    return {
        "truncated.png": (png[: len(png) // 2], "truncated or corrupt"),
        "truncated.jpg": (jpg[: len(jpg) // 2], "truncated or corrupt"),
        "truncated.webp": (webp[: len(webp) // 2], "truncated or corrupt"),
        "truncated.gif": (gif[: len(gif) // 2], "truncated or corrupt"),
        "header-only.jpg": (b"\xff\xd8\xff\xe0\xff\xff", "truncated or corrupt"),
        "png-magic-then-noise.png": (b"\x89PNG\r\n\x1a\n" + rng.randbytes(2000), "truncated or corrupt"),
        "png-cut-in-header.png": (png[:20], "truncated or corrupt"),
        "zero-bytes.png": (b"", "empty"),
        "notes.png": (b"not an image, just some text\n", "not an image"),
        "huge-declared.png": (flat_png(100_000, 100_000, rows=1), "too large"),
        "just-above-limit.png": (flat_png(7072, 7072, rows=1), "above the 50 MP limit"),
        "layers.psd": (b"8BPS\x00\x01" + bytes(40), "unsupported format"),
    }


CASES = corruptions()


@pytest.fixture
def bad_file(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str]:
    name = request.param
    data, expected = CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    return path, expected


def _calls(tmp_path: Path) -> dict[str, Callable[[Path], object]]:
    store = ArtifactStore(tmp_path / "store")
    return {"validate_image_file": validate_image_file, "load_image": load_image,
            "load_input_image": load_input_image, "put_file": store.put_file,
            "decode_image_bytes": lambda p: decode_image_bytes(p.read_bytes(), label=str(p))}


# ---------------------------------------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("bad_file", sorted(CASES), indirect=True)
@pytest.mark.parametrize("call", ["validate_image_file", "load_image", "load_input_image", "put_file",
                                  "decode_image_bytes"])
def test_each_corruption_is_an_image_input_error_naming_the_file_and_the_problem(bad_file, call, tmp_path) -> None:
    path, expected = bad_file
    with pytest.raises(ImageInputError) as info:
        _calls(tmp_path)[call](path)
    message = str(info.value)
    assert str(path) in message and expected in message, message
    assert isinstance(info.value, InputError) and info.value.exit_code == 2


def test_messages_say_which_format_and_what_failed(tmp_path) -> None:
    expected = {
        "truncated.png": "is truncated or corrupt (PNG data: image file is truncated",
        "header-only.jpg": "is truncated or corrupt (JPEG header:",
        "png-magic-then-noise.png": "is truncated or corrupt: not a readable PNG file",
        "zero-bytes.png": "is empty (0 bytes), not an image",
        "notes.png": "is not an image: no image format recognised (pixloop reads PNG, JPEG",
        "huge-declared.png": "is too large: 10,000 MP, above the 50 MP limit",
        "just-above-limit.png": "is too large: 7072x7072 = 50.01 MP, above the 50 MP limit",
        "layers.psd": "is a Photoshop (PSD) file, an unsupported format",
    }
    for name, fragment in expected.items():
        path = tmp_path / name
        path.write_bytes(CASES[name][0])
        with pytest.raises(ImageInputError) as info:
            load_image(path)
        assert str(info.value).startswith(f"{path} {fragment}"), str(info.value)


def test_check_references_prefixes_the_field_and_index(tmp_path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(CASES["header-only.jpg"][0])
    with pytest.raises(ImageInputError, match=rf"^refs\[1\]: {bad} is truncated or corrupt"):
        check_references([good, bad], field="refs")


def test_corrupt_exif_in_a_decodable_jpeg_is_tolerated(tmp_path) -> None:
    p = tmp_path / "badexif.jpg"
    Image.new("RGB", (32, 24)).save(p, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + bytes(10))
    assert load_image(p).size == (32, 24)


# ---------------------------------------------------------------------------------------------- special files


def _returns_within(seconds: float, fn: Callable[[], object]) -> BaseException | None:
    """Run fn in a daemon thread; fail the test (instead of hanging it) if it blocks."""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            box.append(None)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"blocked for more than {seconds}s (it opened the file)"
    return box[0]


def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "pipe.png"
        os.mkfifo(path)
        return path
    if kind == "directory":
        path = tmp_path / "folder.png"
        path.mkdir()
        return path
    if kind == "socket":
        path = tmp_path / "s.png"
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return path
    if kind == "symlink to a fifo":
        fifo = _special("fifo", tmp_path)
        link = tmp_path / "link.png"
        link.symlink_to(fifo)
        return link
    return Path("/dev/zero")


SPECIAL = {"fifo": "a named pipe (FIFO)", "directory": "a directory", "socket": "a socket",
           "symlink to a fifo": "a named pipe (FIFO)", "device": "a device"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX special files")
@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize("call", ["validate_image_file", "load_image", "load_input_image", "put_file",
                                  "checked_image_path"])
def test_special_files_are_refused_by_type_without_being_opened(kind, call, tmp_path) -> None:
    path = _special(kind, tmp_path)
    fn = checked_image_path if call == "checked_image_path" else _calls(tmp_path)[call]
    error = _returns_within(5, lambda: fn(path))
    assert isinstance(error, ImageInputError), error
    assert str(error) == f"{path} is {SPECIAL[kind]}, not an image file"


def test_missing_file_and_bad_path_are_named(tmp_path) -> None:
    with pytest.raises(ImageInputError, match=r"^file not found: .*nope\.png$"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageInputError, match=r"^file not found: "):
        load_image(tmp_path / "nope.png" / "below.png")
    with pytest.raises(ImageInputError, match=r"is not a valid path"):
        load_image("bad\x00name.png")


def test_an_oversized_file_is_refused_before_reading(tmp_path, monkeypatch) -> None:
    p = tmp_path / "big.png"
    p.write_bytes(flat_png(64, 64))
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    with pytest.raises(ImageInputError, match=rf"^{p} is too large: .* MiB file limit"):
        validate_image_file(p)


# ---------------------------------------------------------------------------------------------- decoding policy


def test_a_within_cap_reference_is_stored_byte_for_byte(tmp_path, product_png) -> None:
    store = ArtifactStore(tmp_path / "run")
    ref = store.put_file(product_png)
    assert store.path(ref).read_bytes() == product_png.read_bytes()
    assert (ref.width, ref.height) == (400, 300)
    assert not [e for e in store.events() if e["event"] == "input_reduced"]


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_a_large_reference_is_stored_reduced_and_logged(tmp_path, fmt, mime) -> None:
    src = tmp_path / f"big.{fmt.lower()}"
    Image.new("RGB", (6000, 2000), (10, 120, 200)).save(src, fmt)
    store = ArtifactStore(tmp_path / "run")
    ref = store.put_file(src)

    assert (ref.width, ref.height) == (INPUT_MAX_SIDE, 1365) and ref.mime == mime
    stored = store.open(ref)
    assert stored.size == (INPUT_MAX_SIDE, 1365)
    assert max(abs(a - b) for a, b in zip(stored.getpixel((2000, 700)), (10, 120, 200), strict=True)) <= 3
    (event,) = [e for e in store.events() if e["event"] == "input_reduced"]
    assert event["file"] == str(src) and event["original_size"] == [6000, 2000]
    assert event["stored_size"] == [INPUT_MAX_SIDE, 1365] and event["stored"] == ref.path
    assert event["original_format"] == fmt and event["max_side"] == INPUT_MAX_SIDE


def test_a_reduced_copy_keeps_an_rgb_colour_profile_and_drops_a_cmyk_one(tmp_path) -> None:
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = srgb[:16] + b"CMYK" + srgb[20:]  # the header's colour space is all that decides
    Image.new("RGB", (5000, 100), "white").save(tmp_path / "rgb.png", icc_profile=srgb)
    Image.new("CMYK", (5000, 100), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg", icc_profile=cmyk)
    store = ArtifactStore(tmp_path / "run")
    rgb_ref, cmyk_ref = store.put_file(tmp_path / "rgb.png"), store.put_file(tmp_path / "cmyk.jpg")
    with Image.open(store.path(rgb_ref)) as im:
        assert im.info.get("icc_profile") == srgb
    with Image.open(store.path(cmyk_ref)) as im:
        assert im.mode == "RGB" and "icc_profile" not in im.info


def test_a_large_jpeg_reference_is_decoded_at_reduced_scale(tmp_path) -> None:
    src = tmp_path / "big.jpg"
    Image.new("RGB", (9000, 3000), "white").save(src)
    inp = load_input_image(src)
    assert inp.size == (9000, 3000) and inp.image.size == (INPUT_MAX_SIDE, 1365) and inp.reduced
    assert inp.data == src.read_bytes()


def test_validation_of_a_large_reference_checks_without_resizing(tmp_path) -> None:
    src = tmp_path / "big.png"
    src.write_bytes(flat_png(5000, 100))
    assert validate_image_file(src) == (5000, 100)


def test_exif_orientation_is_applied_once_everywhere(tmp_path) -> None:
    src = tmp_path / "phone.jpg"
    img = Image.new("RGB", (60, 40), "white")
    img.paste((255, 0, 0), (0, 0, 10, 10))  # red in the top-left corner as stored
    img.save(src, exif=_exif(6), quality=95)  # 6: the camera was turned; display rotated 90 degrees clockwise

    upright = load_image(src)
    assert upright.size == (40, 60)
    assert upright.getpixel((35, 3))[0] > 200  # the red corner is now top-right
    store = ArtifactStore(tmp_path / "run")
    ref = store.put_file(src)
    assert store.path(ref).read_bytes() == src.read_bytes()  # within the cap: the bytes as they are
    assert (ref.width, ref.height) == (40, 60) == store.open(ref).size  # the ref's size is what decoding gives
    assert ImageOps.exif_transpose(upright).size == (40, 60)  # no orientation left to turn it a second time


def test_a_large_rotated_reference_is_reduced_then_turned_upright(tmp_path) -> None:
    src = tmp_path / "big.png"
    src.write_bytes(flat_png(6000, 3000, orientation=8))
    store = ArtifactStore(tmp_path / "run")
    ref = store.put_file(src)
    assert (ref.width, ref.height) == (2048, INPUT_MAX_SIDE)
    (event,) = [e for e in store.events() if e["event"] == "input_reduced"]
    assert event["original_size"] == [3000, 6000]


def test_sixteen_bit_greyscale_is_scaled_not_clipped_to_white(tmp_path) -> None:
    src = tmp_path / "g16.png"
    Image.new("I;16", (8, 8), 32768).save(src)
    img = load_image(src)
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (128, 128, 128)


def test_palette_with_transparency_and_grey_alpha_become_rgba(tmp_path) -> None:
    p = tmp_path / "p.png"
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0] * 256)
    palette.save(p, transparency=0)
    la = tmp_path / "la.png"
    Image.new("LA", (8, 8), (10, 0)).save(la)
    assert load_image(p).mode == "RGBA" and load_image(la).mode == "RGBA"
    assert load_image(p).getpixel((0, 0))[3] == 0


def test_decode_image_bytes_rejects_empty_and_names_the_label() -> None:
    with pytest.raises(ImageInputError, match=r"^backend image is empty$"):
        decode_image_bytes(b"", label="backend image")
    with pytest.raises(ImageInputError, match=r"^backend image is truncated or corrupt"):
        decode_image_bytes(CASES["truncated.png"][0], label="backend image")


# ---------------------------------------------------------------------------------------------- memory

PEAK_LIMIT_MB = 1024

PEAK_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from agent.runtime import images
    from agent.runtime.store import ArtifactStore
    call, path, store_dir = sys.argv[1:4]
    try:
        if call == "put_file":
            ref = ArtifactStore(store_dir).put_file(path)
            result = [ref.width, ref.height]
        else:
            out = getattr(images, call)(path)
            result = list(getattr(out, "size", out))
    except images.ImageInputError as e:
        result = str(e)
    try:  # Linux: the high-water mark of this process's memory (ru_maxrss would include the parent's, see below)
        with open("/proc/self/status") as fh:
            peak = next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    print(json.dumps({"peak_mb": peak, "result": result}))
""")


def peak_of(call: str, path: Path, tmp_path: Path) -> dict[str, Any]:
    """Peak memory of one call in a fresh interpreter. On Linux `ru_maxrss` survives exec: a child of this
    (large) pytest process starts with pytest's peak, so the child reads its own VmHWM instead."""
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, call, str(path), str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def largest_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The largest accepted size (just under MAX_PIXELS), in the decoders that cost most, and one just above."""
    side = int(MAX_PIXELS**0.5)
    assert side * side <= MAX_PIXELS < (side + 1) ** 2
    root = tmp_path_factory.mktemp("largest")
    files = {"rotated.png": flat_png(side, side, orientation=6), "above.png": flat_png(side + 1, side + 1)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    img = Image.new("RGB", (side, side), (200, 30, 30))
    img.save(root / "rotated.jpg", quality=90, exif=_exif(6))
    img.save(root / "flat.webp", lossless=True, method=0)  # Pillow's WebP decoding holds the most copies
    del img
    return {name: root / name for name in ("rotated.png", "rotated.jpg", "flat.webp", "above.png")}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage is POSIX")
@pytest.mark.parametrize("call, name", [
    ("load_image", "rotated.png"), ("load_image", "rotated.jpg"), ("load_image", "flat.webp"),
    ("put_file", "rotated.png"), ("put_file", "rotated.jpg"), ("validate_image_file", "rotated.png"),
])
def test_peak_memory_of_the_largest_accepted_image_is_under_1_gib(call, name, largest_files, tmp_path) -> None:
    side = int(MAX_PIXELS**0.5)
    out = peak_of(call, largest_files[name], tmp_path)
    expected = {"load_image": [side, side], "validate_image_file": [side, side],
                "put_file": [INPUT_MAX_SIDE, INPUT_MAX_SIDE]}[call]
    assert out["result"] == expected
    assert out["peak_mb"] < PEAK_LIMIT_MB, f"{call}({name}) peaked at {out['peak_mb']:.0f} MB"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage is POSIX")
@pytest.mark.parametrize("call", ["load_image", "put_file"])
def test_one_pixel_row_above_the_limit_is_refused_before_decoding(call, largest_files, tmp_path) -> None:
    out = peak_of(call, largest_files["above.png"], tmp_path)
    assert isinstance(out["result"], str) and "above the 50 MP limit" in out["result"]
    assert out["peak_mb"] < 200, f"refusing took {out['peak_mb']:.0f} MB"
