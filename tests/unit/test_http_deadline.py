"""HttpClient inside a `deadline` scope: the whole call, retries and waits included, ends by the deadline
instead of after max_attempts x read_timeout; a retry that cannot fit is not started. Mock transports only."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from agent.models.errors import MalformedResponse, RateLimited, ServerError, ServiceTimeout
from agent.runtime.http import MIN_ATTEMPT_SECONDS, HttpClient, HttpSettings, current_deadline, deadline

SLOW = HttpSettings(connect_timeout=10, read_timeout=180, max_attempts=4, backoff_initial=0.01, backoff_max=0.05)


class Transport:
    """A mock transport that answers from a script: ("sleep", s), (status, headers) or "ok"; records timeouts."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = 0
        self.timeouts: list[dict[str, float]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        self.timeouts.append(dict(request.extensions.get("timeout") or {}))
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, tuple) and step[0] == "sleep":
            await asyncio.sleep(step[1])
            return httpx.Response(200, json={"late": True})
        if isinstance(step, tuple):
            status, headers = step
            return httpx.Response(status, headers=headers, json={"error": {"message": "try later"}})
        return httpx.Response(200, json={"ok": True})

    def client(self, settings: HttpSettings = SLOW) -> HttpClient:
        return HttpClient("test", "http://svc.test", settings=settings, transport=httpx.MockTransport(self.handle))


def timed(client: HttpClient, seconds: float | None):
    """Run one POST within a deadline; returns (outcome, seconds taken, the Deadline)."""

    async def go():
        with deadline(seconds) as scope:
            t0 = time.monotonic()
            try:
                outcome = await client.request("POST", "/x", json={})
            except Exception as e:  # noqa: BLE001 - the test inspects it
                outcome = e
            return outcome, time.monotonic() - t0, scope

    return asyncio.run(go())


def test_a_stalled_server_is_given_up_at_the_deadline_not_after_every_attempt() -> None:
    transport = Transport(*[("sleep", 30)] * 4)
    outcome, took, scope = timed(transport.client(), 0.6)
    assert isinstance(outcome, ServiceTimeout)
    assert 0.55 <= took < 1.0  # not 4 x 180 s, and not a blind cut later on
    assert transport.calls == 1 and scope is not None and scope.hit
    assert "time budget" in str(outcome) and "after 1 attempts" in str(outcome)


def test_each_attempt_gets_the_time_left_as_its_timeouts() -> None:
    transport = Transport((503, {}), "ok")
    outcome, _, _ = timed(transport.client(), 2.0)
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 200 and transport.calls == 2
    for t in transport.timeouts:
        assert 0 < t["read"] <= 2.0 and t["connect"] <= 2.0 and t["pool"] <= 2.0
    assert transport.timeouts[1]["read"] < transport.timeouts[0]["read"]


def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    transport = Transport((429, {"retry-after": "5"}), "ok")
    outcome, took, scope = timed(transport.client(), 1.0)
    assert isinstance(outcome, RateLimited) and took < 0.5 and transport.calls == 1
    assert scope is not None and scope.hit and "no time left in the time budget" in str(outcome)


def test_a_retry_after_that_fits_is_honoured() -> None:
    transport = Transport((429, {"retry-after": "0.2"}), "ok")
    outcome, took, scope = timed(transport.client(), 3.0)
    assert isinstance(outcome, httpx.Response) and transport.calls == 2 and 0.2 <= took < 1.5
    assert scope is not None and not scope.hit


def test_a_request_is_not_sent_when_the_deadline_is_too_close() -> None:
    transport = Transport()
    outcome, took, scope = timed(transport.client(), MIN_ATTEMPT_SECONDS / 2)
    assert isinstance(outcome, ServiceTimeout) and "not sent" in str(outcome)
    assert transport.calls == 0 and took < 0.1 and scope is not None and scope.hit


def test_without_a_deadline_the_retry_policy_is_unchanged() -> None:
    transport = Transport(*[(503, {})] * 4)
    outcome, _, scope = timed(transport.client(), None)
    assert scope is None
    assert isinstance(outcome, ServerError) and "(after 4 attempts)" in str(outcome) and transport.calls == 4
    assert all(t["read"] == 180 and t["connect"] == 10 for t in transport.timeouts)  # the settings' own timeouts


def test_nested_deadlines_keep_the_earlier_one_and_reach_tasks_and_threads() -> None:
    async def go():
        with deadline(5.0) as outer:
            with deadline(60.0) as inner:
                assert inner is outer
            with deadline(1.0) as tighter:
                assert tighter is not outer and current_deadline() is tighter
                in_task = await asyncio.create_task(asyncio.sleep(0, result=current_deadline()))
                in_thread = await asyncio.to_thread(current_deadline)
                assert in_task is tighter and in_thread is tighter
            assert current_deadline() is outer
        assert current_deadline() is None

    asyncio.run(go())


def test_concurrent_calls_share_the_deadline() -> None:
    transport = Transport(*[("sleep", 30)] * 3)
    client = transport.client(SLOW.model_copy(update={"max_concurrency": 1}))

    async def go():
        with deadline(0.5):
            t0 = time.monotonic()
            results = await asyncio.gather(*(client.request("GET", "/x") for _ in range(3)), return_exceptions=True)
            return results, time.monotonic() - t0

    results, took = asyncio.run(go())
    assert all(isinstance(r, ServiceTimeout) for r in results) and took < 0.9  # waiting for a slot counts too


@pytest.mark.parametrize("ctype, body, says", [
    ("application/json", b'{"candidates": [', "not valid JSON although its content-type is application/json"),
    ("text/html", b"<html>502</html>", "expected JSON, got text/html"),
    ("application/json", b"", "expected JSON, got an empty body"),
])
def test_a_body_that_is_not_json_is_explained(ctype: str, body: bytes, says: str) -> None:
    client = HttpClient("svc", "http://svc.test")
    resp = httpx.Response(200, content=body, headers={"content-type": ctype})
    with pytest.raises(MalformedResponse, match="expected JSON") as info:
        client.json(resp)
    assert says in str(info.value)
    assert "got application/json" not in str(info.value)
