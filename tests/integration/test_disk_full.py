"""A full disk is a state, not a flood (issue 10): the state database's
file system fills during a burst; imgsyncd stays up, says so once (status,
metrics, log), loses nothing from its queue, and when there is space again
it carries on by itself until the mirror is exact.

The state database lives on a small tmpfs the test mounts (as root) and
later remounts larger; every mount is undone by a cleanup.
"""

from __future__ import annotations

import os
import subprocess
import unittest

import testbed
from daemon import Daemon, wait_until
from images import make
from test_control import curl


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts a tmpfs)")
class DiskFull(unittest.TestCase):
    maxDiff = None

    def test_state_database_fills_during_a_burst(self):
        d = Daemon(testbed.auth_bed(), level="info")
        self.addCleanup(d.close)
        statedir = d.state_path.parent
        statedir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "imgsync-state",
                        str(statedir)], check=True, timeout=60)
        self.addCleanup(subprocess.run, ["umount", "-l", str(statedir)], timeout=60)
        d.start()
        wait_until(lambda: "listening on" in d.log(), 30, what="the socket")
        sock = str(d.dir / "imgsync.sock")
        files = {}
        for i in range(3000):
            rel = f"b{i % 10}/f{i}.png"
            data, _ = make(rel, 2, 2, rel.encode())
            (d.root / rel).parent.mkdir(exist_ok=True)
            (d.root / rel).write_bytes(data)
            files[rel] = data

        def state():
            return curl(sock, "GET", "/status")[1]
        st = wait_until(lambda: (lambda s: s if s["state"] == "disk-full" else None)(state()),
                        120, what="the disk-full state")
        self.assertIn("cannot be written", st["disk_full"])
        self.assertGreater(st["queued"], 0, st)
        _, metrics, _ = curl(sock, "GET", "/metrics")
        self.assertIn("imgsync_disk_full 1", metrics)
        log = d.log()
        self.assertEqual(log.count("the state database cannot be written"), 1, log[-3000:])
        self.assertLess(len(log.splitlines()), 100, log[-3000:])  # not a line per file
        # Space again: no command from the operator.
        subprocess.run(["mount", "-o", "remount,size=256m", str(statedir)], check=True,
                       timeout=60)
        d.wait_mirror(300, local=files)
        self.assertNotEqual(state()["state"], "disk-full")
        self.assertIn("can be written again", d.log())
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
