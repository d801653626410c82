"""`pixloop audit verify`: check that a run's (or a document's) events.jsonl is intact, line by line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail
from agent.runtime.events import AUDIT_KEY_ENV, EVENTS_FILE, AuditResult, verify_log

EXIT_TAMPERED = 3

AUDIT_EPILOG = f"""\
how the log is protected:
  every line of events.jsonl carries "seq" (0, 1, 2, ...) and "prev", the SHA-256 of the previous line's exact
  bytes (64 zeros for the first line). Editing a line breaks the next line's prev; deleting or moving a line
  breaks the seq order. Whoever edits a line can recompute the whole chain, though: set {AUDIT_KEY_ENV} when
  the run is made and every line also carries "mac", an HMAC-SHA256 of the line keyed with that secret, which
  nobody without the key can recompute. Set the same {AUDIT_KEY_ENV} to verify the macs; without it, they
  are not checked (and the output says so). Neither can show lines cut off the end of the log, nor (unkeyed)
  an edit of its last line: PIXLOOP_AUDIT_STDOUT=1 also streams every line to stdout for a log collector.
  A line cut short by a killed process is reported as broken; the lines after it still chain.
what is verified: RUN_DIR/events.jsonl and, for a document folder, every runs/<image>/rN/events.jsonl.
examples:
  pixloop audit verify run
  PIXLOOP_AUDIT_KEY=... pixloop audit verify my-story --json
exit codes: 0 intact, 3 tampered (the file and its first broken line are named), 2 no such folder or log
"""


def add_audit_parser(sub: Any) -> None:
    audit = sub.add_parser("audit", help="check that a run's event log (events.jsonl) was not edited",
                           description="Audit a run folder's tamper-evident event log.",
                           epilog=AUDIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    verify = actions.add_parser(
        "verify", help="verify the hash chain (and the macs, with PIXLOOP_AUDIT_KEY) of a run's events.jsonl",
        description="Verify RUN_DIR/events.jsonl (and, in a document folder, each image run's log): exit 0 when "
                    "intact, 3 when a line was edited, deleted or moved.",
        epilog=AUDIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("run_dir", metavar="RUN_DIR", help="a run folder or an illustrated document's folder")
    verify.add_argument("--json", action="store_true", help="print one JSON object with a 'logs' list")


def _logs(run_dir: Path) -> list[Path]:
    """The folder's log, then the image runs' logs of a document folder (runs/<image>/rN/), in name order."""
    return [run_dir / EVENTS_FILE, *sorted(run_dir.glob(f"runs/*/r*/{EVENTS_FILE}"))]


def _summary(result: AuditResult) -> str:
    hmac_state = "HMAC ok" if result.keyed else f"HMAC not checked ({AUDIT_KEY_ENV} unset)"
    return f"intact: {result.lines} events, chain ok, {hmac_state}"


def audit_command(args: argparse.Namespace) -> int:
    if getattr(args, "audit_command", None) != "verify":
        return fail("audit: say what to do: pixloop audit verify RUN_DIR", EXIT_BAD_INPUT)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        return fail(f"no such run folder: {run_dir}", EXIT_BAD_INPUT)
    if not (run_dir / EVENTS_FILE).is_file():
        return fail(f"no event log in {run_dir}: {run_dir / EVENTS_FILE} does not exist", EXIT_BAD_INPUT)
    key = os.environ.get(AUDIT_KEY_ENV) or None
    results = []
    for path in _logs(run_dir):
        try:
            results.append((path, verify_log(path, key=key)))
        except OSError as e:
            return fail(f"cannot read {path}: {e.strerror or e}", EXIT_BAD_INPUT)
    intact = all(r.ok for _, r in results)
    if args.json:
        out: dict[str, Any] = {"ok": intact, "keyed": key is not None, "logs": [
            {"path": str(path), "ok": r.ok, "lines": r.lines, "first_broken": r.first_broken, "reason": r.reason}
            for path, r in results]}
        print(json.dumps(out, indent=2))
    else:
        for path, r in results:
            if len(results) > 1 or not r.ok:
                print(f"{path}: {_summary(r) if r.ok else f'tampered: {r.reason}'}")
        if intact:
            total = AuditResult(ok=True, lines=sum(r.lines for _, r in results), keyed=key is not None)
            logs = f" in {len(results)} logs" if len(results) > 1 else ""
            print(_summary(total).replace(" events,", f" events{logs},", 1))
        else:
            broken = sum(not r.ok for _, r in results)
            print(f"tampered: {broken} of {len(results)} log(s) do not verify")
    return 0 if intact else EXIT_TAMPERED
