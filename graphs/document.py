"""Illustrated documents as a LangGraph graph: plan the document -> render each image with the pixloop loop
(a subgraph per image, in parallel, bounded) -> collect -> ... -> consistency across images -> regenerate only
the failing images -> ... -> finalize (story.md, story.html, report.json).

```
START -> plan_document -> image (Send per ready image) -> collect --more ready--> image
                                                             |
                                                             +-> consistency --failing & rounds left--> image
                                                                      +--> finalize_document -> END
```

`graph` is what `langgraph.json` registers as `document`: confined like `pixloop` (run folders under
`$PIXLOOP_OUTPUT_ROOT`, character references under `$PIXLOOP_INPUT_ROOT` or as data URLs). Events reach a
client with `stream_mode="custom"`.
"""

from __future__ import annotations

import functools
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.loop.document.state import DocumentInput, DocumentOutput, DocumentState
from agent.models import PixloopConfig
from agent.runtime.confine import Confinement
from graphs.document_nodes import (
    collect,
    consistency,
    finalize_document,
    plan_document,
    render_image,
    route_after_consistency,
    route_images,
)
from graphs.safety import guarded

DocumentGraph = StateGraph[DocumentState, PixloopConfig, DocumentInput, DocumentOutput]


def document_builder(confinement: Confinement | None = None) -> DocumentGraph:
    """The uncompiled document graph; an unexpected error in a step ends it `failed` with a report."""
    g = StateGraph(DocumentState, input_schema=DocumentInput, output_schema=DocumentOutput,
                   context_schema=PixloopConfig)
    g.add_node("plan_document", guarded("plan_document", functools.partial(plan_document, confinement=confinement)))
    g.add_node("image", render_image)  # type: ignore[arg-type]  # a Send task's payload, not the state
    g.add_node("collect", guarded("collect", collect))
    g.add_node("consistency", guarded("consistency", consistency))
    g.add_node("finalize_document", finalize_document)
    g.add_edge(START, "plan_document")
    g.add_conditional_edges("plan_document", route_images, ["image", "consistency", "finalize_document"])
    g.add_edge("image", "collect")
    g.add_conditional_edges("collect", route_images, ["image", "consistency", "finalize_document"])
    g.add_conditional_edges("consistency", route_after_consistency, ["image", "finalize_document"])
    g.add_edge("finalize_document", END)
    return g


def build_document_graph(*, checkpointer: Any = None, confinement: Confinement | None = None,
                         name: str = "document") -> CompiledStateGraph[Any, Any, Any, Any]:
    return document_builder(confinement).compile(checkpointer=checkpointer, name=name)


graph = build_document_graph(confinement=Confinement.from_env())

__all__ = ["build_document_graph", "document_builder", "graph"]
