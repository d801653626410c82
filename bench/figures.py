"""The README's pictures of the edit and fusion use cases, made by pixloop itself on the offline default backend.

Each figure is a strip: the input(s), the mask pixloop derived (tinted red: what may change), and the result,
with the requirement lines of its report underneath. The person is Kodak's kodim04 (the Kodak suite was released
for unrestricted use; rebuilt by bench/data/get_photos.py into bench/data/photos/); the products are drawn here.

    python bench/figures.py            # -> bench/figures/*.jpg
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from agent import edit, generate  # noqa: E402
from agent.backends.compose.fonts import load_font  # noqa: E402

OUT = _BENCH / "figures"
PORTRAIT = _BENCH / "data" / "photos" / "clean" / "kodim04.png"
PANEL_H = 420


def bottle(path: Path) -> Path:
    """A green bottle with a label, on a white studio backdrop."""
    img = Image.new("RGB", (600, 800), (246, 246, 244))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((220, 60, 380, 160), 20, fill=(30, 90, 50))
    d.rounded_rectangle((160, 150, 440, 740), 60, fill=(36, 120, 64))
    d.rectangle((175, 330, 425, 560), fill=(250, 236, 200))
    d.text((300, 400), "SPARK", fill=(180, 40, 40), font=load_font("lato-black", 64), anchor="mm")
    d.text((300, 480), "lemon & mint", fill=(40, 40, 40), font=load_font("lato-regular", 34), anchor="mm")
    for i in range(8):
        d.ellipse((200 + 28 * i, 600 + (i % 3) * 30, 214 + 28 * i, 614 + (i % 3) * 30), fill=(200, 230, 200))
    img.save(path)
    return path


def panel(img: Image.Image, label: str) -> Image.Image:
    img = img.convert("RGB")
    w = round(img.width * PANEL_H / img.height)
    out = Image.new("RGB", (w, PANEL_H + 34), "white")
    out.paste(img.resize((w, PANEL_H), Image.Resampling.LANCZOS), (0, 34))
    ImageDraw.Draw(out).text((6, 6), label, fill=(20, 20, 20), font=load_font("lato-bold", 22))
    return out


def strip(panels: list[Image.Image], lines: list[str], path: Path) -> None:
    gap = 12
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    font: ImageFont.FreeTypeFont = load_font("lato-regular", 19)
    out = Image.new("RGB", (width, PANEL_H + 34 + 14 + 26 * len(lines)), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + gap
    d = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        d.text((6, PANEL_H + 44 + 26 * i), line, fill=(40, 40, 40), font=font)
    out.save(path, quality=85)
    print(f"{path.relative_to(_BENCH.parent)}: {out.width}x{out.height}")


def requirement_lines(report: dict) -> list[str]:
    return [f"{r['status']}: {r['text']}" + (f" ({r['verified_by']})" if r["verified_by"] else "")
            for r in report["requirements"]]


def main() -> None:
    if not PORTRAIT.exists():
        sys.exit(f"{PORTRAIT} is missing: rebuild the photos with bench/data/get_photos.py (bench/data/README.md)")
    OUT.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    source = Image.open(PORTRAIT)

    r = edit(PORTRAIT, "put her in front of a deep blue studio background", out=tmp / "bg")
    strip([panel(source, "source (Kodak kodim04)"), panel(Image.open(r.run_dir / "mask-preview.png"),
           "derived mask: may change"), panel(Image.open(r.final_image or ""), f"result: {r.status}")],
          [f'pixloop edit kodim04.png "put her in front of a deep blue studio background"  ->  '
           f'{r.status}', *requirement_lines(r.report)],
          OUT / "edit-background.jpg")

    product = bottle(tmp / "bottle.png")
    r = edit(product, "place the product on a warm terracotta background", keep="product", out=tmp / "product")
    strip([panel(Image.open(product), "source: product shot"), panel(Image.open(r.run_dir / "mask-preview.png"),
           "--keep product: may change"), panel(Image.open(r.final_image or ""), f"result: {r.status}")],
          [f'pixloop edit bottle.png "place the product on a warm terracotta background" --keep product  ->  '
           f'{r.status}', *requirement_lines(r.report)], OUT / "edit-product.jpg")

    face = source.crop((40, 110, 470, 680))
    face.save(tmp / "model.png")
    r = generate('A summer campaign poster with our model and the bottle that says "NEW TASTE"',
                 references=[tmp / "model.png", product], out=tmp / "fusion")
    strip([panel(face, "reference 1: person"), panel(Image.open(product), "reference 2: product"),
           panel(Image.open(r.final_image or ""), f"result: {r.status}")],
          [f"pixloop run 'A summer campaign poster ... \"NEW TASTE\"' -r model.png -r bottle.png  ->  {r.status}",
           *requirement_lines(r.report)], OUT / "fusion.jpg")
    sketch_figure(tmp)


def wireframe(path: Path) -> Path:
    """A hand-drawn-looking wireframe: a headline box, a crossed image placeholder, a button."""
    import random

    rng = random.Random(3)
    img = Image.new("RGB", (800, 1000), (250, 249, 245))
    d = ImageDraw.Draw(img)
    for x0, y0, x1, y1 in ((60, 60, 740, 260), (60, 320, 740, 760), (240, 820, 560, 940)):
        pts = []
        for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)),
                                   ((x0, y1), (x0, y0))):
            pts += [(ax + (bx - ax) * t / 8 + rng.uniform(-3, 3), ay + (by - ay) * t / 8 + rng.uniform(-3, 3))
                    for t in range(9)]
        d.line([*pts, pts[0]], fill=(40, 40, 40), width=4, joint="curve")
    d.line((60, 320, 740, 760), fill=(60, 60, 60), width=3)
    d.line((740, 320, 60, 760), fill=(60, 60, 60), width=3)
    d.text((400, 160), "SUMMER SALE", fill=(30, 30, 30), font=load_font("lato-bold", 70), anchor="mm")
    d.text((400, 880), "SHOP NOW", fill=(30, 30, 30), font=load_font("lato-regular", 44), anchor="mm")
    img.save(path)
    return path


def sketch_figure(tmp: Path) -> None:
    sketch = wireframe(tmp / "wireframe.png")
    r = generate('A mockup of a shop page that says "WINTER SALE" and "BUY NOW"', sketch=sketch, out=tmp / "sketch")
    strip([panel(Image.open(sketch), "sketch (wireframe.png)"), panel(Image.open(r.final_image or ""),
           f"result: {r.status}")],
          [f"pixloop run '... \"WINTER SALE\" and \"BUY NOW\"' --sketch wireframe.png  ->  {r.status}",
           *requirement_lines(r.report)], OUT / "sketch.jpg")


if __name__ == "__main__":
    main()
