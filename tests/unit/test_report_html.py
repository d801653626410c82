"""report.html: a self-contained page built from report.json alone (images inline, text escaped, evidence drawn)."""

from __future__ import annotations

import base64
import io
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from PIL import Image

from agent.loop.report_draw import draw_evidence
from agent.loop.report_html import REPORT_HTML, render_report_html, write_report_html

EVIL = '<script>alert("x")</script> & "quotes"'


class Page(HTMLParser):
    """Collects every tag's attributes, the visible text and the elements with a class."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    def with_class(self, cls: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if cls in (a.get("class") or "").split()]


def _save(root: Path, rel: str, colour: tuple[int, int, int], size: tuple[int, int] = (300, 400)) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return rel


def _report(root: Path, *, edit: bool = False) -> dict[str, Any]:
    c1, c2 = _save(root, "images/c1.png", (200, 60, 20)), _save(root, "images/c2.png", (20, 120, 200))
    heat = _save(root, "images/heat.png", (250, 0, 0), (100, 130))
    _save(root, "final.png", (20, 120, 200))
    ocr_fail = {"critic": "ocr", "status": "checked", "score": 0.0, "threshold": 0.9, "passed": False,
                "feedback": f"headline {EVIL} missing",
                "evidence": {"elements": [{"id": "headline", "expected": "GRAND", "read": "", "cer": 1.0, "box": None,
                                           "region": [10, 10, 290, 200]}]}}
    ocr_pass = {"critic": "ocr", "status": "checked", "score": 1.0, "threshold": 0.9, "passed": True, "feedback": "ok",
                "evidence": {"elements": [{"id": "headline", "expected": "GRAND", "read": "GRAND", "cer": 0.0,
                                           "box": [20, 40, 280, 120]}],
                             "lines": [{"text": EVIL, "score": 1.0, "box": [20, 40, 280, 120]}]}}
    face = {"critic": "face", "status": "checked", "score": 0.8, "threshold": 0.6, "passed": True, "feedback": "",
            "evidence": {"identities": [{"subject": "anna", "box": [100, 150, 200, 260], "similarity": 0.81,
                                         "same": True}], "extra_faces": [[0, 0, 40, 40]]}}
    arts = {"critic": "artifacts", "status": "checked", "score": 0.3, "threshold": 0.5, "passed": False,
            "feedback": "blurred", "evidence": {"worst": "blur", "heatmap": heat, "regions": [[0, 200, 150, 400]]}}
    skipped = {"critic": "vlm", "status": "skipped", "score": None, "threshold": 0.7, "passed": False,
               "feedback": "not configured", "evidence": {}}
    report: dict[str, Any] = {
        "version": 1, "status": "passed", "stop_reason": "passed", "summary": f"c2 passed {EVIL}",
        "iterations": 2, "final": {"candidate": "c2", "path": "final.png", "width": 300, "height": 400},
        "backend": "compose", "planner": "rule", "brief": {"prompt": f"A poster {EVIL}"},
        "candidates": [
            {"id": "c1", "iteration": 1, "path": c1, "width": 300, "height": 400, "seed": 0, "strategy": "initial",
             "backend": "compose", "parent": None, "verdicts": [ocr_fail, arts, skipped]},
            {"id": "c2", "iteration": 2, "path": c2, "width": 300, "height": 400, "seed": 0,
             "strategy": "restyle_text", "backend": "compose", "parent": "c1", "verdicts": [ocr_pass, face]},
        ],
        "actions": [{"iteration": 2, "strategy": "restyle_text", "reason": f"ocr 0.00 < 0.90 {EVIL}",
                     "feedback": ["enlarge text"], "style": {"text_scale": 0.9}, "scores_before": {"ocr": 0.0,
                                                                                                 "artifacts": 0.9},
                     "score_changes": {"ocr": 1.0, "artifacts": -0.1}, "candidates": ["c2"]}],
        "requirements": [{"text": "GRAND", "kind": "text", "verified_by": "ocr", "status": "passed", "detail": ""},
                         {"text": EVIL, "kind": "style", "verified_by": None, "status": "unverified",
                          "detail": "no critic checks style"}],
        "unverified": [f"not verified: {EVIL}"], "cost_used": 0.0, "elapsed_seconds": 3.2, "edit": None,
    }
    if edit:
        mask = Image.new("L", (300, 400), 0)
        mask.paste(255, (0, 0, 150, 400))
        mask.save(root / "mask.png")
        _save(root, "mask-preview.png", (90, 90, 90))
        diff = _save(root, "images/diff.png", (0, 0, 0), (120, 160))
        report["edit"] = {"instruction": "make the sky red", "kind": "recolor", "mask": "mask.png",
                          "preview": "mask-preview.png", "source": "images/c1.png", "mask_share": 0.5}
        report["candidates"][1]["verdicts"].append(
            {"critic": "preservation", "status": "checked", "score": 0.95, "threshold": 0.9, "passed": True,
             "feedback": "", "evidence": {"diff_map": diff, "worst_region": [160, 10, 290, 60]}})
    return report


def _decode(src: str) -> Image.Image:
    assert src.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def test_page_shows_final_candidates_badges_and_requirements(tmp_path: Path) -> None:
    html = render_report_html(tmp_path, _report(tmp_path))
    page = Page(html)
    text = " ".join(page.text)

    imgs = page.all("img")
    assert len(imgs) == 1 + 2 + 1  # final, two candidates, one heat map
    for img in imgs:  # inline JPEG thumbnails, never a file or network reference
        im = _decode(img["src"] or "")
        assert max(im.size) <= 1024
    assert "passed" in text and "c2 passed" in text
    assert {a.get("id") for a in page.all("div")} >= {"cand-c1", "cand-c2"}
    assert len(page.with_class("pass")) == 3  # c2: ocr, face; requirement GRAND
    assert len(page.with_class("fail")) == 2  # c1: ocr, artifacts
    assert "ocr 0.00 < 0.90 FAIL" in text and "ocr 1.00 ≥ 0.90 pass" in text
    assert len(page.with_class("skip")) >= 2  # the skipped critic and the unverified requirement
    assert "verified by" in text and "unverified" in text and "artifacts heat map (blur)" in text
    assert "+1.00" in text and "-0.10" in text  # score changes of the correction
    assert "restyle_text" in text and "text_scale=0.9" in text


def test_every_text_is_escaped_and_nothing_external(tmp_path: Path) -> None:
    html = render_report_html(tmp_path, _report(tmp_path))
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html
    assert "http://" not in html and "https://" not in html and "src=\"images/" not in html
    page = Page(html)
    assert not page.all("script") and not page.all("link")


def test_evidence_is_drawn_on_the_candidate(tmp_path: Path) -> None:
    report = _report(tmp_path)
    page = Page(render_report_html(tmp_path, report))
    c1 = next(a for a in page.all("img") if "candidate c1" in (a.get("alt") or ""))
    drawn = _decode(c1["src"] or "").convert("RGB")
    # the missing headline's expected region is outlined in red on an orange-brown image
    r, g, b = drawn.getpixel((round(10 * drawn.width / 300) + 1, round(100 * drawn.height / 400)))
    assert r > 180 and g < 90 and b < 90
    img = Image.new("RGB", (150, 200), "white")
    assert draw_evidence(img, (300, 400), report["candidates"][1]["verdicts"]) == 4  # element, line, face, extra
    assert draw_evidence(img, (300, 400), [{"critic": "ocr", "evidence": {"lines": [{"box": "junk"}]}},
                                           {"critic": "face", "evidence": None}, "nonsense"]) == 0  # type: ignore[list-item]


def test_edit_run_shows_mask_preview_source_and_diff_map(tmp_path: Path) -> None:
    page = Page(render_report_html(tmp_path, _report(tmp_path, edit=True)))
    alts = [a.get("alt") or "" for a in page.all("img")]
    assert "mask tinted on the result" in alts and "mask preview on the source" in alts and "source image" in alts
    assert "preservation difference from the original" in alts
    tinted = _decode(next(a["src"] for a in page.all("img") if a.get("alt") == "mask tinted on the result") or "")
    left, right = tinted.convert("RGB").getpixel((5, 50)), tinted.convert("RGB").getpixel((tinted.width - 5, 50))
    assert left != right and left[0] > right[0]  # the mask's left half is tinted pink


def test_missing_images_and_paths_outside_the_run_are_not_read(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    secret = tmp_path / "secret.png"
    Image.new("RGB", (10, 10), "red").save(secret)
    report = {"status": "failed", "summary": "nothing", "final": None,
              "candidates": [{"id": "c1", "path": "../secret.png", "verdicts": []},
                             {"id": "c2", "path": str(secret), "verdicts": []}]}
    page = Page(render_report_html(run, report))
    assert page.all("img") == []
    assert "no final image was delivered" in " ".join(page.text)


def test_write_is_fast_for_a_three_candidate_run(tmp_path: Path) -> None:
    report = _report(tmp_path)
    big = [_save(tmp_path, f"images/big{i}.png", (40 * i, 90, 160), (1024, 1536)) for i in range(3)]
    report["candidates"].append(dict(report["candidates"][0], id="c3"))
    for c, path in zip(report["candidates"], big):
        c.update(path=path, width=1024, height=1536)
    _save(tmp_path, "final.png", (20, 120, 200), (1024, 1536))
    t0 = time.perf_counter()
    dest = write_report_html(tmp_path, report)
    elapsed = time.perf_counter() - t0
    assert dest == tmp_path / REPORT_HTML and dest.stat().st_size > 1000
    assert elapsed < 1.5, elapsed  # ~0.1 s on a laptop; generous for a loaded CI machine


def _quick_run(out: Path) -> int:
    from agent.interfaces.cli import main

    return main(["run", 'A poster that says "HI"', "--critic", "spec", "--out", str(out), "-q"])


def test_a_run_writes_report_html_next_to_report_json(tmp_path: Path) -> None:
    assert _quick_run(tmp_path / "run") == 0
    html = (tmp_path / "run" / REPORT_HTML).read_text()
    assert 'id="cand-c1"' in html and 'id="status">passed<' in html


def test_a_failing_report_html_never_fails_the_run(tmp_path: Path, monkeypatch: Any) -> None:
    from graphs import nodes

    def broken(*_: Any) -> Path:
        raise RuntimeError("drawing bug")

    monkeypatch.setattr(nodes, "write_report_html", broken)
    assert _quick_run(tmp_path / "run") == 0
    assert (tmp_path / "run" / "report.json").exists() and not (tmp_path / "run" / REPORT_HTML).exists()
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert "report_html_error" in events and "drawing bug" in events
