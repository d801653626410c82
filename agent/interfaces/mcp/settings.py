"""What one `pixloop mcp` server decides for every tool call: where runs may go, which files clients may name,
the run configuration, and the brief defaults its operator set on the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.models import PixloopConfig
from agent.runtime.confine import Confinement

ENDPOINT_FIELDS = ("base_url", "model", "options")
"""Settings that belong to the server's own backend: a client that picks another backend does not get them."""


@dataclass(frozen=True)
class ServerSettings:
    """The server's side of every call; a client's arguments only narrow it (never widen the confinement)."""

    confinement: Confinement
    config: PixloopConfig
    defaults: dict[str, Any] = field(default_factory=dict)
    """Brief options every run starts from (`agent.interfaces.cli.run.brief_options`): thresholds, critics,
    seed and budgets; a tool's own arguments override them one by one."""
    preview_side: int = 1024
    """Longest side of the images sent back in tool results: enough to look at, small enough for a chat."""

    def __post_init__(self) -> None:
        # every run folder the library chooses by itself (a document's, say) lands under the output root too
        object.__setattr__(self, "config",
                           self.config.model_copy(update={"out_root": str(self.confinement.output_root)}))

    def config_for(self, backend: str | None) -> PixloopConfig:
        """The run configuration for a call: the server's, or another backend without the server's endpoint, model
        and options (those were set for the server's backend and could mean anything to another)."""
        if backend is None or backend == self.config.backend:
            return self.config
        fresh = PixloopConfig.model_fields
        return self.config.model_copy(update={"backend": backend,
                                              **{k: fresh[k].get_default(call_default_factory=True)
                                                 for k in ENDPOINT_FIELDS}})

    def brief_options(self, **given: Any) -> dict[str, Any]:
        """The server's brief defaults with the caller's values (those not None) over them; a mapping (thresholds)
        merges key by key, so a client tightening one critic keeps the operator's others."""
        merged = {k: v for k, v in self.defaults.items() if k != "sketch"}
        for key, value in given.items():
            if value is None:
                continue
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
        return merged


__all__ = ["ENDPOINT_FIELDS", "ServerSettings"]
