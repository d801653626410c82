"""The pixloop loop as a LangGraph graph: plan -> generate -> check (critics in parallel) -> judge -> correct
-> ... -> finalize.

`build_pixloop_graph()` returns the loop compiled (with the checkpointer you give it, or none), so another
graph can embed it as a subgraph node, e.g. one loop per image of an illustrated document;
`pixloop_builder()` returns it uncompiled. `graph` is the compiled loop `langgraph.json` registers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.loop.state import InputState, LoopState, OutputState
from agent.models import PixloopConfig
from agent.runtime.confine import Confinement
from graphs.nodes import (
    correct_node,
    dispatch_checks,
    finalize,
    generate,
    judge,
    plan,
    route_after_correct,
    route_after_judge,
    route_after_plan,
    run_critic,
)
from graphs.safety import confined, guarded

PixloopGraph = StateGraph[LoopState, PixloopConfig, InputState, OutputState]
CompiledPixloop = CompiledStateGraph[LoopState, PixloopConfig, InputState, OutputState]


def pixloop_builder(confinement: Confinement | None = None) -> PixloopGraph:
    """The uncompiled loop; compile it with the checkpointer of your choice.

    Every step but finalize is `guarded` (an unexpected error ends the run with a report, not a traceback).
    With a `confinement` (a server's), the run folder and reference files a client names are confined to the
    server's roots, and every step checks the run folder it is about to use."""

    def step(name: str, node: Callable[..., Any], *, branch: bool = False) -> Callable[..., Any]:
        if confinement is not None and name != "plan":  # plan confines the client's input itself (graphs.intake)
            node = confined(node, confinement, branch=branch)
        return node if name in ("finalize", "check") else guarded(name, node)

    g = StateGraph(LoopState, input_schema=InputState, output_schema=OutputState, context_schema=PixloopConfig)
    g.add_node("plan", step("plan", functools.partial(plan, confinement=confinement)))
    g.add_node("generate", step("generate", generate))
    g.add_node("check", step("check", run_critic, branch=True))
    g.add_node("judge", step("judge", judge))
    g.add_node("correct", step("correct", correct_node))
    g.add_node("finalize", step("finalize", finalize))
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", route_after_plan)
    g.add_conditional_edges("generate", dispatch_checks, ["check", "judge", "finalize"])
    g.add_edge("check", "judge")
    g.add_conditional_edges("judge", route_after_judge)
    g.add_conditional_edges("correct", route_after_correct)
    g.add_edge("finalize", END)
    return g


def build_pixloop_graph(*, checkpointer: Any = None, name: str = "pixloop",
                        confinement: Confinement | None = None) -> CompiledPixloop:
    """The loop compiled: run it (`ainvoke({"brief": ...}, context=PixloopConfig(...))`) or add it as a node of
    another graph. Input: `InputState` (a brief, optionally a run_dir); output: `OutputState`. Give a
    `confinement` when the input comes from remote clients (a LangGraph server)."""
    return pixloop_builder(confinement).compile(checkpointer=checkpointer, name=name)


builder = pixloop_builder()
graph = build_pixloop_graph(confinement=Confinement.from_env())
"""The graph `langgraph.json` registers for LangGraph Studio and servers: its clients are remote users, so it is
confined to `$PIXLOOP_OUTPUT_ROOT` (default ./pixloop-out) and `$PIXLOOP_INPUT_ROOT` (default: references only
as data URLs)."""

__all__ = ["build_pixloop_graph", "builder", "graph", "pixloop_builder"]
