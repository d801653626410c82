"""The README's pictures of the illustrated-document use cases, made by pixloop itself on the offline default backend.

Three Markdown scripts (below) become documents with `agent.interfaces.story.story`, each in its own temporary run
folder, and each document is drawn as one figure from its images, its text and its report.json:

- story-book.jpg: a four-page children's story whose character is Kodak's kodim04 (the Kodak suite was released
  for unrestricted use; rebuilt by bench/data/get_photos.py), with each page's verdicts and the consistency result;
- story-tutorial.jpg: a five-step pour-over tutorial whose images must show their step labels (checked by OCR);
- story-comic.jpg: a four-panel comic strip with the same character.

    python bench/story_figures.py      # -> bench/figures/story-*.jpg, and per document: status, iterations, seconds
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from agent.backends.compose.fonts import load_font  # noqa: E402
from agent.interfaces.story import StoryResult, story  # noqa: E402
from agent.models import PixloopConfig  # noqa: E402
from agent.models.document import DocumentBrief, ImageCue, TextBlock  # noqa: E402

OUT = _BENCH / "figures"
PORTRAIT = _BENCH / "data" / "photos" / "clean" / "kodim04.png"
WIDTH, MARGIN, GAP = 1600, 24, 16
INK, GREY, GREEN, RED = (30, 30, 30), (110, 110, 110), (20, 130, 60), (190, 40, 30)

BOOK = """---
style: storybook, warm gold light
---
# Mia and the Paper Boat

## A rainy morning
It rained all morning, so Mia folded a paper boat from an old map.
![Mia at the kitchen table folding a paper boat; a note on the wall says "RAIN"](image)

## The big puddle
Outside, the puddle by the gate had become a lake.
![Mia kneeling by a puddle at the garden gate; the gate sign says "GARDEN"](image)

## Off it sails
Mia let go, and the boat sailed all by itself toward the bakery.
![Mia watching her boat float away; the bakery sign says "BREAD"](image)

## Home again
The baker found the boat and gave it back, with a warm bun.
![Mia smiling at home with her boat and a bun; the door says "HOME"](image)
"""

TUTORIAL = """---
style: coffee colours, soft gradient
---
# Pour-over coffee in five steps

## Boil
Heat 500 ml of water to about 94 °C.
![Step 1: a kettle on the stove; a label that says "STEP 1 BOIL"](image)

## Rinse
Put a paper filter in the dripper and rinse it with hot water.
![Step 2: a paper filter in a dripper; a label that says "STEP 2 RINSE"](image)

## Grind
Grind 30 g of beans, medium-fine, like sea salt.
![Step 3: a hand grinder full of beans; a label that says "STEP 3 GRIND"](image)

## Bloom
Pour 60 g of water over the grounds and wait 30 seconds.
![Step 4: water poured on fresh grounds; a label that says "STEP 4 BLOOM"](image)

## Pour
Pour the rest in slow circles; it should be done by 3 minutes.
![Step 5: coffee dripping into a glass carafe; a label that says "STEP 5 POUR"](image)
"""

COMIC = """---
style: pink colours, bold comic lettering
---
# Mia's lemonade stand

## Panel 1
Mia had a plan for the hot afternoon.
![Mia behind a small wooden stand; the sign says "LEMONADE"](image)

## Panel 2
Nobody came. Not one customer.
![Mia waiting alone at her stand; the sign says "OPEN"](image)

## Panel 3
So she made the sign bigger.
![Mia painting a huge new sign; the sign says "ICE COLD"](image)

## Panel 4
By five o'clock the jug was empty.
![Mia cheering next to an empty jug; the sign says "SOLD OUT"](image)
"""


def make(name: str, script: str, layout: str, characters: dict[str, list[Path]], tmp: Path,
         ) -> tuple[StoryResult, DocumentBrief, float]:
    """Make the document and print its status, per image iterations and wall time."""
    path = tmp / f"{name}.md"
    path.write_text(script)
    start = time.perf_counter()
    result = story(path, PixloopConfig(backend="compose"), characters=characters, layout=layout, out=tmp / name)
    seconds = time.perf_counter() - start
    if result.status == "failed" or len(result.images) < len(result.report.get("images") or []):
        sys.exit(f"{name}: {result.status}: {result.error or 'an image is missing'} (run folder {result.run_dir})")
    doc = DocumentBrief.model_validate_json((result.run_dir / "document.json").read_text())
    iterations = ", ".join(f"{i}: {o.iterations}" for i, o in result.images.items())
    print(f"{name}: {result.status} in {seconds:.1f} s, {result.report.get('rounds')} round(s); "
          f"iterations per image {iterations}")
    for image_id, reason in ((result.report.get("consistency") or {}).get("reasons") or {}).items():
        print(f"  {image_id} off the document's look: {reason}")
    for row in result.report.get("images") or []:
        failed = [k for k, ok in (row.get("verdicts") or {}).items() if not ok]
        if row["status"] != "passed":
            print(f"  {row['id']}: {row['status']} ({row.get('stop_reason')}), failed checks: {failed}")
    return result, doc, seconds


def pages(doc: DocumentBrief) -> list[tuple[str, str, ImageCue]]:
    """(section title, section text, the cue) per image, in reading order."""
    rows = []
    for section in doc.sections:
        text = " ".join(b.text for b in section.blocks if isinstance(b, TextBlock))
        rows += [(section.title, text, b) for b in section.blocks if isinstance(b, ImageCue)]
    return rows


def picture(result: StoryResult, cue: ImageCue, side: int) -> Image.Image:
    outcome = result.images[cue.id]
    img = Image.open(result.run_dir / (outcome.image.path if outcome.image else "")).convert("RGB")
    scale = side / max(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)


def mark(d: ImageDraw.ImageDraw, x: int, y: int, ok: bool, size: int = 14) -> int:
    """A drawn tick or cross (the bundled fonts have neither glyph); returns the x after it."""
    colour = GREEN if ok else RED
    if ok:
        d.line([(x, y + size * 0.55), (x + size * 0.38, y + size * 0.9), (x + size, y + size * 0.1)], colour, 3)
    else:
        d.line([(x, y + 2), (x + size - 2, y + size)], colour, 3)
        d.line([(x, y + size), (x + size - 2, y + 2)], colour, 3)
    return x + size + 6


def verdict_line(d: ImageDraw.ImageDraw, x: int, y: int, result: StoryResult, cue: ImageCue,
                 checks: tuple[str, ...], size: int = 17) -> None:
    """E.g. 'face [tick] 0.89 · ocr [tick] · 1 iteration', from the outcome's verdicts and scores."""
    o, f = result.images[cue.id], load_font("lato-regular", size)
    for check in checks:
        if check not in o.verdicts:
            continue
        d.text((x, y), check, INK, f)
        x = mark(d, x + round(d.textlength(check, f)) + 5, y + 3, o.verdicts[check], size - 3)
        if check == "face":
            d.text((x, y), f"{o.scores.get('face', 0):.2f}", INK, f)
            x += round(d.textlength("0.00", f)) + 6
        d.text((x + 2, y), "·", GREY, f)
        x += round(d.textlength("·", f)) + 10
    d.text((x, y), f"{o.iterations} iteration{'s' * (o.iterations != 1)}", INK, f)


def wrapped(d: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width_px: int, f: ImageFont.FreeTypeFont,
            fill: tuple[int, int, int] = INK, spacing: int = 5) -> int:
    """Draw text wrapped to width_px (by measured width); returns the y below it."""
    lines: list[str] = []
    for word in text.split():
        if lines and f.getlength(f"{lines[-1]} {word}") <= width_px:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    x, y = xy
    for line in lines:
        d.text((x, y), line, fill, f)
        y += round(f.size) + spacing
    return y


def header(d: ImageDraw.ImageDraw, title: str, command: str, result: StoryResult, seconds: float) -> None:
    d.text((MARGIN, 18), title, INK, load_font("lato-black", 34))
    status = f"{result.status} in {seconds:.0f} s"
    f = load_font("lato-bold", 22)
    d.text((WIDTH - MARGIN - d.textlength(status, f), 28), status, GREEN if result.passed else RED, f)
    d.text((MARGIN, 64), command, GREY, load_font("lato-regular", 19))


def save(img: Image.Image, name: str) -> None:
    path = OUT / name
    img.save(path, quality=85)
    print(f"  -> {path.relative_to(_BENCH.parent)}: {img.width}x{img.height}")


def book_figure(result: StoryResult, doc: DocumentBrief, seconds: float) -> None:
    rows, top = pages(doc), 104
    col = (WIDTH - 2 * MARGIN - 5 * GAP) * 3 // 14  # four square pages and a 2:3 reference two thirds as wide
    ref_w = WIDTH - 2 * MARGIN - 5 * GAP - 4 * col
    img = Image.new("RGB", (WIDTH, top + col + 190), "white")
    d = ImageDraw.Draw(img)
    header(d, f"Book: {doc.title}", "pixloop story book.md --character Mia=kodim04.png --layout book", result,
           seconds)
    ref = Image.open(PORTRAIT).convert("RGB")
    img.paste(ref.resize((ref_w, round(ref.height * ref_w / ref.width)), Image.Resampling.LANCZOS), (MARGIN, top))
    y = top + round(ref.height * ref_w / ref.width) + 8
    d.text((MARGIN, y), "reference:", INK, load_font("lato-bold", 18))
    d.text((MARGIN, y + 24), "Kodak kodim04", INK, load_font("lato-bold", 18))
    x0 = MARGIN + ref_w + 2 * GAP
    d.line([(x0 - GAP, top), (x0 - GAP, top + col + 130)], (210, 210, 210), 2)
    for i, (title, text, cue) in enumerate(rows):
        x = x0 + i * (col + GAP)
        pic = picture(result, cue, col)
        img.paste(pic, (x, top))
        y = top + pic.height + 8
        d.text((x, y), f"{i + 1}. {title}", INK, load_font("lato-bold", 19))
        wrapped(d, (x, y + 28), text, col, load_font("serif-regular", 18))
        verdict_line(d, x, y + 28 + 2 * 23 + 8, result, cue, ("face", "ocr"))
    char = (result.report.get("consistency") or {}).get("characters", [{}])[0]
    lowest = min((p["similarity"] for p in char.get("pairs", [])), default=float("nan"))
    line = (f"consistency of {char.get('name')} across {len(char.get('images', []))} pages: lowest similarity "
            f"{lowest:.2f} (threshold {char.get('threshold', 0):.2f}): {char.get('note', '')}")
    y = img.height - 40
    mark(d, MARGIN, y + 4, not char.get("failing"), 16)
    d.text((MARGIN + 24, y), line, INK, load_font("lato-regular", 19))
    save(img, "story-book.jpg")


def tutorial_figure(result: StoryResult, doc: DocumentBrief, seconds: float) -> None:
    rows, top = pages(doc), 104
    col = (WIDTH - 2 * MARGIN - 4 * GAP) // 5
    img = Image.new("RGB", (WIDTH, top + col + 150), "white")
    d = ImageDraw.Draw(img)
    header(d, f"Tutorial: {doc.title}", "pixloop story tutorial.md --layout tutorial", result, seconds)
    checked = {(r["image"], r["text"]): r["status"] for r in result.report.get("requirements") or []}
    for i, (title, text, cue) in enumerate(rows):
        x = x0 = MARGIN + i * (col + GAP)
        pic = picture(result, cue, col)
        img.paste(pic, (x, top))
        y = top + pic.height + 8
        d.text((x, y), f"Step {i + 1}: {title}", INK, load_font("lato-bold", 20))
        wrapped(d, (x, y + 30), text, col, load_font("lato-regular", 17))
        y, o, f = y + 30 + 2 * 22, result.images[cue.id], load_font("lato-regular", 16)
        for word in cue.required_text:
            x = mark(d, x0, y + 8, checked.get((cue.id, word)) == "passed", 14)
            d.text((x, y + 6), f'ocr: "{word}"', INK, f)
            y += 24
        d.text((x0, y + 6), f"{o.iterations} iteration{'s' * (o.iterations != 1)}", GREY, f)
    save(img, "story-tutorial.jpg")


def comic_figure(result: StoryResult, doc: DocumentBrief, seconds: float) -> None:
    rows, top, border, band = pages(doc), 104, 5, 62
    col = (WIDTH - 2 * MARGIN - 3 * GAP) // 4
    side = col - 2 * border
    img = Image.new("RGB", (WIDTH, top + band + side + 3 * border + 56), (250, 247, 238))
    d = ImageDraw.Draw(img)
    header(d, f"Comic: {doc.title}", "pixloop story comic.md --character Mia=kodim04.png --layout comic",
           result, seconds)
    f = load_font("lato-bold", 18)
    for i, (_, text, cue) in enumerate(rows):
        x = MARGIN + i * (col + GAP)
        bottom = top + band + side + 3 * border
        d.rectangle((x, top, x + col - 1, bottom - 1), fill=(0, 0, 0))
        d.rectangle((x + border, top + border, x + col - border - 1, top + border + band - 1), fill=(255, 232, 120))
        lines = textwrap.wrap(text.upper(), 32)
        y = top + border + (band - 24 * len(lines)) // 2
        for j, line in enumerate(lines):
            d.text((x + col // 2, y + 24 * j + 11), line, (0, 0, 0), f, anchor="mm")
        img.paste(picture(result, cue, side), (x + border, top + band + 2 * border))
        verdict_line(d, x, bottom + 14, result, cue, ("face", "ocr"), 16)
    save(img, "story-comic.jpg")


def main() -> None:
    if not PORTRAIT.exists():
        print(f"{PORTRAIT} is missing: rebuild the photos with `python bench/data/get_photos.py`")
        sys.exit(1)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pixloop-story-figures-") as name:
        tmp = Path(name)
        mia: dict[str, list[Path]] = {"Mia": [PORTRAIT]}
        book_figure(*make("book", BOOK, "book", mia, tmp))
        tutorial_figure(*make("tutorial", TUTORIAL, "tutorial", {}, tmp))
        comic_figure(*make("comic", COMIC, "comic", mia, tmp))


if __name__ == "__main__":
    main()

