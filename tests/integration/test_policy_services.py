"""The content policy's services: the moderation endpoint against the fake on 127.0.0.1, an unreachable
endpoint (not a refusal: unverified), and the NudeNet image screen on benign images."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from PIL import Image

from agent.loop.policy.images import ImageScreen
from agent.loop.policy.moderation import ModerationClient
from agent.runtime.http import HttpSettings
from agent.testing.fakes.base import FakeServer
from agent.testing.fakes.chat import create_app
from agent.testing.faults import FaultPlan

KODAK = Path(__file__).resolve().parents[2] / "bench/data/photos/clean/kodim01.png"


@pytest.fixture(scope="module")
def server():
    app = create_app(moderation_flag="stolen,bomb", api_key="sk-test-moderation")
    with FakeServer(app) as srv:
        yield srv, app


def test_moderation_flags_and_passes_against_the_fake(server) -> None:
    srv, app = server
    client = ModerationClient(f"{srv.url}/v1", model="omni-moderation-latest", api_key="sk-test-moderation")
    d = client.check("BUY STOLEN CREDIT CARDS HERE", "required_text")
    assert not d.allowed and d.verified
    assert d.rule_id == "moderation.illicit" and d.category == "fraud_and_stolen_goods"
    assert d.message.startswith("refused by rule moderation.illicit (fraud_and_stolen_goods)")
    ok = client.check("A poster for a bakery", "prompt")
    assert ok.allowed and ok.verified
    sent = [r for r in app.state.requests.items if r.path == "/v1/moderations"]
    assert sent[-1].body == {"model": "omni-moderation-latest", "input": "A poster for a bakery"}
    assert sent[-1].headers["authorization"] == "***"


def test_a_wrong_key_is_unverified_not_refused(server) -> None:
    srv, _ = server
    d = ModerationClient(f"{srv.url}/v1", api_key="sk-wrong").check("BUY STOLEN CREDIT CARDS")
    assert d.allowed and not d.verified
    assert d.message.startswith("policy unverified: moderation endpoint failed")
    assert "sk-wrong" not in d.message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_moderation_endpoint_is_not_a_refusal() -> None:
    client = ModerationClient(f"http://127.0.0.1:{_free_port()}/v1",
                              settings=HttpSettings(connect_timeout=1, read_timeout=1, max_attempts=2,
                                                    backoff_initial=0.01, backoff_max=0.02, total_timeout=5))
    t0 = time.monotonic()
    d = client.check("BUY STOLEN CREDIT CARDS HERE")
    assert d.allowed and not d.verified and d.source == "moderation"
    assert "policy unverified" in d.message and "connection failed" in d.message
    assert time.monotonic() - t0 < 10


def test_a_server_error_is_retried_then_unverified() -> None:
    app = create_app(faults=FaultPlan.parse(["500", "500", "500"]), moderation_flag="stolen")
    with FakeServer(app) as srv:
        client = ModerationClient(f"{srv.url}/v1", settings=HttpSettings(max_attempts=2, backoff_initial=0.01,
                                                                         backoff_max=0.02))
        d = client.check("stolen cards")
        assert d.allowed and not d.verified and "after 2 attempts" in d.message
        assert [r.path for r in app.state.requests.items] == ["/v1/moderations"] * 2


def test_the_image_screen_passes_benign_images() -> None:
    screen = ImageScreen()
    if not screen.available:
        d = screen.check(Image.new("RGB", (64, 64)))
        assert d.allowed and not d.verified and "unavailable" in d.message
        pytest.skip("nudenet is not installed: the screen reports unverified (checked above)")
    from agent.backends.compose import render
    from agent.models import Box, Plan, Style, TextElement

    plan = Plan(prompt="poster", width=680, height=1024, aspect_ratio="2:3", size="1K",
                text=[TextElement(id="headline", content="KILLER DEALS", region=Box(x=0.1, y=0.3, w=0.8, h=0.3))],
                style=Style(background="texture"))
    poster, _ = render(plan, seed=0)
    images = [poster] + ([Image.open(KODAK).convert("RGB")] if KODAK.exists() else [])
    for img in images:
        d = screen.check(img)
        assert d.allowed and d.verified, d.message
        assert d.source == "image_screen" and "seconds" in d.details  # timed, not asserted
