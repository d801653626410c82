"""The run's event log (`events.jsonl`): one JSON object per decision, appended as it happens.

Every step of the loop logs what it decided (plan, generate, check, judge, correct, finalize) with the
hashes of what it used, never secrets, so a run can be audited line by line.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"


class EventLog:
    """An append-only JSON-lines file; one lock per log, so parallel critic branches never interleave lines."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, event: str, **fields: Any) -> None:
        """Append one structured event with its wall-clock time."""
        line = json.dumps({"t": round(time.time(), 3), "event": event, **fields}, default=str, allow_nan=False)
        with self._lock, self.path.open("a") as fh:
            fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every event so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
