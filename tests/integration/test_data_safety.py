"""Deletes only what it uploaded, and a changed file is always uploaded
(issue 10): a remote delete is conditional on the ETag imgsync recorded
(S3 If-Match), so an object another writer replaced is left alone (412,
logged), while one imgsync itself wrote after its row (a crash between the
two) is still deleted; content changed with its size and mtime put back is found by its
ctime, while the daemon runs and at start-up.
"""

from __future__ import annotations

import hashlib
import os
import time
import unittest

import testbed
from daemon import Daemon, wait_until
from images import make


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class DataSafety(unittest.TestCase):
    maxDiff = None

    def daemon(self) -> Daemon:
        d = Daemon(testbed.auth_bed())
        self.addCleanup(d.close)
        return d

    def test_object_replaced_by_another_writer_is_not_deleted(self):
        d = self.daemon()
        files = {}
        for n in ("a.png", "b.png"):
            files[n], _ = make(n, 3, 3, n.encode())
            (d.root / n).write_bytes(files[n])
        d.start()
        d.wait_mirror(60, local=files)
        theirs = b"another writer's bytes"
        d.bed.s3().put_object(Bucket=d.bucket, Key="a.png", Body=theirs)
        (d.root / "a.png").unlink()
        (d.root / "b.png").unlink()
        wait_until(lambda: "a.png" not in d.remote_items() and
                   "b.png" not in d.remote_objects(), 30, what="the deletes")
        time.sleep(1)
        body = d.bed.s3().get_object(Bucket=d.bucket, Key="a.png")["Body"].read()
        self.assertEqual(body, theirs)
        self.assertIn("another writer replaced the object", d.log())
        self.assertEqual(d.stop(), 0)

    def test_object_imgsync_wrote_after_its_row_is_still_deleted(self):
        """A crash between an upload and its row leaves the row's ETag
        behind: the object (with imgsync's x-amz-meta-sha256) is ours and
        the delete still removes it (found by test_daemon's SIGKILL test)."""
        d = self.daemon()
        data, _ = make("a.png", 3, 3, b"a")
        (d.root / "a.png").write_bytes(data)
        d.start()
        d.wait_mirror(60, local={"a.png": data})
        newer = data + b"newer"
        d.bed.s3().put_object(Bucket=d.bucket, Key="a.png", Body=newer,
                              Metadata={"sha256": sha(newer)})
        (d.root / "a.png").unlink()
        wait_until(lambda: "a.png" not in d.remote_objects() and
                   "a.png" not in d.remote_items(), 30, what="the delete")
        self.assertNotIn("another writer replaced", d.log())
        self.assertEqual(d.stop(), 0)

    def restore_size_and_mtime(self, p, salt: bytes) -> bytes:
        old = p.read_bytes()
        st = os.stat(p)
        new = bytearray(old)
        new[-12:-8] = salt[:4]  # inside the PNG's last chunk: same size
        p.write_bytes(bytes(new))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(p).st_size, st.st_size)
        self.assertEqual(os.stat(p).st_mtime_ns, st.st_mtime_ns)
        return bytes(new)

    def test_content_changed_with_size_and_mtime_put_back(self):
        d = self.daemon()
        data, _ = make("a.png", 3, 3, b"first")
        p = d.root / "a.png"
        p.write_bytes(data)
        d.start()
        d.wait_mirror(60, local={"a.png": data})
        # While running.
        new = self.restore_size_and_mtime(p, b"RUN!")
        d.wait_mirror(60, local={"a.png": new})
        self.assertEqual(d.stop(), 0)
        # At start-up.
        newer = self.restore_size_and_mtime(p, b"BOOT")
        self.assertEqual(d.once(120).returncode, 0, d.log()[-2000:])
        d.wait_mirror(30, local={"a.png": newer})
        it = d.remote_items()["a.png"]
        self.assertEqual(it["SHA256"]["S"], sha(newer))


if __name__ == "__main__":
    unittest.main()
