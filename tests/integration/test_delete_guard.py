"""Mass deletions are held, not mirrored (issue 10): a batch of local
deletions over sync.max_delete (a count, or a share of the mirror) reaches
the server only when the operator confirms; held deletions survive a
kill -9 and vanish when the files come back; sync.delete = "keep" never
deletes remotely on a local deletion, and renames still move.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import unittest

import testbed
from common import BIN
from daemon import Daemon, wait_until
from images import make
from test_control import curl


class DeleteGuard(unittest.TestCase):
    maxDiff = None

    def daemon(self, extra_sync="") -> Daemon:
        d = Daemon(testbed.auth_bed())
        self.addCleanup(d.close)
        if extra_sync:
            d.write_conf(d.conf_text().replace("sync: {", "sync: { " + extra_sync))
        return d

    def fill(self, d: Daemon, n: int) -> dict:
        files = {}
        for i in range(n):
            rel = f"d{i % 4}/f{i}.png"
            data, _ = make(rel, 2, 2, rel.encode())
            (d.root / rel).parent.mkdir(exist_ok=True)
            (d.root / rel).write_bytes(data)
            files[rel] = data
        return files

    def start(self, d: Daemon) -> str:
        before = d.log().count("listening on")
        d.start()
        wait_until(lambda: d.log().count("listening on") > before, 30, what="the socket")
        return str(d.dir / "imgsync.sock")

    def ctl(self, d: Daemon, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "imgsyncctl"), "-s", str(d.dir / "imgsync.sock"),
                               *args], capture_output=True, text=True, timeout=60)

    def held(self, sock: str) -> int:
        st, doc, _ = curl(sock, "GET", "/status")
        return doc["held_deletions"]

    def test_rm_rf_of_300_of_400_is_held_until_confirmed(self):
        d = self.daemon()
        files = self.fill(d, 400)
        sock = self.start(d)
        d.wait_mirror(120, local=files)
        gone = sorted(files)[:300]
        for rel in gone:
            (d.root / rel).unlink()
        wait_until(lambda: self.held(sock) == 300, 30, what="300 held deletions")
        time.sleep(1)
        self.assertEqual(len(d.remote_objects()), 400)
        self.assertEqual(len(d.remote_items()), 400)
        out = self.ctl(d, "deletions")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sorted(out.stdout.splitlines()[:-1]), gone)
        self.assertIn("300 deletions held", out.stdout)
        st, metrics, _ = curl(sock, "GET", "/metrics")
        self.assertIn("imgsync_deletions_held 300", metrics)
        self.assertIn("300 deletions held", d.log())
        # Held deletions survive a kill -9.
        d.kill()
        sock = self.start(d)
        wait_until(lambda: self.held(sock) == 300, 30, what="still held after kill -9")
        time.sleep(2)
        self.assertEqual(len(d.remote_objects()), 400)
        # The operator confirms: they are sent.
        out = self.ctl(d, "deletions", "--confirm")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("Sending 300 held deletions", out.stdout)
        rest = {k: v for k, v in files.items() if k not in gone}
        d.wait_mirror(120, local=rest)
        self.assertEqual(self.held(sock), 0)
        self.assertEqual(d.stop(), 0)

    def test_held_deletions_vanish_when_the_files_come_back(self):
        d = self.daemon()
        files = self.fill(d, 400)
        sock = self.start(d)
        d.wait_mirror(120, local=files)
        gone = sorted(files)[:300]
        for rel in gone:
            (d.root / rel).unlink()
        wait_until(lambda: self.held(sock) == 300, 30, what="300 held deletions")
        for rel in gone:
            (d.root / rel).write_bytes(files[rel])
        wait_until(lambda: self.held(sock) == 0, 60, what="the held deletions to vanish")
        d.wait_mirror(60, local=files)
        self.assertIn("no deletions held", self.ctl(d, "deletions").stdout)
        self.assertEqual(d.stop(), 0)

    def test_a_few_deletions_go_through(self):
        d = self.daemon()
        files = self.fill(d, 40)
        sock = self.start(d)
        d.wait_mirror(60, local=files)
        for rel in sorted(files)[:3]:
            (d.root / rel).unlink()
            del files[rel]
        d.wait_mirror(30, local=files)
        self.assertEqual(self.held(sock), 0)
        self.assertEqual(d.stop(), 0)

    def test_keep_never_deletes_remotely_and_renames_still_move(self):
        d = self.daemon('delete = "keep";')
        files = self.fill(d, 20)
        self.start(d)
        d.wait_mirror(60, local=files)
        gone = sorted(files)[:5]
        for rel in gone:
            (d.root / rel).unlink()
        os.rename(d.root / "d1/f1.png", d.root / "d1/renamed.png")
        wait_until(lambda: "d1/renamed.png" in d.remote_items(), 30, what="the rename")
        time.sleep(2)
        objs, items = d.remote_objects(), d.remote_items()
        for rel in gone:
            self.assertIn(rel, objs)
            self.assertIn(rel, items)
        self.assertNotIn("d1/f1.png", objs)
        self.assertNotIn("d1/f1.png", items)
        self.assertIn("d1/renamed.png", objs)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
