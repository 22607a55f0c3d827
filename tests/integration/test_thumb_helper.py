"""imgsync-thumb, the sandboxed thumbnail helper (issue 14), driven the way
imgsyncd drives it: a SOCK_SEQPACKET socketpair on its standard input, one
request with the image's descriptor (SCM_RIGHTS), one answer with the
thumbnail (lib/thumb_proto.h). Test images are made, and thumbnails read
back, with tests/tools/thumbimg (libvips, so no other imaging tool).

- upright: a JPEG coded 400x300 with EXIF orientation 6 (or 8, 3) comes
  back 240x320 (320x240) with its red corner where a viewer shows it;
- a file that is no image, and every file of the fuzz corpus, fails with a
  reason (or gives a thumbnail) and the same helper answers the next one;
- the memory limit is enforced (an interlaced 6000x6000 PNG, which cannot
  be shrunk on load, fails under 48 MB and succeeds under 1 GB), and so is
  the time limit (SIGALRM ends the process);
- the sandbox refuses to open a file, make a socket, fork, map executable
  memory (--check);
- bad requests are answered, not obeyed.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import tempfile
import unittest
from pathlib import Path

from common import BIN

MAGIC = 0x494D5448
ROOT = Path(__file__).resolve().parents[2]
HELPER = BIN / "imgsync-thumb"
THUMBIMG = BIN / "thumbimg"
ANSWER = struct.Struct("=6I232s")


class Helper:
    """One imgsync-thumb process and our end of its socket."""

    def __init__(self, *args: str):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen([str(HELPER), *args], stdin=theirs,
                                     stderr=subprocess.PIPE, close_fds=True)
        theirs.close()
        self.sock.settimeout(60)
        self.next_id = 1

    def ask(self, path, side=320, fmt=0, quality=80, raw: bytes | None = None):
        """(status, width, height, reason, data), or None when the helper
        ended without answering."""
        fds = []
        if path is not None:
            fds.append(os.open(path, os.O_RDONLY))
        req = raw if raw is not None else struct.pack("=5I", MAGIC, self.next_id, side, fmt,
                                                      quality)
        try:
            socket.send_fds(self.sock, [req], fds)
        finally:
            for fd in fds:
                os.close(fd)
        msg = self.sock.recv(2 << 20)
        if not msg:
            return None
        magic, id_, status, w, h, n, reason = ANSWER.unpack_from(msg)
        assert magic == MAGIC
        if raw is None:
            assert id_ == self.next_id
        self.next_id += 1
        data = msg[ANSWER.size:]
        assert len(data) == n, (len(data), n)
        return status, w, h, reason.split(b"\0")[0].decode(), data

    def close(self) -> int:
        self.sock.close()
        rc = self.proc.wait(20)
        self.stderr = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return rc


class ThumbHelper(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def image(self, name: str, w: int, h: int, orientation: int = 0) -> Path:
        out = self.dir / name
        args = [str(THUMBIMG), "make", str(out), str(w), str(h)]
        if orientation:
            args.append(str(orientation))
        subprocess.run(args, check=True, timeout=60)
        return Path(str(out).split("[")[0])

    def quarters(self, data: bytes, name: str) -> str:
        """'W H TTBB' of a thumbnail: r/w for each quarter."""
        p = self.dir / name
        p.write_bytes(data)
        return subprocess.run([str(THUMBIMG), "read", str(p)], check=True, timeout=60,
                              capture_output=True, text=True).stdout.strip()

    def helper(self, *args: str) -> Helper:
        h = Helper(*args)
        self.addCleanup(lambda: h.proc.poll() is None and h.proc.kill())
        return h

    def test_thumbnails_come_out_upright(self):
        # Coded 400x300, red top-left quarter. 6 turns it 90 degrees
        # clockwise for display (red goes top-right), 8 counter-clockwise
        # (bottom-left), 3 half a turn (bottom-right), 1 not at all.
        want = {1: "320 240 rwww", 6: "240 320 wrww", 8: "240 320 wwrw", 3: "320 240 wwwr"}
        h = self.helper()
        for o, quarters in want.items():
            src = self.image(f"o{o}.jpg", 400, 300, o)
            for fmt, ext in ((0, "webp"), (1, "jpg")):
                status, w, hh, reason, data = h.ask(src, fmt=fmt)
                self.assertEqual(status, 0, reason)
                self.assertEqual(f"{w} {hh}", quarters.rsplit(" ", 1)[0], (o, ext))
                self.assertEqual(self.quarters(data, f"t{o}.{ext}"), quarters, (o, ext))
                self.assertEqual(data[:4] == b"RIFF", fmt == 0)
        # Never enlarged; a side given in the request is the longest side.
        small = self.image("small.png", 50, 20)
        self.assertEqual(h.ask(small)[1:3], (50, 20))
        self.assertEqual(h.ask(self.image("wide.webp", 1000, 100), side=100)[1:3], (100, 10))
        self.assertEqual(h.close(), 0, h.stderr)

    def test_what_is_no_image_fails_with_a_reason_and_the_helper_goes_on(self):
        junk = self.dir / "junk.jpg"
        junk.write_bytes(b"this is not a JPEG at all" * 40)
        empty = self.dir / "empty.png"
        empty.write_bytes(b"")
        good = self.image("good.png", 64, 64)
        h = self.helper()
        status, _, _, reason, data = h.ask(junk)
        self.assertEqual(status, 1)
        self.assertIn("cannot decode the image", reason)
        self.assertIn("not in a known format", reason)
        self.assertEqual(data, b"")
        self.assertEqual(h.ask(empty)[0], 1)
        self.assertEqual(h.ask(good)[0], 0, "the next image after a failure")
        # Every file of the fuzz corpus (cut headers, hostile sizes): an
        # answer each, and the helper is still there at the end.
        corpus = sorted((ROOT / "tests/fuzz/corpus_imagemeta").iterdir())
        self.assertGreater(len(corpus), 20)
        for f in corpus:
            a = h.ask(f)
            self.assertIsNotNone(a, f"the helper ended on {f.name}")
            self.assertIn(a[0], (0, 1), f.name)
            if a[0] == 1:
                self.assertTrue(a[3], f"{f.name}: a failure without a reason")
        self.assertEqual(h.ask(good)[0], 0)
        self.assertEqual(h.close(), 0, h.stderr)

    def sandbox_has_memory_limit(self) -> bool:
        p = subprocess.run([str(HELPER), "--check"], capture_output=True, text=True, timeout=30)
        return "1 TiB of address space: Cannot allocate memory" in p.stderr

    def test_memory_and_time_are_bounded(self):
        if not self.sandbox_has_memory_limit():
            self.skipTest("this helper is built with AddressSanitizer, whose shadow memory "
                          "needs terabytes of address space: no RLIMIT_AS (the normal build "
                          "runs this test)")
        # Interlaced PNG: libpng must hold the whole 6000x6000 picture.
        big = self.image("big.png[interlace]", 6000, 6000)
        good = self.image("after.png", 64, 64)
        h = self.helper("--memory-mb", "48")
        status, _, _, reason, _ = h.ask(big)
        self.assertEqual(status, 1)
        self.assertIn("out of memory", reason)
        self.assertEqual(h.ask(good)[0], 0, "the same helper, the next image")
        self.assertEqual(h.close(), 0)
        h = self.helper("--memory-mb", "1024")
        self.assertEqual(h.ask(big)[:3], (0, 320, 320))
        self.assertEqual(h.close(), 0)
        # 5 ms for it: SIGALRM ends the helper; no answer comes.
        h = self.helper("--timeout-ms", "5")
        self.assertIsNone(h.ask(big))
        self.assertEqual(h.close(), -signal.SIGALRM)

    def test_the_sandbox_refuses(self):
        p = subprocess.run([str(HELPER), "--check"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        for what in ("open /etc/passwd", "socket", "fork", "executable memory"):
            self.assertIn(f"{what}: Operation not permitted", p.stderr)

    def test_bad_requests_are_answered_not_obeyed(self):
        good = self.image("ok.gif", 30, 30)
        h = self.helper()
        cases = [
            struct.pack("=5I", 0xDEADBEEF, 7, 320, 0, 80),  # wrong magic
            struct.pack("=5I", MAGIC, 7, 0, 0, 80),  # no side
            struct.pack("=5I", MAGIC, 7, 100000, 0, 80),  # too large a side
            struct.pack("=5I", MAGIC, 7, 320, 9, 80),  # unknown format
            struct.pack("=5I", MAGIC, 7, 320, 0, 101),  # quality
            struct.pack("=4I", MAGIC, 7, 320, 0),  # short
        ]
        for raw in cases:
            a = h.ask(good, raw=raw)
            self.assertEqual((a[0], a[3]), (3, "bad request"), raw)
        a = h.ask(None, raw=struct.pack("=5I", MAGIC, 8, 320, 0, 80))  # no descriptor
        self.assertEqual(a[0], 3)
        self.assertEqual(h.ask(good)[0], 0)
        self.assertEqual(h.close(), 0)

    def test_refuses_to_run_without_the_daemons_socket(self):
        p = subprocess.run([str(HELPER)], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a SOCK_SEQPACKET socket", p.stderr)
        p = subprocess.run([str(HELPER), "--memory-mb", "x"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage", p.stderr)


if __name__ == "__main__":
    unittest.main()
