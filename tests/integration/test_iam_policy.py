"""packaging/iam-policy.json is enough: the whole sync cycle, summary.json
and the control socket's AWS calls, run by a user that has exactly the
policy's actions, against moto with SigV4 and IAM enforced.

The S3 statement keeps its real resource (arn:aws:s3:::BUCKET/*, with the
bucket filled in); the DynamoDB statement gets ``*`` because moto 5.2.1
matches S3 resource ARNs but not DynamoDB table ARNs (DESIGN.md section 7).
Everything is read back with boto3 as the admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import unittest

import testbed
from daemon import Daemon, wait_until
from images import make
from test_check_remote import EXPECTED_ACTIONS, moto_policy, policy_actions

MIB = 1024 * 1024
# moto's IAM answers AccessDenied (S3, DynamoDB) or a bodiless 403 (HEAD)
DENIED = ("AccessDenied", "HTTP 403", "Forbidden", "not authorized")


def put(root, rel: str, w: int, h: int, salt: bytes = b"", pad: int = 0) -> bytes:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    data, _ = make(rel, w, h, salt or rel.encode())
    if pad:  # trailing bytes after the image: the header still says PNG
        data += os.urandom(pad)
    p.write_bytes(data)
    return data


class IamPolicy(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.bed = testbed.auth_bed()
        bucket = self.bed.bucket()
        policy = moto_policy(bucket)
        self.assertEqual(set(policy_actions(policy)), EXPECTED_ACTIONS)
        self.d = Daemon(self.bed, creds=self.bed.user(policy), bucket=bucket,
                        summary=True)
        self.addCleanup(self.d.close)
        # multipart uploads too: 5 MiB threshold and parts
        self.d.write_conf(self.d.conf_text()
                          .replace("multipart_threshold_mb = 16", "multipart_threshold_mb = 5")
                          .replace("part_size_mb = 8", "part_size_mb = 5"))
        self.sock = str(self.d.dir / "imgsync.sock")

    def curl(self, method: str, path: str, body=None) -> tuple[int, dict]:
        argv = ["curl", "-sS", "--max-time", "30", "--unix-socket", self.sock,
                "-X", method, "-w", "\n%{http_code}"]
        if body is not None:
            argv += ["-H", "Content-Type: application/json",
                     "--data-binary", json.dumps(body)]
        p = subprocess.run(argv + ["http://localhost" + path], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        text, _, code = p.stdout.rpartition("\n")
        return int(code), json.loads(text)

    def summary(self) -> list:
        obj = self.bed.s3().get_object(Bucket=self.d.bucket, Key="summary.json")
        return json.loads(obj["Body"].read())

    def assert_no_denial(self):
        log = self.d.log()
        for word in DENIED:
            self.assertNotIn(word, log, log[-4000:])

    def test_sync_cycle_with_exactly_the_policy(self):
        d = self.d
        put(d.root, "a.png", 10, 20)
        put(d.root, "dir/b.jpg", 30, 40)
        put(d.root, "big.png", 5, 5, pad=6 * MIB)  # two parts
        d.start()
        wait_until(lambda: os.path.exists(self.sock), 30, what="the control socket")
        d.wait_mirror(120)
        # the big one went through multipart (ETag "...-2")
        self.assertTrue(d.remote_objects()["big.png"]["ETag"].endswith('-2"'),
                        d.remote_objects()["big.png"])

        # create, edit, rename, delete in the watch root
        put(d.root, "new/c.gif", 3, 4)
        d.wait_mirror(60)
        put(d.root, "a.png", 11, 21, salt=b"edited")
        d.wait_mirror(60)
        self.assertEqual(d.remote_items()["a.png"]["Width"]["N"], "11")
        os.rename(d.root / "dir" / "b.jpg", d.root / "dir" / "renamed.jpg")
        d.wait_mirror(60)
        # a server-side copy (s3:GetObject + s3:PutObject), not an upload
        wait_until(lambda: self.curl("GET", "/status")[1].get("renamed", 0) >= 1, 30,
                   what="the rename counted as one")
        (d.root / "big.png").unlink()
        d.wait_mirror(60)

        # summary.json: what is there now
        want = sorted(d.local())
        wait_until(lambda: [e["name"] for e in self.summary()] == want, 30,
                   what="summary.json")

        # the control socket: /getall (Scan), /getitem (GetItem), /delete
        code, body = self.curl("GET", "/getall")
        self.assertEqual(code, 200, body)
        self.assertEqual(sorted(i["FileName"] for i in body["images"]), want)
        code, body = self.curl("POST", "/getitem", {"FileName": "a.png"})
        self.assertEqual(code, 200, body)
        self.assertEqual((body["data"]["FileName"], body["data"]["Width"]), ("a.png", 11))
        code, body = self.curl("DELETE", "/delete", {"FileName": "new/c.gif"})
        self.assertEqual(code, 200, body)
        self.assertEqual((body["message"], body["deletedFile"]), ("File deleted", "new/c.gif"))
        wait_until(lambda: "new/c.gif" not in d.remote_objects()
                   and "new/c.gif" not in d.remote_items(), 30, what="the /delete")
        self.assertFalse((d.root / "new" / "c.gif").exists())
        code, body = self.curl("POST", "/getitem", {"FileName": "new/c.gif"})
        self.assertEqual((code, body), (404, {"error": "Item not found"}))
        d.wait_mirror(60)
        wait_until(lambda: [e["name"] for e in self.summary()] == sorted(d.local()), 30,
                   what="summary.json after /delete")

        self.assertEqual(d.failed_rows(), {})
        self.assert_no_denial()
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assert_no_denial()


if __name__ == "__main__":
    unittest.main()
