"""The shared HTTP layer: retries with Retry-After, precise errors, timeouts, concurrency, no secrets."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.models.errors import AuthError, BadRequest, MalformedResponse, RateLimited, ServerError, ServiceTimeout
from agent.runtime.http import HttpClient, HttpSettings, duration_seconds, parse_retry_after
from agent.testing.fakes import FakeServer, Fault, FaultPlan

FAST = HttpSettings(connect_timeout=2, read_timeout=2, max_attempts=3, backoff_initial=0.01, backoff_max=0.05,
                    total_timeout=30)


class Script:
    """A loopback server answering /x with a scripted list of (status, headers, body) then 200."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls = 0
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

        async def endpoint(request):
            with self.lock:
                self.calls += 1
                self.active += 1
                self.peak = max(self.peak, self.active)
                reply = self.replies.pop(0) if self.replies else (200, {}, {"ok": True})
            try:
                status, headers, body = reply
                if status == "sleep":
                    await asyncio.sleep(body)
                    return JSONResponse({"ok": "late"})
                if isinstance(body, (dict, list)):
                    return JSONResponse(body, status_code=status, headers=headers)
                return Response(body, status_code=status, headers=headers, media_type="text/html")
            finally:
                with self.lock:
                    self.active -= 1

        self.app = Starlette(routes=[Route("/x", endpoint, methods=["GET", "POST"])])


def call(server_url: str, settings: HttpSettings = FAST, headers=None, **kwargs):
    client = HttpClient("test", server_url, settings=settings, headers=headers)

    async def go():
        try:
            return await client.request("POST", "/x", json={"a": 1}, **kwargs), client
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_429_with_retry_after_is_retried_then_succeeds() -> None:
    script = Script((429, {"retry-after": "0.05"}, {"error": {"message": "slow down"}}))
    with FakeServer(script.app) as srv:
        resp, client = call(srv.url)
    assert resp.status_code == 200 and script.calls == 2
    assert client.usage.retries == 1 and client.usage.requests == 2


def test_persistent_5xx_gives_server_error_after_max_attempts() -> None:
    script = Script(*[(503, {}, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "overloaded"}})] * 5)
    with FakeServer(script.app) as srv:
        with pytest.raises(ServerError, match=r"HTTP 503: UNAVAILABLE 503 overloaded \(after 3 attempts\)"):
            call(srv.url)
    assert script.calls == 3


def test_persistent_429_raises_rate_limited() -> None:
    script = Script(*[(429, {"retry-after": "0"}, {"error": {"message": "quota"}})] * 5)
    with FakeServer(script.app) as srv:
        with pytest.raises(RateLimited):
            call(srv.url)


def test_400_is_not_retried_and_names_the_server_message() -> None:
    script = Script((400, {}, {"error": {"message": "bad aspectRatio", "status": "INVALID_ARGUMENT"}}))
    with FakeServer(script.app) as srv:
        with pytest.raises(BadRequest, match="INVALID_ARGUMENT bad aspectRatio"):
            call(srv.url)
    assert script.calls == 1


def test_401_is_an_auth_error() -> None:
    script = Script((401, {}, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}))
    with FakeServer(script.app) as srv:
        with pytest.raises(AuthError, match="invalid_api_key"):
            call(srv.url)


def test_html_from_an_edge_proxy_is_reported_readably() -> None:
    script = Script(*[(502, {}, "<html><body><h1>502 Bad Gateway</h1></body></html>")] * 3)
    with FakeServer(script.app) as srv:
        with pytest.raises(ServerError, match="502 Bad Gateway.*non-JSON body"):
            call(srv.url)


def test_read_timeout_is_retried_then_reported() -> None:
    script = Script(("sleep", {}, 0.5), ("sleep", {}, 0.5))
    settings = FAST.model_copy(update={"read_timeout": 0.1, "max_attempts": 2})
    with FakeServer(script.app) as srv:
        with pytest.raises(ServiceTimeout, match="timed out"):
            call(srv.url, settings)
    assert script.calls == 2


def test_connection_refused_is_reported_as_a_server_error() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ServerError, match="connection failed"):
        call(f"http://127.0.0.1:{port}", FAST.model_copy(update={"max_attempts": 2}))


def test_concurrency_is_limited_per_backend() -> None:
    script = Script(*[("sleep", {}, 0.1)] * 6)
    settings = FAST.model_copy(update={"max_concurrency": 2})
    with FakeServer(script.app) as srv:
        client = HttpClient("test", srv.url, settings=settings)

        async def go():
            try:
                await asyncio.gather(*(client.request("GET", "/x") for _ in range(6)))
            finally:
                await client.aclose()

        asyncio.run(go())
    assert script.calls == 6 and script.peak == 2


def test_api_key_in_headers_never_appears_in_errors(monkeypatch) -> None:
    secret = "sk-live-DO-NOT-LEAK-123456"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    script = Script((400, {}, {"error": {"message": f"Incorrect API key provided: {secret}"}}))
    with FakeServer(script.app) as srv:
        with pytest.raises(BadRequest) as info:
            call(srv.url, headers={"Authorization": f"Bearer {secret}"})
    assert secret not in str(info.value) and "***" in str(info.value)


def test_malformed_json_body_raises_malformed_response() -> None:
    client = HttpClient("test", "http://127.0.0.1:9")
    resp = httpx.Response(200, content=b'{"candidates": [', headers={"content-type": "application/json"})
    with pytest.raises(MalformedResponse, match="expected JSON"):
        client.json(resp)


def test_retry_hints_are_parsed() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after": "7"})) == 7
    assert parse_retry_after(httpx.Headers({})) is None
    assert duration_seconds("37s") == 37 and duration_seconds("6m0s") == 360 and duration_seconds("250ms") == 0.25


def test_fault_specs_parse_and_are_served_in_order() -> None:
    plan = FaultPlan.parse(["429=2*2", "slow=0.5"])
    kinds = [(f.kind, f.value) if f else None for f in (plan.next(), plan.next(), plan.next(), plan.next())]
    assert kinds == [("429", 2.0), ("429", 2.0), ("slow", 0.5), None]
    with pytest.raises(ValueError, match="bad fault 'teapot'"):
        Fault.parse("teapot")


def test_fake_servers_refuse_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        FakeServer(Script().app, host="0.0.0.0")


def test_one_client_serves_several_event_loops() -> None:
    script = Script()
    with FakeServer(script.app) as srv:
        client = HttpClient("test", srv.url, settings=FAST)
        for _ in range(3):  # the sync library API calls asyncio.run once per generate()
            resp = asyncio.run(client.request("GET", "/x"))
            assert resp.status_code == 200
        asyncio.run(client.aclose())
    assert script.calls == 3
