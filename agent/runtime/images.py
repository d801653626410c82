"""Safe image decoding: every image that enters pixloop passes through here.

Rejects non-images, truncated files and decompression bombs with a message that says
which file and why, instead of letting Pillow crash or allocate gigabytes.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from agent.models.errors import ImageInputError

MAX_PIXELS = 80_000_000
"""Largest image accepted (80 MP, above 8K x 8K); anything bigger is treated as a decompression bomb."""
MAX_FILE_BYTES = 100 * 1024 * 1024


def _open_checked(fp, label: str, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)
        except UnidentifiedImageError:
            raise ImageInputError(f"{label} is not an image Pillow can read") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageInputError(f"{label} is too large (decompression bomb guard)") from None
    w, h = img.size
    if w * h > max_pixels:
        raise ImageInputError(
            f"{label} has {w}x{h} = {w * h / 1e6:.0f} MP, above the {max_pixels / 1e6:.0f} MP limit"
        )
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(f"{label} is truncated or corrupt ({e})") from None
    return img


def validate_image_file(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Check that a file exists and decodes fully; return its size. Raises ImageInputError."""
    p = Path(path)
    if not p.exists():
        raise ImageInputError(f"file not found: {p}")
    if not p.is_file():
        raise ImageInputError(f"not a file: {p}")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ImageInputError(f"{p} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    if p.stat().st_size == 0:
        raise ImageInputError(f"{p} is empty")
    with p.open("rb") as fh:
        img = _open_checked(fh, str(p), max_pixels)
        return img.size


def check_references(paths: Sequence[str | Path], field: str = "references") -> None:
    """Every reference file exists and decodes; raises ImageInputError naming `field[i]` and the reason."""
    for i, p in enumerate(paths):
        try:
            validate_image_file(p)
        except ImageInputError as e:
            raise ImageInputError(f"{field}[{i}]: {e}") from None


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode a file into an RGB or RGBA image (EXIF orientation applied)."""
    from PIL import ImageOps

    p = Path(path)
    if not p.exists():
        raise ImageInputError(f"file not found: {p}")
    with p.open("rb") as fh:
        img = _open_checked(fh, str(p), max_pixels)
    img = ImageOps.exif_transpose(img)
    has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
    return img.convert("RGBA" if has_alpha else "RGB")


def decode_image_bytes(data: bytes, label: str = "image data", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode bytes received from a backend; raise ImageInputError if they are not a whole image."""
    if not data:
        raise ImageInputError(f"{label} is empty")
    img = _open_checked(io.BytesIO(data), label, max_pixels)
    has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
    target = "RGBA" if has_alpha else "RGB"
    return img if img.mode == target else img.convert(target)


def sniff_mime(data: bytes) -> str | None:
    """MIME type from magic bytes; servers sometimes declare the wrong one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def flatten_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as RGB: alpha flattened onto white, palette/grey/16-bit/float converted."""
    im = image
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        bg.alpha_composite(im)
        return bg.convert("RGB")
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.astype(np.uint8), "L").convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")
