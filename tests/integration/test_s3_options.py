"""S3 write options (issue 12): storage class, server-side encryption
(AES256; aws:kms with a key and an S3 Bucket Key), a SHA-256 checksum with
every upload (the whole object's for one PUT, the composite of the parts'
for multipart) read back by verify --checksums, the expected bucket owner;
and what --check-remote says about them: a KMS key the role may not use,
a store that cannot complete a multipart upload.

Everything is read back with boto3 from moto (IAM enforced). moto 5.2.1
keeps the storage class, the encryption headers and the checksums, but
never checks a checksum against the body, does not check KMS permissions
when S3 uses a key, gives a multipart checksum without its "-<parts>"
suffix, and ignores x-amz-expected-bucket-owner.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import unittest

import testbed
from common import BIN, FULL_POLICY
from daemon import Daemon, wait_until
from faultproxy import FaultProxy
from images import make

MIB = 1024 * 1024


def options(d: Daemon, text: str, threshold_mb: int = 5) -> None:
    """Writes d's configuration with the s3 options in text."""
    conf = d.conf_text().replace(
        "multipart_threshold_mb = 16; part_size_mb = 8;",
        f"multipart_threshold_mb = {threshold_mb}; part_size_mb = 5; {text}")
    assert text in conf
    d.write_conf(conf)


def b64_of_hex(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


def composite(data: bytes, part: int) -> str:
    """S3's composite SHA-256 of a multipart upload cut in parts of part."""
    digests = b"".join(hashlib.sha256(data[i:i + part]).digest()
                       for i in range(0, len(data), part))
    n = (len(data) + part - 1) // part
    return f"{base64.b64encode(hashlib.sha256(digests).digest()).decode()}-{n}"


def big_image(rel: str, size: int) -> bytes:
    head, _ = make(rel, 4, 4, rel.encode())
    return head + bytes(range(256)) * ((size - len(head)) // 256 + 1)


class S3Options(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.auth_bed()
        cls.kms = cls.bed.client("kms")
        cls.key = cls.kms.create_key(Description="imgsync test")["KeyMetadata"]

    def daemon(self, text: str, policy=None, **kw) -> Daemon:
        d = Daemon(self.bed, creds=self.bed.user(policy or FULL_POLICY), **kw)
        self.addCleanup(d.close)
        d.extra_env["AWS_ENDPOINT_URL_KMS"] = self.bed.endpoint
        options(d, text)
        return d

    def head(self, d: Daemon, key: str, **kw) -> dict:
        return d.bed.s3().head_object(Bucket=d.bucket, Key=key, **kw)

    def test_storage_class_and_encryption_are_on_every_object(self):
        cases = [
            ('storage_class = "STANDARD_IA"; sse = "AES256";',
             {"StorageClass": "STANDARD_IA", "ServerSideEncryption": "AES256"}),
            ('storage_class = "INTELLIGENT_TIERING"; sse = "aws:kms"; '
             f'sse_kms_key_id = "{self.key["Arn"]}"; sse_bucket_key = true;',
             {"StorageClass": "INTELLIGENT_TIERING",
              "ServerSideEncryption": "aws:kms",
              "SSEKMSKeyId": self.key["Arn"], "BucketKeyEnabled": True}),
            ('storage_class = "GLACIER_IR";', {"StorageClass": "GLACIER_IR"}),
        ]
        for text, want in cases:
            with self.subTest(text):
                d = self.daemon(text)
                small, _ = make("a/small.png", 8, 8, b"small")
                (d.root / "a").mkdir()
                (d.root / "a/small.png").write_bytes(small)
                (d.root / "big.png").write_bytes(big_image("big.png", 6 * MIB))
                self.assertEqual(d.once(300).returncode, 0, d.log()[-3000:])
                d.start()
                d.wait_mirror(60)
                # A rename is a CopyObject: the copy gets the options too.
                (d.root / "a/small.png").rename(d.root / "a/moved.png")
                d.wait_mirror(60)
                self.assertEqual(d.stop(), 0, d.log()[-3000:])
                for key in ("a/moved.png", "big.png"):
                    h = self.head(d, key)
                    # moto keeps the Bucket Key of a PUT or a copy, not
                    # of a multipart upload (its gap, not ours).
                    w = {k: v for k, v in want.items()
                         if key != "big.png" or k != "BucketKeyEnabled"}
                    got = {k: h.get(k) for k in w}
                    self.assertEqual(got, w, key)
                    if "ServerSideEncryption" not in want:
                        self.assertNotIn("ServerSideEncryption", h)

    def test_checksums_single_and_multipart_read_back_and_verified(self):
        d = self.daemon("")
        small, _ = make("s.png", 8, 8, b"checksum")
        big = big_image("m.png", 11 * MIB)
        (d.root / "s.png").write_bytes(small)
        (d.root / "m.png").write_bytes(big)
        self.assertEqual(d.once(300).returncode, 0, d.log()[-3000:])
        d.wait_mirror(60)
        items = d.remote_items()

        h = self.head(d, "s.png", ChecksumMode="ENABLED")
        self.assertEqual(h["ChecksumSHA256"], b64_of_hex(items["s.png"]["SHA256"]["S"]))
        self.assertEqual(items["s.png"]["SHA256"]["S"], hashlib.sha256(small).hexdigest())
        h = self.head(d, "m.png", ChecksumMode="ENABLED")
        want = composite(big, 5 * MIB)
        self.assertTrue(want.endswith("-3"), want)
        # moto leaves out the "-<parts>" that S3 adds.
        self.assertEqual(h["ChecksumSHA256"].split("-")[0], want.split("-")[0])
        self.assertEqual(h["ETag"].strip('"').split("-")[1], "3")
        self.assertNotIn("did not confirm the SHA-256", d.log())

        rc, out = self.verify(d)
        self.assertEqual(rc, 0, out)
        self.assertIn("\n0 differences\n", out)
        self.assertIn("checksums: 2 matched, 0 absent, 0 not compared", out)
        # The same through the control socket, beside the daemon's work.
        d.start()
        wait_until(lambda: "listening on" in d.log(), 30, what="the socket")
        p = subprocess.run([str(BIN / "imgsyncctl"), "-s", str(d.dir / "imgsync.sock"),
                            "verify", "--checksums"], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("checksums: 2 matched, 0 absent, 0 not compared", p.stdout)
        # A rename is a CopyObject: the copy carries the whole file's
        # SHA-256, not the parts' composite, and that matches too.
        (d.root / "m.png").rename(d.root / "moved.png")
        d.wait_mirror(60)
        self.assertIn("moved.png", d.log())
        p = subprocess.run([str(BIN / "imgsyncctl"), "-s", str(d.dir / "imgsync.sock"),
                            "verify", "--checksums"], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("checksums: 2 matched, 0 absent, 0 not compared", p.stdout)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])

        # Another body of the same size under moved.png: its checksum differs.
        other = bytes(reversed(big))
        d.bed.s3().put_object(Bucket=d.bucket, Key="moved.png", Body=other,
                              ChecksumAlgorithm="SHA256")
        rc, out = self.verify(d)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"checksum_mismatch +1\n  moved.png\n")
        self.assertIn("checksums: 1 matched, 0 absent, 0 not compared", out)

    def test_multipart_reads_each_part_once_as_it_sends_it(self):
        # The pass that hashes the file for its intent also hashes each
        # part, so a part is read once more only to be sent: the daemon
        # reads the file twice in all, not three times (once to hash it,
        # once per part to sign it, once to send it).
        d = self.daemon("")
        d.start()
        wait_until(lambda: "listening on" in d.log(), 30, what="the socket")
        io = f"/proc/{d.proc.pid}/io"

        def rchar() -> int:
            with open(io) as f:
                return int(next(l for l in f if l.startswith("rchar:")).split()[1])

        before = rchar()
        big = big_image("r.png", 21 * MIB)  # 5 parts of 5 MiB
        (d.root / ".r.tmp").write_bytes(big)
        (d.root / ".r.tmp").rename(d.root / "r.png")
        d.wait_mirror(60)
        read = rchar() - before
        self.assertGreaterEqual(read, 2 * len(big), "hashed once and sent once")
        self.assertLess(read, 2 * len(big) + 4 * MIB,
                        f"{read / len(big):.2f} times the file's bytes read")
        h = self.head(d, "r.png", ChecksumMode="ENABLED")
        self.assertEqual(h["ChecksumSHA256"].split("-")[0],
                         composite(big, 5 * MIB).split("-")[0])
        self.assertEqual(d.stop(), 0, d.log()[-3000:])

    def verify(self, d: Daemon) -> tuple[int, str]:
        p = subprocess.run([str(BIN / "imgsyncd"), "-c", str(d.conf), "--verify",
                            "--checksums"], capture_output=True, text=True,
                           timeout=300, env=d.env())
        return p.returncode, p.stdout + p.stderr[-2000:]

    def test_checksum_none_sends_none(self):
        d = self.daemon('checksum = "none";')
        data, _ = make("n.png", 8, 8, b"none")
        (d.root / "n.png").write_bytes(data)
        self.assertEqual(d.once(300).returncode, 0, d.log()[-3000:])
        h = self.head(d, "n.png", ChecksumMode="ENABLED")
        self.assertNotIn("ChecksumSHA256", h)

    def test_expected_bucket_owner_goes_with_every_s3_request(self):
        # moto does not check the header; the proxy's log shows what was
        # sent, request by request.
        proxy = FaultProxy(self.bed.endpoint).start()
        self.addCleanup(proxy.stop)
        d = self.daemon('expected_bucket_owner = "123456789012";',
                        endpoint=proxy.url)
        data, _ = make("o.png", 8, 8, b"owner")
        (d.root / "o.png").write_bytes(data)
        (d.root / "big.png").write_bytes(big_image("big.png", 6 * MIB))
        self.assertEqual(d.once(300).returncode, 0, d.log()[-3000:])
        d.start()
        d.wait_mirror(60)
        (d.root / "o.png").rename(d.root / "p.png")
        (d.root / "big.png").unlink()
        d.wait_mirror(60)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        s3 = [r for r in proxy.log() if r["service"] == "s3"]
        methods = {r["method"] for r in s3}
        self.assertTrue({"PUT", "POST", "DELETE", "HEAD"} <= methods, methods)
        # (The rename is a CopyObject when the move is paired in time; a
        # slow run may upload p.png instead: either way the header goes.)
        self.assertEqual([r for r in s3 if r["owner"] != "123456789012"], [])

    def test_virtual_hosted_at_an_ip_address_falls_back_to_path_style(self):
        # No "bucket.127.0.0.1" resolves: before the fallback every request
        # failed to connect.
        d = self.daemon("")
        d.write_conf(d.conf.read_text().replace("path_style = true;",
                                                "path_style = false;"))
        data, _ = make("v.png", 8, 8, b"vhost")
        (d.root / "v.png").write_bytes(data)
        self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
        self.assertEqual(d.log().count("path-style requests"), 1, d.log())
        self.assertEqual(self.head(d, "v.png")["ContentLength"], len(data))

    def test_bad_options_are_refused_with_the_key(self):
        for text, words in [
            ('storage_class = "GLACIER";', "s3.storage_class"),
            ('sse = "aws:kms:dsse";', "s3.sse"),
            ('sse_kms_key_id = "k";', "needs s3.sse"),
            ('sse = "AES256"; sse_bucket_key = true;', "s3.sse_bucket_key"),
            ('checksum = "crc32";', "s3.checksum"),
            ('expected_bucket_owner = "12345";', "12 digits"),
        ]:
            with self.subTest(text):
                d = self.daemon(text)
                p = subprocess.run([str(BIN / "imgsyncd"), "-t", "-c", str(d.conf)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
                self.assertIn(words, p.stderr)

    def check(self, d: Daemon) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "imgsyncd"), "--check-remote", "-c",
                               str(d.conf)], capture_output=True, text=True,
                              timeout=300, env=d.env())

    def test_check_remote_names_a_kms_key_the_role_may_not_use(self):
        key = self.key["Arn"]
        text = f'sse = "aws:kms"; sse_kms_key_id = "{key}";'
        d = self.daemon(text)
        p = self.check(d)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        line = [l for l in p.stdout.splitlines() if "kms:GenerateDataKey" in l]
        self.assertEqual(len(line), 1, p.stdout)
        self.assertIn(key, line[0])
        self.assertIn("WARN", line[0])
        self.assertIn("refused", line[0])

        with_kms = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
             "Resource": "*"}]}
        d = self.daemon(text, policy=with_kms)
        p = self.check(d)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        line = [l for l in p.stdout.splitlines() if "kms:GenerateDataKey" in l]
        self.assertEqual(len(line), 1, p.stdout)
        self.assertTrue(line[0].startswith("ok"), line[0])
        self.assertIn("s3:PutObject", p.stdout)
        self.assertIn("multipart upload, completed", p.stdout)

    def test_check_remote_names_a_store_that_cannot_complete_multipart(self):
        def complete(req) -> bool:
            line = req.start_line
            return line.startswith("POST ") and "uploadId=" in line

        proxy = FaultProxy(self.bed.endpoint, s3_500=1.0,
                           fault_filter=complete).start()
        self.addCleanup(proxy.stop)
        d = self.daemon("", endpoint=proxy.url)
        p = self.check(d)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("cannot complete a multipart upload", p.stdout)
        self.assertIn("s3.multipart_threshold_mb", p.stdout)
        # Its abort went through: no upload is left behind.
        ups = d.bed.s3().list_multipart_uploads(Bucket=d.bucket)
        self.assertEqual(ups.get("Uploads", []), [])
        # The rest of the checks passed.
        self.assertIn("ok   s3:DeleteObject", p.stdout)


if __name__ == "__main__":
    unittest.main()
