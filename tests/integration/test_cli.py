"""imgsyncd's command line: -t, --version, --help, bad usage, bad config."""

from __future__ import annotations

import subprocess
import tempfile
import unittest
from pathlib import Path

from common import BIN

CONF = Path(__file__).resolve().parents[2] / "conf" / "imgsync.conf"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "imgsyncd"), *args], capture_output=True, text=True,
                          timeout=30)


class Cli(unittest.TestCase):
    def test_version_and_help(self):
        v = run("--version")
        self.assertEqual(v.returncode, 0)
        self.assertRegex(v.stdout, r"^imgsyncd \d+\.\d+\.\d+\n$")
        self.assertEqual(run("-v").stdout, v.stdout)
        h = run("--help")
        self.assertEqual(h.returncode, 0)
        for flag in ("-c", "-f", "-t", "--once", "-v", "-h"):
            self.assertIn(flag, h.stdout)

    def test_bad_usage_is_64(self):
        r = run("--no-such-flag")
        self.assertEqual(r.returncode, 64)
        self.assertIn("usage:", r.stderr)
        self.assertEqual(run("extra-arg").returncode, 64)

    def test_check_config(self):
        ok = run("-t", "-c", str(CONF))
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("is valid", ok.stdout)
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write('watch: { root = "/srv/images"; };\ns3: { bucket = "b"; };\n')
            f.flush()
            bad = run("-t", "-c", f.name)
            self.assertEqual(bad.returncode, 78)  # EX_CONFIG
            self.assertIn(f"{f.name}:2:", bad.stderr)
            self.assertIn("s3.bucket", bad.stderr)
        missing = run("-t", "-c", "/nonexistent/imgsync.conf")
        self.assertEqual(missing.returncode, 78)
        self.assertIn("/nonexistent/imgsync.conf", missing.stderr)


if __name__ == "__main__":
    unittest.main()
