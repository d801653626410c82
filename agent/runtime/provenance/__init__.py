"""Provenance of pixloop's images: C2PA Content Credentials (`credentials`: sign, read and validate
manifests, make a local test CA) and IPTC DigitalSourceType XMP metadata (`metadata`), written into PNG and
JPEG containers without re-encoding pixels, before signing (a signed file is never edited)."""

from agent.runtime.provenance.credentials import (
    Ingredient,
    IngredientInfo,
    ManifestInfo,
    ProvenanceError,
    TestCerts,
    has_manifest,
    make_test_certificates,
    pixloop_generator,
    read_manifest,
    sign_image,
)
from agent.runtime.provenance.metadata import (
    DIGITAL_SOURCE_TYPES,
    IPTC_DIGITAL_SOURCE_TYPE,
    metadata_refusal,
    read_source_type,
    source_type_uri,
    with_source_type,
)

__all__ = [
    "DIGITAL_SOURCE_TYPES", "IPTC_DIGITAL_SOURCE_TYPE", "Ingredient", "IngredientInfo", "ManifestInfo",
    "ProvenanceError", "TestCerts", "has_manifest", "make_test_certificates", "metadata_refusal",
    "pixloop_generator", "read_manifest", "read_source_type", "sign_image", "source_type_uri", "with_source_type",
]
