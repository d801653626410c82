"""Render an illustrated document as `story.md` and one self-contained `story.html`.

The text is kept as written; each image cue becomes the image its loop made (a path relative to the document
folder, where the store keeps it) or, while it is still being made, a placeholder, so the files can be rewritten
as images complete. The HTML needs no server, script, font or URL from outside: inline CSS, images next to it
(or embedded as data URLs), and every piece of user text escaped. Markdown in the text is rendered minimally:
paragraphs, line breaks, **bold** and *italic*; raw HTML is shown as text, never passed through.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Mapping
from pathlib import Path

from agent.models.base import ImageRef
from agent.models.document import (
    CharacterConsistency,
    CharacterSheet,
    ConsistencyReport,
    DocumentBrief,
    ImageCue,
    ImageOutcome,
    Section,
    StyleDistance,
    TextBlock,
)
from agent.runtime.store import write_atomic

STORY_MD = "story.md"
STORY_HTML = "story.html"
REFRESH_SECONDS = 2
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])|(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
_BADGE = {"passed": ("✓", "passed"), "below_threshold": ("△", "below threshold"),
          "failed": ("✗", "failed"), "running": ("…", "being made")}

CSS = """
:root{--ink:#1f1d1a;--paper:#fbf8f2;--muted:#6b655c;--line:#d9d2c4;--ok:#2e7d32;--warn:#b26a00;--bad:#c62828}
*{box-sizing:border-box}
body{margin:0;background:#ece7dd;color:var(--ink);font:17px/1.6 Georgia,"Times New Roman",serif}
header.doc{max-width:60rem;margin:2rem auto 1rem;padding:0 1.5rem;text-align:center}
h1{font-size:2.4rem;line-height:1.2;margin:.2em 0;letter-spacing:.01em}
h2{font-size:1.5rem;line-height:1.3;margin:0 0 .6em}
h3{font-size:1.15rem;margin:1.2em 0 .4em}
main,section.consistency{max-width:60rem;margin:0 auto 2rem;padding:0 1.5rem}
p{margin:0 0 .8em}
.live{font:13px/1.4 system-ui,sans-serif;color:var(--muted);text-align:center}
figure.image{margin:0 0 1rem;position:relative}
figure.image img{display:block;width:100%;height:auto;border-radius:3px;background:#ddd}
figcaption{font-style:italic;color:var(--muted);font-size:.9rem;margin-top:.3rem}
.placeholder{display:flex;flex-direction:column;align-items:center;justify-content:center;gap:.4rem;
  width:100%;aspect-ratio:4/3;border:2px dashed var(--line);border-radius:3px;background:#f1ece2;
  color:var(--muted);font:15px/1.4 system-ui,sans-serif;text-align:center;padding:1rem}
.placeholder small{font-size:12px;max-width:90%}
.badge{display:inline-block;font:12px/1.4 system-ui,sans-serif;padding:.1rem .5rem;border-radius:1rem;
  margin-top:.3rem;background:#eee;color:var(--muted);border:1px solid var(--line)}
.badge.passed{color:var(--ok);border-color:var(--ok)}
.badge.below_threshold{color:var(--warn);border-color:var(--warn)}
.badge.failed{color:var(--bad);border-color:var(--bad)}
.error{font:12px/1.4 system-ui,sans-serif;color:var(--bad)}
.book .page{background:var(--paper);margin:0 auto 2rem;padding:2.5rem 3rem 1.5rem;min-height:40rem;
  box-shadow:0 2px 10px rgba(0,0,0,.15);position:relative}
.book .page .prose{font-size:1.1rem;hyphens:auto}
.book .page-number{text-align:center;color:var(--muted);font-size:.9rem;margin-top:1.5rem}
.comic{display:grid;grid-template-columns:repeat(2,1fr);gap:.8rem;background:#fff;padding:.8rem;border:3px solid #111}
.panel{border:3px solid #111;background:#fff;display:flex;flex-direction:column}
.panel figure.image{margin:0}
.panel figure.image img{border-radius:0}
.panel .caption{background:#fff7c2;border-top:3px solid #111;padding:.5rem .7rem;
  font:15px/1.45 "Comic Sans MS","Trebuchet MS",sans-serif}
.panel .caption h2{font-size:1rem;margin:0 0 .2rem;text-transform:uppercase;letter-spacing:.05em}
.storyboard{display:grid;grid-template-columns:repeat(3,1fr);gap:1rem}
.frame{background:#fff;border:1px solid var(--line);padding:.6rem;font:14px/1.45 system-ui,sans-serif}
.frame .frame-number{font-weight:bold;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.08em}
.frame h2{font-size:1rem;margin:.2rem 0}
.frame .notes{border-top:1px dashed var(--line);padding-top:.4rem}
ol.steps{list-style:none;padding:0;margin:0;counter-reset:none}
.step{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1.5rem;background:var(--paper);
  padding:1.5rem;margin-bottom:1.2rem;border-left:5px solid #3b6ea5;font-family:system-ui,sans-serif}
.step .step-number{display:block;color:#3b6ea5;font-size:.8rem;text-transform:uppercase;letter-spacing:.1em}
.step .media{min-width:0}
.consistency{font:14px/1.45 system-ui,sans-serif}
.consistency table{border-collapse:collapse;margin:.4rem 0 1rem}
.consistency th,.consistency td{border:1px solid var(--line);padding:.2rem .5rem;text-align:center}
.consistency td.fail{background:#fde0e0;color:var(--bad);font-weight:bold}
.consistency td.ok{color:var(--ok)}
.consistency td.na{color:var(--muted)}
.swatch{display:inline-block;width:1.4rem;height:1.4rem;border:1px solid #0003;vertical-align:middle;margin-right:2px}
.thumbs img{width:6rem;height:6rem;object-fit:cover;margin:0 .3rem .3rem 0;border:1px solid var(--line)}
@media (max-width:40rem){.comic,.storyboard,.step{grid-template-columns:1fr}}
@media print{body{background:#fff}.book .page{box-shadow:none;break-after:page}}
"""


# ---------------------------------------------------------------------------------------------- markdown

def _ready(outcomes: Mapping[str, ImageOutcome], cue: ImageCue) -> ImageRef | None:
    outcome = outcomes.get(cue.id)
    return outcome.image if outcome is not None else None


def _md_alt(text: str) -> str:
    flat = " ".join(text.split())
    return re.sub(r"([\\\[\]])", r"\\\1", flat)


def story_markdown(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome], doc_dir: Path) -> str:
    """The document as Markdown (to be written in `doc_dir`): its text as written, each image linked by its path
    relative to `doc_dir`, or an HTML comment in its place while it is not made yet."""
    del doc_dir  # image paths are already relative to the document folder, where story.md lies
    parts: list[str] = []
    if doc.title.strip():
        parts.append(f"# {' '.join(doc.title.split())}")
    for section in doc.sections:
        if section.title.strip():
            parts.append(f"## {' '.join(section.title.split())}")
        for block in section.blocks:
            if isinstance(block, TextBlock):
                if block.text.strip():
                    parts.append(block.text.strip("\n"))
                continue
            ref = _ready(outcomes, block)
            if ref is None:
                outcome = outcomes.get(block.id)
                state = "not made (failed)" if outcome is not None and outcome.status == "failed" else "being made"
                parts.append(f"<!-- image {block.id}: {state} -->")
            else:
                parts.append(f"![{_md_alt(block.caption or block.prompt)}]({ref.path})")
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------- html parts

def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _inline(text: str) -> str:
    """One escaped line with **bold** and *italic* (the markers are not HTML, so escaping first is safe)."""
    out = _esc(text)
    out = _BOLD.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", out)
    return _ITALIC.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", out)


def markdown_html(text: str) -> str:
    """Minimal, safe Markdown: paragraphs on blank lines, line breaks, **bold**, *italic*; everything escaped."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if p.strip()]
    return "".join("<p>" + "<br>\n".join(_inline(line) for line in p.split("\n")) + "</p>\n" for p in paragraphs)


def _image_src(ref: ImageRef, doc_dir: Path, embed: bool) -> str:
    if embed:
        try:
            data = (doc_dir / ref.path).read_bytes()
        except OSError:
            data = b""
        if data and hashlib.sha256(data).hexdigest() == ref.sha256:
            return f"data:{ref.mime};base64,{base64.b64encode(data).decode('ascii')}"
    return ref.path  # the store's layout (images/<xx>/<sha256>.<ext>): relative to the document folder


def _badge(outcome: ImageOutcome) -> str:
    mark, words = _BADGE.get(outcome.status, ("?", outcome.status))
    text = f"{mark} {words}"
    if outcome.status != "running":
        text += f" · {outcome.iterations} iteration{'s' if outcome.iterations != 1 else ''}"
    if outcome.round > 1:
        text += f" · round {outcome.round}"
    detail = ", ".join(f"{name} {'✓' if ok else '✗'}" for name, ok in sorted(outcome.verdicts.items()))
    title = f' title="{_esc(detail)}"' if detail else ""
    return f'<span class="badge {_esc(outcome.status)}"{title}>{_esc(text)}</span>'


def _ratio(doc: DocumentBrief, cue: ImageCue) -> str:
    ratio = cue.aspect_ratio or doc.aspect_ratio
    if ratio is None:
        return ""
    w, _, h = ratio.partition(":")
    return f' style="aspect-ratio:{int(w)}/{int(h)}"'


def _figure(doc: DocumentBrief, cue: ImageCue, outcomes: Mapping[str, ImageOutcome], doc_dir: Path,
            embed: bool) -> str:
    outcome = outcomes.get(cue.id)
    ref = outcome.image if outcome is not None else None
    alt = _esc(" ".join((cue.caption or cue.prompt).split()))
    if ref is not None:
        body = (f'<img src="{_esc(_image_src(ref, doc_dir, embed))}" alt="{alt}" '
                f'width="{ref.width}" height="{ref.height}">')
    else:
        failed = outcome is not None and outcome.status == "failed"
        state = "not made" if failed else "being made…"
        body = (f'<div class="placeholder"{_ratio(doc, cue)} role="img" aria-label="{alt}">'
                f'<span>{state}</span><small>{_esc(cue.prompt)}</small></div>')
    parts = [f'<figure class="image{"" if ref is not None else " pending"}" id="img-{_esc(cue.id)}">', body]
    if cue.caption.strip():
        parts.append(f"<figcaption>{_esc(cue.caption)}</figcaption>")
    if outcome is not None:
        parts.append(_badge(outcome))
        if outcome.error:
            parts.append(f'<div class="error">{_esc(outcome.error)}</div>')
    parts.append("</figure>")
    return "".join(parts)


def _figures(doc: DocumentBrief, section: Section, outcomes: Mapping[str, ImageOutcome], doc_dir: Path,
             embed: bool) -> str:
    return "\n".join(_figure(doc, cue, outcomes, doc_dir, embed) for cue in section.images)


def _title(section: Section) -> str:
    return f"<h2>{_esc(section.title)}</h2>" if section.title.strip() else ""


# ---------------------------------------------------------------------------------------------- layouts

def _book(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome], doc_dir: Path, embed: bool) -> str:
    pages = []
    for n, section in enumerate(doc.sections, 1):
        blocks = [_figure(doc, b, outcomes, doc_dir, embed) if isinstance(b, ImageCue)
                  else f'<div class="prose">{markdown_html(b.text)}</div>' for b in section.blocks]
        pages.append(f'<section class="page" id="sec-{_esc(section.id)}">{_title(section)}\n' + "\n".join(blocks)
                     + f'\n<div class="page-number">{n}</div></section>')
    return '<main class="book">\n' + "\n".join(pages) + "\n</main>"


def _comic(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome], doc_dir: Path, embed: bool) -> str:
    panels = []
    for section in doc.sections:
        caption = _title(section) + markdown_html(section.text)
        panels.append(f'<article class="panel" id="sec-{_esc(section.id)}">'
                      f'{_figures(doc, section, outcomes, doc_dir, embed)}'
                      + (f'<div class="caption">{caption}</div>' if caption else "") + "</article>")
    return '<main class="comic">\n' + "\n".join(panels) + "\n</main>"


def _storyboard(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome], doc_dir: Path, embed: bool) -> str:
    frames = []
    for n, section in enumerate(doc.sections, 1):
        frames.append(f'<article class="frame" id="sec-{_esc(section.id)}">'
                      f'<div class="frame-number">Frame {n}</div>{_title(section)}'
                      f'{_figures(doc, section, outcomes, doc_dir, embed)}'
                      f'<div class="notes">{markdown_html(section.text)}</div></article>')
    return '<main class="storyboard">\n' + "\n".join(frames) + "\n</main>"


def _tutorial(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome], doc_dir: Path, embed: bool) -> str:
    steps = []
    for n, section in enumerate(doc.sections, 1):
        head = f'<h2><span class="step-number">Step {n}</span>{_esc(section.title)}</h2>'
        steps.append(f'<li class="step" id="sec-{_esc(section.id)}">'
                     f'<div class="text">{head}{markdown_html(section.text)}</div>'
                     f'<div class="media">{_figures(doc, section, outcomes, doc_dir, embed)}</div></li>')
    return '<main class="tutorial"><ol class="steps">\n' + "\n".join(steps) + "\n</ol></main>"


_LAYOUTS = {"book": _book, "comic": _comic, "storyboard": _storyboard, "tutorial": _tutorial}


# ---------------------------------------------------------------------------------------------- consistency

def _cell_fails(char: CharacterConsistency, a: str, b: str, value: float | None) -> bool:
    verdicts = {(p.a, p.b): p.passed for p in char.pairs} | {(p.b, p.a): p.passed for p in char.pairs}
    if (a, b) in verdicts:
        return not verdicts[(a, b)]
    return value is not None and a != b and value < char.threshold


def _matrix(char: CharacterConsistency) -> str:
    labels = char.labels
    rows = ["<tr><th></th>" + "".join(f"<th>{_esc(label)}</th>" for label in labels) + "</tr>"]
    for i, a in enumerate(labels):
        cells = []
        for j, b in enumerate(labels):
            value = char.matrix[i][j] if i < len(char.matrix) and j < len(char.matrix[i]) else None
            if i == j:
                cells.append('<td class="diag">—</td>')
                continue
            shown = "no face" if value is None else f"{value:.2f}"
            if _cell_fails(char, a, b, value):
                cells.append(f'<td class="fail" title="below {char.threshold:.2f}">{shown} ✗</td>')
            else:
                cells.append(f'<td class="{"na" if value is None else "ok"}">{shown}</td>')
        head = f"<th>{_esc(a)}{' ✗' if a in char.failing else ''}</th>"
        rows.append(f"<tr>{head}{''.join(cells)}</tr>")
    return f'<table class="matrix" data-character="{_esc(char.name)}">' + "".join(rows) + "</table>"


def _swatches(colours: list[str]) -> str:
    return "".join(f'<span class="swatch" style="background:{c}" title="{c}"></span>' for c in colours if _HEX.match(c))


def _style_row(style: StyleDistance) -> str:
    mark = "✓" if style.passed else "✗"
    return (f'<tr><th>{_esc(style.id)}</th><td>{_swatches(style.palette)}</td>'
            f'<td>{style.palette_distance:.1f}</td><td>{style.style_distance:.2f}</td>'
            f'<td class="{"ok" if style.passed else "fail"}">{mark}</td></tr>')


def _consistency(report: ConsistencyReport | None, sheet: CharacterSheet | None, doc_dir: Path,
                 embed: bool) -> str:
    if report is None and sheet is None:
        return ""
    parts = ['<section class="consistency" id="consistency"><h2>Consistency</h2>']
    if report is not None:
        verdict = "every image agrees" if report.passed else f"{len(report.failing)} image(s) disagree"
        parts.append(f"<p>Round {report.round}: {_esc(verdict)}.</p>")
        if report.reasons:
            parts.append("<ul>" + "".join(f"<li><strong>{_esc(k)}</strong>: {_esc(v)}</li>"
                                          for k, v in sorted(report.reasons.items())) + "</ul>")
        for char in report.characters:
            parts.append(f"<h3>{_esc(char.name)}</h3>")
            note = char.note or ("" if char.verified else "not verified")
            if note:
                parts.append(f"<p>{_esc(note)}</p>")
            if char.labels:
                parts.append(f"<p>Similarity (threshold {char.threshold:.2f}):</p>{_matrix(char)}")
        if report.styles:
            parts.append("<h3>Palette and style</h3><table class=\"styles\"><tr><th>image</th><th>palette</th>"
                         "<th>palette distance</th><th>style distance</th><th></th></tr>"
                         + "".join(_style_row(s) for s in report.styles) + "</table>")
    if sheet is not None:
        parts.append("<h3>Character sheet</h3>")
        if sheet.palette:
            parts.append(f"<p>Palette: {_swatches(sheet.palette)}</p>")
        for entry in sheet.characters:
            thumbs = "".join(f'<img src="{_esc(_image_src(ref, doc_dir, embed))}" alt="{_esc(entry.name)}" '
                             f'width="{ref.width}" height="{ref.height}">' for ref in entry.references)
            origin = {"given": "given references", "first_image": f"from image {entry.image_id or '?'}",
                      "none": "no reference"}[entry.origin]
            parts.append(f'<div class="thumbs"><strong>{_esc(entry.name)}</strong> '
                         f'<small>({_esc(origin)})</small><br>{thumbs}</div>')
    parts.append("</section>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- document

def story_html(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome], doc_dir: Path, *,
               consistency: ConsistencyReport | None = None, sheet: CharacterSheet | None = None,
               embed: bool = False, live: bool = False) -> str:
    """The document as one self-contained HTML page in its layout (to be written in `doc_dir`).

    Images are referenced by their paths relative to `doc_dir`, or embedded as data URLs (`embed`); those not
    made yet are placeholders. `live` makes a browser reload the page every REFRESH_SECONDS while it is rewritten.
    """
    title = " ".join(doc.title.split())
    head = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">']
    if live:
        head.append(f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">')
    head += [f"<title>{_esc(title or 'Story')}</title>", f"<style>{CSS}</style>", "</head>"]
    body = [f'<body class="layout-{doc.layout}">']
    if title or live:
        body.append('<header class="doc">' + (f"<h1>{_esc(title)}</h1>" if title else "")
                    + ('<p class="live">Being made: this page reloads itself.</p>' if live else "") + "</header>")
    body.append(_LAYOUTS[doc.layout](doc, outcomes, doc_dir, embed))
    consistency_html = _consistency(consistency, sheet, doc_dir, embed)
    if consistency_html:
        body.append(consistency_html)
    body += ["</body>", "</html>"]
    return "\n".join(head + body) + "\n"


def write_story(doc: DocumentBrief, outcomes: Mapping[str, ImageOutcome], doc_dir: Path, *,
                consistency: ConsistencyReport | None = None, sheet: CharacterSheet | None = None,
                embed: bool = False, live: bool = False) -> tuple[Path, Path]:
    """Write `story.md` and `story.html` in `doc_dir`, each atomically (a reader never sees half a file)."""
    doc_dir = Path(doc_dir)
    doc_dir.mkdir(parents=True, exist_ok=True)
    md_path, html_path = doc_dir / STORY_MD, doc_dir / STORY_HTML
    write_atomic(md_path, story_markdown(doc, outcomes, doc_dir).encode())
    write_atomic(html_path, story_html(doc, outcomes, doc_dir, consistency=consistency, sheet=sheet,
                                       embed=embed, live=live).encode())
    return md_path, html_path


__all__ = ["CSS", "REFRESH_SECONDS", "STORY_HTML", "STORY_MD", "markdown_html", "story_html", "story_markdown",
           "write_story"]
