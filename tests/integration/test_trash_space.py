"""A trash move that cannot complete is the disk-full state too (issue 10):
a /delete while the watch root's file system is read-only deletes the
remote copies, keeps the local file where it is, and says so; nothing
uploads that file again meanwhile; when the file system is writable again
the move finishes by itself and the mirror carries on.

The watch root is a tmpfs the test mounts (as root) and remounts
read-only, then read-write; every mount is undone by a cleanup.
"""

from __future__ import annotations

import os
import subprocess
import time
import unittest

import testbed
from daemon import Daemon, wait_until
from images import make
from test_control import curl


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts a tmpfs)")
class TrashSpace(unittest.TestCase):
    def test_read_only_root_during_a_delete(self):
        d = Daemon(testbed.auth_bed())
        self.addCleanup(d.close)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "imgsync-root",
                        str(d.root)], check=True, timeout=60)
        self.addCleanup(subprocess.run, ["umount", "-l", str(d.root)], timeout=60)
        files = {}
        for n in ("a.png", "b.png", "c.png"):
            files[n], _ = make(n, 3, 3, n.encode())
            (d.root / n).write_bytes(files[n])
        d.start()
        wait_until(lambda: "listening on" in d.log(), 30, what="the socket")
        sock = str(d.dir / "imgsync.sock")
        d.wait_mirror(60, local=files)
        subprocess.run(["mount", "-o", "remount,ro", str(d.root)], check=True, timeout=60)
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "a.png"})
        self.assertEqual(st, 500, doc)
        self.assertIn("Read-only file system", doc["error"])
        self.assertTrue((d.root / "a.png").exists())
        status = curl(sock, "GET", "/status")[1]
        self.assertEqual(status["state"], "disk-full", status)
        time.sleep(3)
        # The remote copies are gone and stay gone.
        self.assertNotIn("a.png", d.remote_objects())
        self.assertNotIn("a.png", d.remote_items())
        self.assertFalse((d.dir / "trash" / "a.png").exists())
        subprocess.run(["mount", "-o", "remount,rw", str(d.root)], check=True, timeout=60)
        wait_until(lambda: (d.dir / "trash" / "a.png").exists(), 30, what="the trash move")
        self.assertEqual((d.dir / "trash" / "a.png").read_bytes(), files["a.png"])
        self.assertFalse((d.root / "a.png").exists())
        del files["a.png"]
        wait_until(lambda: curl(sock, "GET", "/status")[1]["state"] != "disk-full", 30,
                   what="the end of the state")
        new, _ = make("new.png", 3, 3, b"new")
        (d.root / "new.png").write_bytes(new)
        d.wait_mirror(60, local={**files, "new.png": new})
        self.assertEqual(len(list((d.dir / "trash").iterdir())), 1)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
