"""gpt-image token prices per model, and the cost of one answer (from its usage) or one image (estimated)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "gpt-image-2"
MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "chatgpt-image-latest")


@dataclass(frozen=True)
class TokenPrices:
    """USD per 1M tokens for one model, and where the numbers come from."""

    text_in: float
    image_in: float
    image_out: float
    text_out: float
    source: str


PRICES: dict[str, TokenPrices] = {
    "gpt-image-1": TokenPrices(5.0, 10.0, 40.0, 40.0,
                              "OpenAI pricing page; protocols doc §2 'gpt-image-1 1024² ≈ $0.011 low / $0.042 "
                              "medium / $0.167 high (token-billed: use usage)' = 272/1056/4160 tokens at $40/M"),
    "gpt-image-1-mini": TokenPrices(2.0, 2.5, 8.0, 8.0,
                                   "developers.openai.com/api/docs/models/gpt-image-1-mini: text $2, image in $2.50, "
                                   "image out $8 per 1M"),
    "gpt-image-1.5": TokenPrices(5.0, 8.0, 32.0, 10.0, "reported (third-party copies of the OpenAI pricing page)"),
    "chatgpt-image-latest": TokenPrices(5.0, 8.0, 32.0, 10.0, "assumed equal to gpt-image-1.5 (unconfirmed)"),
    "gpt-image-2": TokenPrices(5.0, 8.0, 30.0, 10.0,
                              "reported from the OpenAI model page: text in $5, image in $8, image out $30, "
                              "text out $10 per 1M"),
}
"""Token prices per model; a snapshot id (gpt-image-2-2026-04-21) uses its family's row."""

OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "auto": 4160}
"""Output image tokens of a 1024x1024 image by quality (gpt-image-1's published table), used only to
estimate a cost before an answer arrives or when a server returns no usage; 'auto' is priced as high."""


def prices_for(model: str) -> TokenPrices | None:
    """The price row for a model id, matching snapshots to their family (longest prefix)."""
    matches = [m for m in PRICES if model == m or model.startswith(m + "-")]
    return PRICES[max(matches, key=len)] if matches else None


def cost_from_usage(model: str, usage: dict[str, Any]) -> float | None:
    """USD for one answer from its token usage, or None when the model's prices are unknown."""
    prices = prices_for(model)
    if prices is None:
        return None
    in_details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    input_tokens, output_tokens = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    in_image = int(in_details.get("image_tokens") or 0)
    in_text = int(in_details.get("text_tokens", input_tokens - in_image) or 0)
    out_text = int(out_details.get("text_tokens") or 0)
    out_image = int(out_details.get("image_tokens", output_tokens - out_text) or 0)
    usd = (in_text * prices.text_in + in_image * prices.image_in + out_image * prices.image_out
           + out_text * prices.text_out) / 1e6
    return round(usd, 6)


def estimate_cost(model: str, quality: str, width: int, height: int) -> float:
    """A before-the-fact USD estimate for one image (budget checks); the real cost comes from usage."""
    prices = prices_for(model) or PRICES[DEFAULT_MODEL]
    tokens = OUTPUT_TOKENS_1024.get(quality, OUTPUT_TOKENS_1024["high"]) * (width * height) / (1024 * 1024)
    return round(tokens * prices.image_out / 1e6 + 200 * prices.text_in / 1e6, 6)


__all__ = ["DEFAULT_MODEL", "MODELS", "OUTPUT_TOKENS_1024", "PRICES", "TokenPrices", "cost_from_usage",
           "estimate_cost", "prices_for"]
