"""The pixloop loop as a LangGraph graph: plan -> generate -> check (critics in parallel) -> judge -> correct
-> ... -> finalize.

`build_pixloop_graph()` returns the loop compiled (with the checkpointer you give it, or none), so another
graph can embed it as a subgraph node, e.g. one loop per image of an illustrated document;
`pixloop_builder()` returns it uncompiled. `graph` is the compiled loop `langgraph.json` registers.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.loop.state import InputState, LoopState, OutputState
from agent.models import PixloopConfig
from graphs.nodes import (
    correct_node,
    dispatch_checks,
    finalize,
    generate,
    judge,
    plan,
    route_after_judge,
    route_after_plan,
    run_critic,
)

PixloopGraph = StateGraph[LoopState, PixloopConfig, InputState, OutputState]
CompiledPixloop = CompiledStateGraph[LoopState, PixloopConfig, InputState, OutputState]


def pixloop_builder() -> PixloopGraph:
    """The uncompiled loop; compile it with the checkpointer of your choice."""
    g = StateGraph(LoopState, input_schema=InputState, output_schema=OutputState, context_schema=PixloopConfig)
    # LangGraph's add_node overloads cover (state, runtime) or (state, config), not (state, config, runtime),
    # and not a node whose input is a Send payload (run_critic takes a CriticTask): both work at run time.
    g.add_node("plan", plan)  # type: ignore[call-overload]
    g.add_node("generate", generate)
    g.add_node("check", run_critic)  # type: ignore[call-overload]
    g.add_node("judge", judge)
    g.add_node("correct", correct_node)
    g.add_node("finalize", finalize)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", route_after_plan)
    g.add_conditional_edges("generate", dispatch_checks, ["check", "judge", "finalize"])
    g.add_edge("check", "judge")
    g.add_conditional_edges("judge", route_after_judge)
    g.add_edge("correct", "generate")
    g.add_edge("finalize", END)
    return g


def build_pixloop_graph(*, checkpointer: Any = None, name: str = "pixloop") -> CompiledPixloop:
    """The loop compiled: run it (`ainvoke({"brief": ...}, context=PixloopConfig(...))`) or add it as a node of
    another graph. Input: `InputState` (a brief, optionally a run_dir); output: `OutputState`."""
    return pixloop_builder().compile(checkpointer=checkpointer, name=name)


builder = pixloop_builder()
graph = build_pixloop_graph()

__all__ = ["build_pixloop_graph", "builder", "graph", "pixloop_builder"]
