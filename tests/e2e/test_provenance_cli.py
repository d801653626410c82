"""Provenance as a user meets it: every delivered image carries the run's watermark and its source type; with a
certificate it is signed with Content Credentials that `pixloop verify` validates; a provider's signed image is
never turned into a tampered one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]


def pixloop(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIXLOOP, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_a_run_delivers_a_watermarked_image_naming_the_run_with_its_source_type(tmp_path: Path) -> None:
    out = pixloop("run", 'A poster that says "HELLO"', "--out", "run", "--thread-id", "wm-run", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    check = pixloop("verify", "run/final.png", "--run", "wm-run", "--json", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    found = json.loads(check.stdout)
    assert found["watermark"]["present"] and found["watermark"]["names_run"]
    assert found["source_type"].endswith("trainedAlgorithmicMedia") and found["credentials"] is None
    other = json.loads(pixloop("verify", "run/final.png", "--run", "another-run", "--json", cwd=tmp_path).stdout)
    assert other["watermark"]["names_run"] is False


def test_an_unmarked_image_is_reported_as_such_with_exit_3(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (640, 480), (40, 120, 200)).save(tmp_path / "plain.png")
    out = pixloop("verify", "plain.png", cwd=tmp_path)
    assert out.returncode == 3 and "watermark:   not found" in out.stdout and "credentials: none" in out.stdout


def test_a_signed_run_validates_against_the_test_ca_and_an_edit_is_signed_as_edited(tmp_path: Path) -> None:
    made = pixloop("provenance", "test-cert", "certs", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    sign = ["--sign-cert", "certs/signer-chain.pem", "--sign-key", "certs/signer-key.pem"]
    run = pixloop("run", 'A poster that says "SIGNED"', "--out", "run", "-q", *sign, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    found = json.loads(pixloop("verify", "run/final.png", "--trust", "certs/ca.pem", "--json", cwd=tmp_path).stdout)
    creds = found["credentials"]
    assert creds["status"] == "trusted" and not creds["tampered"], creds
    assert "c2pa.created" in creds["actions"] and creds["claim_generator"].startswith("pixloop")
    assert found["watermark"]["present"], "the mark is added before signing, so both hold"

    edit = pixloop("edit", "run/final.png", "make the background deep blue", "--keep", "text", "--out", "edit",
                   "-q", "-n", "2", *sign, cwd=tmp_path)
    assert edit.returncode in (0, 3), edit.stderr
    edited = json.loads(pixloop("verify", "edit/final.png", "--trust", "certs/ca.pem", "--json",
                                cwd=tmp_path).stdout)["credentials"]
    assert edited["status"] == "trusted" and "c2pa.edited" in edited["actions"]
    assert "edit source" in edited["ingredients"]


def test_signing_needs_both_files(tmp_path: Path) -> None:
    out = pixloop("run", 'A poster that says "HI"', "--sign-cert", "missing.pem", cwd=tmp_path)
    assert out.returncode == 2 and "--sign-key" in out.stderr


@pytest.fixture
def signing_gemini() -> object:
    from agent.testing.fakes import FakeServer, FaultPlan
    from agent.testing.fakes.gemini import create_app

    server = FakeServer(create_app(FaultPlan.parse([]), c2pa_sign=True)).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_providers_signed_image_is_delivered_as_it_came_when_not_signing(tmp_path: Path, signing_gemini) -> None:
    from agent.runtime.provenance import read_manifest

    out = pixloop("run", 'A poster that says "PROVIDER"', "--backend", "gemini", "--base-url", signing_gemini.url,
                  "--out", "run", "-q", "--json", cwd=tmp_path, env={"GEMINI_API_KEY": "test-key"})
    assert out.returncode in (0, 3), out.stderr
    report = json.loads(out.stdout)
    final = (tmp_path / "run" / "final.png").read_bytes()
    candidate = (tmp_path / "run" / report["final"]["path"]).read_bytes()
    assert final == candidate, "byte for byte as the provider sent it"
    manifest = read_manifest(final, "image/png")
    assert manifest is not None and manifest.valid and not manifest.tampered
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    delivered = [e for e in events if e["event"] == "provenance"]
    assert delivered and delivered[-1]["provider_manifest"] is True and delivered[-1]["watermark"] is None
