"""Pydantic validation errors as one line that names each bad field (what a user sees for bad input)."""

from __future__ import annotations

from pydantic import ValidationError

_SHOW_INPUT = ("literal_error", "greater_than_equal", "greater_than", "less_than_equal", "int_parsing", "float_parsing")


def format_validation_error(e: ValidationError, prefix: str = "") -> str:
    """`field.sub: problem (got value); other: problem` for every error pydantic found."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "input"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        tail = f" (got {got!r})" if err["type"] in _SHOW_INPUT else ""
        parts.append(f"{prefix}{loc}: {msg}{tail}")
    return "; ".join(parts)


__all__ = ["format_validation_error"]
