"""The visual report (report.html), written next to report.json from it alone.

One self-contained page: inline CSS, no script, no external URL; every image is an inline JPEG data: URL of a
thumbnail (long side <= 1024 px), so it opens from disk or as an email attachment. It shows the final image
with the status and summary, what was and was not verified, every candidate with its verdict badges and the
critics' evidence drawn on it (OCR boxes and what was read, face boxes and similarities, artifact regions and
heat maps, the preservation difference map), the edit mask for an edit, and each correction with its reason
and score changes. Every piece of text from the report is escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from PIL import Image

from agent.loop.report_draw import (
    CANDIDATE_SIDE,
    EXTRA_SIDE,
    FINAL_SIDE,
    data_url,
    draw_evidence,
    open_image,
    thumbnail,
    tint_mask,
)
from agent.runtime.store import write_atomic

REPORT_HTML = "report.html"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f4f5;color:#18181b}
main{max-width:1240px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d4d4d8}
.card{background:#fff;border:1px solid #e4e4e7;border-radius:8px;padding:12px}
.hero{display:flex;gap:20px;align-items:flex-start;flex-wrap:wrap}
.hero img{max-width:100%;max-height:760px;border-radius:6px;border:1px solid #d4d4d8}
.meta{flex:1;min-width:280px}.muted{color:#71717a;font-size:12px}
.status{display:inline-block;padding:3px 10px;border-radius:999px;color:#fff;font-weight:600}
.s-passed{background:#16a34a}.s-below_threshold{background:#d97706}.s-failed,.s-refused{background:#dc2626}
.s-other{background:#52525b}
.strip{display:flex;gap:14px;overflow-x:auto;padding-bottom:6px;align-items:flex-start}
.cand{flex:0 0 auto;width:min(520px,90vw)}.cand img.main{width:100%;border-radius:4px}
.cand.best{border:2px solid #16a34a}
.badges{display:flex;flex-wrap:wrap;gap:4px;margin:6px 0}
.badge{font-size:12px;padding:2px 7px;border-radius:4px;color:#fff;white-space:nowrap}
.pass{background:#16a34a}.fail{background:#dc2626}.skip{background:#a1a1aa}
.extras{display:flex;gap:8px;flex-wrap:wrap;margin-top:6px}.extras figure{margin:0}
.extras img{max-width:240px;max-height:240px;border:1px solid #d4d4d8}
figcaption{font-size:12px;color:#52525b}
ul.fb{margin:4px 0;padding-left:18px;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%}
td,th{border:1px solid #e4e4e7;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#fafafa}.up{color:#16a34a;font-weight:600}.down{color:#dc2626;font-weight:600}
.unverified{color:#b45309}.action{margin-bottom:12px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any, fmt: str = ".2f") -> str:
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else "–"


class _Images:
    """Opens run files (only inside the run folder), each once."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self._cache: dict[str, Image.Image | None] = {}

    def get(self, rel: Any) -> Image.Image | None:
        if not isinstance(rel, str) or not rel:
            return None
        if rel not in self._cache:
            path = (self.root / rel).resolve()
            inside = path == self.root or self.root in path.parents
            self._cache[rel] = open_image(path) if inside and path.is_file() else None
        return self._cache[rel]


def _img(image: Image.Image, alt: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} src="{data_url(image)}" alt="{_e(alt)}" width="{image.width}" height="{image.height}">'


def _verdict_badge(v: dict[str, Any]) -> str:
    critic = v.get("critic", "?")
    if v.get("status") not in (None, "checked") or v.get("score") is None:
        return f'<span class="badge skip" title="{_e(v.get("error") or v.get("feedback"))}">' \
               f'{_e(critic)} {_e(v.get("status") or "not checked")}</span>'
    ok = bool(v.get("passed"))
    sign = "&ge;" if ok else "&lt;"
    return (f'<span class="badge {"pass" if ok else "fail"}" title="{_e(v.get("feedback"))}">{_e(critic)} '
            f'{_num(v.get("score"))} {sign} {_num(v.get("threshold"))} {"pass" if ok else "FAIL"}</span>')


def _candidate(c: dict[str, Any], images: _Images, best_id: Any) -> str:
    verdicts = [v for v in c.get("verdicts") or [] if isinstance(v, dict)]
    parts = [f'<div class="card cand{" best" if c.get("id") == best_id else ""}" id="cand-{_e(c.get("id"))}">',
             f'<b>{_e(c.get("id"))}</b>{" (final)" if c.get("id") == best_id else ""} '
             f'<span class="muted">iteration {_e(c.get("iteration"))} · {_e(c.get("strategy"))} via '
             f'{_e(c.get("backend"))} · seed {_e(c.get("seed"))}'
             f'{" · from " + _e(c.get("parent")) if c.get("parent") else ""}</span>']
    src = images.get(c.get("path"))
    if src is not None:
        thumb = thumbnail(src, CANDIDATE_SIDE)
        n = draw_evidence(thumb, (int(c.get("width") or src.width), int(c.get("height") or src.height)), verdicts)
        parts.append(_img(thumb, f"candidate {c.get('id')}" + (f" with {n} evidence boxes" if n else ""), "main"))
    else:
        parts.append(f'<p class="muted">image {_e(c.get("path"))} not found</p>')
    parts.append('<div class="badges">' + "".join(_verdict_badge(v) for v in verdicts) + "</div>")
    feedback = [v for v in verdicts if v.get("feedback") and not v.get("passed")]
    if feedback:
        parts.append('<ul class="fb">' + "".join(f"<li><b>{_e(v.get('critic'))}</b>: {_e(v.get('feedback'))}</li>"
                                                  for v in feedback) + "</ul>")
    extras = []
    for v in verdicts:
        ev = _dict(v.get("evidence"))
        for key, caption in (("heatmap", "heat map"), ("diff_map", "difference from the original")):
            extra = images.get(ev.get(key))
            if extra is not None:
                what = f" ({ev['worst']})" if key == "heatmap" and ev.get("worst") else ""
                alt = f"{v.get('critic')} {caption}"
                extras.append(f"<figure>{_img(thumbnail(extra, EXTRA_SIDE), alt)}"
                              f"<figcaption>{_e(v.get('critic'))} {caption}{_e(what)}</figcaption></figure>")
    if extras:
        parts.append('<div class="extras">' + "".join(extras) + "</div>")
    parts.append("</div>")
    return "".join(parts)


def _action(a: dict[str, Any]) -> str:
    before, changes = _dict(a.get("scores_before")), _dict(a.get("score_changes"))
    rows = []
    for critic in sorted(set(before) | set(changes)):
        b, d = before.get(critic), changes.get(critic)
        after = b + d if isinstance(b, int | float) and isinstance(d, int | float) else None
        cls = "up" if isinstance(d, int | float) and d > 0.0005 else "down" if isinstance(d, int | float) and d < -0.0005 else ""
        rows.append(f"<tr><td>{_e(critic)}</td><td>{_num(b)}</td><td class=\"{cls}\">{_num(d, '+.2f')}</td>"
                    f"<td>{_num(after)}</td></tr>")
    style = _dict(a.get("style"))
    style_txt = ", ".join(f"{k}={v}" for k, v in style.items() if v is not None)
    feedback = [f for f in a.get("feedback") or [] if f]
    made = ", ".join(str(x) for x in a.get("candidates") or [])
    return (f'<div class="card action"><b>iteration {_e(a.get("iteration"))}: {_e(a.get("strategy"))}</b>'
            f'{" → " + _e(made) if made else ""}<br><span class="muted">reason:</span> {_e(a.get("reason"))}'
            + (f"<br><span class=\"muted\">settings:</span> {_e(style_txt)}" if style_txt else "")
            + (('<ul class="fb">' + "".join(f"<li>{_e(f)}</li>" for f in feedback) + "</ul>") if feedback else "")
            + ("<table><tr><th>critic</th><th>before</th><th>change</th><th>after</th></tr>" + "".join(rows)
               + "</table>" if rows else "")
            + "</div>")


def _edit(edit: dict[str, Any], images: _Images, final_rel: Any) -> str:
    figs = []
    mask = images.get(edit.get("mask"))
    base = images.get(final_rel)
    if mask is not None and base is not None:
        figs.append(f"<figure>{_img(tint_mask(thumbnail(base, EXTRA_SIDE), mask), 'mask tinted on the result')}"
                    "<figcaption>what the edit may change (tinted) on the result</figcaption></figure>")
    elif mask is not None:
        figs.append(f"<figure>{_img(thumbnail(mask, EXTRA_SIDE), 'edit mask')}<figcaption>edit mask (white may change)"
                    "</figcaption></figure>")
    preview = images.get(edit.get("preview"))
    if preview is not None:
        figs.append(f"<figure>{_img(thumbnail(preview, EXTRA_SIDE), 'mask preview on the source')}"
                    "<figcaption>mask on the source</figcaption></figure>")
    source = images.get(edit.get("source"))
    if source is not None:
        figs.append(f"<figure>{_img(thumbnail(source, EXTRA_SIDE), 'source image')}"
                    "<figcaption>source</figcaption></figure>")
    facts = "; ".join(f"{k}: {edit[k]}" for k in ("instruction", "kind", "keep", "target", "mask_origin", "method",
                                                 "mask_share") if edit.get(k) is not None)
    return (f'<h2>Edit</h2><div class="card"><p>{_e(facts)}</p><div class="extras">{"".join(figs)}</div></div>')


def render_report_html(run_dir: str | Path, report: dict[str, Any]) -> str:
    """The report page for a run folder and its report.json content."""
    images = _Images(Path(run_dir))
    status = str(report.get("status") or "unknown")
    final = report.get("final") if isinstance(report.get("final"), dict) else None
    best_id = final.get("candidate") if final else None
    candidates = [c for c in report.get("candidates") or [] if isinstance(c, dict)]
    by_id = {c.get("id"): c for c in candidates}
    final_rel = final.get("path") if final else None
    if final and images.get(final_rel) is None and best_id in by_id:
        final_rel = by_id[best_id].get("path")  # final.png missing: its candidate is the same image
    final_img = images.get(final_rel)

    s_cls = status if status in ("passed", "below_threshold", "failed", "refused") else "other"
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
           f"<title>pixloop report: {_e(status)}</title><style>{_CSS}</style></head><body><main>"]
    brief = report.get("brief")
    prompt = brief.get("prompt") if isinstance(brief, dict) else brief if isinstance(brief, str) else None
    out.append(f'<h1>pixloop run report</h1><p class="muted">{_e(prompt)}</p>')
    out.append('<section class="card hero" id="final">')
    if final_img is not None:
        out.append(_img(thumbnail(final_img, FINAL_SIDE), f"final image {best_id}", "final"))
    else:
        out.append('<p class="muted">no final image was delivered</p>')
    facts = [("stop reason", report.get("stop_reason")), ("final candidate", best_id),
             ("iterations", report.get("iterations")), ("backend", report.get("backend")),
             ("elapsed", f"{_num(report.get('elapsed_seconds'), '.1f')} s"), ("cost", report.get("cost_used"))]
    out.append(f'<div class="meta"><span class="status s-{s_cls}" id="status">{_e(status)}</span>'
               f'<p id="summary">{_e(report.get("summary"))}</p>'
               + (f'<p class="fail badge">{_e(report.get("error"))}</p>' if report.get("error") else "")
               + "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
               + "</table>")
    unverified = [u for u in report.get("unverified") or [] if u]
    if unverified:
        out.append("".join(f'<p class="unverified">{_e(u)}</p>' for u in unverified))
    out.append("</div></section>")

    reqs = [r for r in report.get("requirements") or [] if isinstance(r, dict)]
    if reqs:
        out.append("<h2>Requirements</h2><table><tr><th>requirement</th><th>kind</th><th>verified by</th>"
                   "<th>status</th><th>detail</th></tr>")
        for r in reqs:
            st = str(r.get("status") or "")
            cls = "pass" if st == "passed" else "fail" if st == "failed" else "skip"
            out.append(f"<tr><td>{_e(r.get('text'))}</td><td>{_e(r.get('kind'))}</td>"
                       f"<td>{_e(r.get('verified_by') or 'nothing')}</td>"
                       f'<td><span class="badge {cls}">{_e(st)}</span></td><td>{_e(r.get("detail"))}</td></tr>')
        out.append("</table>")

    if isinstance(report.get("edit"), dict):
        out.append(_edit(report["edit"], images, final_rel))

    out.append(f"<h2>Candidates ({len(candidates)})</h2>")
    out.append('<p class="muted">Boxes: green = read or matched as expected, red = wrong or missing, blue = text '
               "OCR read, orange = artifact region or an extra face.</p>")
    out.append('<div class="strip">' + "".join(_candidate(c, images, best_id) for c in candidates) + "</div>")

    actions = [a for a in report.get("actions") or [] if isinstance(a, dict)]
    if actions:
        out.append(f"<h2>Corrections ({len(actions)})</h2>" + "".join(_action(a) for a in actions))
    out.append(f'<p class="muted">report version {_e(report.get("version"))} · planner {_e(report.get("planner"))}'
               "</p></main></body></html>\n")
    return "".join(out)


def write_report_html(run_dir: str | Path, report: dict[str, Any]) -> Path:
    """Write report.html into the run folder (atomically: a temporary file, then a rename); its path."""
    return write_atomic(Path(run_dir) / REPORT_HTML, render_report_html(run_dir, report).encode("utf-8"))


__all__ = ["REPORT_HTML", "render_report_html", "write_report_html"]
