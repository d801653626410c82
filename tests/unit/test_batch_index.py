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
