"""Attacks and races on a running imgsyncd, each one reproduced for real
(issue 9's security review):

- a folder swapped for a symlink between the event and the upload, and for
  /upload and /delete, with openat2 available and with it refused by a
  seccomp filter (tests/tools/no_openat2, as systemd's RestrictSUIDSGID=
  refuses it): nothing from outside the root is uploaded, files in
  subfolders still sync, upload and delete;
- the trash: a symlink planted in it, a symlink planted at the partial
  copy's name, a copy across file systems keeps mode, owner and times, and
  a new version saved over the name during a (stopped) copy is not
  unlinked; trash paths spelled with // and /./ inside the root;
- a symlink or FIFO renamed over a synced file;
- a far-future mtime (signed overflow, caught by UBSan in the sanitizer
  build);
- the control socket in a directory others can write, with a racer that
  swaps the socket for a symlink during start-up;
- refused mutating requests logged with the caller's uid, names escaped;
- log priorities for journald when stderr is the journal's stream.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import testbed
from common import BIN
from daemon import Daemon, wait_until
from images import make
from test_control import curl

NO_OPENAT2 = (str(BIN / "no_openat2"),)
SHM = Path("/dev/shm")


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class SecurityCase(unittest.TestCase):
    maxDiff = None

    def daemon(self, **kw) -> Daemon:
        d = Daemon(testbed.auth_bed(), **kw)
        self.addCleanup(d.close)
        return d

    def start(self, d: Daemon, wrap=()) -> str:
        d.start(wrap=wrap)
        wait_until(lambda: "listening on" in d.log() or not d.alive(), 30,
                   what="the control socket")
        self.assertTrue(d.alive(), d.log()[-3000:])
        return str(d.dir / "imgsync.sock")

    def put(self, d: Daemon, rel: str, salt: bytes = b"") -> bytes:
        data, _ = make(rel, 3, 5, salt or rel.encode())
        p = d.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return data

    def no_outside_content(self, d: Daemon, outside: bytes):
        for key in d.remote_objects():
            body = d.bed.s3().get_object(Bucket=d.bucket, Key=key)["Body"].read()
            self.assertNotEqual(body, outside, f"{key} holds the outside file")
        for name, it in d.remote_items().items():
            self.assertNotEqual(it.get("SHA256", {}).get("S"), sha(outside), name)


class SymlinkSwap(SecurityCase):
    """The swap of issue 9, with and without openat2."""

    def swap(self, wrap):
        d = self.daemon()
        outside_dir = d.dir / "outside"
        outside_dir.mkdir()
        outside, _ = make("x.jpg", 7, 7, b"OUTSIDE SECRET")
        (outside_dir / "x.jpg").write_bytes(outside)
        files = {n: self.put(d, n) for n in ("top.png", "sub/a.png", "sub/b.jpg",
                                              "deep/er/c.png")}
        sock = self.start(d, wrap)
        d.wait_mirror(60, local=files)

        # Subfolders work through the control socket.
        st, doc, _ = curl(sock, "POST", "/upload", {"FileName": "sub/a.png"})
        self.assertEqual(st, 202, doc)
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "sub/b.jpg"})
        self.assertEqual(st, 200, doc)
        del files["sub/b.jpg"]
        self.assertFalse((d.root / "sub/b.jpg").exists())
        d.wait_mirror(60, local=files)

        # Between the event and the upload: the folder becomes a symlink.
        st, doc, _ = curl(sock, "POST", "/pause")
        self.assertEqual(st, 200, doc)
        inside = self.put(d, "sub2/x.jpg", b"inside")
        time.sleep(0.5)
        (d.root / "sub2").rename(d.root / "sub2real")
        os.symlink(outside_dir, d.root / "sub2")
        st, doc, _ = curl(sock, "POST", "/resume")
        self.assertEqual(st, 200, doc)
        files["sub2real/x.jpg"] = inside
        d.wait_mirror(60, local=files)

        # The same through the control socket.
        st, doc, _ = curl(sock, "POST", "/upload", {"FileName": "sub2/x.jpg"})
        self.assertEqual(st, 400, doc)
        d.bed.dynamodb().put_item(TableName=d.table, Item={"FileName": {"S": "sub2/x.jpg"}})
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "sub2/x.jpg"})
        self.assertEqual(st, 400, doc)
        self.assertEqual((outside_dir / "x.jpg").read_bytes(), outside)
        time.sleep(1)
        self.assertNotIn("sub2/x.jpg", d.remote_objects())
        self.no_outside_content(d, outside)
        self.assertEqual(d.stop(), 0)

    def test_swap_with_openat2(self):
        self.swap(())

    def test_swap_without_openat2(self):
        # The filter really refuses openat2 (else this test proves nothing).
        probe = subprocess.run(
            [*NO_OPENAT2, "python3", "-c",
             "import ctypes,os;l=ctypes.CDLL(None,use_errno=True);"
             "r=l.syscall(437,-100,b'/',b'\\0'*24,24);"
             "print(r,ctypes.get_errno())"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(probe.stdout.split(), ["-1", "38"], probe.stderr)  # ENOSYS
        self.swap(NO_OPENAT2)


class Trash(SecurityCase):
    def test_symlink_planted_in_the_trash(self):
        d = self.daemon()
        files = {n: self.put(d, n) for n in ("sub/a.png", "keep.png")}
        victim = d.dir / "victim"
        victim.mkdir()
        trash = d.dir / "trash"
        trash.mkdir()
        os.symlink(victim, trash / "sub")
        sock = self.start(d)
        d.wait_mirror(60, local=files)
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "sub/a.png"})
        self.assertEqual(st, 200, doc)
        self.assertEqual(list(victim.iterdir()), [])
        moved = [p for p in trash.rglob("a.png") if p.is_file() and not p.is_symlink()]
        self.assertEqual(len(moved), 1, list(trash.rglob("*")))
        self.assertIn(".deleted-", str(moved[0]))
        self.assertEqual(moved[0].read_bytes(), files["sub/a.png"])

    def cross_fs_daemon(self) -> Daemon:
        if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tempfile.gettempdir()).st_dev:
            self.skipTest("no /dev/shm on another file system than the temporary folder")
        root = Path(tempfile.mkdtemp(prefix="imgsync-root-", dir=SHM))
        self.addCleanup(shutil.rmtree, root, True)
        return self.daemon(root=root)

    def test_copy_across_file_systems_keeps_mode_owner_times(self):
        d = self.cross_fs_daemon()
        data = self.put(d, "sub/a.png")
        p = d.root / "sub/a.png"
        nobody = pwd.getpwnam("nobody")
        if os.geteuid() == 0:
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        os.chmod(p, 0o604)
        os.utime(p, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
        sock = self.start(d)
        d.wait_mirror(60, local={"sub/a.png": data})
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "sub/a.png"})
        self.assertEqual(st, 200, doc)
        t = d.dir / "trash/sub/a.png"
        self.assertEqual(t.read_bytes(), data)
        ts = os.stat(t)
        self.assertEqual(stat.S_IMODE(ts.st_mode), 0o604)
        self.assertEqual(ts.st_mtime_ns, 1_500_000_000_987_654_321)
        if os.geteuid() == 0:
            self.assertEqual((ts.st_uid, ts.st_gid), (nobody.pw_uid, nobody.pw_gid))
        self.assertFalse(p.exists())
        self.assertEqual([x for x in (d.dir / "trash/sub").iterdir() if "partial" in x.name], [])

    def test_symlink_at_the_partial_copy_name_is_not_followed(self):
        d = self.cross_fs_daemon()
        data = self.put(d, "a.png")
        sock = self.start(d)
        d.wait_mirror(60, local={"a.png": data})
        victim = d.dir / "victim.txt"
        victim.write_text("precious")
        (d.dir / "trash").mkdir(exist_ok=True)
        os.symlink(victim, d.dir / f"trash/a.png.imgsync-partial-{d.proc.pid}")
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "a.png"})
        self.assertEqual(st, 200, doc)
        self.assertEqual(victim.read_text(), "precious")
        self.assertEqual((d.dir / "trash/a.png").read_bytes(), data)

    def test_version_saved_during_the_copy_is_not_unlinked(self):
        d = self.cross_fs_daemon()
        d.write_conf(d.conf_text().replace("control: {", "control: { timeout_ms = 120000;"))
        small = self.put(d, "big.png")
        sock = self.start(d)
        d.wait_mirror(60, local={"big.png": small})
        # Paused, the file grows big without being synced; /delete still
        # runs and copies it to the trash a step per loop turn.
        st, doc, _ = curl(sock, "POST", "/pause")
        self.assertEqual(st, 200, doc)
        big = d.root / "big.png"
        with open(big, "wb") as f:
            f.write(small)
            f.write(os.urandom(1 << 20) * 300)  # 300 MiB
        old_sha = hashlib.sha256(big.read_bytes()).hexdigest()
        trashdir = d.dir / "trash"
        req = subprocess.Popen(
            ["curl", "-sS", "--unix-socket", sock, "-X", "DELETE", "--max-time", "120",
             "-H", "Content-Type: application/json", "--data-binary",
             '{"FileName":"big.png"}', "http://localhost/delete"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: req.poll() is None and req.kill())
        stopped = False
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and req.poll() is None:
                if trashdir.is_dir() and any("partial" in n for n in os.listdir(trashdir)):
                    os.kill(d.proc.pid, signal.SIGSTOP)
                    stopped = True
                    break
                time.sleep(0.001)
            if not stopped:
                self.fail(f"the copy was never seen under way: {req.communicate()} "
                          f"{d.log()[-2000:]}")
            new, _ = make("big.png", 4, 4, b"the new version")
            (d.root / "big.png.new").write_bytes(new)
            os.rename(d.root / "big.png.new", big)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        out, err = req.communicate(timeout=120)
        self.assertIn(b"changed while it was copied", out, (err, d.log()[-2000:]))
        self.assertEqual(big.read_bytes(), new)
        got = hashlib.sha256((trashdir / "big.png").read_bytes()).hexdigest()
        self.assertEqual(got, old_sha)
        st, doc, _ = curl(sock, "POST", "/resume")
        self.assertEqual(st, 200, doc)
        d.wait_mirror(60, local={"big.png": new})

    def test_trash_spelled_inside_the_root_is_refused(self):
        d = self.daemon()
        for spelling in (f"{d.dir}//images/.trash", f"{d.dir}/./images/.trash",
                         f"{d.dir}/x/../images/.trash"):
            d.write_conf(d.conf_text().replace(f'trash = "{d.dir}/trash"',
                                               f'trash = "{spelling}"'))
            proc = subprocess.run([str(BIN / "imgsyncd"), "-t", "-c", str(d.conf)],
                                  capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 78, (spelling, proc.stdout, proc.stderr))
            self.assertIn("must be outside watch.root", proc.stderr)


class Renamed(SecurityCase):
    def test_symlink_or_fifo_renamed_over_a_synced_file(self):
        d = self.daemon()
        files = {n: self.put(d, n) for n in ("a.png", "b.png", "c.png")}
        self.start(d)
        d.wait_mirror(60, local=files)
        os.symlink("/etc/passwd", d.dir / "ln")
        os.rename(d.dir / "ln", d.root / "a.png")
        os.mkfifo(d.root / "f.tmp")
        os.rename(d.root / "f.tmp", d.root / "b.png")
        del files["a.png"], files["b.png"]
        # No rescan comes in this time (the default is hours away).
        d.wait_mirror(20, local=files)
        self.assertNotIn("rescan", d.log().split("watching")[-1])


class FarFutureMtime(SecurityCase):
    def test_mtime_past_2262(self):
        d = self.daemon()
        data = self.put(d, "future.png")
        os.utime(d.root / "future.png", (10_000_000_000, 10_000_000_000))
        proc = d.once(120)
        self.assertEqual(proc.returncode, 0, d.log()[-3000:])
        it = d.remote_items()["future.png"]
        self.assertEqual(it["MTime"]["S"], "2286-11-20T17:46:40.000000000Z")
        self.assertEqual(it["SHA256"]["S"], sha(data))
        # A second run finds it unchanged.
        proc = d.once(120)
        self.assertEqual(proc.returncode, 0, d.log()[-3000:])
        self.assertNotIn("runtime error", d.log())


@unittest.skipUnless(os.geteuid() == 0, "needs root (a socket directory of another user)")
class Socket(SecurityCase):
    def test_directory_others_can_write_stops_the_start(self):
        for mode in (0o777, 0o1777, 0o775):
            d = self.daemon()
            sockdir = d.dir / "run"
            sockdir.mkdir()
            os.chmod(sockdir, mode)
            if mode == 0o775:
                os.chown(sockdir, 0, grp.getgrnam("nogroup").gr_gid)
            d.write_conf(d.conf_text().replace(f'socket = "{d.dir}/imgsync.sock"',
                                               f'socket = "{sockdir}/imgsync.sock"'))
            d.start()
            rc = d.proc.wait(30)
            self.assertEqual(rc, 78, d.log())
            self.assertIn(f"control.socket: {sockdir} is writable by", d.log())
            self.assertEqual(os.listdir(sockdir), [])

    def test_racer_cannot_turn_the_socket_into_a_chown(self):
        """The attack of the review: a local user swaps the socket for a
        symlink to a root file between bind() and chmod()/chown()."""
        nobody = pwd.getpwnam("nobody")
        target = Path(tempfile.mkdtemp(prefix="imgsync-target-")) / "root-only"
        self.addCleanup(shutil.rmtree, target.parent, True)
        target.write_text("root's")
        os.chmod(target, 0o640)
        for _ in range(5):
            d = self.daemon()
            sockdir = d.dir / "run"
            sockdir.mkdir()
            os.chmod(d.dir, 0o755)
            os.chmod(sockdir, 0o1777)
            sock = sockdir / "imgsync.sock"
            d.write_conf(d.conf_text().replace(f'socket = "{d.dir}/imgsync.sock"',
                                               f'socket = "{sock}"').replace(
                "control: {", 'control: { group = "nogroup";'))
            racer = subprocess.Popen(
                ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                 "--clear-groups", "python3", "-c",
                 "import os,sys,time\n"
                 "s,t=sys.argv[1],sys.argv[2]\n"
                 "end=time.monotonic()+10\n"
                 "while time.monotonic()<end:\n"
                 "  try: os.rename(s,s+'.x')\n"
                 "  except OSError: continue\n"
                 "  try: os.symlink(t,s)\n"
                 "  except OSError: pass\n",
                 str(sock), str(target)])
            try:
                d.start()
                d.proc.wait(30)
            finally:
                racer.kill()
                racer.wait()
            st = os.stat(target)
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, 0, 0o640))
            self.assertIn("is writable by anyone", d.log())


class Logging(SecurityCase):
    def test_refused_mutating_requests_are_logged_with_uid(self):
        d = self.daemon()
        files = {"a\tb.png": self.put(d, "a\tb.png")}
        sock = self.start(d)
        d.wait_mirror(60, local=files)
        for method, path, raw in (("DELETE", "/delete", b'{"FileName":"../../etc/passwd"}'),
                                  ("POST", "/getitem", b"{not json"),
                                  ("PUT", "/delete", b"{}"),
                                  ("POST", "/nowhere", b"{}")):
            st, doc, _ = curl(sock, method, path, raw=raw)
            self.assertIn(st, (400, 404, 405), doc)
        uid = os.getuid()
        log = d.log()
        self.assertIn(f"uid {uid} (pid", log)
        for what in ("refused DELETE /delete (400): FileName escapes the watch root",
                     "refused POST /getitem (400): Malformed JSON",
                     "refused PUT /delete (405)", "refused POST /nowhere (404)"):
            self.assertIn(what, log)
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "a\tb.png"})
        self.assertEqual(st, 200, doc)
        lines = [x for x in d.log().splitlines() if "control: deleted" in x]
        self.assertEqual(len(lines), 1, d.log()[-2000:])
        self.assertIn("a\\x09b.png", lines[0])

    def test_journal_priorities(self):
        d = self.daemon()
        self.put(d, "a.png")
        with open(d.log_path, "wb") as f:
            st = os.fstat(f.fileno())
            env = d.env()
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            proc = subprocess.run([str(BIN / "imgsyncd"), "-c", str(d.conf), "--once"],
                                  stdout=f, stderr=f, env=env, timeout=120)
        self.assertEqual(proc.returncode, 0)
        lines = d.log_path.read_text(errors="replace").splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>", line)
        self.assertTrue(any(x.startswith("<6>") for x in lines), lines)
        # A broken configuration: an error, at error priority.
        d.conf.write_text("watch: { root = 1; };\n")
        with open(d.log_path, "wb") as f:
            st = os.fstat(f.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            proc = subprocess.run([str(BIN / "imgsyncd"), "-c", str(d.conf), "-t"],
                                  stdout=f, stderr=f, env=env, timeout=30)
        self.assertEqual(proc.returncode, 78)
        self.assertRegex(d.log_path.read_text(), r"^<3>error: ")
        # Not the journal (another file's numbers): plain text.
        with open(d.log_path, "wb") as f:
            env["JOURNAL_STREAM"] = "1:2"
            subprocess.run([str(BIN / "imgsyncd"), "-c", str(d.conf), "-t"],
                           stdout=f, stderr=f, env=env, timeout=30)
        self.assertRegex(d.log_path.read_text(), r"^error: ")


if __name__ == "__main__":
    unittest.main()
