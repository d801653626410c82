"""Shared async HTTP plumbing for the API backends and LLM clients.

One `HttpClient` per backend instance: separate connect/read timeouts, a concurrency
limit, retries with exponential backoff and jitter (tenacity) on 408/409/429/5xx and
connection errors that honour Retry-After and the vendors' own hints, precise exceptions
for everything that must not be retried, and usage accounting. Secrets live only in the
request headers, which are never logged, and every message passes through `redact`.

A `deadline(seconds)` scope (a context variable, so it reaches the tasks and threads a call starts)
bounds every request made inside it: the retries, each attempt's timeouts, waiting for a free slot and any
Retry-After wait fit before the deadline, a retry that would start too late is not started, and a
`Deadline` records that a call gave up because of it (`hit`), so the caller can tell "out of time" from
"the service failed". The loop sets one around each generation from the run's remaining time budget.
"""

from __future__ import annotations

import asyncio
import email.utils
import json as jsonlib
import logging
import re
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from agent.models.errors import (
    AuthError,
    BadRequest,
    ErrorFamily,
    HttpFailure,
    MalformedResponse,
    RateLimited,
    ServerError,
    ServiceError,
    ServiceTimeout,
    as_service,
)
from agent.runtime.secrets import redact

log = logging.getLogger("pixloop.http")


class HttpSettings(BaseModel):
    """Timeouts, retries and concurrency for one backend's HTTP client."""

    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(180.0, gt=0, description="image models can take minutes under load")
    max_attempts: int = Field(4, ge=1, le=20)
    backoff_initial: float = Field(1.0, ge=0)
    backoff_max: float = Field(30.0, ge=0)
    max_retry_after: float = Field(120.0, ge=0, description="longest server-requested wait we accept")
    total_timeout: float = Field(600.0, gt=0, description="give up retrying after this many seconds")
    max_concurrency: int = Field(4, ge=1)


MIN_ATTEMPT_SECONDS = 0.25
"""A retry is not started unless at least this much time is left before the deadline after its wait."""


@dataclass
class Deadline:
    """A point in time (`time.monotonic()`) by which the calls in a `deadline` scope must be done."""

    at: float
    label: str = "the time budget"
    hit: bool = False
    """Set when a call timed out at the deadline or gave up a retry because of it."""

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


_DEADLINE: ContextVar[Deadline | None] = ContextVar("pixloop_http_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the innermost `deadline` scope, if any."""
    return _DEADLINE.get()


@contextmanager
def deadline(seconds: float | None, label: str = "the time budget") -> Iterator[Deadline | None]:
    """Bound every `HttpClient` request made in this scope to `seconds` from now (None: no bound).

    Nested scopes keep the earlier deadline. The scope is a context variable, so tasks and
    `asyncio.to_thread` calls started inside it see it too."""
    outer = _DEADLINE.get()
    if seconds is None:
        yield outer
        return
    at = time.monotonic() + max(0.0, seconds)
    scope = outer if outer is not None and outer.at <= at else Deadline(at, label)
    token = _DEADLINE.set(scope)
    try:
        yield scope
    finally:
        _DEADLINE.reset(token)


class StopAtDeadline(stop_base):
    """Tenacity stop: no retry whose wait would leave less than MIN_ATTEMPT_SECONDS before the deadline."""

    def __init__(self, scope: Deadline | None):
        self.scope = scope

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.scope is None or self.scope.remaining() - retry_state.upcoming_sleep >= MIN_ATTEMPT_SECONDS:
            return False
        self.scope.hit = True
        return True


class Retryable(Exception):
    """A failure worth another attempt, with the server's requested delay if any (classifiers return it)."""

    def __init__(self, error: ServiceError, retry_after: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: retry-after-ms, retry-after (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def duration_seconds(text: str) -> float | None:
    """'37s', '1.5s', '6m0s', '250ms' -> seconds."""
    total, found = 0.0, False
    for num, unit in re.findall(r"([\d.]+)\s*(ms|s|m|h)", text):
        found = True
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total if found else None


@dataclass
class Usage:
    """What a backend spent: requests, retries, failures, seconds, provider usage and cost."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    seconds: float = 0.0
    cost: float = 0.0
    tokens: dict[str, int] = field(default_factory=dict)

    def add_tokens(self, **counts: int | None) -> None:
        for k, v in counts.items():
            if v:
                self.tokens[k] = self.tokens.get(k, 0) + int(v)

    def snapshot(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries, "failures": self.failures,
                "seconds": round(self.seconds, 3), "cost": round(self.cost, 6), "tokens": dict(self.tokens)}


ErrorClassifier = Callable[[httpx.Response], "ServiceError | Retryable | None"]


def default_classifier(resp: httpx.Response) -> ServiceError | Retryable | None:
    """Map a non-2xx response to an exception; vendors wrap this to read their error bodies."""
    status = resp.status_code
    detail = error_detail(resp)
    if status in (408, 409, 429) or status >= 500:
        err_cls = RateLimited if status == 429 else ServerError
        return Retryable(err_cls(f"HTTP {status}: {detail}"), parse_retry_after(resp.headers))
    if status in (401, 403):
        return AuthError(f"HTTP {status}: {detail}")
    return BadRequest(f"HTTP {status}: {detail}")


def error_detail(resp: httpx.Response, limit: int = 300) -> str:
    """The server's error message from a JSON body, or the start of a non-JSON body (HTML from a proxy)."""
    try:
        body = resp.json()
    except ValueError:
        text = re.sub(r"\s+", " ", resp.text or "").strip()
        return (text[:limit] or resp.reason_phrase or "no body") + (" (non-JSON body)" if text else "")
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            parts = [str(err.get(k)) for k in ("status", "code", "type") if err.get(k)]
            msg = err.get("message") or err.get("detail") or body.get("detail") or ""
            return " ".join(parts + [str(msg)]).strip()[:limit] or str(body)[:limit]
        if isinstance(err, str):
            detail = body.get("detail") or body.get("errors") or ""
            return f"{err} {detail}".strip()[:limit]
    return str(body)[:limit]


def not_json(resp: httpx.Response, error: ValueError) -> str:
    """Why a body that should be JSON is not: not declared as JSON, empty, or declared JSON but invalid."""
    ctype = resp.headers.get("content-type") or "no content-type"
    start = repr(resp.text[:120]) if resp.content else ""
    if not resp.content:
        return f"expected JSON, got an empty body ({ctype})"
    if "json" not in ctype.lower():
        return f"expected JSON, got {ctype}: {start}"
    where = f" at character {error.pos} of {len(resp.content)}" if isinstance(error, jsonlib.JSONDecodeError) else ""
    reason = error.msg if isinstance(error, jsonlib.JSONDecodeError) else type(error).__name__
    return (f"expected JSON, but the answer is not valid JSON although its content-type is {ctype} "
            f"({reason}{where}; truncated?): {start}")


class HttpClient:
    """An httpx.AsyncClient with the retry, timeout and concurrency policy of one backend."""

    def __init__(self, name: str, base_url: str, *, headers: dict[str, str] | None = None,
                 settings: HttpSettings | None = None, classifier: ErrorClassifier = default_classifier,
                 transport: httpx.AsyncBaseTransport | None = None, auth: httpx.Auth | None = None,
                 family: ErrorFamily | None = None):
        self.name = name
        self.family = family
        self.base_url = base_url.rstrip("/")
        self.settings = settings or HttpSettings()
        self.classifier = classifier
        self.usage = Usage()
        self._headers = headers or {}
        self._transport = transport
        self._auth = auth
        self._clients: dict[int, tuple[weakref.ref, httpx.AsyncClient, asyncio.Semaphore]] = {}

    def _entry(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """One AsyncClient per live event loop (asyncio.run in a library call creates a fresh loop).

        Clients of loops that are closed are dropped without awaiting them (their transports died
        with the loop); a reused id() is detected through the weak reference.
        """
        loop = asyncio.get_running_loop()
        for key, (ref, _, _) in list(self._clients.items()):
            old = ref()
            if old is None or old.is_closed():
                del self._clients[key]
        entry = self._clients.get(id(loop))
        if entry is None or entry[0]() is not loop:
            s = self.settings
            timeout = httpx.Timeout(connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout,
                                    pool=s.read_timeout)
            limits = httpx.Limits(max_connections=s.max_concurrency * 2, max_keepalive_connections=s.max_concurrency)
            client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=timeout,
                                       limits=limits, transport=self._transport, auth=self._auth)
            entry = (weakref.ref(loop), client, asyncio.Semaphore(s.max_concurrency))
            self._clients[id(loop)] = entry
        return entry[1], entry[2]

    @property
    def client(self) -> httpx.AsyncClient:
        return self._entry()[0]

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = wait_exponential_jitter(initial=self.settings.backoff_initial, max=self.settings.backoff_max)(state)
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.settings.max_retry_after)
        return backoff

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request with the retry policy; returns a 2xx response or raises a ServiceError of the family.

        Inside a `deadline` scope the whole call, retries and waits included, ends by the deadline."""
        client, semaphore = self._entry()
        scope = current_deadline()
        if scope is not None and scope.remaining() < MIN_ATTEMPT_SECONDS:
            scope.hit = True
            self.usage.failures += 1
            raise self._as_family(ServiceTimeout(
                f"{self.name}: {method} {path} not sent: {scope.label} has {max(0.0, scope.remaining()):.2f} s left"))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts) | stop_after_delay(self.settings.total_timeout)
            | StopAtDeadline(scope),
            wait=self._wait, retry=retry_if_exception_type(Retryable), reraise=True)
        attempt = 0
        try:
            async for attempt_ctx in retrying:
                with attempt_ctx:
                    attempt += 1
                    if attempt > 1:
                        self.usage.retries += 1
                    return await self._attempt(client, semaphore, scope, method, path, kwargs)
        except Retryable as e:
            self.usage.failures += 1
            why = f"after {attempt} attempts"
            if scope is not None and scope.hit and scope.label not in str(e.error):
                why += f"; no time left in {scope.label} for another"
            raise self._as_family(type(e.error)(f"{self.name}: {redact(str(e.error))} ({why})")) from None
        except ServiceError as e:
            self.usage.failures += 1
            raise self._as_family(e) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, scope: Deadline | None,
                       method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        """One attempt; within a deadline its timeouts are cut to the time left and it cannot outlast it."""
        if scope is None:
            async with semaphore:
                return await self._once(client, method, path, **kwargs)
        left = max(scope.remaining(), 0.001)
        if "timeout" not in kwargs:
            s = self.settings
            kwargs = {**kwargs, "timeout": httpx.Timeout(connect=min(s.connect_timeout, left),
                                                         read=min(s.read_timeout, left),
                                                         write=min(s.read_timeout, left), pool=min(s.read_timeout, left))}
        try:
            async with asyncio.timeout(left):
                async with semaphore:
                    return await self._once(client, method, path, **kwargs)
        except TimeoutError:
            scope.hit = True
            raise Retryable(ServiceTimeout(f"{method} {path}: no answer in the {left:.2f} s left of {scope.label}")) \
                from None
        except Retryable as e:
            if isinstance(e.error, ServiceTimeout) and scope.remaining() <= 0.05:  # httpx's capped timeout fired
                scope.hit = True
                raise Retryable(ServiceTimeout(f"{method} {path}: no answer in the {left:.2f} s left of "
                                               f"{scope.label}")) from None
            raise

    def _as_family(self, error: ServiceError) -> ServiceError:
        """The error as the variant of the service family this client serves (a backend's or an LLM's)."""
        if self.family is not None and isinstance(error, HttpFailure):
            return as_service(error, self.family)
        return error

    async def _once(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
        t0 = time.perf_counter()
        self.usage.requests += 1
        try:
            resp = await client.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise Retryable(ServiceTimeout(f"{method} {path} timed out ({type(e).__name__})")) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            raise Retryable(ServerError(f"{method} {path} connection failed: {type(e).__name__}: {e}")) from None
        finally:
            self.usage.seconds += time.perf_counter() - t0
        log.debug("%s %s %s -> %s", self.name, method, path, resp.status_code)
        if resp.is_success:
            return resp
        outcome = self.classifier(resp)
        if outcome is None:
            return resp
        if isinstance(outcome, Retryable):
            raise outcome
        outcome.args = (f"{self.name}: {redact(str(outcome))}",)
        raise outcome

    def json(self, resp: httpx.Response) -> Any:
        """Parse a JSON body or raise MalformedResponse saying what is wrong with it."""
        try:
            return resp.json()
        except ValueError as e:
            raise self._as_family(MalformedResponse(f"{self.name}: {not_json(resp, e)}")) from None

    async def aclose(self) -> None:
        """Close the client of the running loop (others belong to loops that are gone)."""
        entry = self._clients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].aclose()


__all__ = [
    "MIN_ATTEMPT_SECONDS", "Deadline", "ErrorClassifier", "HttpClient", "HttpSettings", "Retryable", "Usage",
    "current_deadline", "deadline", "default_classifier", "duration_seconds", "error_detail", "not_json",
    "parse_retry_after",
]
