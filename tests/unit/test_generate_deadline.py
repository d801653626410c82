"""The generate node under the time budget: the remaining active seconds bound the backend call, a call that
runs out of time stops the run with `max_seconds` (straight to finalize), a failing one with `backend_error`.
Backend doubles only (one with a mock HTTP transport that stalls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from PIL import Image

from agent.backends import BACKENDS, Capabilities, GenerationResult
from agent.backends.errors import VARIANTS, BadRequest
from agent.models import Brief, Budget, PixloopConfig
from agent.runtime.http import Deadline, HttpClient, HttpSettings, current_deadline
from graphs import nodes

SEEN: list[tuple[Deadline | None, float | None]] = []
"""What Flat saw when called: the deadline, and the seconds it had left."""


class Flat:
    name = "flat"
    capabilities = Capabilities(cost_per_image=0.0, deterministic=True)

    async def generate(self, request: Any, store: Any) -> GenerationResult:
        scope = current_deadline()
        SEEN.append((scope, scope.remaining() if scope is not None else None))
        return GenerationResult(image=Image.new("RGB", (64, 64), "teal"))


class Deaf(Flat):
    """Ignores the deadline: sleeps as long as it likes."""

    async def generate(self, request: Any, store: Any) -> GenerationResult:
        await asyncio.sleep(30)
        raise AssertionError("not reached")


class Stalled(Flat):
    """Talks HTTP through the shared client to a server that never answers in time."""

    def __init__(self) -> None:
        async def handler(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(30)
            return httpx.Response(200, json={})

        self.http = HttpClient("stalled", "http://stalled.test", family=VARIANTS, transport=httpx.MockTransport(handler),
                               settings=HttpSettings(read_timeout=180, max_attempts=4))

    async def generate(self, request: Any, store: Any) -> GenerationResult:
        await self.http.request("POST", "/generate", json={})
        raise AssertionError("not reached")


class Rejecting(Flat):
    async def generate(self, request: Any, store: Any) -> GenerationResult:
        raise BadRequest("flat: unsupported aspect ratio")


@pytest.fixture(autouse=True)
def doubles() -> Iterator[None]:
    SEEN.clear()
    with BACKENDS.registered("flat", lambda c: Flat()), BACKENDS.registered("deaf", lambda c: Deaf()), \
            BACKENDS.registered("stalled", lambda c: Stalled()), BACKENDS.registered("rejecting", lambda c: Rejecting()):
        yield


def runtime(backend: str) -> Any:
    return SimpleNamespace(context=PixloopConfig(backend=backend, critics=["spec"]))


def planned(tmp_path: Path, max_seconds: float | None, elapsed: float = 0.0) -> dict[str, Any]:
    state: dict[str, Any] = {"brief": Brief(prompt='A poster that says "HI"', budget=Budget(max_seconds=max_seconds)),
                             "run_dir": str(tmp_path)}
    state.update(nodes.plan(state, {}, runtime("flat")))  # type: ignore[arg-type]
    state["elapsed_s"] = elapsed
    return state


def generate(state: dict[str, Any], backend: str) -> tuple[dict[str, Any], float]:
    t0 = time.monotonic()
    update = asyncio.run(nodes.generate(state, runtime(backend)))  # type: ignore[arg-type]
    return update, time.monotonic() - t0


def test_the_http_client_ends_a_stalled_call_at_the_time_left(tmp_path: Path) -> None:
    state = planned(tmp_path, max_seconds=10.0, elapsed=9.2)
    update, took = generate(state, "stalled")
    assert 0.7 <= took < 1.2  # 0.8 s were left; the client stops itself (the backstop would be 1 s later)
    assert update["stop_reason"] == "max_seconds" and "candidates" not in update
    assert "iteration 1 within the time budget" in update["error"] and "BackendTimeout" in update["error"]
    assert 0.7 <= update["elapsed_s"] < 1.2
    assert nodes.dispatch_checks({**state, **update}) == "finalize"  # type: ignore[arg-type]


def test_a_backend_that_ignores_the_deadline_is_cut_off_shortly_after_it(tmp_path: Path) -> None:
    state = planned(tmp_path, max_seconds=10.0, elapsed=9.5)
    update, took = generate(state, "deaf")
    assert 0.5 + nodes.BACKSTOP_GRACE_S - 0.1 <= took < 0.5 + nodes.BACKSTOP_GRACE_S + 0.5
    assert update["stop_reason"] == "max_seconds" and "cut off" in update["error"]


def test_no_time_left_means_no_call(tmp_path: Path) -> None:
    update, took = generate(planned(tmp_path, max_seconds=5.0, elapsed=5.5), "flat")
    assert update["stop_reason"] == "max_seconds" and SEEN == [] and took < 0.5
    assert "no time was left" in update["error"]


def test_a_failure_within_the_budget_is_a_backend_error(tmp_path: Path) -> None:
    update, _ = generate(planned(tmp_path, max_seconds=60.0), "rejecting")
    assert update["stop_reason"] == "backend_error" and update["status"] == "failed"
    assert "BadRequest" in update["error"]


def test_the_backend_sees_the_deadline_of_the_time_left(tmp_path: Path) -> None:
    update, _ = generate(planned(tmp_path, max_seconds=60.0, elapsed=20.0), "flat")
    assert [c.id for c in update["candidates"]] == ["c1"] and "stop_reason" not in update
    [(scope, left)] = SEEN
    assert scope is not None and left is not None and 39.0 < left <= 40.0 and "max_seconds 60" in scope.label


def test_an_unlimited_budget_sets_no_deadline(tmp_path: Path) -> None:
    update, _ = generate(planned(tmp_path, max_seconds=None), "flat")
    assert SEEN == [(None, None)] and [c.id for c in update["candidates"]] == ["c1"]
