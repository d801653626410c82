"""API keys come from the environment at the moment a client needs them, and never appear in output.

Nothing secret is part of a config, a plan, graph state, a checkpoint, a report or a log line: clients
call `api_key()` when they build a request, and every message that could carry a key passes `redact()`.
"""

from __future__ import annotations

import os

API_KEY_ENV = {
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "openai": ("OPENAI_API_KEY",),
}


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
