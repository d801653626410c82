"""Wrappers the loop's graph puts around its nodes: no step ends a run with a bare traceback, and on a server
no step works in a folder outside the output root.

`guarded(step, node)`: an unexpected exception in a step becomes a failed run with stop reason
`internal_error`, the error in the state, and the routers send it to `finalize`, which writes the report
with the best candidate so far. `confined(node, confinement)`: the run folder in the state (or in a critic
branch's task) must lie under the server's output root; a client that updated the state to point elsewhere
gets a failed run (`bad_input`), and nothing is written there. Both keep the node's signature, so LangGraph
still injects `config` and `runtime` as the node asks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from agent.models.errors import InputError
from agent.runtime.confine import Confinement
from agent.runtime.secrets import redact

log = logging.getLogger("pixloop.graph")
Node = Callable[..., Any]


def _failed(reason: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "stop_reason": reason, "error": redact(message)}


def guarded(step: str, node: Node) -> Node:
    """`node`, with any unexpected exception turned into a failed run (`internal_error`) that finalize reports."""

    def fail(error: Exception) -> dict[str, Any]:
        log.exception("pixloop %s step failed", step)
        return _failed("internal_error", f"{step} step failed: {type(error).__name__}: {error}")

    if asyncio.iscoroutinefunction(node):
        @functools.wraps(node)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await node(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - the run ends with a report, not a traceback
                return fail(error)
        return run_async

    @functools.wraps(node)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return node(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the run ends with a report, not a traceback
            return fail(error)
    return run


def confined(node: Node, confinement: Confinement, *, branch: bool = False) -> Node:
    """`node`, refusing to run when the state's (or task's) run folder is outside the output root. A parallel
    branch (`branch=True`, a critic's Send task) raises instead: branches cannot all write the run's status."""

    def refused(state: Any) -> dict[str, Any] | None:
        run_dir = state.get("run_dir") if isinstance(state, dict) else None
        if run_dir is None:
            return None
        try:
            confinement.check_run_dir(run_dir)
        except InputError as e:
            if branch:
                raise
            return _failed("bad_input", str(e))
        return None

    if asyncio.iscoroutinefunction(node):
        @functools.wraps(node)
        async def run_async(state: Any, *args: Any, **kwargs: Any) -> Any:
            return refused(state) or await node(state, *args, **kwargs)
        return run_async

    @functools.wraps(node)
    def run(state: Any, *args: Any, **kwargs: Any) -> Any:
        return refused(state) or node(state, *args, **kwargs)
    return run


__all__ = ["confined", "guarded"]
