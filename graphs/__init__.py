"""LangGraph assemblies: the pixloop loop (`graphs.pixloop`), built by a factory so other graphs can embed it.

    from graphs import build_pixloop_graph
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("build_pixloop_graph", "pixloop_builder"):
        from graphs import pixloop

        return getattr(pixloop, name)
    raise AttributeError(f"module 'graphs' has no attribute {name!r}")


__all__ = ["build_pixloop_graph", "pixloop_builder"]
