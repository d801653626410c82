"""Typed run configuration (the graph's context schema).

Holds names and endpoints, never secrets: API keys are read from the conventional
environment variables at the moment a client needs them, so they cannot leak into
checkpoints, reports or logs.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

API_KEY_ENV = {
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
}


class PixloopConfig(BaseModel):
    """Which backend, planner and critics a run uses, and where it writes."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field("compose", description="image backend name (see `pixloop backends`)")
    planner: str = Field("rule", description="planner name: 'rule' works offline")
    critics: list[str] | None = Field(None, description="restrict checks to these critics (default: what the plan enables)")
    base_url: str | None = Field(None, description="backend endpoint override (e.g. a local fake server)")
    model: str | None = Field(None, description="backend model id")
    options: dict[str, Any] = Field(default_factory=dict, description="backend-specific options (see each backend)")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible chat endpoint for the LLM planner/judge")
    llm_model: str | None = Field(None, description="chat model id for the LLM planner/judge")
    out_root: str = Field("pixloop-out", description="parent folder of run folders when none is given")
    strategies: list[str] | None = Field(None, description="correction strategies allowed (default: all); "
                                         "used for ablations and to forbid e.g. typesetting")


SECRET_OPTION = ("password", "api_key", "apikey", "token", "secret", "auth", "key")


def public_config(config: "PixloopConfig") -> dict[str, Any]:
    """The config as JSON with secret-looking backend options masked (for run.json and reports)."""
    data = config.model_dump(mode="json")
    data["options"] = {k: ("***" if any(w in k.lower() for w in SECRET_OPTION) else v)
                       for k, v in data.get("options", {}).items()}
    return data


def api_key(provider: str) -> str | None:
    """The API key for a provider from its conventional environment variables, or None."""
    for var in API_KEY_ENV.get(provider, ()):
        if os.environ.get(var):
            return os.environ[var]
    return None


def redact(text: str) -> str:
    """Remove any API key value currently in the environment from a string (logs, errors)."""
    for names in API_KEY_ENV.values():
        for var in names:
            key = os.environ.get(var)
            if key and len(key) >= 6:
                text = text.replace(key, "***")
    return text
