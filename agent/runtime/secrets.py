"""API keys come from the environment at the moment a client needs them, and never appear in output.

Nothing secret is part of a config, a plan, graph state, a checkpoint, a report or a log line: clients
call `api_key()` when they build a request, and every message that could carry a key passes `redact()`.
"""

from __future__ import annotations

import os
import re

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


SECRET_QUERY = ("api_key", "apikey", "api-key", "key", "token", "access_token", "auth", "password", "secret",
                "signature", "sig")
"""Query parameters whose values are masked wherever a URL is shown."""
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s?#]+)@")
_SECRET_PARAM = re.compile(r"(?P<name>[?&](?:" + "|".join(re.escape(k) for k in SECRET_QUERY) + r")=)[^&#\s]*",
                           re.IGNORECASE)


def mask_url(url: str) -> str:
    """A URL with its user name and password, and secret-looking query parameters, replaced by ***."""
    return _SECRET_PARAM.sub(r"\g<name>***", _URL_USERINFO.sub(r"\g<scheme>***@", url))


def redact(text: str) -> str:
    """Remove secrets from a string (logs, errors, reports): any API key value currently in the environment,
    and credentials written into URLs (user:password@, ?key=, ?token=, ...)."""
    for names in API_KEY_ENV.values():
        for var in names:
            key = os.environ.get(var)
            if key and len(key) >= 6:
                text = text.replace(key, "***")
    return mask_url(text)
