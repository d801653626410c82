"""`pixloop backends`, `pixloop critics`, `pixloop planners`: what the registries hold (plugins included)."""

from __future__ import annotations

from agent.backends import BACKENDS, get_backend
from agent.loop.planning import PLANNERS
from agent.models import PixloopConfig
from critics import CRITICS, get_critic


def _first_line(error: BaseException, limit: int = 90) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:limit]


def backends_command() -> int:
    """One row per backend: ready or what it needs, its capabilities, and who provides it."""
    print(f"{'backend':<10} {'status':<34} {'edit':<5} {'mask':<5} {'refs':>4} {'long side':>9} {'cost/img':>8}  from")
    for name in BACKENDS.names():
        provider = BACKENDS.provider(name)
        try:
            caps = get_backend(name, PixloopConfig(backend=name)).capabilities
            print(f"{name:<10} {'ready':<34} {str(caps.edit):<5} {str(caps.mask):<5} {caps.max_references:>4} "
                  f"{caps.native_long_side:>9} {caps.cost_per_image:>8.3f}  {provider}")
        except Exception as e:  # noqa: BLE001 - a listing reports, it does not fail
            print(f"{name:<10} needs setup: {_first_line(e)}  ({provider})")
    return 0


def critics_command() -> int:
    """One block per critic: default threshold and where it comes from, when it runs, what it checks."""
    for name in CRITICS.names():
        provider = CRITICS.provider(name)
        try:
            info = get_critic(name).info
        except Exception as e:  # noqa: BLE001 - a broken plugin is listed, not fatal
            print(f"{name:<13} cannot be loaded: {_first_line(e)} ({provider})")
            continue
        when = "on by default" if info.on_by_default else f"only with --critic {name}"
        needs = f"; needs {', '.join(info.needs)}" if info.needs else ""
        kind = "measured" if info.measured else "judge (outranked by measured critics)"
        print(f"{name:<13} threshold {info.threshold:<5} {kind}, weight {info.weight}, {when}{needs} [{provider}]")
        if info.description:
            print(f"{'':<13} checks: {info.description}")
        print(f"{'':<13} threshold source: {info.threshold_source}")
    return 0


def planners_command() -> int:
    """One row per planner: its name, what it is (its docstring's first line) and who provides it."""
    for name in PLANNERS.names():
        provider = PLANNERS.provider(name)
        try:
            doc = (PLANNERS.factory(name).__doc__ or "").strip().splitlines()
        except Exception as e:  # noqa: BLE001 - a broken plugin is listed, not fatal
            print(f"{name:<10} cannot be loaded: {_first_line(e)} ({provider})")
            continue
        print(f"{name:<10} {doc[0] if doc else ''} [{provider}]")
    return 0


__all__ = ["backends_command", "critics_command", "planners_command"]
