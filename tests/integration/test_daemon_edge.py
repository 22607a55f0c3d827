"""imgsyncd under trouble: inotify overflow, odd names, unreadable files."""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import time
import unittest
from pathlib import Path

import testbed
from common import BIN
from daemon import Daemon, wait_until
from faultproxy import FaultProxy
from images import make

QUEUED = Path("/proc/sys/fs/inotify/max_queued_events")


class Edge(unittest.TestCase):
    maxDiff = None

    def daemon(self, bed=None, **kw) -> Daemon:
        d = Daemon(bed or testbed.auth_bed(), **kw)
        self.addCleanup(d.close)
        return d

    def test_queue_overflow_still_converges(self):
        try:
            old = QUEUED.read_text().strip()
            QUEUED.write_text("64\n")
        except OSError as exc:
            self.skipTest(f"cannot lower {QUEUED} (needs root): {exc}")
        self.addCleanup(QUEUED.write_text, old + "\n")
        d = self.daemon()
        # the limit applies to inotify instances made after the change
        for i in range(10):
            (d.root / f"o{i}").mkdir()
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        time.sleep(0.5)
        os.kill(d.proc.pid, 19)  # SIGSTOP: let the queue overflow
        try:
            for i in range(600):
                data, _ = make(f"{i}.png", 2, 2, str(i).encode())
                (d.root / f"o{i % 10}" / f"{i}.png").write_bytes(data)
        finally:
            os.kill(d.proc.pid, 18)  # SIGCONT
        d.wait_mirror(180)
        self.assertIn("overflow", d.log())
        self.assertEqual(d.stop(), 0)

    def test_tens_of_thousands_of_unchanged_files_at_start(self):
        """Unchanged files finish at once; the engine used to recurse once
        per such file and overflowed its stack at start-up (~12,000 in a
        release build, fewer under ASan)."""
        d = self.daemon()
        self.assertEqual(d.once(120).returncode, 0)  # creates the state database
        n = 30000
        rows = []
        for i in range(n):
            sub = d.root / f"d{i % 50}"
            sub.mkdir(exist_ok=True)
            (sub / f"f{i}.jpg").write_bytes(b"x")
        for i in range(n):
            rel = f"d{i % 50}/f{i}.jpg"
            st = os.stat(d.root / rel)
            rows.append((rel.encode(), rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                         st.st_ino, "a" * 64, '"e"', "image/jpeg", "2026-01-01T00:00:00.000Z"))
        # As synced rows, written straight into the state database (the
        # files table of lib/state.c), so that no request is needed.
        db = sqlite3.connect(d.state_path)
        db.executemany("INSERT INTO files(path,key,size,mtime_ns,ctime_ns,inode,sha256,etag,"
                       "type,synced_at) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        db.commit()
        db.close()
        proc = d.once(600)
        self.assertEqual(proc.returncode, 0, d.log()[-2000:])
        self.assertRegex(d.log(), rf"unchanged {n}\b")

    def test_one_daemon_per_state_database(self):
        d = self.daemon()
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        # a second daemon (or --once) on the same state database, with its
        # own socket: refused, and the first goes on
        other = self.daemon(root=str(d.root))
        other.write_conf(d.conf_text().replace(f"{d.dir}/imgsync.sock",
                                               f"{other.dir}/imgsync.sock"))
        proc = other.once(60)
        self.assertEqual(proc.returncode, 78, other.log())
        self.assertIn("another imgsyncd uses the state database", other.log())
        self.assertTrue(d.alive())
        self.assertEqual(d.stop(), 0)
        # once the first is gone, the lock is free
        self.assertEqual(other.once(60).returncode, 0, other.log())

    def test_multipart_cut_by_a_crash_is_aborted(self):
        """A crash in the middle of a multipart upload: the next start
        aborts the upload the intent recorded, then uploads the file
        again, so no incomplete upload is left behind."""
        d = self.daemon(extra="")
        d.write_conf(d.conf_text().replace("multipart_threshold_mb = 16; part_size_mb = 8;",
                                           "multipart_threshold_mb = 5; part_size_mb = 5;"))
        # Every request through the proxy waits 1.5 s: time to see the
        # upload created and to kill the daemon before its parts are done.
        proxy = FaultProxy(d.bed.endpoint, slow=1.0, slow_ms=1500).start()
        self.addCleanup(proxy.stop)
        direct = d.conf.read_text()
        d.write_conf(direct.replace(f'endpoint = "{d.endpoint}"', f'endpoint = "{proxy.url}"'))
        data = os.urandom(16 << 20)
        (d.root / "big.png").write_bytes(data)
        s3 = d.bed.s3()
        d.start()
        uploads = wait_until(lambda: s3.list_multipart_uploads(Bucket=d.bucket).get("Uploads"),
                             60, 0.1, "the multipart upload to start")
        time.sleep(0.5)  # the upload id reaches the intent right away
        d.kill()
        self.assertEqual(len(uploads), 1)
        d.write_conf(direct)
        d.start()
        d.wait_mirror(120)
        self.assertEqual(s3.list_multipart_uploads(Bucket=d.bucket).get("Uploads", []), [])
        self.assertIn("aborted the interrupted multipart upload of big.png", d.log())
        body = s3.get_object(Bucket=d.bucket, Key="big.png")["Body"].read()
        self.assertEqual(body, data)
        self.assertEqual(d.stop(), 0)

    def test_mtime_in_the_future_or_past(self):
        d = self.daemon()
        for name, shift in (("future.jpg", 3600 * 24), ("past.jpg", -3600 * 24 * 365 * 20)):
            p = d.root / name
            p.write_bytes(make(name, 4, 4, name.encode())[0])
            t = time.time() + shift
            os.utime(p, (t, t))
        d.start()
        d.wait_mirror(30)
        self.assertEqual(d.stop(), 0)

    def test_odd_names_synced_exactly_or_reported(self):
        # keys moto's checker cannot judge: the unchecked server
        bed = testbed.noauth_bed()
        d = self.daemon(bed, creds=bed.admin)
        # moto cannot store a key with a newline (its router answers 404, to
        # boto3 too); real S3 can. Such a name must then be reported.
        newline = "new\nline.jpg"
        ok_names = ["with space.jpg", "100%.jpg", "a+b.jpg",
                    "quote\"s'.jpg", "café ünï.jpg", "中文.jpg", "emoji😀.jpg", "k" * 250 + ".jpg"]
        root = os.fsencode(d.root)
        for n in ok_names + [newline]:
            data, _ = make("x.jpg", 3, 3, n.encode())
            with open(os.path.join(root, n.encode()), "wb") as f:
                f.write(data)
        bad_utf8 = b"bad\xff\xfename.jpg"
        with open(os.path.join(root, bad_utf8), "wb") as f:
            f.write(make("x.jpg", 3, 3, b"bad")[0])
        deep = os.path.join(root, *([b"d" * 200] * 6))
        os.makedirs(deep)
        with open(os.path.join(deep, b"long.jpg"), "wb") as f:
            f.write(make("x.jpg", 3, 3, b"long")[0])
        d.start()
        want = set(ok_names)
        wait_until(lambda: want <= set(d.remote_items()), 60, what="the odd names")
        for n in ok_names:
            body = bed.s3().get_object(Bucket=d.bucket, Key=n)["Body"].read()
            self.assertEqual(body, (d.root / n).read_bytes(), n)
        # the two that cannot be keys are reported, with a reason; the
        # newline one is either synced or reported
        long_rel = b"/".join([b"d" * 200] * 6) + b"/long.jpg"
        wait_until(lambda: {bad_utf8, long_rel} <= set(d.failed_rows()), 30,
                   what="two failures")
        failed = d.failed_rows()
        if newline in d.remote_items():
            self.assertEqual(bed.s3().get_object(Bucket=d.bucket, Key=newline)["Body"].read(),
                             (d.root / newline).read_bytes())
            want.add(newline)
        else:
            self.assertIn("PutObject", failed[newline.encode()])
            self.assertIn("new\\x0aline.jpg: PutObject", d.log())
        self.assertIn("UTF-8", failed[bad_utf8])
        self.assertIn("1024", failed[long_rel])
        log = d.log()
        self.assertIn("bad\\xff\\xfename.jpg: the file name is not valid UTF-8", log)
        self.assertIn("longer than 1024 bytes", log)
        self.assertEqual(set(d.remote_items()), want)
        self.assertTrue(d.alive())
        self.assertEqual(d.stop(), 0)

    def test_unreadable_and_vanishing_files(self):
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody' to run the daemon unprivileged")
        if os.geteuid() != 0:
            self.skipTest("needs root to run the daemon as another user")
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            self.skipTest("setpriv (util-linux) is missing")
        d = self.daemon()
        secret = d.root / "secret.jpg"
        secret.write_bytes(make("x.jpg", 2, 2, b"secret")[0])
        os.chmod(secret, 0)
        (d.root / "fine.jpg").write_bytes(make("x.jpg", 2, 2, b"fine")[0])
        # run the daemon as nobody, so mode 000 means something
        d.start(user="nobody")
        wait_until(lambda: "fine.jpg" in d.remote_items(), 60, what="fine.jpg")
        wait_until(lambda: d.failed_rows(), 30, what="the unreadable file reported")
        self.assertIn("Permission denied", d.failed_rows()[b"secret.jpg"])
        self.assertIn("secret.jpg: cannot open: Permission denied", d.log())
        # deleted before its upload starts: nothing remote, nothing failed
        for i in range(20):
            p = d.root / f"gone{i}.jpg"
            p.write_bytes(make("x.jpg", 2, 2, b"g%d" % i)[0])
            p.unlink()
        put = d.root / "after.jpg"
        put.write_bytes(make("x.jpg", 2, 2, b"after")[0])
        os.chown(put, nobody.pw_uid, nobody.pw_gid)
        wait_until(lambda: "after.jpg" in d.remote_items(), 30, what="after.jpg")
        self.assertFalse(any(k.startswith("gone") for k in d.remote_items()))
        self.assertEqual(list(d.failed_rows()), [b"secret.jpg"])
        # readable again, retried after a rescan (SIGHUP reloads and rescans)
        os.chmod(secret, 0o644)
        d.signal(1)
        wait_until(lambda: "secret.jpg" in d.remote_items(), 30, what="secret.jpg")
        self.assertTrue(d.alive())
        self.assertEqual(d.stop(), 0)

    def test_skipped_directory_is_logged(self):
        """A directory the watcher skips for good (here: deeper than its
        4,096 levels) is said in the log; it used to be kept silently in
        watcher_last_error."""
        d = self.daemon()
        top = os.stat(d.root).st_ino

        def unwind():  # shutil.rmtree recurses once per level
            cur = os.open(d.root, os.O_RDONLY | os.O_DIRECTORY)
            while "d" in os.listdir(cur):
                nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=cur)
                os.close(cur)
                cur = nxt
            while os.fstat(cur).st_ino != top:
                for name in os.listdir(cur):
                    os.unlink(name, dir_fd=cur)
                parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=cur)
                os.close(cur)
                os.rmdir("d", dir_fd=parent)
                cur = parent
            os.close(cur)

        self.addCleanup(unwind)
        cur = os.open(d.root, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(4100):
            os.mkdir("d", dir_fd=cur)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=cur)
            os.close(cur)
            cur = nxt
        fd = os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=cur)
        os.write(fd, make("x.jpg", 2, 2, b"deep")[0])
        os.close(fd)
        os.close(cur)
        (d.root / "top.jpg").write_bytes(make("x.jpg", 2, 2, b"top")[0])
        self.assertEqual(d.once(300).returncode, 0, d.log())
        self.assertIn("top.jpg", d.remote_items())
        lines = [l for l in d.log().splitlines() if "not mirrored" in l]
        self.assertEqual(len(lines), 1, d.log()[-3000:])
        self.assertIn("4096", lines[0])


if __name__ == "__main__":
    unittest.main()
