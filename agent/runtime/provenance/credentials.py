"""C2PA Content Credentials with the `c2pa` library (PyPI c2pa-python): sign, read and validate manifests,
and make a local test CA with a signing certificate that the library accepts.

Signing is offline (no timestamp authority). A pixloop manifest has a `c2pa.actions` assertion: `c2pa.created`
with the IPTC digital source type `trainedAlgorithmicMedia`, or, for an edit, `c2pa.opened` on the parent
ingredient (added by the library from the builder's edit intent) then `c2pa.edited`; references are
`componentOf` ingredients; the claim generator info names pixloop and its version.

Trust is explicit. `read_manifest(..., trust_anchors=PEM)` validates against those CA certificates; without
anchors nothing is trusted. The result tells apart "trusted", "untrusted" (a valid signature by a
certificate no anchor vouches for), "tampered" (a hash no longer matches the bytes) and "invalid" (any other
validation failure). `c2pa` is imported on first use, so importing this module stays cheap; `has_manifest`
never loads it for PNG, JPEG and WebP.
"""

from __future__ import annotations

import datetime
import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.runtime.provenance.metadata import jpeg_segments, png_chunks, source_type_uri

Relationship = Literal["componentOf", "parentOf", "inputTo"]
SignAction = Literal["c2pa.created", "c2pa.edited"]
TrustStatus = Literal["trusted", "untrusted", "tampered", "invalid"]

UNTRUSTED_CODE = "signingCredential.untrusted"
_TAMPER_SUFFIX = ".mismatch"  # assertion.dataHash.mismatch, assertion.hashedURI.mismatch, claimSignature.mismatch ...


class ProvenanceError(Exception):
    """Signing or reading Content Credentials failed (the library's message is kept)."""


@dataclass(frozen=True)
class TestCerts:
    """The files `make_test_certificates` wrote."""

    __test__ = False  # not a pytest test class

    folder: Path
    ca: Path
    """ca.pem: the self-signed root, the trust anchor to validate with."""
    chain: Path
    """signer-chain.pem: the signing certificate followed by the CA (what `--sign-cert` takes)."""
    key: Path
    """signer-key.pem: the signer's private key, PKCS#8 PEM, unencrypted (what `--sign-key` takes)."""

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(ca, chain, key) PEM bytes."""
        return self.ca.read_bytes(), self.chain.read_bytes(), self.key.read_bytes()


@dataclass(frozen=True)
class Ingredient:
    """An asset the signed image was made from: a reference (componentOf) or the edited source (parentOf)."""

    source: Path | bytes
    mime: str
    title: str
    relationship: Relationship = "componentOf"

    def data(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else Path(self.source).read_bytes()


@dataclass(frozen=True)
class IngredientInfo:
    """One ingredient of a read manifest."""

    title: str
    relationship: str
    has_manifest: bool = False


@dataclass
class ManifestInfo:
    """What `read_manifest` found: the active manifest's story and how it validated."""

    present: bool
    valid: bool
    """The signature and every hash check out (trusted or not)."""
    status: TrustStatus
    state: str
    """The library's validation_state: Trusted, Valid or Invalid."""
    failure_codes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """"code: explanation" of each failure."""
    claim_generator: str | None = None
    digital_source_type: str | None = None
    actions: list[str] = field(default_factory=list)
    ingredients: list[IngredientInfo] = field(default_factory=list)
    title: str | None = None
    signer_issuer: str | None = None
    signer_common_name: str | None = None
    manifest_count: int = 0

    @property
    def trusted(self) -> bool:
        return self.status == "trusted"

    @property
    def tampered(self) -> bool:
        return self.status == "tampered"

    @property
    def ingredient_titles(self) -> list[str]:
        return [i.title for i in self.ingredients]

    def summary(self) -> str:
        """One line for a person."""
        who = self.signer_common_name or self.signer_issuer or "an unknown signer"
        what = {"trusted": f"valid, signed by {who} (trusted)",
                "untrusted": f"valid signature, but signed by an untrusted certificate ({who})",
                "tampered": "tampered: the file changed after it was signed",
                "invalid": "invalid Content Credentials"}[self.status]
        extra = [c for c in self.failure_codes if c != UNTRUSTED_CODE]
        return what + (f" ({', '.join(extra)})" if extra and self.status != "untrusted" else "")


# --- certificates ---------------------------------------------------------------------------------------------


def make_test_certificates(folder: Path, *, organization: str = "pixloop test",
                           common_name: str = "pixloop test signer", days: int = 365) -> TestCerts:
    """A local test CA and an ECDSA P-256 signing certificate it issued, in `folder` (created if needed):
    ca.pem, signer-chain.pem (signer + CA) and signer-key.pem. The signer has what C2PA asks of a claim
    signer: not a CA, keyUsage digitalSignature (critical), extendedKeyUsage emailProtection and
    documentSigning, subject and authority key identifiers. For tests and demos only: nobody trusts this CA
    unless told to (`read_manifest(trust_anchors=ca.pem)`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])

    def usage(*, sign_certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs,
                             crl_sign=sign_certs, encipher_only=False, decipher_only=False)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"{organization} root CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=days * 10))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(sign_certs=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    document_signing = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
    signer = (x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(ca_name)
              .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
              .not_valid_after(now + datetime.timedelta(days=days))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(usage(sign_certs=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, document_signing]),
                             critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    certs = TestCerts(folder, folder / "ca.pem", folder / "signer-chain.pem", folder / "signer-key.pem")
    certs.ca.write_bytes(ca.public_bytes(pem))
    certs.chain.write_bytes(signer.public_bytes(pem) + ca.public_bytes(pem))
    certs.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    certs.key.chmod(0o600)
    return certs


def _algorithm(key: bytes) -> Any:
    """The c2pa signing algorithm for a PEM private key (ECDSA P-256/384/521, Ed25519, RSA-PSS)."""
    import c2pa
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as e:
        raise ProvenanceError(f"the signing key is not an unencrypted PEM private key: {e}") from None
    if isinstance(private, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": c2pa.C2paSigningAlg.ES256, "secp384r1": c2pa.C2paSigningAlg.ES384,
                    "secp521r1": c2pa.C2paSigningAlg.ES512}
        if private.curve.name not in by_curve:
            raise ProvenanceError(f"C2PA does not take ECDSA keys on {private.curve.name}")
        return by_curve[private.curve.name]
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(private, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise ProvenanceError(f"C2PA does not take {type(private).__name__} signing keys")


# --- signing --------------------------------------------------------------------------------------------------


def pixloop_generator() -> tuple[str, str]:
    from agent import __version__

    return ("pixloop", __version__)


def sign_image(src_bytes: bytes, mime: str, *, cert_chain: bytes, key: bytes, title: str = "image",
               action: SignAction = "c2pa.created", ingredients: list[Ingredient] | tuple[Ingredient, ...] = (),
               generator: tuple[str, str] | None = None, source_type: str | None = None) -> bytes:
    """A signed copy of an image (PNG, JPEG, WebP ... whatever the library embeds into).

    action "c2pa.created": a new AI image (source_type defaults to trainedAlgorithmicMedia); it must have
    no parentOf ingredient. action "c2pa.edited": an edit (default compositeWithTrainedAlgorithmicMedia);
    the parentOf ingredient is the edited source (when none is given, the library records `src_bytes`).
    If `src_bytes` already carries a manifest (a provider's) and no parentOf ingredient is given, those bytes
    become the parentOf ingredient, so the provider's manifest is kept inside the new one: a created image
    is then recorded as `c2pa.opened` on it (C2PA allows no parent for `c2pa.created`).
    generator defaults to ("pixloop", version). No timestamp authority: signing works offline."""
    import c2pa

    parents = [i for i in ingredients if i.relationship == "parentOf"]
    ingredients = list(ingredients)
    if not parents and has_manifest(src_bytes, mime):
        parents = [Ingredient(src_bytes, mime, f"{title} (as delivered)", "parentOf")]
        ingredients.insert(0, parents[0])
        keep_created_as_opened = action == "c2pa.created"
    else:
        keep_created_as_opened = False
        if parents and action == "c2pa.created":
            raise ValueError("a parentOf ingredient means an edit: use action='c2pa.edited'")
    if len(parents) > 1:
        raise ValueError("a manifest has at most one parentOf ingredient")
    name, version = generator or pixloop_generator()
    default_type = "trainedAlgorithmicMedia" if action == "c2pa.created" else "compositeWithTrainedAlgorithmicMedia"
    uri = source_type_uri(source_type or default_type)
    actions: list[dict[str, Any]] = []
    if not keep_created_as_opened:
        actions.append({"action": action, "digitalSourceType": uri,
                        "softwareAgent": {"name": name, "version": version}})
    manifest: dict[str, Any] = {
        "claim_generator_info": [{"name": name, "version": version}], "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}] if actions else [],
    }
    alg = _algorithm(key)
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg, cert_chain, key, None))
        with signer, c2pa.Builder(manifest) as builder:
            if action == "c2pa.edited" or parents:
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            for ing in ingredients:
                builder.add_ingredient({"title": ing.title, "relationship": ing.relationship}, ing.mime,
                                       io.BytesIO(ing.data()))
            out = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(src_bytes), out)
    except c2pa.C2paError as e:
        raise ProvenanceError(f"signing failed: {e}") from None
    return out.getvalue()


# --- reading --------------------------------------------------------------------------------------------------


def has_manifest(data: bytes, mime: str | None = None) -> bool:
    """Whether the bytes embed a C2PA manifest store: a PNG caBX chunk, a JPEG APP11 JUMBF segment labelled
    c2pa, a WebP C2PA chunk (found by walking the container, without the library); other formats ask the
    library. A malformed container counts as having none."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return any(kind == b"caBX" for _, kind, _ in png_chunks(data))
        if data.startswith(b"\xff\xd8"):
            return any(marker == 0xEB and body[:2] == b"JP" and b"c2pa" in body[:64]
                       for _, marker, body in jpeg_segments(data))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            i = 12
            while i + 8 <= len(data):
                kind, (size,) = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])
                if kind == b"C2PA":
                    return True
                i += 8 + size + (size & 1)
            return False
    except ValueError:
        return False
    if not mime:
        return False
    try:
        import c2pa

        reader = c2pa.Reader.try_create(mime, io.BytesIO(data))
    except Exception:
        return False
    if reader is None:
        return False
    reader.close()
    return True


def _context(trust_anchors: bytes | str | None) -> Any:
    import c2pa

    if trust_anchors is None:
        return None
    pem = trust_anchors.decode("ascii") if isinstance(trust_anchors, bytes) else trust_anchors
    return c2pa.Context.from_dict({"verify": {"verify_trust": True}, "trust": {"trust_anchors": pem}})


def read_manifest(data: bytes, mime: str, *, trust_anchors: bytes | str | None = None) -> ManifestInfo | None:
    """The active manifest of a signed image and how it validated, or None when the bytes carry none.

    trust_anchors: PEM CA certificate(s) to trust (e.g. the test CA's ca.pem); without them a valid
    signature reads as "untrusted". A hash that no longer matches reads as "tampered"."""
    import c2pa

    if mime in ("image/png", "image/jpeg", "image/webp") and not has_manifest(data, mime):
        return None
    context = _context(trust_anchors)
    try:
        reader = (c2pa.Reader.try_create(mime, io.BytesIO(data), None, context) if context is not None
                  else c2pa.Reader.try_create(mime, io.BytesIO(data)))
        if reader is None:
            return None
        with reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as e:
        text = str(e)
        return ManifestInfo(present=True, valid=False, status="invalid", state="Invalid",
                            failure_codes=["manifest.unreadable"], failures=[text])
    finally:
        if context is not None:
            context.close()
    return _info(store)


def _info(store: dict[str, Any]) -> ManifestInfo:
    state = str(store.get("validation_state") or "Invalid")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failed = list(results.get("failure") or [])
    if "validation_results" not in store:  # older shape: a flat list of status entries
        failed = list(store.get("validation_status") or [])
    codes = [str(f.get("code")) for f in failed]
    messages = [f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ") for f in failed]
    others = [c for c in codes if c != UNTRUSTED_CODE]
    status: TrustStatus
    if any(c.endswith(_TAMPER_SUFFIX) for c in codes):
        status = "tampered"
    elif others or state == "Invalid":
        status = "invalid"
    elif state == "Trusted" and not codes:
        status = "trusted"
    else:
        status = "untrusted"
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "") or {}
    info = ManifestInfo(present=True, valid=status in ("trusted", "untrusted"), status=status, state=state,
                        failure_codes=codes, failures=messages, title=active.get("title"),
                        manifest_count=len(manifests))
    gens = active.get("claim_generator_info") or []
    if gens:
        info.claim_generator = " ".join(str(x) for x in (gens[0].get("name"), gens[0].get("version")) if x)
    else:
        info.claim_generator = active.get("claim_generator")
    info.actions, info.digital_source_type = _actions(active)
    if info.digital_source_type is None:  # a re-signed provider image: its parent states how it was made
        for ing in active.get("ingredients") or []:
            parent = manifests.get(ing.get("active_manifest") or "")
            if ing.get("relationship") == "parentOf" and parent:
                info.digital_source_type = _actions(parent)[1]
    info.ingredients = [IngredientInfo(str(i.get("title") or ""), str(i.get("relationship") or ""),
                                       bool(i.get("active_manifest"))) for i in active.get("ingredients") or []]
    sig = active.get("signature_info") or {}
    info.signer_issuer, info.signer_common_name = sig.get("issuer"), sig.get("common_name")
    return info


def _actions(manifest: dict[str, Any]) -> tuple[list[str], str | None]:
    names: list[str] = []
    source: str | None = None
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for act in (assertion.get("data") or {}).get("actions") or []:
                names.append(str(act.get("action")))
                source = source or act.get("digitalSourceType")
    return names, source
