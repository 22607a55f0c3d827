"""The root is the root (issue 10): a watch root whose disk is not mounted,
is unmounted while the daemon runs, or is replaced by another folder never
leads to a remote deletion; the daemon says why, waits, and carries on by
itself when the mirrored folder is back.

The "disk" is a tmpfs the test mounts on a folder of its own and binds onto
the watch root, so that an unmount leaves the empty mount point at the same
path and a remount brings back the same files, inodes and all, as a real
disk does after a reboot. Needs root (mounts); every mount is undone by a
cleanup.
"""

from __future__ import annotations

import os
import subprocess
import time
import unittest
from pathlib import Path

import testbed
from common import BIN
from daemon import Daemon, wait_until
from images import make
from test_control import curl


def run(*cmd: str):
    subprocess.run(list(cmd), check=True, capture_output=True, timeout=60)


@unittest.skipUnless(os.geteuid() == 0, "needs root (mounts a tmpfs)")
class RootGuard(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.d = Daemon(testbed.auth_bed())
        self.addCleanup(self.d.close)
        self.disk = self.d.dir / "disk"
        self.disk.mkdir()
        run("mount", "-t", "tmpfs", "-o", "size=64m", "imgsync-test", str(self.disk))
        self.addCleanup(subprocess.run, ["umount", "-l", str(self.disk)], timeout=60)
        self.mount()
        self.files = {}
        for i in range(100):
            rel = f"d{i % 5}/f{i}.png"
            data, _ = make(rel, 2, 2, rel.encode())
            p = self.d.root / rel
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(data)
            self.files[rel] = data

    def mount(self):
        run("mount", "--bind", str(self.disk), str(self.d.root))
        self.mounted = True
        self.addCleanup(self.unmount)

    def unmount(self):
        if self.mounted:
            # Lazy: the daemon may hold the folder open.
            subprocess.run(["umount", "-l", str(self.d.root)], timeout=60)
            self.mounted = False

    def sock(self) -> str:
        return str(self.d.dir / "imgsync.sock")

    def status(self) -> dict:
        st, doc, _ = curl(self.sock(), "GET", "/status")
        self.assertEqual(st, 200, doc)
        return doc

    def intact(self):
        """All 100 files are still in the bucket and the table."""
        self.assertEqual(set(self.d.remote_objects()), set(self.files))
        self.assertEqual(set(self.d.remote_items()), set(self.files))

    def synced(self):
        self.assertEqual(self.d.once(120).returncode, 0, self.d.log()[-3000:])
        self.d.wait_mirror(60, local=self.files)
        self.assertTrue((self.d.root / ".imgsync-root").is_file())

    def test_disk_not_mounted_at_start(self):
        self.synced()
        self.unmount()
        self.assertEqual(os.listdir(self.d.root), [])
        # --once: nothing done, a non-zero exit with the reason.
        proc = self.d.once(60)
        self.assertEqual(proc.returncode, 75, self.d.log()[-2000:])
        self.assertIn("has no marker .imgsync-root", self.d.log())
        self.intact()
        # The daemon: waits, says why, deletes nothing.
        self.d.start()
        wait_until(lambda: "listening on" in self.d.log(), 30, what="the socket")
        time.sleep(2)
        st = self.status()
        self.assertEqual(st["state"], "root-lost")
        self.assertIn("has no marker", st["root_lost"])
        st_code, metrics, _ = curl(self.sock(), "GET", "/metrics")
        self.assertIn("imgsync_root_lost 1", metrics)
        ctl = subprocess.run([str(BIN / "imgsyncctl"),
                              "-s", self.sock(), "status"], capture_output=True, text=True,
                             timeout=30)
        self.assertIn("root-lost", ctl.stdout)
        self.assertIn("has no marker", ctl.stdout)
        self.intact()
        # Said once, not every check.
        time.sleep(4.5)
        self.assertEqual(self.d.log().count("has no marker"), 2, self.d.log())  # --once's, ours
        # The disk comes back: the daemon notices by itself.
        self.mount()
        wait_until(lambda: self.status()["state"] != "root-lost", 20, what="the root back")
        self.d.wait_mirror(60, local=self.files)
        time.sleep(1)
        st = self.status()
        self.assertEqual((st["uploaded"], st["deleted"]), (0, 0), st)
        self.assertEqual(self.d.stop(), 0)

    def test_unmounted_while_running(self):
        self.synced()
        self.d.start()
        wait_until(lambda: "listening on" in self.d.log(), 30, what="the socket")
        self.unmount()
        wait_until(lambda: self.status()["state"] == "root-lost", 20, what="root-lost")
        # Written into the empty mount point: not the mirrored folder.
        stray, _ = make("stray.png", 3, 3, b"stray")
        (self.d.root / "stray.png").write_bytes(stray)
        time.sleep(3)
        self.intact()
        (self.d.root / "stray.png").unlink()
        self.mount()
        wait_until(lambda: self.status()["state"] != "root-lost", 20, what="the root back")
        self.d.wait_mirror(60, local=self.files)
        # And it still follows changes.
        new, _ = make("new.png", 3, 3, b"new")
        (self.d.root / "new.png").write_bytes(new)
        self.d.wait_mirror(60, local={**self.files, "new.png": new})
        self.assertEqual(self.d.stop(), 0)

    def test_folder_moved_away_and_replaced(self):
        self.unmount()  # a plain folder this time
        for rel, data in self.files.items():
            (self.d.root / rel).parent.mkdir(exist_ok=True)
            (self.d.root / rel).write_bytes(data)
        self.synced()
        self.d.start()
        wait_until(lambda: "listening on" in self.d.log(), 30, what="the socket")
        away = self.d.dir / "away"
        self.d.root.rename(away)
        self.d.root.mkdir()
        wait_until(lambda: self.status()["state"] == "root-lost", 20, what="root-lost")
        stray, _ = make("stray.png", 3, 3, b"stray")
        (self.d.root / "stray.png").write_bytes(stray)
        time.sleep(3)
        self.intact()
        # The right folder back in place.
        (self.d.root / "stray.png").unlink()
        self.d.root.rmdir()
        away.rename(self.d.root)
        wait_until(lambda: self.status()["state"] != "root-lost", 20, what="the root back")
        self.d.wait_mirror(60, local=self.files)
        self.assertEqual(self.d.stop(), 0)

    def test_reboot_with_the_same_disk_raises_no_alarm(self):
        self.synced()
        self.unmount()
        self.mount()
        proc = self.d.once(60)
        self.assertEqual(proc.returncode, 0, self.d.log()[-2000:])
        self.assertNotIn("marker", self.d.log().split("watching")[-1])
        self.d.start()
        wait_until(lambda: "listening on" in self.d.log(), 30, what="the socket")
        time.sleep(1)
        self.assertNotEqual(self.status()["state"], "root-lost")
        self.assertEqual(self.d.stop(), 0)

    def test_read_only_root_says_what_to_do(self):
        """A first start on a root it cannot write: no marker, and the log
        gives the command that makes one."""
        self.unmount()
        run("mount", "-o", "remount,ro", str(self.disk))
        self.addCleanup(subprocess.run, ["mount", "-o", "remount,rw", str(self.disk)],
                        timeout=60)
        self.mount()
        proc = self.d.once(120)
        self.assertEqual(proc.returncode, 0, self.d.log()[-2000:])
        self.assertIn("cannot write the marker", self.d.log())
        self.assertRegex(self.d.log(), r"create it as root: printf 'imgsync-root [0-9a-f]{32}"
                         r"\\n' > .*/\.imgsync-root")
        self.assertFalse((self.d.root / ".imgsync-root").exists())

    def test_adopt_root_starts_over_on_purpose(self):
        self.synced()
        self.unmount()
        env = self.d.env()
        proc = subprocess.run([str(BIN / "imgsyncd"),
                               "-c", str(self.d.conf), "--adopt-root"],
                              capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue((self.d.root / ".imgsync-root").is_file())
        (self.d.root / ".imgsync-root").unlink()  # the mount point: leave it clean


if __name__ == "__main__":
    unittest.main()
