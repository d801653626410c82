"""Faults the fake servers inject on demand (`--fault KIND[=VALUE][*COUNT]`); no web-server dependency, so
`pixloop fake-server --help` can list them without the `fakes` extra."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from agent.models.errors import InputError

FAULT_KINDS = {
    "429": "rate limited, with Retry-After VALUE seconds (default 1) and the vendor's own hint",
    "500": "internal server error",
    "503": "overloaded / unavailable",
    "slow": "sleep VALUE seconds (default 2) before answering (trips client read timeouts)",
    "safety": "the provider's safety block for this protocol",
    "malformed": "a 200 with a body that is not valid JSON",
    "html": "a 502 with an HTML body, as an edge proxy sends",
    "truncated": "a 200 whose image data is cut in half",
    "wrong_size": "an image of half the requested size",
    "no_image": "a 200 with text but no image",
    "quota": "a non-retryable quota error (per-day quota / insufficient_quota)",
    "reset": "close the connection without an answer",
}


@dataclass
class Fault:
    """One injected failure: KIND[=VALUE][*COUNT], e.g. '429=2*1', 'slow=0.5', '500*2'."""

    kind: str
    value: float | None = None
    count: int = 1

    @classmethod
    def parse(cls, spec: str) -> Fault:
        m = re.fullmatch(r"\s*([a-z_0-9]+)(?:=([\d.]+))?(?:\*(\d+))?\s*", spec)
        if not m or m.group(1) not in FAULT_KINDS:
            kinds = ", ".join(FAULT_KINDS)
            raise InputError(f"bad fault {spec!r}: expected KIND[=VALUE][*COUNT] with KIND one of {kinds}")
        return cls(m.group(1), float(m.group(2)) if m.group(2) else None, int(m.group(3) or 1))


@dataclass
class FaultPlan:
    """Faults served in order, each to COUNT consecutive generation requests, then normal answers."""

    faults: list[Fault] = field(default_factory=list)
    latency: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def parse(cls, specs: list[str] | None = None, latency: float = 0.0) -> FaultPlan:
        return cls([Fault.parse(s) for s in specs or []], latency)

    def add(self, spec: str) -> None:
        with self._lock:
            self.faults.append(Fault.parse(spec))

    def next(self) -> Fault | None:
        """The fault for the next generation request, if any (consumes one count)."""
        with self._lock:
            while self.faults and self.faults[0].count <= 0:
                self.faults.pop(0)
            if not self.faults:
                return None
            fault = self.faults[0]
            fault.count -= 1
            return Fault(fault.kind, fault.value, 1)


__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]
