"""The gemini backend: Google's native image models ("Nano Banana") over the generateContent REST API.

One request per image: `POST {base}/v1beta/models/{model}:generateContent` with the key in the
`x-goog-api-key` header (never `?key=`, which leaks into proxy logs), the prompt plus reference
images as `inlineData`, and `generationConfig.imageConfig {aspectRatio, imageSize}` from the plan.
Edits send the base image back with the instruction; when the model turn that produced the base
image is known (explicit history, or an image this process generated) it is resent with its
`thoughtSignature`s exactly as received, which Gemini 3 models need to edit well. Gemini takes
no mask (``Capabilities.mask`` is False): a mask in the request is stated in words instead, one
box per masked area appended to the instruction ("Change only the area inside this box ...:
left 10%, top 20%, right 45%, bottom 60% ..."), and the loop's preservation critic checks that
the rest was kept.

Every distinct outcome is a distinct exception: safety blocks (finishReason or a blocked prompt),
text-only answers, NO_IMAGE, per-day quota (never retried), retired models and bad keys. 429 and
5xx are retried by the shared HttpClient honouring Google's `RetryInfo.retryDelay`.
Wire format and model table: shared/docs/backend-protocols.md section 1.

Modules: ``models`` (model table, prices), ``errors`` (error answers), ``response`` (reading an
answer), ``regions`` (a mask in words, and reading it back), ``backend`` (`GeminiOptions` and `GeminiBackend`: building requests, results),
``interleaved`` (`stream_interleaved`: text and images in reading order for illustrated documents, read from the
SSE stream as it arrives).
"""

from agent.backends.gemini.backend import API_VERSIONS, GOOGLE_BASE_URL, GeminiBackend, GeminiOptions
from agent.backends.gemini.errors import classify, error_reasons, google_error, quota_ids, retry_delay
from agent.backends.gemini.interleaved import InterleavedImage, InterleavedItem, InterleavedText, stream_interleaved
from agent.backends.gemini.models import (
    DEFAULT_MODEL,
    MODELS,
    PRICE_SOURCE,
    RETIRED,
    ModelSpec,
    capabilities_for,
    model_spec,
)
from agent.backends.gemini.regions import describe_mask, mask_boxes, read_regions, regions_mask
from agent.backends.gemini.response import Answer, SseDecoder, merge_stream, pixel_key, read_answer, usage_numbers

__all__ = ["API_VERSIONS", "DEFAULT_MODEL", "GOOGLE_BASE_URL", "MODELS", "PRICE_SOURCE", "RETIRED", "Answer",
           "GeminiBackend", "GeminiOptions", "InterleavedImage", "InterleavedItem", "InterleavedText", "ModelSpec",
           "SseDecoder", "capabilities_for", "classify", "describe_mask", "error_reasons", "google_error",
           "mask_boxes", "merge_stream", "model_spec", "pixel_key", "quota_ids", "read_answer", "read_regions",
           "regions_mask", "retry_delay", "stream_interleaved", "usage_numbers"]
