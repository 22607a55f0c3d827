"""Retries, clock-skew correction and throttling, through the fault proxy
in front of the signature-checking moto (moto itself never fails or checks
time; DESIGN.md section 7)."""

from __future__ import annotations

import json
import os
import tempfile
import unittest
from pathlib import Path

import testbed
from common import FULL_POLICY, BedTestCase, awstool
from faultproxy import FaultProxy


class Faults(BedTestCase):
    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.auth_bed()
        cls.keys = cls.bed.user(FULL_POLICY)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def proxy(self, **kw) -> FaultProxy:
        p = FaultProxy(self.bed.endpoint, seed=kw.pop("seed", 7), **kw)
        p.start()
        self.addCleanup(p.stop)
        return p

    def test_clock_20_minutes_off_is_corrected_s3(self):
        bucket = self.bed.bucket()
        p = self.proxy()
        env = self.bed.env(*self.keys, endpoint=p.url)
        f = Path(self.tmp.name) / "skew"
        f.write_bytes(b"skewed")
        res = awstool(env, "--bucket", bucket, "--path-style", "--skew", "-1200",
                      "s3", "put", "skew.jpg", str(f))
        self.assertOk(res)
        self.assertEqual(p.stats()["skewed"], 1)
        self.assertEqual(res.stats["skew_fixes"], 1)
        self.assertAlmostEqual(res.stats["skew"], 0, delta=5)
        self.assertEqual(self.bed.s3().get_object(Bucket=bucket, Key="skew.jpg")["Body"].read(),
                         b"skewed")
        # the proxy answered as S3 does
        skewed = [r for r in p.log() if r["status"] == 403]
        self.assertEqual(len(skewed), 1)

    def test_server_clock_ahead_is_corrected_dynamodb(self):
        table = self.bed.table()
        p = self.proxy(clock_offset_s=1200)  # the server is 20 minutes ahead
        env = self.bed.env(*self.keys, endpoint=p.url)
        res = awstool(env, "ddb", "put", table, '{"FileName":{"S":"skew"}}')
        self.assertOk(res)
        self.assertEqual(p.stats()["skewed"], 1)
        self.assertEqual(res.stats["skew_fixes"], 1)
        self.assertAlmostEqual(res.stats["skew"], 1200, delta=5)

    def test_client_behind_and_server_ahead_corrected_once(self):
        # 50 minutes behind a server 20 minutes ahead: one correction.
        table = self.bed.table()
        p = self.proxy(clock_offset_s=1200)
        env = self.bed.env(*self.keys, endpoint=p.url)
        res = awstool(env, "--skew", "-3000", "ddb", "get", table, '{"FileName":{"S":"x"}}')
        self.assertOk(res)  # corrected from the Date header, once
        self.assertEqual(res.stats["skew_fixes"], 1)

    def test_20_percent_faults_all_complete(self):
        bucket = self.bed.bucket()
        table = self.bed.table()
        p = self.proxy(s3_500=0.06, s3_503=0.06, ddb_throttle=0.06, ddb_throttling=0.03,
                       ddb_500=0.03, reset=0.05, slow=0.03, slow_ms=200)
        env = self.bed.env(*self.keys, endpoint=p.url)
        d = Path(self.tmp.name) / "faults"
        d.mkdir()
        lines = []
        for i in range(150):
            f = d / str(i)
            f.write_bytes(os.urandom(2000))
            lines.append(json.dumps({"key": f"faulty/{i}.jpg", "file": str(f)}))
        (d / "l.jsonl").write_text("\n".join(lines) + "\n")
        res = awstool(env, "--bucket", bucket, "--path-style", "--concurrency", "8",
                      "s3", "put-many", str(d / "l.jsonl"), timeout=600)
        self.assertOk(res)
        self.assertEqual(res.lines[-1], {"uploaded": 150})
        self.assertGreater(res.stats["retries"], 0)
        items = d / "items.jsonl"
        items.write_text("".join(json.dumps({"FileName": {"S": f"i{i}"}}) + "\n"
                                 for i in range(1000)))
        res2 = awstool(env, "--concurrency", "4", "ddb", "batch-put", table, str(items),
                       timeout=600)
        self.assertOk(res2)
        res3 = awstool(env, "ddb", "scan", table, "40")
        self.assertOk(res3)
        self.assertEqual(res3.lines[-1]["items"], 1000)
        st = p.stats()
        self.assertGreater(st["faults_total"], 20, st)
        share = st["faults_total"] / st["requests"]
        self.assertGreater(share, 0.1, st)
        for kind in ("s3_500", "s3_503", "reset"):
            self.assertGreater(st["faults"][kind], 0, st)
        ddb_faults = sum(st["faults"][k] for k in ("ddb_throttle", "ddb_throttling", "ddb_500"))
        self.assertGreater(ddb_faults, 2, st)
        listed = self.bed.s3().list_objects_v2(Bucket=bucket, Prefix="faulty")["KeyCount"]
        self.assertEqual(listed, 150)
        count = sum(pg["Count"] for pg in
                    self.bed.dynamodb().get_paginator("scan").paginate(TableName=table))
        self.assertEqual(count, 1000)

    def test_bounded_attempts_report_the_last_error(self):
        bucket = self.bed.bucket()
        p = self.proxy(s3_503=1.0)
        env = self.bed.env(*self.keys, endpoint=p.url)
        f = Path(self.tmp.name) / "503"
        f.write_bytes(b"x")
        res = awstool(env, "--bucket", bucket, "--path-style", "--max-attempts", "4",
                      "s3", "put", "x.jpg", str(f))
        self.assertEqual(res.rc, 1)
        self.assertEqual(res.errors[0]["code"], "SlowDown")
        self.assertEqual(res.errors[0]["retry"], "throttled")
        self.assertEqual(res.stats["requests"], 4)
        self.assertEqual(p.stats()["faults"]["s3_503"], 4)


if __name__ == "__main__":
    unittest.main()
