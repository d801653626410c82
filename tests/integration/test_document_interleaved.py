"""A document written by the Gemini backend's own interleaved stream: text reaches the reader as it streams, every
image in it is checked as the first candidate of its own loop (at no cost), and only a failing one is corrected."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.interfaces.story import astory
from agent.models import PixloopConfig
from agent.models.document import DocumentEvent
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.gemini import create_app


@pytest.fixture
def gemini(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    server = FakeServer(create_app(FaultPlan.parse([]), interleaved_delay=0.0, interleaved_misspell="2")).start()
    try:
        yield server
    finally:
        server.stop()


def make(server: FakeServer, tmp_path: Path, **kwargs: Any) -> tuple[Any, list[DocumentEvent]]:
    events: list[DocumentEvent] = []
    config = PixloopConfig(backend="gemini", base_url=server.url)
    result = asyncio.run(astory("Mia opens a bakery", config, interleaved=True, pages=3, out=tmp_path / "doc",
                                thread_id="doc", on_event=events.append, **kwargs))
    return result, events


def test_a_misspelt_image_in_the_stream_is_corrected_and_the_others_are_kept_as_streamed(gemini, tmp_path):
    result, events = make(gemini, tmp_path)

    texts = [e for e in events if e.event == "text"]
    assert [t.section for t in texts] == ["s1", "s2", "s3"]
    assert '"BAKERY"' in texts[1].text or "BAKERY" in texts[1].text
    first_started = next(i for i, e in enumerate(events) if e.event == "image_started")
    assert all(i < first_started for i, e in enumerate(events) if e.event == "text"), "text streams first"
    assert result.status == "passed", result.report
    assert result.images["s2-i1"].iterations >= 2, "the misspelt page was corrected"
    assert result.images["s1-i1"].iterations == 1 and result.images["s3-i1"].iterations == 1
    corrections = {e.image for e in events if e.event == "correction"}
    assert corrections == {"s2-i1"}
    generated = [p for p in gemini.app.state.requests.paths() if p.endswith(":generateContent")]
    assert generated, "the correction asked the backend for a new image"
    rows = {r["id"]: r for r in result.report["images"]}
    assert result.report["source"] == "interleaved"
    assert rows["s1-i1"]["cost"] == 0, "a streamed image is paid for by the stream, not again"
