"""Gemini's native interleaved text+image output, streamed, against the loopback fake: reading order,
incremental delivery, every failure outcome, and what the fake draws."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import pytest
from PIL import Image

from agent.backends.gemini import InterleavedImage, InterleavedText, SseDecoder, stream_interleaved
from agent.models import PixloopConfig
from agent.models.errors import (
    AuthError,
    BadRequest,
    MalformedResponse,
    NoImageReturned,
    QuotaExhausted,
    RateLimited,
    SafetyBlocked,
    ServerError,
    ServiceTimeout,
)
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.gemini import create_app
from agent.testing.fakes.interleaved import Document

STORY = "A 3 page picture story about Mia's bakery"
FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "read_timeout": 10, "max_attempts": 3}


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def serve(*faults: str, **options: Any) -> FakeServer:
    return FakeServer(create_app(FaultPlan.parse(list(faults)), **{"interleaved_delay": 0.0, **options}))


def config(server: FakeServer | None, model: str | None = None, **options: Any) -> PixloopConfig:
    return PixloopConfig(backend="gemini", base_url=server.url if server else None, model=model,
                         options={**FAST, **options})


def collect(cfg: PixloopConfig, prompt: str = STORY, **kwargs: Any) -> tuple[list[Any], BaseException | None]:
    """Every item the stream yielded, and the error that ended it (None when it ended normally)."""
    items: list[Any] = []

    async def go() -> None:
        async for item in stream_interleaved(prompt, cfg, **kwargs):
            items.append(item)

    try:
        asyncio.run(go())
    except Exception as e:  # noqa: BLE001 - the caller asserts on it
        return items, e
    return items, None


def document(server: FakeServer) -> Document:
    docs: list[Document] = server.app.state.fake.documents
    assert len(docs) == 1
    return docs[0]


def png(colour: str, size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


# --- reading order and delivery -----------------------------------------------------------------


def test_interleaved_stream_yields_text_before_its_image_in_reading_order() -> None:
    with serve() as srv:
        items, error = collect(config(srv))
    assert error is None
    doc = document(srv)
    assert [type(i) for i in items] == [InterleavedText, InterleavedImage] * 3
    assert [i.text for i in items[::2]] == [p.text for p in doc.pages]
    assert items[0].text == 'Page 1. Mia unlocks the bakery door; the sign says "OPEN".', "pieces merged whole"
    images = items[1::2]
    assert [i.index for i in images] == [0, 1, 2]
    assert all(i.mime_type == "image/png" and Image.open(io.BytesIO(i.data)).size == (1024, 1024) for i in images)
    request = srv.app.state.requests.items[0]
    assert request.path == "/v1beta/models/gemini-3.1-flash-image:streamGenerateContent?alt=sse"
    assert request.body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}
    assert request.body["contents"] == [{"role": "user", "parts": [{"text": STORY}]}]
    assert request.headers["x-goog-api-key"] == "***"


def test_page_count_comes_from_the_prompt_else_the_option() -> None:
    with serve(interleaved_pages=2) as srv:
        items, error = collect(config(srv), prompt="An illustrated story about Mia")
    assert error is None and len(items) == 4 and len(document(srv).pages) == 2


def test_first_text_arrives_before_the_stream_ends() -> None:
    received: list[float] = []
    finished_then: list[bool] = []
    with serve(interleaved_delay=0.1) as srv:
        cfg = config(srv)

        async def go() -> None:
            async for item in stream_interleaved(STORY, cfg):
                received.append(time.monotonic())
                if len(received) == 1:
                    assert isinstance(item, InterleavedText) and item.text.startswith("Page 1.")
                    finished_then.append(document(srv).finished)

        asyncio.run(go())
    doc = document(srv)
    last_part_sent = doc.sent[-1][1]
    assert doc.finished and finished_then == [False], "the server was still writing when page 1 arrived"
    assert received[0] < last_part_sent < received[-1]
    first_image_sent = next(t for kind, t in doc.sent if kind == "image")
    assert first_image_sent <= received[0], "a section's text is handed over when its image arrives"


def test_references_are_sent_as_inline_data_after_the_prompt() -> None:
    with serve(interleaved_pages=1) as srv:
        items, error = collect(config(srv), prompt="A story about this mug", references=[png("red")],
                               system="You illustrate children's books.")
    assert error is None and len(items) == 2
    body = srv.app.state.requests.items[0].body
    parts = body["contents"][0]["parts"]
    assert parts[0] == {"text": "A story about this mug"} and parts[1]["inlineData"]["mimeType"] == "image/png"
    assert body["systemInstruction"] == {"parts": [{"text": "You illustrate children's books."}]}


def test_thought_parts_are_skipped() -> None:
    with serve(interleaved_pages=1) as srv:
        items, error = collect(config(srv, "gemini-3-pro-image"), prompt="A picture story about Mia")
    assert error is None
    assert document(srv).kinds[0] == "thought", "the fake's thinking model sends a thought first"
    assert [type(i) for i in items] == [InterleavedText, InterleavedImage]
    assert items[0].text.startswith("Page 1.") and "Planning" not in items[0].text


def test_misspelt_page_option_draws_the_wrong_word() -> None:
    from critics.ocr.reading import read_text

    with serve(interleaved_misspell="2") as srv:
        items, error = collect(config(srv))
    assert error is None
    doc = document(srv)
    assert [(p.word, p.drawn) for p in doc.pages] == [("OPEN", "OPEN"), ("BAKERY", "BAKEYR"), ("FRESH", "FRESH")]
    assert '"BAKERY"' in items[2].text, "the text still quotes the right word"
    read = [" ".join(line.text for line in read_text(Image.open(io.BytesIO(i.data)))) for i in items[1::2]]
    assert read == ["OPEN", "BAKEYR", "FRESH"]


def test_the_backends_single_picture_stream_is_not_a_document() -> None:
    with serve() as srv:
        items, error = collect(config(srv, aspect_ratio="16:9"))
    assert error is None and srv.app.state.fake.documents == []
    assert [type(i) for i in items] == [InterleavedText, InterleavedImage]
    assert Image.open(io.BytesIO(items[1].data)).size == (1376, 768)


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "error_type", "status"), [(503, ServerError, "UNAVAILABLE"),
                                                            (429, RateLimited, "RESOURCE_EXHAUSTED"),
                                                            (400, BadRequest, "INVALID_ARGUMENT")])
def test_mid_stream_error_event_raises_the_mapped_backend_error(code: int, error_type: type, status: str) -> None:
    with serve(interleaved_error_after=1, interleaved_error_code=code) as srv:
        items, error = collect(config(srv))
    assert isinstance(error, error_type) and status in str(error)
    assert [type(i) for i in items] == [InterleavedText, InterleavedImage], "page 1 was delivered before the error"
    assert len(srv.app.state.requests.items) == 1, "a started stream is not retried"


def test_stream_cut_mid_event_is_malformed() -> None:
    with serve(stream_cut=True) as srv:
        items, error = collect(config(srv))
    assert isinstance(error, MalformedResponse) and "ended mid-event after 12 event(s)" in str(error)
    assert len(items) == 4, "pages 1 and 2 arrived; page 3's text, without its end, is not handed over"


def test_stream_without_any_event_is_malformed() -> None:
    with serve("malformed") as srv:
        items, error = collect(config(srv))
    assert isinstance(error, MalformedResponse) and "ended mid-event after 0 event(s)" in str(error)
    assert items == []
    decoder = SseDecoder()
    assert decoder.feed(b": keep-alive\r\n\r\n") == []
    with pytest.raises(MalformedResponse, match="without a single event"):
        decoder.close()


def test_sse_events_are_decoded_however_the_bytes_are_split() -> None:
    body = ('data: {"candidates": [{"content": {"parts": [{"text": "a\u2028b"}]}}]}\r\n\r\n'
            'data: {"candidates": [{"finishReason": "STOP"}]}\n\n{"error": {"code": 503}}').encode()
    for step in (1, 7, len(body)):
        decoder = SseDecoder()
        events = [e for i in range(0, len(body), step) for e in decoder.feed(body[i:i + step])]
        last = decoder.close()
        assert events[0]["candidates"][0]["content"]["parts"][0]["text"] == "a\u2028b"
        assert events[1]["candidates"][0]["finishReason"] == "STOP" and last == {"error": {"code": 503}}


def test_stalled_stream_is_a_timeout() -> None:
    with serve(interleaved_pages=1, interleaved_delay=1.5) as srv:
        t0 = time.monotonic()
        items, error = collect(config(srv, read_timeout=0.3), prompt="A picture story about Mia")
        elapsed = time.monotonic() - t0
    assert isinstance(error, ServiceTimeout) and "stalled: no bytes for 0.3 s after 1 event(s)" in str(error)
    assert items == [] and elapsed < 1.4


def test_safety_finish_is_the_backends_refusal() -> None:
    with serve("safety") as srv:
        items, error = collect(config(srv))
    assert isinstance(error, SafetyBlocked) and error.reason == "IMAGE_SAFETY"
    assert items == []


def test_a_document_without_images_is_no_image_returned_after_its_text() -> None:
    with serve("no_image", interleaved_pages=2) as srv:
        items, error = collect(config(srv), prompt="A picture story about Mia")
    assert isinstance(error, NoImageReturned) and error.reason == "text_only"
    assert [type(i) for i in items] == [InterleavedText], "the pages' text, merged, was still delivered"


def test_errors_before_the_stream_are_mapped_and_retried_like_the_backend() -> None:
    with serve("429=0.01*1", interleaved_pages=1) as srv:
        items, error = collect(config(srv), prompt="A picture story about Mia")
    assert error is None and len(items) == 2 and len(srv.app.state.requests.items) == 2
    with serve("quota") as srv:
        items, error = collect(config(srv))
    assert isinstance(error, QuotaExhausted) and "retrying today will not help" in str(error)
    assert len(srv.app.state.requests.items) == 1
    with serve("503*5") as srv:
        items, error = collect(config(srv))
    assert isinstance(error, ServerError) and "after 3 attempts" in str(error)


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    items, error = collect(config(None))
    assert isinstance(error, AuthError) and "set GEMINI_API_KEY or GOOGLE_API_KEY" in str(error)
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-wrong-key-123")
    with serve(api_key="AIza-right-key") as srv:
        items, error = collect(config(srv))
    assert isinstance(error, AuthError) and "API key not valid" in str(error)
    assert "AIza-wrong-key-123" not in str(error) and srv.app.state.requests.items[0].headers["x-goog-api-key"] == "***"
