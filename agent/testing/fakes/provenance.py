"""Provider Content Credentials for the fakes: option `c2pa_sign=true` (gemini, openai) makes every returned
image C2PA-signed the way Google's and OpenAI's image APIs sign theirs, by a fake provider certificate that
is made once per process (`make_test_certificates` in a temporary folder, removed at exit).

The manifest says `c2pa.created` with digital source type trainedAlgorithmicMedia; its claim generator is
e.g. "fake-gemini 1.0" and its signer's organization "Fake Google LLC". `provider_trust_anchor` gives the
fake provider's CA (PEM) for tests that validate with it as trust anchor.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from pathlib import Path

from agent.runtime.images import sniff_mime
from agent.runtime.provenance import TestCerts, make_test_certificates, sign_image

PROVIDERS = {"gemini": ("Fake Google LLC", "fake-gemini"), "openai": ("Fake OpenAI", "fake-openai")}
_lock = threading.Lock()


@functools.cache
def _certs(provider: str) -> TestCerts:
    organization, _ = PROVIDERS[provider]
    folder = Path(tempfile.mkdtemp(prefix=f"pixloop-fake-{provider}-c2pa-"))
    atexit.register(shutil.rmtree, folder, True)
    return make_test_certificates(folder, organization=organization, common_name=f"{organization} image signer")


def provider_trust_anchor(provider: str) -> bytes:
    """The fake provider's CA certificate (PEM)."""
    with _lock:
        return _certs(provider).ca.read_bytes()


def provider_sign(data: bytes, provider: str, title: str = "generated image") -> bytes:
    """An encoded image (PNG, JPEG or WebP) signed as `provider` ("gemini" or "openai") made it."""
    with _lock:
        certs = _certs(provider)
    _, chain, key = certs.read()
    mime = sniff_mime(data) or "image/png"
    return sign_image(data, mime, cert_chain=chain, key=key, title=title, action="c2pa.created",
                      generator=(PROVIDERS[provider][1], "1.0"))


__all__ = ["PROVIDERS", "provider_sign", "provider_trust_anchor"]
