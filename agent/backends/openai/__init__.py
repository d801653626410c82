"""The OpenAI Images API backend: gpt-image models through /images/generations and /images/edits.

A plan becomes one JSON generation request, or a multipart edit when there is a base image
(or reference images, which gpt-image models only take on the edits endpoint). The plan's
canvas is mapped to a size the model accepts (gpt-image-2: any multiple-of-16 WxH within
limits; older gpt-image models: three fixed sizes) and the rounding is reported in meta.
Costs come from the token usage the API returns, priced with the table in ``prices``. The API
key is read from OPENAI_API_KEY at request time and travels only in the request headers.
See shared/docs/backend-protocols.md section 2 for the wire format.

Modules: ``sizes`` (size rules), ``prices`` (model table and costs), ``errors`` (error answers),
``backend`` (`OpenAIOptions` and `OpenAIBackend`).
"""

from agent.backends.openai.backend import (
    DEFAULT_BASE_URL,
    MAX_IMAGES,
    InvalidBackendOption,
    OpenAIBackend,
    OpenAIOptions,
    openai_mask,
)
from agent.backends.openai.errors import classify_openai_error, retry_hint
from agent.backends.openai.prices import (
    DEFAULT_MODEL,
    MODELS,
    OUTPUT_TOKENS_1024,
    PRICES,
    TokenPrices,
    cost_from_usage,
    estimate_cost,
    prices_for,
)
from agent.backends.openai.sizes import (
    FIXED_SIZES,
    choose_size,
    fixed_size,
    flex_size,
    flex_size_ok,
    is_flex_model,
    parse_size,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "FIXED_SIZES", "MAX_IMAGES", "MODELS", "OUTPUT_TOKENS_1024", "PRICES",
           "InvalidBackendOption", "OpenAIBackend", "OpenAIOptions", "TokenPrices", "choose_size",
           "classify_openai_error", "cost_from_usage", "estimate_cost", "fixed_size", "flex_size", "flex_size_ok",
           "is_flex_model", "openai_mask", "parse_size", "prices_for", "retry_hint"]
