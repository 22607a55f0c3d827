"""The same clients against a second, independent implementation: npm's
s3rver (S3) and dynalite (DynamoDB), read back with boto3."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import unittest
from pathlib import Path

import testbed
from common import BedTestCase, awstool


class S3rverCompat(BedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.S3rver()
        cls.addClassCleanup(cls.bed.stop)
        cls.env = cls.bed.env(*cls.bed.admin)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)

    def test_put_copy_delete_list(self):
        bucket = self.bed.bucket()
        d = Path(self.tmp.name)
        keys = ["a.jpg", "dir/b c.png", "plus+sign.gif", "café/ü.webp", "x/y/z/deep.bmp"]
        lines = []
        for i, k in enumerate(keys):
            (d / str(i)).write_bytes(k.encode() * 10)
            lines.append(json.dumps({"key": k, "file": str(d / str(i)), "type": "image/png"}))
        (d / "k.jsonl").write_text("\n".join(lines) + "\n")
        self.assertOk(awstool(self.env, "--bucket", bucket, "--path-style", "s3", "put-many",
                              str(d / "k.jsonl")))
        for k in keys:
            body = self.bed.s3().get_object(Bucket=bucket, Key=k)["Body"].read()
            self.assertEqual(body, k.encode() * 10, k)
        self.assertOk(awstool(self.env, "--bucket", bucket, "--path-style", "s3", "copy",
                              "dir/b c.png", "moved/b c.png"))
        self.assertOk(awstool(self.env, "--bucket", bucket, "--path-style", "s3", "delete",
                              "dir/b c.png"))
        res = awstool(self.env, "--bucket", bucket, "--path-style", "s3", "list")
        self.assertOk(res)
        listed = sorted(l["key"] for l in res.lines if "key" in l)
        want = sorted([k for k in keys if k != "dir/b c.png"] + ["moved/b c.png"])
        self.assertEqual(listed, want)

    def test_multipart(self):
        bucket = self.bed.bucket()
        data = os.urandom(11 * 1024 * 1024)
        f = Path(self.tmp.name) / "mp"
        f.write_bytes(data)
        res = awstool(self.env, "--bucket", bucket, "--path-style", "--threshold-mb", "5",
                      "--part-mb", "5", "s3", "put", "mp.tif", str(f))
        self.assertOk(res)
        self.assertEqual(res.lines[0]["parts"], 3)
        got = self.bed.s3().get_object(Bucket=bucket, Key="mp.tif")["Body"].read()
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_checksums_on_a_store_that_keeps_none(self):
        # s3rver 3.7 takes the checksum headers and keeps nothing: the
        # uploads stand, and the result says so (S3_NOTE_NO_CHECKSUM, 2).
        bucket = self.bed.bucket()
        data = os.urandom(6 * 1024 * 1024)
        f = Path(self.tmp.name) / "ck"
        f.write_bytes(data)
        for key, parts in (("one.png", 0), ("mp.png", 2)):
            thr = "5" if parts else "16"
            res = awstool(self.env, "--bucket", bucket, "--path-style", "--checksum",
                          "--threshold-mb", thr, "--part-mb", "5", "s3", "put", key,
                          str(f))
            self.assertOk(res)
            self.assertEqual(res.lines[0]["parts"], parts)
            self.assertEqual(res.lines[0]["checksum"], "", res)
            self.assertEqual(res.lines[0]["notes"], 2, res)
            got = self.bed.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
            self.assertEqual(got, data)

    def test_list_past_1000(self):
        bucket = self.bed.bucket()
        d = Path(self.tmp.name) / "many"
        d.mkdir()
        (d / "f").write_bytes(b"x")
        lines = [json.dumps({"key": f"k/{i:04d}.jpg", "file": str(d / "f")}) for i in range(1100)]
        (d / "k.jsonl").write_text("\n".join(lines) + "\n")
        self.assertOk(awstool(self.env, "--bucket", bucket, "--path-style", "s3", "put-many",
                              str(d / "k.jsonl"), timeout=600))
        res = awstool(self.env, "--bucket", bucket, "--path-style", "s3", "list")
        self.assertOk(res)
        self.assertEqual(res.lines[-1], {"pages": 2, "keys": 1100})


class DynaliteCompat(BedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.Dynalite()
        cls.addClassCleanup(cls.bed.stop)
        cls.env = cls.bed.env(*cls.bed.admin)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)

    def test_items(self):
        table = self.bed.table()
        item = {"FileName": {"S": "a é.jpg"}, "MTime": {"S": "2026-11-22T10:00:00Z"}}
        self.assertOk(awstool(self.env, "ddb", "put", table, json.dumps(item),
                              "attribute_not_exists(FileName)"))
        again = awstool(self.env, "ddb", "put", table, json.dumps(item),
                        "attribute_not_exists(FileName)")
        self.assertEqual(again.errors[0]["code"], "ConditionalCheckFailedException")
        jl = Path(self.tmp.name) / "items.jsonl"
        jl.write_text("".join(json.dumps({"FileName": {"S": f"i{i}"}}) + "\n" for i in range(300)))
        self.assertOk(awstool(self.env, "ddb", "batch-put", table, str(jl)))
        scan = awstool(self.env, "ddb", "scan", table, "100")
        self.assertOk(scan)
        self.assertEqual(scan.lines[-1]["items"], 301)
        self.assertEqual(scan.lines[-1]["pages"], 4)
        self.assertOk(awstool(self.env, "ddb", "delete", table, '{"FileName":{"S":"a é.jpg"}}'))
        self.assertNotIn("Item", self.bed.dynamodb().get_item(
            TableName=table, Key={"FileName": {"S": "a é.jpg"}}))


if __name__ == "__main__":
    unittest.main()
