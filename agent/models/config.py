"""Typed run configuration (the graph's context schema).

Holds names and endpoints, never secrets: API keys are read from the conventional
environment variables at the moment a client needs them, so they cannot leak into
checkpoints, reports or logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.models.run import Strategy


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
    strategies: list[Strategy] | None = Field(None, description="correction strategies allowed (default: all); "
                                              "used for ablations and to forbid e.g. typesetting")
    strict: bool = Field(False, description="a run that passed every check but left a requirement unverified "
                                            "(no critic checks it) ends below threshold instead of passed")
    policy: str | None = Field(None, description="a content policy file (TOML) merged over the default policy")
    moderation_base_url: str | None = Field(None, description="an OpenAI-compatible moderation endpoint the brief is "
                                                              "also checked by (OPENAI_API_KEY for OpenAI's own)")
    moderation_model: str | None = Field(None, description="moderation model id (default omni-moderation-latest)")
    watermark: bool = Field(True, description="mark every delivered image with the invisible watermark naming "
                                               "the run (`pixloop verify` reads it)")
    sign_cert: str | None = Field(None, description="PEM certificate chain to sign delivered images with C2PA "
                                                    "Content Credentials (`pixloop provenance test-cert` makes one)")
    sign_key: str | None = Field(None, description="PEM private key of sign_cert (the path; its content is never "
                                                   "stored)")
    checkpointer: str | None = Field(None, description="where checkpoints go: None for the run folder's SQLite file, "
                                     "or a PostgreSQL URL (postgresql://user@host/db) any worker can resume from; "
                                     "its password is never stored")
    answer_retries: int = Field(1, ge=0, le=5, description="times a malformed, truncated or image-less answer "
                                "is asked for again before the iteration fails (0: never)")


SECRET_OPTION = ("password", "api_key", "apikey", "token", "secret", "auth", "key")


def public_config(config: PixloopConfig, mask_url: Callable[[str], str] = lambda url: url) -> dict[str, Any]:
    """The config as JSON with secret-looking backend options masked, and the endpoints through `mask_url`
    (for run.json and reports; `agent.runtime.secrets.mask_url` hides credentials written into a URL)."""
    data = config.model_dump(mode="json")
    data["options"] = {k: ("***" if any(w in k.lower() for w in SECRET_OPTION) else v)
                       for k, v in data.get("options", {}).items()}
    for field in ("base_url", "llm_base_url", "moderation_base_url", "checkpointer"):
        if data.get(field):
            data[field] = mask_url(data[field])
    return data
