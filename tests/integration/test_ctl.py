"""imgsyncctl against a real imgsyncd (and moto behind it): every command's
text and --json output and exit code, --json checked against curl on the
same socket, the three ways the daemon can be out of reach, usage errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
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

VERSION = (Path(__file__).resolve().parents[2] / "VERSION").read_text().strip()

# name -> (width, height); names a person's terminal must see escaped
GOOD = {
    "a/one.png": (10, 20),
    "a/two.jpg": (30, 40),
    "b/three.gif": (5, 6),
    "odd/tab\tname.png": (7, 8),
    "odd/esc\x1b[2J.png": (9, 9),
}
ESCAPED = {
    "odd/tab\tname.png": "odd/tab\\tname.png",
    "odd/esc\x1b[2J.png": "odd/esc\\x1b[2J.png",
}
BAD_UTF8 = b"bad\xffname.png"  # cannot be a key: reported as failed


def put(root: Path, rel: str, w: int, h: int) -> bytes:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    data, _ = make(rel, w, h, rel.encode())
    p.write_bytes(data)
    return data


class Ctl(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        # names with control bytes are keys moto's signature checker cannot
        # judge: the unchecked server
        bed = testbed.noauth_bed()
        cls.d = Daemon(bed, creds=bed.admin)
        cls.sock = str(cls.d.dir / "imgsync.sock")
        cls.data = {rel: put(cls.d.root, rel, *wh) for rel, wh in GOOD.items()}
        with open(os.path.join(os.fsencode(cls.d.root), BAD_UTF8), "wb") as f:
            f.write(make("x.png", 2, 2, b"bad")[0])
        try:
            cls.d.start()
            wait_until(lambda: os.path.exists(cls.sock), 30, what="the control socket")
            wait_until(lambda: set(GOOD) <= set(cls.d.remote_items()), 60,
                       what="the files synced")
            wait_until(lambda: BAD_UTF8 in cls.d.failed_rows(), 30, what="the failure")
        except BaseException:
            print(cls.d.log()[-4000:])
            cls.d.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    # ---- helpers ---------------------------------------------------------

    def ctl(self, *args, sock=None, env: dict | None = None,
            prefix: tuple = (), timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [*prefix, str(BIN / "imgsyncctl")]
        if sock is not False:
            argv += ["-s", sock or self.sock]
        e = dict(os.environ)
        e.pop("IMGSYNC_SOCKET", None)
        e.update(env or {})
        return subprocess.run(argv + list(args), capture_output=True, env=e,
                              timeout=timeout)

    def ok(self, *args: str, **kw) -> str:
        p = self.ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, f"{args}: {p.stderr!r}\n{self.d.log()[-2000:]}")
        self.assertEqual(p.stderr, b"", args)
        return p.stdout.decode()

    def curl(self, method: str, path: str, body=None) -> bytes:
        argv = ["curl", "-sS", "--max-time", "30", "--unix-socket", self.sock, "-X", method]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        p = subprocess.run(argv + ["http://localhost" + path], capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def same_json(self, args: tuple, method: str, path: str, body=None):
        got = self.ok("--json", *args)
        self.assertTrue(got.endswith("\n"))
        self.assertEqual(json.loads(got), json.loads(self.curl(method, path, body)))
        return json.loads(got)

    # ---- queries ---------------------------------------------------------

    def test_status(self):
        out = self.ok("status")
        lines = dict(re.match(r"^([a-z ]+):\s+(.*)$", l).groups() for l in out.splitlines())
        self.assertEqual(list(lines), ["state", "version", "uptime", "watch root", "bucket",
                                       "table", "queued", "in flight", "done", "unchanged",
                                       "failed", "transferred", "rate", "last error"])
        self.assertIn(lines["state"], ("running", "scanning"))
        self.assertEqual(lines["version"], VERSION)
        self.assertEqual(lines["watch root"], str(self.d.root))
        self.assertEqual(lines["bucket"], self.d.bucket)
        self.assertEqual(lines["table"], self.d.table)
        self.assertRegex(lines["uptime"], r"^\d+s$|^\d+m \d+s$")
        self.assertRegex(lines["done"], r"^\d+ \(\d+ uploaded, \d+ deleted, \d+ renamed\)$")
        self.assertGreaterEqual(int(lines["done"].split()[0]), len(GOOD))
        self.assertRegex(lines["failed"], r"^\d+$")
        self.assertRegex(lines["transferred"], r"^\d+(\.\d)? (B|KiB|MiB)$")
        self.assertRegex(lines["rate"], r"^\d+\.\d files/s")
        # the daemon's messages quote names escaped already: kept as they are
        self.assertNotIn("\\\\", lines["last error"])
        # --json: the body, the same one curl gets (uptime and rate move)
        got = json.loads(self.ok("--json", "status"))
        want = json.loads(self.curl("GET", "/status"))
        self.assertEqual(set(got), set(want))
        for k in ("version", "watch_root", "bucket", "table"):
            self.assertEqual(got[k], want[k], k)
        self.assertEqual(got["bucket"], self.d.bucket)

    def test_status_watch_ends_when_idle(self):
        for i in range(20):
            put(self.d.root, f"w/img{i}.png", 3, 3 + i)
        p = self.ctl("status", "-w", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        blocks = p.stdout.decode().strip().split("\n\n")
        self.assertRegex(blocks[-1], r"(?m)^queued:\s+0$")
        self.assertRegex(blocks[-1], r"(?m)^in flight:\s+0$")
        wait_until(lambda: {f"w/img{i}.png" for i in range(20)} <= set(self.d.remote_items()),
                   60, what="the watched files")
        # --json -w: one status body a line
        p = self.ctl("--json", "status", "--watch", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        last = json.loads(p.stdout.splitlines()[-1])
        self.assertEqual((last["queued"], last["in_flight"]), (0, 0))

    def test_list_text(self):
        out = self.ok("list")
        items = self.d.remote_items()
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^ *SIZE  TYPE +DIMENSIONS  SYNCED +NAME$")
        n = len(items)
        self.assertEqual(lines[-1].split(",")[0], f"{n} image{'s' if n != 1 else ''}")
        self.assertEqual(len(lines), n + 2)
        name_col = lines[0].index("NAME")
        names = {l[name_col:] for l in lines[1:-1]}
        self.assertEqual(names, {ESCAPED.get(k, k) for k in items})
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\t", out)
        row = next(l for l in lines if l.endswith("  a/one.png"))
        self.assertRegex(row, r"^ *\d+ B  image/png +10x20 +\d{4}-\d\d-\d\dT[\d:.]+Z  a/one.png$")
        self.assertEqual(int(row.split()[0]), len(self.data["a/one.png"]))
        # a prefix
        out = self.ok("list", "a/")
        self.assertEqual([l.split()[-1] for l in out.splitlines()[1:-1]],
                         ["a/one.png", "a/two.jpg"])
        self.assertEqual(out.splitlines()[-1].split(",")[0], "2 images")
        out = self.ok("list", "nothing-here/")
        self.assertEqual(out, "no images\n")
        # from the state database
        out = self.ok("list", "--local", "a/")
        self.assertIn("a/one.png", out)

    def test_list_json_pages(self):
        # three names a page: every page's body verbatim, one a line
        got = self.ok("--json", "-n", "3", "list").splitlines()
        want, cursor = [], None
        for _ in range(1000):
            q = "/getall?limit=3" + (f"&cursor={cursor}" if cursor else "")
            page = json.loads(self.curl("GET", q))
            want.append(page)
            cursor = page.get("cursor")
            if not cursor:
                break
        self.assertGreater(len(want), 1)
        self.assertEqual([json.loads(l) for l in got], want)
        names = [i["FileName"] for p in want for i in p["images"]]
        self.assertEqual(sorted(names), sorted(self.d.remote_items()))
        # the text listing follows the cursor too, whatever the page size
        self.assertEqual(self.ok("-n", "2", "list"), self.ok("list"))
        page = self.same_json(("list", "b/"), "GET", "/getall?limit=1000&prefix=b%2F")
        self.assertEqual([i["FileName"] for i in page["images"]], ["b/three.gif"])

    def test_get(self):
        out = self.ok("get", "a/two.jpg")
        item = self.d.remote_items()["a/two.jpg"]
        lines = out.splitlines()
        self.assertEqual(lines[0], "FileName: a/two.jpg")
        kv = dict(l.split(": ", 1) for l in lines)
        self.assertEqual(kv["Bucket"], self.d.bucket)
        self.assertEqual(kv["Type"], "image/jpeg")
        self.assertEqual(kv["Width"], "30")
        self.assertEqual(kv["Height"], "40")
        self.assertEqual(kv["SHA256"], item["SHA256"]["S"])
        self.assertEqual(kv["ETag"], item["ETag"]["S"])
        self.assertEqual(kv["Timestamp"], item["Timestamp"]["S"])
        self.assertRegex(kv["Size"], rf"^{len(self.data['a/two.jpg'])} \(\d+ B\)$")
        got = self.same_json(("get", "a/two.jpg"), "POST", "/getitem", {"FileName": "a/two.jpg"})
        self.assertEqual(got["data"]["FileName"], "a/two.jpg")
        # an odd name is escaped in text, exact in JSON
        name = "odd/esc\x1b[2J.png"
        out = self.ok("get", name)
        self.assertEqual(out.splitlines()[0], "FileName: odd/esc\\x1b[2J.png")
        self.assertNotIn("\x1b", out)
        self.assertEqual(json.loads(self.ok("--json", "get", name))["data"]["FileName"], name)
        # not found: exit 1, the server's message, nothing on stdout
        for args in (("get", "a/none.png"), ("--json", "get", "a/none.png")):
            p = self.ctl(*args)
            self.assertEqual((p.returncode, p.stdout, p.stderr),
                             (1, b"", b"imgsyncctl: Item not found\n"), args)

    def test_failed(self):
        out = self.ok("failed")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^NAME +ERROR$")
        self.assertRegex(lines[-1], r"^\d+ failed files? \(imgsyncctl retry tries again\)$")
        # the state database's bytes, made UTF-8 by the server (U+FFFD)
        row = next(l for l in lines if l.startswith("bad"))
        self.assertIn("UTF-8", row)
        got = self.same_json(("failed",), "GET", "/failed")
        self.assertIn("bad\ufffdname.png", [f["FileName"] for f in got["failed"]])

    def test_metrics(self):
        p = self.ctl("metrics")
        self.assertEqual(p.returncode, 0, p.stderr)
        want = self.curl("GET", "/metrics")

        def names(text: bytes):
            return {re.split(rb"[ {]", l)[0] for l in text.splitlines()
                    if l and not l.startswith(b"#")}
        self.assertEqual(names(p.stdout), names(want))
        self.assertTrue(p.stdout.startswith(b"# "), p.stdout[:200])
        # text either way
        self.assertEqual(names(self.ctl("--json", "metrics").stdout), names(want))

    # ---- commands --------------------------------------------------------

    def test_pause_resume(self):
        try:
            self.assertEqual(self.ok("pause"), "Paused\n")
            self.assertRegex(self.ok("status"), r"(?m)^state:\s+paused$")
            self.assertEqual(json.loads(self.ok("--json", "pause")), {"message": "Paused"})
        finally:
            self.assertEqual(self.ok("resume"), "Resumed\n")
        self.assertRegex(self.ok("status"), r"(?m)^state:\s+(running|scanning)$")
        self.assertEqual(json.loads(self.ok("--json", "resume")), {"message": "Resumed"})

    def test_upload_and_delete(self):
        rel = "c/new.png"
        put(self.d.root, rel, 11, 12)
        self.assertEqual(self.ok("upload", rel), f"Upload queued: {rel}\n")
        wait_until(lambda: rel in self.d.remote_items(), 60, what="the upload")
        self.assertEqual(json.loads(self.ok("--json", "upload", rel)),
                         {"message": "Upload queued", "FileName": rel})
        wait_until(lambda: self.ctl("status", "-w").returncode == 0, 60, what="idle")
        self.assertEqual(self.ok("delete", rel), f"File deleted: {rel}\n")
        wait_until(lambda: not (self.d.root / rel).exists(), 30, what="the file in the trash")
        wait_until(lambda: rel not in self.d.remote_items(), 30, what="the delete")
        # refusals: exit 1 with the server's message
        p = self.ctl("delete", rel)
        self.assertEqual((p.returncode, p.stdout, p.stderr),
                         (1, b"", b"imgsyncctl: Item not found\n"))
        p = self.ctl("upload", "c/none.png")
        self.assertEqual((p.returncode, p.stdout, p.stderr),
                         (1, b"", b"imgsyncctl: File not found in the watch root\n"))
        p = self.ctl("get", "../etc/passwd")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith(b"imgsyncctl: "), p.stderr)

    def test_rescan_and_retry(self):
        self.assertEqual(self.ok("rescan"), "Rescan started\n")
        self.assertEqual(json.loads(self.ok("--json", "rescan")), {"message": "Rescan started"})
        out = self.ok("retry")
        self.assertRegex(out, r"^Retrying \d+ failed files?\n$")
        got = json.loads(self.ok("--json", "retry"))
        self.assertIsInstance(got["count"], int)
        self.assertRegex(got["message"], rf"^Retrying {got['count']} failed files?$")

    # ---- the socket ------------------------------------------------------

    def test_socket_from_env_and_flag(self):
        self.assertIn("state:", self.ok("status", sock=False, env={"IMGSYNC_SOCKET": self.sock}))
        # -s wins over the environment
        self.assertIn("state:", self.ok("status", env={"IMGSYNC_SOCKET": "/nonexistent.sock"}))
        p = self.ctl("status", sock=False, env={"IMGSYNC_SOCKET": "/nonexistent.sock"})
        self.assertEqual(p.returncode, 3)
        self.assertIn(b"/nonexistent.sock", p.stderr)

    def test_unreachable(self):
        tmp = tempfile.mkdtemp(prefix="imgsyncctl-")
        self.addCleanup(shutil.rmtree, tmp)
        none = os.path.join(tmp, "none.sock")
        p = self.ctl("status", sock=none)
        self.assertEqual((p.returncode, p.stdout, p.stderr.decode()),
                         (3, b"", f"imgsyncctl: is imgsyncd running? no socket at {none} "
                                  "(set -s or control.socket)\n"))
        # a socket file nobody listens on (bound, never listening)
        dead = os.path.join(tmp, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(dead)
        for args in (("status",), ("--json", "list"), ("get", "a/one.png")):
            p = self.ctl(*args, sock=dead)
            self.assertEqual((p.returncode, p.stdout, p.stderr.decode()),
                             (3, b"", f"imgsyncctl: nobody listening on {dead}: is imgsyncd "
                                      "running?\n"), args)
        s.close()  # closed: the file stays, still nobody
        p = self.ctl("status", sock=dead)
        self.assertEqual(p.returncode, 3)
        self.assertIn(b"nobody listening", p.stderr)

    def test_permission_denied(self):
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            self.skipTest("needs root and setpriv")
        nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
        p = self.ctl("-v", sock=False, prefix=nobody)
        if p.returncode != 0:
            self.skipTest(f"nobody cannot run {BIN}/imgsyncctl: {p.stderr!r}")
        # the daemon's own socket: 0660, root's; its folder opened to all
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o660)
        self.assertEqual(os.stat(self.sock).st_uid, 0)
        mode = stat.S_IMODE(os.stat(self.d.dir).st_mode)
        os.chmod(self.d.dir, 0o755)
        self.addCleanup(os.chmod, self.d.dir, mode)
        p = self.ctl("status", prefix=nobody)
        self.assertEqual((p.returncode, p.stdout, p.stderr.decode()),
                         (3, b"", f"imgsyncctl: permission denied on {self.sock}: are you in "
                                  "the socket's group (imgsync)?\n"))
        # and root still gets in
        self.ok("status")

    # ---- usage -----------------------------------------------------------

    def test_usage_errors(self):
        for args in ((), ("bogus",), ("get",), ("delete",), ("upload",), ("get", "a", "b"),
                     ("status", "extra"), ("list", "a", "b"), ("--bogus", "status"),
                     ("-x", "status"), ("list", "-w"), ("status", "-n", "5"),
                     ("list", "-n", "0"), ("list", "-n", "1001"), ("list", "-n", "x"),
                     ("get", "--local", "a"), ("get", b"bad\xff")):
            p = self.ctl(*args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertEqual(p.stdout, b"", args)
            self.assertTrue(p.stderr.startswith(b"imgsyncctl: "), (args, p.stderr))
        p = subprocess.run([str(BIN / "imgsyncctl"), "-s"], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.splitlines()[0], b"imgsyncctl: -s wants a value")

    def test_help_and_version(self):
        for flag in ("-h", "--help"):
            out = self.ok(flag, sock=False)
            self.assertTrue(out.startswith("usage: imgsyncctl [-s SOCKET] [--json]"), out)
            for cmd in ("status", "list", "get NAME", "delete NAME", "upload NAME", "rescan",
                        "pause", "resume", "failed", "retry", "metrics"):
                self.assertIn(cmd, out)
        for flag in ("-v", "--version"):
            self.assertEqual(self.ok(flag, sock=False), f"imgsyncctl {VERSION}\n")

    def test_name_starting_with_dash(self):
        p = self.ctl("get", "--", "-x.png")
        self.assertEqual((p.returncode, p.stderr), (1, b"imgsyncctl: Item not found\n"))


if __name__ == "__main__":
    unittest.main()
