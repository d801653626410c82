"""A batch's `index.html`: a contact sheet of every job (its final image as an embedded thumbnail, its status,
cost and time, why it failed) linking to each job's own report.html (or a story's story.html). Self-contained:
no server, no script, no external URL; rewritten with summary.json as jobs finish (at most every few seconds, and
at the end), each thumbnail made once."""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.loop.report_draw import data_url, open_image, thumbnail
from agent.runtime.store import write_atomic

INDEX_HTML = "index.html"
THUMB_SIDE = 256
COLOURS = {"passed": "#15803d", "below_threshold": "#b45309", "refused": "#7c3aed", "failed": "#b91c1c",
           "bad_input": "#b91c1c"}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111;background:#f7f7f5}
h1{font-size:22px;margin:0 0 4px} .meta{color:#555;margin-bottom:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:14px}
.job{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px}
.job img{width:100%;height:200px;object-fit:contain;background:#eee;border-radius:4px}
.none{height:200px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777;border-radius:4px}
.badge{display:inline-block;color:#fff;border-radius:10px;padding:1px 8px;font-size:12px}
.id{font-weight:600;margin:6px 0 2px} .small{font-size:12px;color:#555} .err{font-size:12px;color:#b91c1c}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


@functools.lru_cache(maxsize=2048)
def _thumbnail_url(path: str, mtime_ns: int, size: int) -> str | None:
    """A final image's thumbnail as a data URL, decoded once per file version (the sheet is rewritten as jobs
    finish: without the cache every rewrite decoded every finished job's image again)."""
    image = open_image(Path(path))
    return data_url(thumbnail(image, THUMB_SIDE)) if image is not None else None


def _thumbnail(out: Path, final: str) -> str | None:
    path = out / final
    if not path.resolve().is_relative_to(out.resolve()):
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return _thumbnail_url(str(path), stat.st_mtime_ns, stat.st_size)


def _card(out: Path, row: dict[str, Any]) -> str:
    status = str(row.get("status") or "pending")
    final = row.get("final")
    url = _thumbnail(out, str(final)) if final and not str(final).endswith(".html") else None
    picture = (f'<img src="{url}" alt="{_e(row.get("id"))}">' if url is not None
               else '<div class="none">no image</div>')
    report = f"{row.get('id')}/report.html" if row.get("kind") != "story" else f"{row.get('id')}/story.html"
    link = f'<a href="{_e(report)}">{picture}</a>' if (out / report).is_file() else picture
    seconds = row.get("seconds")
    facts = f"{_e(row.get('kind'))} · cost {float(row.get('cost') or 0):g}" + (
        f" · {float(seconds):.1f} s" if isinstance(seconds, (int, float)) else "")
    error = f'<div class="err">{_e(str(row["error"])[:240])}</div>' if row.get("error") else ""
    return (f'<div class="job" id="job-{_e(row.get("id"))}">{link}<div class="id">{_e(row.get("id"))}</div>'
            f'<span class="badge" style="background:{COLOURS.get(status, "#6b7280")}">{_e(status)}</span> '
            f'<span class="small">{facts}</span>{error}</div>')


def render_index(out: Path, rows: Sequence[dict[str, Any]], *, jobs_file: str, spent: float, exit_code: int) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    cards = "\n".join(_card(out, dict(r)) for r in rows)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>pixloop batch</title>'
            f'<style>{CSS}</style></head><body><h1>pixloop batch: {_e(Path(jobs_file).name)}</h1>'
            f'<div class="meta">{len(rows)} jobs: {_e(summary)} · cost {spent:g} · exit code {exit_code}</div>'
            f'<div class="grid">\n{cards}\n</div></body></html>\n')


def write_index(out: Path, rows: Sequence[dict[str, Any]], *, jobs_file: str, spent: float, exit_code: int) -> Path:
    """OUT/index.html, replaced atomically."""
    return write_atomic(out / INDEX_HTML, render_index(out, rows, jobs_file=jobs_file, spent=spent,
                                                      exit_code=exit_code).encode())


__all__ = ["INDEX_HTML", "render_index", "write_index"]
