"""Safe image decoding: every image that enters pixloop passes through here.

Every bad input becomes an `ImageInputError` whose message names the file and says what is wrong
(missing, not a regular file, empty, not an image, an unsupported format, truncated or corrupt, too
large); no decoder exception escapes and nothing blocks.

Decoding policy (the peak memory of decoding any single input stays under 1 GB):

- **Paths are checked before anything is opened** (`checked_image_path`): `os.stat`, then only a regular
  file of 1 byte to `MAX_FILE_BYTES` is accepted; a directory, a named pipe (reading one blocks forever),
  a socket or a device (`/dev/zero` never ends) is refused by its type. The file is then opened without
  blocking and checked again on the open descriptor, so it cannot be swapped for a pipe in between.
- **Only `ACCEPTED_FORMATS` are decoded**: common raster formats. Pillow's other plugins (EPS, which runs
  Ghostscript; exotic scientific formats) are never tried on untrusted files.
- **Absolute pixel limit `MAX_PIXELS` (50 MP), checked on the declared size before a pixel is
  decoded**, for every input. Pillow keeps at most 4 bytes per pixel (RGB is stored as RGBX), so a
  50 MP image is 200 MB decoded; with the one copy that turning it upright needs, ~0.43 GB. The costliest
  decoder is WebP (libwebp's canvas, the frame handed to Python and the image: ~0.81 GB at 50 MP, 1.27 GB
  at the previous 80 MP limit), which is what sets the limit. 50 MP is above every size pixloop
  generates (4K long side, ~17 MP) and every common camera.
- **References, edit sources and masks are decoded reduced** to `INPUT_MAX_SIDE` (4096 px, the long
  side of the largest canvas pixloop makes: a reference never needs more detail than the canvas it is
  placed on). A JPEG of twice the cap or more is decoded by libjpeg at 1/2, 1/4 or 1/8 scale
  (`Image.draft`), so it never exists at full size; other images are reduced right after decoding, before
  EXIF orientation and mode conversion, each step dropping the image before it, so no full-size copies
  pile up (`load_input_image`). `ArtifactStore.put_file` stores the file's bytes as they are when the
  image is within the cap, else a re-encoded reduced copy, and logs `input_reduced`.
  `validate_image_file` (references when a run starts) decodes the same way but resizes nothing.
- **The image `pixloop check` evaluates, and images from backends, keep their real size**
  (`load_image`, `decode_image_bytes`; the spec critic checks the delivered size), bounded by
  `MAX_PIXELS`, and are not copied needlessly: the mode is only converted when it differs, EXIF
  orientation is applied before conversion (on the image as decoded, never larger than the converted
  one), and each step drops the image before it, so at most two full-size images exist at once.
- 16-bit greyscale (`I;16`) is scaled to 8 bits (Pillow's own conversion clips it to white).

Measured peak RSS of one call in a fresh interpreter (~50 MB of it is Python, numpy and Pillow), at the
largest accepted size (`tests/integration/test_image_decoding.py` asserts < 1 GiB): `load_image` of a
50 MP PNG or JPEG 0.24 GB, 0.43 GB with EXIF rotation (was 0.43 GB without rotation: a needless copy);
`put_file` of a 50 MP reference 0.42-0.43 GB (stored at 4096 px); any WebP 0.81 GB. A file above the
limit is refused at ~50 MB.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from agent.models.errors import ImageInputError

MAX_PIXELS = 50_000_000
"""Largest image decoded, any input (50 MP = 200 MB decoded): a larger declared size is refused before decoding."""
MAX_FILE_BYTES = 100 * 1024 * 1024
"""Largest image file read (100 MiB)."""
INPUT_MAX_SIDE = 4096
"""Long side references, edit sources and masks are decoded (and stored) at, at most: the largest canvas (4K)."""

_WANTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
Image.init()
ACCEPTED_FORMATS: tuple[str, ...] = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)
"""Pillow formats pixloop decodes (MPO, the multi-picture JPEG of phones, opens as JPEG); no other plugin is tried."""
_FORMAT_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP",
                 "TIFF": "TIFF", "AVIF": "AVIF"}
_ACCEPTED_TEXT = ", ".join(_FORMAT_NAMES[f] for f in ACCEPTED_FORMATS)

DECODER_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError, struct.error, ZeroDivisionError,
    OverflowError, Image.DecompressionBombError, Image.DecompressionBombWarning)
"""What Pillow raises on a bad file: its documented errors (OSError, incl. UnidentifiedImageError; SyntaxError;
ValueError; EOFError; struct.error; the decompression-bomb guard) and what its plugins have raised on fuzzed input."""

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}


# ---------------------------------------------------------------------------------------------- paths


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _os_error(p: Path, e: OSError) -> ImageInputError:
    if isinstance(e, (FileNotFoundError, NotADirectoryError)):
        return ImageInputError(f"file not found: {p}")
    if isinstance(e, PermissionError):
        return ImageInputError(f"{p} cannot be read: permission denied")
    return ImageInputError(f"{p} cannot be read: {e.strerror or e}")


def _check_stat(p: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ImageInputError(f"{p} is {_file_kind(st.st_mode)}, not an image file")
    if st.st_size == 0:
        raise ImageInputError(f"{p} is empty (0 bytes), not an image")
    if st.st_size > MAX_FILE_BYTES:
        raise ImageInputError(f"{p} is too large: {st.st_size / 2**20:.0f} MiB, above the "
                              f"{MAX_FILE_BYTES // 2**20} MiB file limit")


def checked_image_path(path: str | Path) -> Path:
    """`path` as a Path if it is an existing regular file of an accepted size; nothing is opened.

    Raises ImageInputError for a missing file, a directory, a named pipe, a socket, a device, an empty
    or an oversized file.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise _os_error(p, e) from None
    except ValueError as e:  # an embedded NUL byte
        raise ImageInputError(f"{str(p)!r} is not a valid path ({e})") from None
    _check_stat(p, st)
    return p


@contextmanager
def _open_image_file(path: str | Path) -> Iterator[tuple[Path, BinaryIO]]:
    """The checked file, opened without blocking and checked again on the descriptor (no swap in between)."""
    p = checked_image_path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise _os_error(p, e) from None
    try:
        _check_stat(p, os.fstat(fd))
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield p, fh


# ---------------------------------------------------------------------------------------------- decoding


def _sniff_format(head: bytes) -> str | None:
    """The format named by a file's magic bytes (accepted or not), for messages about files Pillow cannot open."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:2] == b"BM":
        return "BMP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC/HEIF"
    for magic, name in ((b"8BPS", "Photoshop (PSD)"), (b"%PDF", "PDF"), (b"%!PS", "PostScript/EPS"),
                        (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
                        (b"\xff\x0a", "JPEG XL"), (b"\x00\x00\x00\x0cJXL ", "JPEG XL"), (b"qoif", "QOI"),
                        (b"\x00\x00\x01\x00", "ICO"), (b"DDS ", "DDS")):
        if head.startswith(magic):
            return name
    text = head.lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "SVG"
    return None


def _unidentified(fp: BinaryIO, label: str, head: bytes) -> ImageInputError:
    """Why Pillow could not identify a file: an accepted format with a broken header, another format, or no image."""
    fmt = _sniff_format(head)
    if fmt in ACCEPTED_FORMATS:
        reason = "its header cannot be read"
        try:  # ask that format's plugin alone, for its reason
            fp.seek(0)
            Image.OPEN[fmt][0](fp, "")
        except DECODER_ERRORS as e:
            reason = str(e) or type(e).__name__
        except MemoryError:
            reason = "too large to read"
        return ImageInputError(f"{label} is truncated or corrupt: not a readable {_FORMAT_NAMES[fmt]} file ({reason})")
    if fmt:
        return ImageInputError(f"{label} is a {fmt} file, an unsupported format (pixloop reads {_ACCEPTED_TEXT})")
    return ImageInputError(f"{label} is not an image: no image format recognised (pixloop reads {_ACCEPTED_TEXT})")


def _mp(pixels: int) -> str:
    """Megapixels for a message: `9`, `50.01`, `10,000`."""
    return f"{pixels / 1e6:,.2f}".rstrip("0").rstrip(".")


def _fit(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """`size` scaled down (aspect kept) so its long side is at most `max_side`."""
    w, h = size
    if max_side is None or max(w, h) <= max_side:
        return size
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


@dataclass
class _Decoded:
    image: Image.Image | None  # as decoded (reduced when asked), before orientation and mode conversion
    size: tuple[int, int]  # the declared size, before orientation
    format: str
    orientation: int
    icc_profile: bytes | None

    def take(self) -> Image.Image:
        """The image, handed over: this record lets go of it, so the next full-size step can free it."""
        img, self.image = self.image, None
        if img is None:
            raise RuntimeError("decoded image already taken")
        return img


def _decode(fp: BinaryIO, label: str, *, max_pixels: int, max_side: int | None, reduce: bool = True) -> _Decoded:
    """Open (accepted formats only), check the declared size, decode (JPEG at reduced scale when `max_side`
    asks for less) and, with `reduce`, reduce to `max_side`."""
    head = fp.read(32)
    fp.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")  # damage Pillow tolerates
        try:
            img: Image.Image = Image.open(fp, formats=ACCEPTED_FORMATS)
        except UnidentifiedImageError:
            raise _unidentified(fp, label, head) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            declared = re.search(r"\((\d+) pixels\)", str(e))
            mp = f"{_mp(int(declared.group(1)))} MP" if declared else "far too many pixels"
            raise ImageInputError(f"{label} is too large: {mp}, above the {_mp(max_pixels)} MP limit "
                                  "(decompression bomb guard)") from None
        except MemoryError:
            raise ImageInputError(f"{label} is too large to read") from None
        except DECODER_ERRORS as e:
            name = _FORMAT_NAMES.get(_sniff_format(head) or "", "image")
            raise ImageInputError(f"{label} is truncated or corrupt ({name} header: {e})") from None
        fmt = img.format or "?"
        name = _FORMAT_NAMES.get(fmt, fmt)
        w, h = size = img.size
        if w <= 0 or h <= 0:
            raise ImageInputError(f"{label} is corrupt: its {name} header declares a {w}x{h} image")
        if w * h > max_pixels:
            raise ImageInputError(f"{label} is too large: {w}x{h} = {_mp(w * h)} MP, above the "
                                  f"{_mp(max_pixels)} MP limit")
        target = _fit(size, max_side)
        try:
            if target != size and fmt in ("JPEG", "MPO"):
                img.draft(img.mode, target)  # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never below target
            img.load()
        except MemoryError:
            raise ImageInputError(f"{label} is too large to decode ({w}x{h})") from None
        except DECODER_ERRORS as e:
            raise ImageInputError(f"{label} is truncated or corrupt ({name} data: {e})") from None
        try:
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        except DECODER_ERRORS as e:
            raise ImageInputError(f"{label} has corrupt EXIF metadata ({e})") from None
        icc = img.info.get("icc_profile")
        if reduce and img.size != target:
            # one name for the image throughout, so each full-size step frees the one before it
            img = _convert(_to_8bit(img, label), label, only_for_resize=True)
            straight = img.mode
            try:
                if straight in _PREMULTIPLIED:  # what resize does inside, but without keeping the straight copy
                    img = img.convert(_PREMULTIPLIED[straight])
                img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
                if img.mode != straight:
                    img = img.convert(straight)
            except DECODER_ERRORS as e:
                raise ImageInputError(f"{label} cannot be reduced: {straight} pixels ({e})") from None
    return _Decoded(img, size, fmt, orientation if isinstance(orientation, int) else 1,
                    icc if isinstance(icc, bytes) else None)


def _target_mode(img: Image.Image) -> str:
    has_alpha = img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)
    return "RGBA" if has_alpha else "RGB"


def _to_8bit(img: Image.Image, label: str) -> Image.Image:
    """16-bit greyscale scaled to 8 bits (Pillow's conversion would clip it to white)."""
    if not img.mode.startswith("I;16"):
        return img
    try:
        if img.mode != "I;16":
            img = img.convert("I")
        return img.point(lambda v: v / 256).convert("L")
    except DECODER_ERRORS as e:
        raise ImageInputError(f"{label} has {img.mode} pixels that cannot be converted ({e})") from None


def _convert(img: Image.Image, label: str, only_for_resize: bool = False) -> Image.Image:
    """`img` as RGB or RGBA; with `only_for_resize`, only the modes resizing cannot filter (palette, 1-bit)."""
    if only_for_resize and img.mode not in ("P", "PA", "1"):
        return img
    target = _target_mode(img)
    if img.mode == target:
        return img
    try:
        return img.convert(target)
    except DECODER_ERRORS as e:
        raise ImageInputError(f"{label} has {img.mode} pixels, an unsupported pixel format: cannot convert "
                              f"them to {target} ({e})") from None


def _finish(d: _Decoded, label: str) -> Image.Image:
    """The decoded image upright (EXIF orientation) and as RGB/RGBA, transposed first: the image as decoded is
    never larger than the converted one, so the transposed copy is the smaller of the two."""
    img = _to_8bit(d.take(), label)
    method = _TRANSPOSE.get(d.orientation)
    if method is not None:
        try:
            img = img.transpose(method)
        except DECODER_ERRORS as e:
            raise ImageInputError(f"{label} cannot be turned upright ({e})") from None
        for key in ("exif", "XML:com.adobe.xmp", "xmp", "Raw profile type exif"):
            img.info.pop(key, None)  # orientation applied: the metadata must not turn it again
    return _convert(img, label)


def _upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


# ---------------------------------------------------------------------------------------------- public API


def validate_image_file(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Check that a file is a regular image file that decodes fully; return its size. Raises ImageInputError.

    Costs no more than the decode itself: JPEG is decoded at the scale a reference is, nothing is resized,
    and orientation and conversion are tried on one pixel.
    """
    with _open_image_file(path) as (p, fh):
        d = _decode(fh, str(p), max_pixels=max_pixels, max_side=INPUT_MAX_SIDE, reduce=False)
        _finish(replace(d, image=d.take().crop((0, 0, 1, 1))), str(p))
    return d.size


def check_references(paths: Sequence[str | Path], field: str = "references") -> None:
    """Every reference file exists and decodes; raises ImageInputError naming `field[i]` and the reason."""
    for i, p in enumerate(paths):
        try:
            validate_image_file(p)
        except ImageInputError as e:
            raise ImageInputError(f"{field}[{i}]: {e}") from None


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode a file at its real size into an RGB or RGBA image (EXIF orientation applied).

    For the image `pixloop check` evaluates; bounded by `max_pixels`. Raises ImageInputError.
    """
    with _open_image_file(path) as (p, fh):
        d = _decode(fh, str(p), max_pixels=max_pixels, max_side=None)
        return _finish(d, str(p))


@dataclass(frozen=True)
class InputImage:
    """An input file (a reference, an edit source or mask): its bytes as read and its image, decoded reduced."""

    data: bytes
    """The file's bytes, exactly as read (and validated)."""
    image: Image.Image
    """RGB or RGBA, upright, long side at most the `max_side` it was loaded with."""
    size: tuple[int, int]
    """The file's full size, upright."""
    format: str
    """Pillow's format name (PNG, JPEG, MPO, WEBP, ...)."""
    icc_profile: bytes | None = None

    @property
    def reduced(self) -> bool:
        """Whether `image` is smaller than the file (so the bytes are not the image)."""
        return self.image.size != self.size

    def encode(self) -> tuple[bytes, str]:
        """`image` encoded for storage, with its MIME type: high-quality JPEG for JPEG input, else PNG (lossless);
        the file's colour profile is kept when it describes RGB (the image is RGB/RGBA now)."""
        buf = io.BytesIO()
        rgb_profile = self.icc_profile is not None and self.icc_profile[16:20] == b"RGB "  # not a CMYK or grey one
        extra = {"icc_profile": self.icc_profile} if rgb_profile else {}
        if self.format in ("JPEG", "MPO") and self.image.mode == "RGB":
            self.image.save(buf, format="JPEG", quality=95, subsampling=0, **extra)
            return buf.getvalue(), "image/jpeg"
        self.image.save(buf, format="PNG", compress_level=1, **extra)
        return buf.getvalue(), "image/png"


def load_input_image(path: str | Path, max_side: int = INPUT_MAX_SIDE, max_pixels: int = MAX_PIXELS) -> InputImage:
    """Read and decode a reference, edit source or mask, reduced to `max_side` (JPEG decoded at reduced scale).

    The bytes returned are the ones decoded, read once. Raises ImageInputError.
    """
    with _open_image_file(path) as (p, fh):
        data = fh.read(MAX_FILE_BYTES + 1)
    return load_input_bytes(data, str(p), max_side=max_side, max_pixels=max_pixels)


def load_input_bytes(data: bytes, label: str, max_side: int = INPUT_MAX_SIDE,
                     max_pixels: int = MAX_PIXELS) -> InputImage:
    """`load_input_image` for an input received as bytes (e.g. an upload); `label` names it in errors."""
    if not data:
        raise ImageInputError(f"{label} is empty (0 bytes), not an image")
    if len(data) > MAX_FILE_BYTES:
        raise ImageInputError(f"{label} is too large: above the {MAX_FILE_BYTES // 2**20} MiB file limit")
    d = _decode(io.BytesIO(data), label, max_pixels=max_pixels, max_side=max_side)
    image = _finish(d, label)
    return InputImage(data=data, image=image, size=_upright(d.size, d.orientation), format=d.format,
                      icc_profile=d.icc_profile)


def decode_image_bytes(data: bytes, label: str = "image data", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode bytes (from a backend, or the store) at their real size into RGB/RGBA, EXIF orientation applied.

    Raises ImageInputError if they are not a whole image.
    """
    if not data:
        raise ImageInputError(f"{label} is empty")
    d = _decode(io.BytesIO(data), label, max_pixels=max_pixels, max_side=None)
    return _finish(d, label)


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
