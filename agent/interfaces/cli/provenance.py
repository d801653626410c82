"""`pixloop provenance test-cert DIR`: a local test CA and a C2PA signing certificate, for trying out
Content Credentials (`--sign-cert`/`--sign-key`) without buying a certificate. Nobody trusts this CA unless
told to (validate with DIR/ca.pem as trust anchor)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail


def add_provenance_parser(sub: Any) -> None:
    prov = sub.add_parser(
        "provenance", help="C2PA Content Credentials helpers (test-cert: a local test CA and signing certificate)",
        description="Content Credentials (C2PA) helpers.")
    actions = prov.add_subparsers(dest="provenance_command", metavar="ACTION")
    cert = actions.add_parser(
        "test-cert", help="write a local test CA and a signing certificate the c2pa library accepts",
        description="Write DIR/ca.pem (a self-signed test root CA), DIR/signer-chain.pem (an ECDSA P-256 signing "
                    "certificate plus the CA) and DIR/signer-key.pem (its private key). For tests and demos: "
                    "validators report it as untrusted unless DIR/ca.pem is given as trust anchor.")
    cert.add_argument("dir", type=Path, metavar="DIR", help="folder to write the three files into (created)")
    cert.add_argument("--organization", default="pixloop test", help="the certificates' organization name")
    cert.add_argument("--force", action="store_true", help="overwrite existing files in DIR")


def provenance_command(args: argparse.Namespace) -> int:
    if getattr(args, "provenance_command", None) != "test-cert":
        return fail("usage: pixloop provenance test-cert DIR", EXIT_BAD_INPUT)
    from agent.runtime.provenance import make_test_certificates

    folder: Path = args.dir
    existing = [folder / n for n in ("ca.pem", "signer-chain.pem", "signer-key.pem") if (folder / n).exists()]
    if existing and not args.force:
        return fail(f"{existing[0]} exists; use --force to overwrite", EXIT_BAD_INPUT)
    if folder.exists() and not folder.is_dir():
        return fail(f"{folder} is not a folder", EXIT_BAD_INPUT)
    certs = make_test_certificates(folder, organization=args.organization,
                                   common_name=f"{args.organization} signer")
    print(f"test CA (trust anchor):        {certs.ca}")
    print(f"signing certificate chain:     {certs.chain}")
    print(f"signing key (keep it private): {certs.key}")
    print(f"sign with:   --sign-cert {certs.chain} --sign-key {certs.key}")
    print(f"verify with: {certs.ca} as trust anchor; without it the signature reads as untrusted")
    return 0


__all__ = ["add_provenance_parser", "provenance_command"]
