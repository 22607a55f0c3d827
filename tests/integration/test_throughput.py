"""Throughput (issue 13). Files in flight adapt: they grow up to
sync.concurrency while nothing is throttled and halve when a server
throttles. Item writes are batched: files that finish together have their
items written by one TransactWriteItems (each Put keeps its Timestamp
condition, invariant 2), a lone file by one PutItem; a transaction that a
failed condition cancels writes the others again and keeps the newer item;
a store or policy without transactions gets one PutItem per item.

Requests are counted on the wire, by the fault proxy in front of moto (it
records each request's X-Amz-Target); everything is read back with boto3.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import time
import unittest

import testbed
from common import BIN, FULL_POLICY
from daemon import Daemon, wait_until
from faultproxy import FaultProxy
from images import make
from test_check_remote import moto_policy

NEWER = "2999-01-01T00:00:00.000Z"


def tree(root, n: int, salt: bytes = b"") -> None:
    """n small PNGs in root (made elsewhere, then moved in as one folder)."""
    root.mkdir()
    for i in range(n):
        data, _ = make(f"f{i}.png", 8, 8, salt + b"%d" % i)
        (root / f"f{i:04d}.png").write_bytes(data)


def targets(proxy: FaultProxy) -> collections.Counter:
    return collections.Counter(
        ((r["target"] or "").split(".")[-1], r["status"])
        for r in proxy.log() if r["service"] == "dynamodb")


class ItemBatch(unittest.TestCase):
    maxDiff = None

    def daemon(self, bed, policy=None, **kw) -> tuple[Daemon, FaultProxy]:
        proxy = FaultProxy(bed.endpoint).start()
        self.addCleanup(proxy.stop)
        d = Daemon(bed, creds=bed.user(policy or FULL_POLICY),
                   endpoint=proxy.url, level="info", **kw)
        self.addCleanup(d.close)
        return d, proxy

    def burst(self, d: Daemon, n: int, salt: bytes = b"") -> None:
        src = d.dir / "src"
        tree(src, n, salt)
        d.start()
        wait_until(lambda: "watching" in d.log(), 30, what="the watch")
        os.rename(src, d.root / "src")
        d.wait_mirror(240)

    def test_a_burst_costs_about_one_request_per_file(self):
        bed = testbed.auth_bed()
        d, proxy = self.daemon(bed, concurrency=32)
        n = 200
        self.burst(d, n)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        t = targets(proxy)
        puts, txs = t[("PutItem", 200)], t[("TransactWriteItems", 200)]
        self.assertGreater(txs, 0, t)
        # every item went exactly once, in a PutItem or a transaction
        self.assertEqual(len(d.remote_items()), n)
        self.assertEqual(sum(v for (op, st), v in t.items()
                             if op in ("PutItem", "TransactWriteItems")),
                         puts + txs, t)
        self.assertLess(puts + txs, n // 2, t)
        self.assertEqual(d.failed_rows(), {})

    def test_a_lone_file_is_one_put_item(self):
        bed = testbed.auth_bed()
        d, proxy = self.daemon(bed)
        d.start()
        wait_until(lambda: "watching" in d.log(), 30, what="the watch")
        data, _ = make("one.png", 8, 8, b"one")
        (d.root / "one.png").write_bytes(data)
        d.wait_mirror(60)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        t = targets(proxy)
        self.assertEqual(t[("PutItem", 200)], 1, t)
        self.assertEqual(t[("TransactWriteItems", 200)], 0, t)

    def test_a_failed_condition_keeps_the_newer_item_and_writes_the_rest(self):
        bed = testbed.auth_bed()
        d, proxy = self.daemon(bed, concurrency=32)
        n = 120
        ddb = bed.dynamodb()
        newer = [f"src/f{i:04d}.png" for i in range(5, n, 10)]
        for key in newer:
            ddb.put_item(TableName=d.table, Item={
                "FileName": {"S": key}, "Timestamp": {"S": NEWER},
                "Source": {"S": "elsewhere"}})
        src = d.dir / "src"
        tree(src, n)
        d.start()
        wait_until(lambda: "watching" in d.log(), 30, what="the watch")
        os.rename(src, d.root / "src")
        wait_until(lambda: d.log().count("the table holds newer metadata") >= len(newer),
                   120, what="the kept items")
        wait_until(lambda: len(d.remote_items()) == n, 60, what="all items")
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        t = targets(proxy)
        self.assertGreater(t[("TransactWriteItems", 400)], 0,
                           f"no transaction was cancelled: {t}")
        items = d.remote_items()
        for key, item in items.items():
            want = "elsewhere" if key in newer else "imgsync@test"
            self.assertEqual(item["Source"]["S"], want, key)
        self.assertEqual(d.log().count("the table holds newer metadata"), len(newer))
        self.assertEqual(d.failed_rows(), {})

    def test_a_policy_without_transactions_falls_back_to_put_item(self):
        # moto asks for dynamodb:TransactWriteItems, which AWS does not have
        # (a transaction's Put is governed by dynamodb:PutItem), so the
        # packaged policy gets AccessDenied: the daemon says so once and
        # writes one PutItem per item.
        bed = testbed.auth_bed()
        bucket = bed.bucket()
        d, proxy = self.daemon(bed, policy=moto_policy(bucket), bucket=bucket,
                               concurrency=32)
        n = 120
        self.burst(d, n)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        t = targets(proxy)
        self.assertGreater(t[("TransactWriteItems", 403)], 0, t)
        self.assertEqual(d.log().count("one PutItem per item from now on"), 1,
                         d.log()[-3000:])
        self.assertEqual(len(d.remote_items()), n)
        self.assertEqual(d.failed_rows(), {})


class InFlight(unittest.TestCase):
    """The adaptive number of files in flight, read from the daemon's log
    and /status while a burst goes through moto (throttling injected by
    the fault proxy)."""

    def run_burst(self, n: int, conc: int, **faults) -> Daemon:
        bed = testbed.auth_bed()
        proxy = FaultProxy(bed.endpoint, seed=3, **faults).start()
        self.addCleanup(proxy.stop)
        d = Daemon(bed, endpoint=proxy.url, concurrency=conc)
        self.addCleanup(d.close)
        src = d.dir / "src"
        tree(src, n)
        d.start()
        wait_until(lambda: "watching" in d.log(), 30, what="the watch")
        os.rename(src, d.root / "src")
        d.wait_mirror(300)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertEqual(d.failed_rows(), {})
        return d

    def test_grows_to_the_configured_ceiling(self):
        d = self.run_burst(150, 48)
        self.assertIn("up to 48 files in flight (sync.concurrency)", d.log())
        self.assertNotIn("throttled: up to", d.log())

    def test_halves_when_throttled(self):
        d = self.run_burst(150, 48, ddb_throttle=0.3, s3_503=0.2)
        cuts = [int(line.split("up to ")[1].split()[0])
                for line in d.log().splitlines() if "throttled: up to" in line]
        self.assertTrue(cuts, d.log()[-3000:])
        self.assertTrue(all(4 <= c <= 24 for c in cuts), cuts)


class BoundedScan(unittest.TestCase):
    """The start-up scan walks in steps and waits while 4096 paths are
    queued (SYNC_SCAN_QUEUE): the queue, and so the memory, stay bounded
    however many files the tree holds, and uploads start before the walk
    is over. Uploads are held back by slowing S3's first answers."""

    def status(self, d: Daemon) -> dict:
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--unix-socket",
             str(d.dir / "imgsync.sock"), "http://imgsync/status"],
            capture_output=True, text=True, timeout=20)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def test_the_queue_stays_bounded_and_everything_goes(self):
        bed = testbed.auth_bed()
        proxy = FaultProxy(bed.endpoint, seed=5, slow=1.0, slow_ms=1500,
                           max_faults=12,
                           fault_filter=lambda req: not (req.get("x-amz-target") or ""))
        proxy.start()
        self.addCleanup(proxy.stop)
        d = Daemon(bed, endpoint=proxy.url, concurrency=4, level="info")
        self.addCleanup(d.close)
        n = 6000
        for i in range(n):
            sub = d.root / f"d{i // 500:02d}"
            sub.mkdir(exist_ok=True)
            data, _ = make(f"b{i}.png", 2, 2, b"%d" % i)
            (sub / f"b{i:05d}.png").write_bytes(data)
        d.start()
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = self.status(d)
            if st:
                seen.append(st)
            if st.get("scanning") and st.get("queued", 0) >= 4000:
                break
            time.sleep(0.1)
        self.assertTrue(seen and seen[-1].get("scanning"), seen[-3:])
        # waiting: the walk has not reported every file
        time.sleep(1)
        st = self.status(d)
        self.assertTrue(st["scanning"], st)
        self.assertLess(st["scanned"], n, st)
        self.assertLessEqual(st["queued"], 4096 + 512, st)
        out = subprocess.run([str(BIN / "imgsyncctl"), "-s",
                              str(d.dir / "imgsync.sock"), "status"],
                             capture_output=True, text=True, timeout=20)
        self.assertIn("files found so far", out.stdout)
        self.assertNotIn("left", out.stdout)
        # Stopped mid-scan, started again straight on moto, many at once:
        # everything goes, the scan ends.
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        d.endpoint = bed.endpoint
        d.concurrency = 64
        d.write_conf()
        d.start()
        wait_until(lambda: self.status(d).get("scanned", 0) > 0, 30,
                   what="the scan")
        # The root goes away in the middle of the scan and comes back: the
        # scan cut short starts over; it does not stay "scanning" for ever.
        away = d.dir / "away"
        d.root.rename(away)
        wait_until(lambda: self.status(d).get("state") == "root-lost", 30,
                   what="the root-lost state")
        away.rename(d.root)
        d.wait_mirror(300)
        wait_until(lambda: self.status(d).get("scanning") is False, 60,
                   what="the end of the scan")
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertEqual(d.failed_rows(), {})


class ItemBatchDynalite(unittest.TestCase):
    """dynalite has no TransactWriteItems: UnknownOperationException."""

    def test_the_burst_is_written_item_by_item(self):
        s3 = testbed.S3rver()
        self.addCleanup(s3.stop)
        ddb = testbed.Dynalite()
        self.addCleanup(ddb.stop)
        d = Daemon(s3, creds=s3.admin, table=ddb.table(), level="info",
                   concurrency=32)
        self.addCleanup(d.close)
        d.write_conf(d.conf_text().replace(
            f'dynamodb: {{ table = "{d.table}"; endpoint = "{d.endpoint}"; }}',
            f'dynamodb: {{ table = "{d.table}"; endpoint = "{ddb.endpoint}"; }}'))
        n = 120
        src = d.dir / "src"
        tree(src, n)
        d.start()
        wait_until(lambda: "watching" in d.log(), 30, what="the watch")
        os.rename(src, d.root / "src")
        deadline = time.monotonic() + 120
        count = 0
        while time.monotonic() < deadline:
            count = sum(p["Count"] for p in ddb.dynamodb().get_paginator("scan")
                        .paginate(TableName=d.table))
            if count == n:
                break
            time.sleep(0.3)
        self.assertEqual(count, n, d.log()[-3000:])
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertEqual(d.log().count("one PutItem per item from now on"), 1,
                         d.log()[-3000:])
        self.assertIn("UnknownOperationException", d.log())
        self.assertEqual(d.failed_rows(), {})


if __name__ == "__main__":
    unittest.main()
