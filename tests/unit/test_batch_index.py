"""The batch's contact sheet: one card per job, the job's text escaped, links only to files that exist."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from agent.interfaces.batch_index import render_index, write_index


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_every_job_has_a_card_its_error_is_escaped_and_only_existing_reports_are_linked(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    Image.new("RGB", (300, 200), (200, 40, 40)).save(tmp_path / "a" / "final.png")
    (tmp_path / "a" / "report.html").write_text("<html></html>")
    rows = [{"id": "a", "kind": "run", "status": "passed", "final": "a/final.png", "cost": 1.0, "seconds": 2.5},
            {"id": "b", "kind": "run", "status": "bad_input", "error": "<script>alert(1)</script>"},
            {"id": "c", "kind": "run", "status": "failed", "final": "../../etc/passwd"}]
    page = render_index(tmp_path, rows, jobs_file="jobs.jsonl", spent=1.0, exit_code=2)
    parser = _Tags()
    parser.feed(page)
    cards = [a["id"] for t, a in parser.tags if t == "div" and (a.get("id") or "").startswith("job-")]
    assert cards == ["job-a", "job-b", "job-c"]
    assert [a["href"] for t, a in parser.tags if t == "a"] == ["a/report.html"]
    images = [a["src"] for t, a in parser.tags if t == "img"]
    assert len(images) == 1 and images[0].startswith("data:image/jpeg;base64,"), "a path outside the batch is not read"
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "exit code 2" in page
    assert write_index(tmp_path, rows, jobs_file="jobs.jsonl", spent=1.0, exit_code=2).read_text() == page


def test_rewriting_the_sheet_decodes_each_final_image_once_until_it_changes(tmp_path: Path, monkeypatch) -> None:
    from agent.interfaces import batch_index

    batch_index._thumbnail_url.cache_clear()
    opened: list[Path] = []
    real = batch_index.open_image
    monkeypatch.setattr(batch_index, "open_image", lambda path: opened.append(path) or real(path))
    rows = []
    for k in range(3):
        (tmp_path / f"j{k}").mkdir()
        Image.new("RGB", (64, 64), (40 * k, 90, 90)).save(tmp_path / f"j{k}" / "final.png")
        rows.append({"id": f"j{k}", "kind": "run", "status": "passed", "final": f"j{k}/final.png"})

    for _ in range(5):  # as a batch rewrites it while its jobs finish
        render_index(tmp_path, rows, jobs_file="jobs.jsonl", spent=0.0, exit_code=0)
    assert len(opened) == 3

    Image.new("RGB", (80, 64), (0, 0, 0)).save(tmp_path / "j0" / "final.png")  # a new version of one image
    page = render_index(tmp_path, rows, jobs_file="jobs.jsonl", spent=0.0, exit_code=0)
    assert len(opened) == 4 and page.count("data:image/") == 3
