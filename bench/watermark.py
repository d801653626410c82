"""Invisible watermark: embed time, visual change and detection after the attacks images meet (issue 13).

Targets on a 2-core machine: detection >= 99% after JPEG 75 and after a 0.5 resize, false positives <= 1% on
100 unmarked images, embed < 0.3 s at 2K. Test images: pixloop's own compose posters (flat solid designs with
big text, gradients, text-heavy flyers, textures; several aspect ratios) and the Kodak photos of
bench/data/photos/clean (768x512, resized so the long side is 1024 / 2048), each at 1K and 2K.

Attacks: JPEG quality 90/75/50 (Pillow), a 0.5 resize (Lanczos), a 10% crop (90% of each side kept, off
centre: 7% off the left and top, 3% off the right and bottom), brightness x1.1 / x0.9, and a screenshot-like
re-encode (resize 0.8 bilinear, gamma 1.1, PNG -> JPEG 85).

Methods compared in the same run: pixloop's (agent.runtime.watermark) and, when importable, the
invisible-watermark library's dwtDct (`imwatermark`). The library requires torch and opencv-python (not
headless), so it is no pixloop dependency; install it aside with
``pip install --no-deps --target /tmp/iwm invisible-watermark PyWavelets`` and pass ``--imwatermark /tmp/iwm``
(its rivaGan module imports torch at import time: run with a venv that has torch). The library has no
"is a mark present" test: it is counted as detected when it reads back exactly the payload embedded, and its
false positives as unmarked images from which it reads that payload.

    python bench/watermark.py [--posters 24] [--photos 24] [--imwatermark DIR]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
sys.path.append(str(_BENCH))

import numpy as np  # noqa: E402
from _machine import machine  # noqa: E402
from PIL import Image  # noqa: E402

from agent.backends.compose import render  # noqa: E402
from agent.models import Box, Plan, Style, TextElement, canvas_size  # noqa: E402
from agent.runtime import watermark  # noqa: E402

PHOTOS = _BENCH / "data" / "photos" / "clean"
PAYLOAD = watermark.payload_for("bench-thread-0001")
ASPECTS = ["2:3", "1:1", "16:9", "3:4", "9:16", "4:3"]
PALETTES = [["#f4efe6", "#1d2b4f", "#e4572e"], ["#ffffff", "#222222", "#ff3366"], ["#1d2b4f", "#3f6fb5", "#f2c14e"],
            ["#fdf6e3", "#586e75", "#b58900"], ["#000000", "#ffffff", "#00ff88"], ["#e8e8e8", "#333333", "#0077cc"]]
FLYER = ["Doors open at 7 pm, first band at 8", "Tickets 12 EUR at the door, 10 online", "Food trucks, bar and",
         "free parking behind the hall", "All ages welcome until 10 pm", "www.example.org/summer-night"]


def poster(i: int, size: str) -> Image.Image:
    """Design i: solid flat with big text, text-heavy flyer, gradient, texture — cycling, with varied palettes."""
    aspect, palette = ASPECTS[i % len(ASPECTS)], PALETTES[(i // 4) % len(PALETTES)]
    kind = ["solid", "flyer", "gradient", "texture"][i % 4]
    text = [TextElement(id="h", content=["GRAND OPENING", "SALE -50%", "SUMMER NIGHT", "JAZZ & WINE"][i % 4],
                        region=Box(x=.06, y=.05, w=.88, h=.22))]
    if kind == "flyer":
        text += [TextElement(id=f"b{k}", content=line, role="body", region=Box(x=.08, y=.32 + .1 * k, w=.84, h=.07))
                 for k, line in enumerate(FLYER)]
    else:
        text.append(TextElement(id="s", content="Saturday at noon", role="subheading", region=Box(x=.15, y=.7, w=.7, h=.1)))
    w, h = canvas_size(aspect, size)
    style = Style(background="solid" if kind == "flyer" else kind, palette=palette, text_color=palette[1],
                  text_plate=kind == "texture", texture_strength=0.6)
    plan = Plan(prompt="bench poster", width=w, height=h, aspect_ratio=aspect, size=size, text=text, style=style)
    return render(plan, seed=i)[0].convert("RGB")


def photos(n: int, long_side: int) -> list[Image.Image]:
    files = sorted(PHOTOS.glob("kodim*.png"))[:n]
    out = []
    for f in files:
        im = Image.open(f).convert("RGB")
        s = long_side / max(im.size)
        out.append(im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.LANCZOS))
    return out


def _jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _scale_values(im: Image.Image, f: float) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(im, np.float32) * f + 0.5, 0, 255).astype(np.uint8))


def _screenshot(im: Image.Image) -> Image.Image:
    small = im.resize((round(im.width * .8), round(im.height * .8)), Image.Resampling.BILINEAR)
    g = (255 * (np.arange(256) / 255) ** (1 / 1.1)).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(g[np.asarray(small)]).save(buf, "PNG")
    return _jpeg(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), 85)


ATTACKS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda im: im,
    "jpeg 90": lambda im: _jpeg(im, 90),
    "jpeg 75": lambda im: _jpeg(im, 75),
    "jpeg 50": lambda im: _jpeg(im, 50),
    "resize 0.5": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "crop 10%": lambda im: im.crop((round(.07 * im.width), round(.07 * im.height),
                                     round(.97 * im.width), round(.97 * im.height))),
    "brightness +10%": lambda im: _scale_values(im, 1.1),
    "brightness -10%": lambda im: _scale_values(im, 0.9),
    "screenshot": _screenshot,
}


class Pixloop:
    name = "pixloop"

    def embed(self, im: Image.Image) -> Image.Image:
        return watermark.embed(im, PAYLOAD)

    def found(self, im: Image.Image) -> bool:
        d = watermark.detect(im)
        return d.present and d.payload == PAYLOAD


class Library:
    name = "imwatermark dwtDct"

    def __init__(self) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self.enc = WatermarkEncoder()
        self.enc.set_watermark("bytes", PAYLOAD)
        self.dec = WatermarkDecoder("bytes", 8 * len(PAYLOAD))

    def embed(self, im: Image.Image) -> Image.Image:
        bgr = np.ascontiguousarray(np.asarray(im)[..., ::-1])
        return Image.fromarray(np.ascontiguousarray(self.enc.encode(bgr, "dwtDct")[..., ::-1]))

    def found(self, im: Image.Image) -> bool:
        bgr = np.ascontiguousarray(np.asarray(im)[..., ::-1])
        try:
            return bool(self.dec.decode(bgr, "dwtDct") == PAYLOAD)
        except Exception:
            return False


def ssim(a: Image.Image, b: Image.Image) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(a.convert("L")), np.asarray(b.convert("L")), data_range=255))


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = float(np.mean((np.asarray(a, np.float32) - np.asarray(b, np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def measure(method, sets: dict[str, list[Image.Image]], unmarked: list[Image.Image]) -> dict[str, dict[str, str]]:
    col: dict[str, dict[str, str]] = {}
    for set_name, images in sets.items():
        hits = dict.fromkeys(ATTACKS, 0)
        times, psnrs, ssims, maxes = [], [], [], []
        for im in images:
            t0 = time.perf_counter()
            marked = method.embed(im)
            times.append(time.perf_counter() - t0)
            psnrs.append(psnr(im, marked))
            ssims.append(ssim(im, marked))
            maxes.append(int(np.abs(np.asarray(im, np.int16) - np.asarray(marked, np.int16)).max()))
            for name, attack in ATTACKS.items():
                hits[name] += method.found(attack(marked))
        c = {name: f"{100 * k / len(images):.0f}%" for name, k in hits.items()}
        c["embed s (median)"] = f"{statistics.median(times):.3f}"
        c["PSNR dB (median/min)"] = f"{statistics.median(psnrs):.1f}/{min(psnrs):.1f}"
        c["SSIM (median/min)"] = f"{statistics.median(ssims):.4f}/{min(ssims):.4f}"
        c["max change (grey lv)"] = str(max(maxes))
        col[set_name] = c
        print(f"  {method.name}: {set_name} done", file=sys.stderr, flush=True)
    fp = sum(method.found(im) for im in unmarked)
    col[next(iter(sets))]["false positives"] = f"{fp}/{len(unmarked)}"
    return col


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", type=int, default=24, help="posters per size")
    ap.add_argument("--photos", type=int, default=24, help="Kodak photos per size (24 at most)")
    ap.add_argument("--imwatermark", type=Path, help="folder where invisible-watermark + PyWavelets are installed")
    args = ap.parse_args()
    print(machine())
    if not list(PHOTOS.glob("kodim*.png")):
        sys.exit(f"no photos in {PHOTOS}: rebuild them with `python bench/data/get_photos.py` (see its docstring)")
    sets = {"posters 1K": [poster(i, "1K") for i in range(args.posters)],
            "posters 2K": [poster(i, "2K") for i in range(args.posters)],
            "photos 1K": photos(args.photos, 1024), "photos 2K": photos(args.photos, 2048)}
    base = [poster(100 + i, "1K") for i in range(30)] + photos(20, 1024)
    unmarked = base + [_jpeg(im, 75) for im in base]  # 100 images: 30 posters, 20 photos, each also as JPEG 75
    methods: list = [Pixloop()]
    if args.imwatermark:
        sys.path.insert(0, str(args.imwatermark))
    try:
        methods.append(Library())
    except ImportError as e:
        print(f"imwatermark not measured ({e}); see the docstring to install it aside")
    results = {m.name: measure(m, sets, unmarked) for m in methods}
    rows = list(ATTACKS) + ["embed s (median)", "PSNR dB (median/min)", "SSIM (median/min)", "max change (grey lv)",
                            "false positives"]
    cols = [(m, s) for m in results for s in sets]
    print(f"\ndetection rate (payload read back exactly) over {args.posters} posters and {args.photos} photos per column; "
          f"false positives over {len(unmarked)} unmarked images")
    print(f"{'':22}" + "".join(f"{m[:8] + ' ' + s:>22}" for m, s in cols))
    for r in rows:
        print(f"{r:22}" + "".join(f"{results[m][s].get(r, ''):>22}" for m, s in cols))


if __name__ == "__main__":
    main()
