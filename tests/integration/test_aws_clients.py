"""lib/ s3 and dynamo clients against moto, read back with boto3.

The auth server checks every signature and IAM policy; keys that moto's
checker wrongly rejects (+, UTF-8, ~!*'(): DESIGN.md section 7) go to the
server without checks, and their exact bytes are read back with boto3.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import unittest
from pathlib import Path

import testbed
from common import FULL_POLICY, BedTestCase, awstool

# moto's checker accepts these; the differential test against botocore
# (test_sigv4_botocore) covers the signer for every other byte.
PLAIN_KEYS = ["plain.jpg", "dir/sub/deep/file.png", "a-b_c.d/e.JPG", "x" * 200,
              "UPPER/lower/123.gif"]

SPECIAL_KEYS = [
    "with space.jpg", "a+b.jpg", "100%.png", "per%20cent.png", "tilde~x.jpg",
    "bang!star*quote'paren(x).jpg", "amp&eq=q?hash#.jpg", "café/naïve.jpg",
    "中文/图片.png", "日本語 ファイル.gif", "emoji-😀-🎉.webp", "double//slash.jpg",
    "dot/./seg.jpg", "./leading-dot.jpg", "trailing-dot./x.jpg", "semi;colon,comma.jpg",
    "brackets[1]{2}<3>.jpg", "caret^back`tick|pipe.jpg", "dollar$at@.jpg", "\"dq\".jpg",
    "nested/a b/c+d/e%f/g~h.png", "k" * 1020 + ".jpg",
    "é" * 510 + "x.jp",  # 1024 bytes of UTF-8
]


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


class S3Signed(BedTestCase):
    """Plain keys, signature- and policy-checked."""

    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.auth_bed()
        cls.bucket = cls.bed.bucket()
        cls.keys = cls.bed.user(FULL_POLICY)
        cls.env = cls.bed.env(*cls.keys)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def s3(self, *args, opts=(), **kw):
        return awstool(self.env, "--bucket", self.bucket, "--path-style", *opts, "s3", *args,
                       **kw)

    def test_put_plain_keys_read_back(self):
        for i, key in enumerate(PLAIN_KEYS):
            data = os.urandom(1000 + i)
            f = Path(self.tmp.name) / f"plain{i}"
            sha = _write(f, data)
            res = self.s3("put", key, str(f), "image/jpeg")
            self.assertOk(res)
            got = self.bed.s3().get_object(Bucket=self.bucket, Key=key)
            self.assertEqual(got["Body"].read(), data, key)
            self.assertEqual(got["ContentType"], "image/jpeg")
            self.assertEqual(got["Metadata"].get("sha256"), sha)
            self.assertEqual(got["ETag"], res.lines[0]["etag"])

    def test_virtual_hosted_style(self):
        # BUCKET.localhost resolves to 127.0.0.1 in libcurl, and moto routes
        # on the Host header; the signature covers that Host.
        env = self.bed.env(*self.keys, endpoint=self.bed.endpoint.replace("127.0.0.1",
                                                                          "localhost"))
        f = Path(self.tmp.name) / "vh"
        sha = _write(f, b"virtual host")
        res = awstool(env, "--bucket", self.bucket, "s3", "put", "vh/x.png", str(f))
        self.assertOk(res)
        got = self.bed.s3().get_object(Bucket=self.bucket, Key="vh/x.png")
        self.assertEqual(got["Metadata"]["sha256"], sha)
        self.assertOk(awstool(env, "--bucket", self.bucket, "s3", "copy", "vh/x.png", "vh/y.png"))
        self.assertOk(awstool(env, "--bucket", self.bucket, "s3", "delete", "vh/x.png"))
        keys = [o["Key"] for o in self.bed.s3().list_objects_v2(Bucket=self.bucket,
                                                                Prefix="vh")["Contents"]]
        self.assertEqual(keys, ["vh/y.png"])

    def test_multipart_20mib(self):
        data = os.urandom(20 * 1024 * 1024)
        f = Path(self.tmp.name) / "big"
        sha = _write(f, data)
        res = self.s3("put", "big/file.tif", str(f), "image/tiff",
                      opts=("--threshold-mb", "16", "--part-mb", "5"))
        self.assertOk(res)
        self.assertTrue(res.lines[0]["multipart"])
        self.assertEqual(res.lines[0]["parts"], 4)
        got = self.bed.s3().get_object(Bucket=self.bucket, Key="big/file.tif")
        self.assertEqual(hashlib.sha256(got["Body"].read()).hexdigest(), sha)
        self.assertEqual(got["Metadata"].get("sha256"), sha)
        self.assertTrue(got["ETag"].endswith('-4"'), got["ETag"])
        # nothing left half-done
        ups = self.bed.s3().list_multipart_uploads(Bucket=self.bucket)
        self.assertEqual(ups.get("Uploads", []), [])

    def test_copy_head_delete(self):
        data = b"copy me" * 100
        f = Path(self.tmp.name) / "c"
        sha = _write(f, data)
        self.assertOk(self.s3("put", "orig/c.png", str(f), "image/png"))
        self.assertOk(self.s3("copy", "orig/c.png", "moved/c.png"))
        got = self.bed.s3().get_object(Bucket=self.bucket, Key="moved/c.png")
        self.assertEqual(got["Body"].read(), data)
        self.assertEqual(got["ContentType"], "image/png")
        self.assertEqual(got["Metadata"].get("sha256"), sha)
        head = self.s3("head", "moved/c.png")
        self.assertOk(head)
        self.assertEqual(head.lines[0]["size"], len(data))
        self.assertEqual(head.lines[0]["sha256"], sha)
        self.assertOk(self.s3("delete", "orig/c.png"))
        with self.assertRaises(self.bed.s3().exceptions.ClientError):
            self.bed.s3().head_object(Bucket=self.bucket, Key="orig/c.png")
        missing = self.s3("head", "orig/c.png")
        self.assertEqual(missing.rc, 1)
        self.assertEqual(missing.errors[0]["status"], 404)
        self.assertEqual(missing.errors[0]["retry"], "permanent")
        # deleting what is gone succeeds, as in S3
        self.assertOk(self.s3("delete", "orig/c.png"))

    def test_list_2500_paginated(self):
        bucket = self.bed.bucket()
        d = Path(self.tmp.name) / "many"
        d.mkdir()
        lines = []
        for i in range(2500):
            p = d / f"{i}"
            p.write_bytes(b"%d" % i)
            lines.append(json.dumps({"key": f"f{i % 20}/img{i:05d}.jpg", "file": str(p)}))
        jl = d / "list.jsonl"
        jl.write_text("\n".join(lines) + "\n")
        put = awstool(self.env, "--bucket", bucket, "--path-style", "--concurrency", "16",
                      "s3", "put-many", str(jl), timeout=600)
        self.assertOk(put)
        self.assertEqual(put.lines[-1], {"uploaded": 2500})
        res = awstool(self.env, "--bucket", bucket, "--path-style", "s3", "list")
        self.assertOk(res)
        keys = [l["key"] for l in res.lines if "key" in l]
        self.assertEqual(res.lines[-1]["pages"], 3)
        self.assertEqual(len(keys), 2500)
        self.assertEqual(len(set(keys)), 2500)
        boto_keys = []
        for page in self.bed.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            boto_keys += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(sorted(keys), sorted(boto_keys))
        # moto's checker rejects boto3's own ListObjectsV2 when the prefix
        # holds a "/" (S3SpecialKeys lists with "f7/" on the unchecked server).
        pref = awstool(self.env, "--bucket", bucket, "--path-style", "s3", "list", "f7")
        self.assertOk(pref)
        self.assertEqual(pref.lines[-1]["keys"], 125)

    def test_access_denied_is_permanent(self):
        ro = self.bed.user({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
        f = Path(self.tmp.name) / "denied"
        f.write_bytes(b"x")
        res = awstool(self.bed.env(*ro), "--bucket", self.bucket, "--path-style", "s3",
                      "put", "denied.jpg", str(f))
        self.assertEqual(res.rc, 1, repr(res))
        self.assertEqual(res.errors[0]["code"], "AccessDenied")
        self.assertEqual(res.errors[0]["retry"], "permanent")
        self.assertEqual(res.stats["requests"], 1)

    def test_wrong_secret_is_a_clear_permanent_error(self):
        env = self.bed.env(self.keys[0], self.keys[1][:-4] + "XXXX")
        f = Path(self.tmp.name) / "w"
        f.write_bytes(b"x")
        res = awstool(env, "--bucket", self.bucket, "--path-style", "s3", "put", "w.jpg", str(f))
        self.assertEqual(res.rc, 1, repr(res))
        err = res.errors[0]
        self.assertEqual(err["code"], "SignatureDoesNotMatch")
        self.assertEqual(err["status"], 403)
        self.assertEqual(err["retry"], "permanent")
        self.assertIn("signature", err["message"].lower())
        self.assertNotIn(self.keys[1][:-4], res.stdout + res.stderr)
        self.assertEqual(res.stats["requests"], 1)
        ddb = awstool(env, "ddb", "get", "nosuchtable", '{"FileName":{"S":"x"}}')
        self.assertEqual(ddb.rc, 1, repr(ddb))
        # AWS says InvalidSignatureException in JSON; moto says
        # SignatureDoesNotMatch in XML: both are understood.
        self.assertIn(ddb.errors[0]["code"], ("InvalidSignatureException",
                                              "SignatureDoesNotMatch"))
        self.assertEqual(ddb.errors[0]["retry"], "permanent")
        self.assertEqual(ddb.stats["requests"], 1)


class S3SpecialKeys(BedTestCase):
    """Every awkward key round-trips byte for byte (server without checks)."""

    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.noauth_bed()
        cls.bucket = cls.bed.bucket()
        cls.env = cls.bed.env(*cls.bed.admin)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _put_all(self, keys, style_args):
        bucket = self.bed.bucket()
        d = Path(self.tmp.name) / bucket
        d.mkdir()
        want, lines = {}, []
        for i, key in enumerate(keys):
            data = key.encode() + os.urandom(64)
            p = d / str(i)
            p.write_bytes(data)
            want[key] = data
            lines.append(json.dumps({"key": key, "file": str(p), "type": "image/jpeg"}))
        jl = d / "keys.jsonl"
        jl.write_text("\n".join(lines) + "\n")
        res = awstool(self.env, "--bucket", bucket, *style_args, "s3", "put-many", str(jl))
        self.assertOk(res)
        listed = []
        for page in self.bed.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            listed += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(sorted(listed), sorted(want))
        for key, data in want.items():
            got = self.bed.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
            self.assertEqual(got, data, key)
        ours = awstool(self.env, "--bucket", bucket, *style_args, "s3", "list")
        self.assertOk(ours)
        self.assertEqual(sorted(l["key"] for l in ours.lines if "key" in l), sorted(want))
        return bucket

    def test_special_keys_path_style(self):
        for k in SPECIAL_KEYS:
            self.assertLessEqual(len(k.encode()), 1024, k)
        self.assertEqual(max(len(k.encode()) for k in SPECIAL_KEYS), 1024)
        bucket = self._put_all(SPECIAL_KEYS, ["--path-style"])
        # copy and delete under awkward keys too
        for key in SPECIAL_KEYS[:8]:
            res = awstool(self.env, "--bucket", bucket, "--path-style", "s3", "copy", key,
                          "copied/" + key)
            self.assertOk(res)
            res = awstool(self.env, "--bucket", bucket, "--path-style", "s3", "delete", key)
            self.assertOk(res)
        listed = {o["Key"] for o in self.bed.s3().list_objects_v2(Bucket=bucket)["Contents"]}
        for key in SPECIAL_KEYS[:8]:
            self.assertNotIn(key, listed)
            self.assertIn("copied/" + key, listed)
        # a prefix with "/" and UTF-8 in it
        res = awstool(self.env, "--bucket", bucket, "--path-style", "s3", "list", "中文/")
        self.assertOk(res)
        self.assertEqual([l["key"] for l in res.lines if "key" in l], ["中文/图片.png"])

    def test_generated_keys(self):
        rng = random.Random(20261122)
        alphabet = list("abcXYZ019 +%~!*'()&=?#/.-_") + ["é", "ü", "中", "文", "😀", "//", "./"]
        keys = set()
        while len(keys) < 300:
            k = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
            if not k.startswith("/"):
                keys.add(k)
        self._put_all(sorted(keys), ["--path-style"])


class DynamoSigned(BedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.auth_bed()
        cls.keys = cls.bed.user(FULL_POLICY)
        cls.env = cls.bed.env(*cls.keys)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ddb(self, *args, **kw):
        return awstool(self.env, "ddb", *args, **kw)

    def test_put_get_delete_conditional(self):
        table = self.bed.table()
        item = {"FileName": {"S": "a/b é.jpg"}, "Size": {"N": "10"},
                "SHA256": {"S": "aa"}, "MTime": {"S": "2026-11-22T10:00:00.000000001Z"}}
        self.assertOk(self.ddb("put", table, json.dumps(item), "attribute_not_exists(FileName)"))
        # a second conditional create fails, permanently
        res = self.ddb("put", table, json.dumps(item), "attribute_not_exists(FileName)")
        self.assertEqual(res.rc, 1)
        self.assertEqual(res.errors[0]["code"], "ConditionalCheckFailedException")
        self.assertEqual(res.errors[0]["retry"], "permanent")
        # conditional on an older MTime: newer metadata wins
        newer = dict(item, Size={"N": "11"}, MTime={"S": "2026-11-22T11:00:00Z"})
        self.assertOk(self.ddb("put", table, json.dumps(newer), "#m < :m", '{"#m":"MTime"}',
                               json.dumps({":m": newer["MTime"]})))
        stale = dict(item, Size={"N": "9"})
        res = self.ddb("put", table, json.dumps(stale), "#m < :m", '{"#m":"MTime"}',
                       json.dumps({":m": stale["MTime"]}))
        self.assertEqual(res.errors[0]["code"], "ConditionalCheckFailedException")
        # unconditional overwrite
        self.assertOk(self.ddb("put", table, json.dumps(dict(item, Size={"N": "12"}))))
        got = self.bed.dynamodb().get_item(TableName=table, Key={"FileName": {"S": "a/b é.jpg"}},
                                           ConsistentRead=True)["Item"]
        self.assertEqual(got["Size"], {"N": "12"})
        ours = self.ddb("get", table, '{"FileName":{"S":"a/b é.jpg"}}')
        self.assertOk(ours)
        self.assertEqual(ours.lines[0]["Item"]["Size"], {"N": "12"})
        self.assertOk(self.ddb("delete", table, '{"FileName":{"S":"a/b é.jpg"}}'))
        self.assertNotIn("Item", self.bed.dynamodb().get_item(
            TableName=table, Key={"FileName": {"S": "a/b é.jpg"}}))
        missing = self.ddb("get", table, '{"FileName":{"S":"a/b é.jpg"}}')
        self.assertOk(missing)
        self.assertNotIn("Item", missing.lines[0])

    def test_batch_write_and_scan_2500(self):
        table = self.bed.table()
        jl = Path(self.tmp.name) / "items.jsonl"
        with jl.open("w") as fh:
            for i in range(2500):
                fh.write(json.dumps({"FileName": {"S": f"f{i % 20}/img{i:05d}.jpg"},
                                     "Size": {"N": str(i)}}) + "\n")
        res = self.ddb("batch-put", table, str(jl), timeout=600)
        self.assertOk(res)
        self.assertEqual(res.lines[-1], {"batches": 100})
        count = sum(p["Count"] for p in self.bed.dynamodb().get_paginator("scan").paginate(
            TableName=table))
        self.assertEqual(count, 2500)
        scan = self.ddb("scan", table, "1000")
        self.assertOk(scan)
        names = [l["FileName"]["S"] for l in scan.lines if "FileName" in l]
        self.assertEqual(len(names), 2500)
        self.assertEqual(len(set(names)), 2500)
        self.assertGreaterEqual(scan.lines[-1]["pages"], 3)


if __name__ == "__main__":
    unittest.main()
