"""`pixloop verify IMAGE`: what an image says about where it came from — pixloop's invisible watermark and the run
it names, C2PA Content Credentials (validated; trusted against `--trust`), and the IPTC DigitalSourceType."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail
from agent.models.errors import ImageInputError
from agent.runtime.images import decode_image_bytes, sniff_mime
from agent.runtime.provenance import read_manifest, read_source_type
from agent.runtime.watermark import detect, payload_for

EXIT_NOTHING = 3

VERIFY_EPILOG = """\
examples:
  pixloop verify out/demo/final.png
  pixloop verify final.png --run run-20261127-101500-ab12      # is it the mark of that run?
  pixloop verify signed.png --trust certs/ca.pem --json        # validate Content Credentials against your CA

exit codes: 0 pixloop's watermark or valid Content Credentials found, 3 neither (or credentials that were
            tampered with), 2 the file cannot be read as an image
"""


def add_verify_parser(sub: Any) -> None:
    p = sub.add_parser("verify", help="read an image's provenance: pixloop's watermark, C2PA credentials, source type",
                       description="Report whether an image carries pixloop's invisible watermark (and the run it "
                                   "names), C2PA Content Credentials (validated, and trusted against --trust), and "
                                   "IPTC DigitalSourceType metadata.",
                       epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", help="the image file")
    p.add_argument("--run", metavar="THREAD_ID", help="also say whether the watermark names this run")
    p.add_argument("--trust", metavar="CA.pem", help="trust anchors (PEM) to validate the credentials' signer against")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")


def verify_image(data: bytes, *, run: str | None = None, trust: bytes | None = None) -> dict[str, Any]:
    """The findings for an image's bytes (ImageInputError when they are not an image)."""
    image = decode_image_bytes(data, label="image")
    mime = sniff_mime(data) or "application/octet-stream"
    mark = detect(image)
    manifest = read_manifest(data, mime, trust_anchors=trust)
    found: dict[str, Any] = {
        "watermark": {"present": mark.present, "payload": mark.hex, "confidence": round(mark.confidence, 3),
                      "method": mark.method},
        "credentials": None if manifest is None else {
            "status": manifest.status, "valid": manifest.valid, "tampered": manifest.tampered,
            "claim_generator": manifest.claim_generator, "digital_source_type": manifest.digital_source_type,
            "actions": manifest.actions, "ingredients": manifest.ingredient_titles,
            "signer": manifest.signer_common_name, "issuer": manifest.signer_issuer,
            "failures": manifest.failure_codes},
        "source_type": read_source_type(data, mime),
    }
    if run is not None:
        found["watermark"]["names_run"] = mark.present and mark.payload == payload_for(run)
    return found


def verify_command(args: argparse.Namespace) -> int:
    path = Path(args.image)
    try:
        data = path.read_bytes()
        trust = Path(args.trust).read_bytes() if args.trust else None
        found = verify_image(data, run=args.run, trust=trust)
    except OSError as e:
        return fail(f"{e.filename or path}: {e.strerror or e}", EXIT_BAD_INPUT)
    except ImageInputError as e:
        return fail(f"{path}: {e}", EXIT_BAD_INPUT)
    creds = found["credentials"]
    ok = found["watermark"]["present"] or (creds is not None and creds["valid"] and not creds["tampered"])
    if creds is not None and creds["tampered"]:
        ok = False
    if args.json:
        print(json.dumps({"file": str(path), "ok": ok, **found}, indent=2))
        return 0 if ok else EXIT_NOTHING
    mark = found["watermark"]
    print(f"{path}")
    print(f"  watermark:   {'present, payload ' + mark['payload'] if mark['present'] else 'not found'}"
          + (f" ({'names' if mark.get('names_run') else 'does not name'} run {args.run})" if args.run else ""))
    if creds is None:
        print("  credentials: none")
    else:
        print(f"  credentials: {creds['status']} ({creds['claim_generator'] or 'unknown generator'}; "
              f"signed by {creds['signer'] or '?'}; actions {', '.join(creds['actions']) or 'none'}; "
              f"ingredients {', '.join(creds['ingredients']) or 'none'})")
    print(f"  source type: {found['source_type'] or 'not stated'}")
    return 0 if ok else EXIT_NOTHING


__all__ = ["add_verify_parser", "verify_command", "verify_image"]
