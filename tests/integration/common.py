"""Helpers shared by the integration tests: run our binaries, read JSON."""

from __future__ import annotations

import json
import os
import subprocess
import unittest
from pathlib import Path

BIN = Path(os.environ.get("IMGSYNC_BIN", Path(__file__).resolve().parents[2] / "build" / "bin"))

FULL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"], "Resource": "*"}],
}


class ToolResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
        self.stats = {}
        for line in reversed(proc.stderr.splitlines()):
            if line.startswith("{\"requests\""):
                self.stats = json.loads(line)
                break

    @property
    def errors(self):
        return [l["error"] for l in self.lines if "error" in l]

    def __repr__(self):
        return f"rc={self.rc}\nstdout={self.stdout[-3000:]}\nstderr={self.stderr[-3000:]}"


def fetch(url: str) -> tuple[int, bytes]:
    """GET url as whoever holds a share link would (curl): status and body."""
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}",
                        url], capture_output=True, timeout=30)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code or 0), body


def awstool(env: dict, *args: str, timeout: float = 300) -> ToolResult:
    """Runs tests/tools/awstool.c with env; bounded in time."""
    proc = subprocess.run([str(BIN / "awstool"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return ToolResult(proc)


class BedTestCase(unittest.TestCase):
    maxDiff = None

    def assertOk(self, res: ToolResult):
        self.assertEqual(res.rc, 0, repr(res))
        self.assertEqual(res.errors, [], repr(res))
