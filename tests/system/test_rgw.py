"""The daemon against Ceph RGW for S3 (and moto for DynamoDB), with the
keys that trip up S3 implementations and signers: ``+``, ``%``, ``~``,
``!*'()``, ``&=?#``, ``@$,;:``, spaces, accents (composed and
decomposed), CJK, emoji, and a key of exactly 1,024 bytes (S3's limit,
prefix included). RGW verifies SigV4 itself, so every request imgsyncd
signs for these keys is judged by a production implementation; moto's
checker cannot judge them (DESIGN.md section 7).

One cluster for the module (tests/testbed/rgw.py: a single-node Ceph in a
temporary folder, about 12 s to come up), one daemon per test; the
daemon's keys belong to a moto IAM user (moto with signatures and IAM
checked) and to an RGW user made with the same keys, so both servers check
them. Everything is read back with boto3: list, head, get (SHA-256 of the
bytes) from RGW, the items from DynamoDB.

- 00  the launcher: a cluster that cannot start says why (the log's
      tail) and leaves no process and no folder behind;
- 10  create (at start and while watching), edit, rename (a file, a
      folder, a multipart object), delete (a file, a folder), with files
      above the multipart threshold (5 MiB, parts of 5 MiB), each of which
      must get its item; then ``imgsyncctl verify`` finds no difference;
- 20  the control socket: /getall (all, and a prefix with awkward bytes),
      /getitem of every key, /delete of awkward keys (item, object, file
      into the trash);
- 30  crash recovery: SIGKILL with a multipart upload in flight (a slow
      proxy holds it), then at random moments of a burst; after the
      restart the mirror converges and no multipart upload is left;
- 40  ``imgsyncd --check-remote`` passes against RGW, completing a
      multipart upload and noting the empty ETag;
- 90  what RGW 16.2 answers differently from AWS (the README's
      compatibility table): each fact asserted, so a new Ceph that changes
      one fails here and the table is updated.

Needs root and Debian's Ceph packages (installed with apt-get when
missing); skips, saying why, only where the machine cannot run a cluster
at all. The whole file takes about a minute here (the cluster 12.5 s).
It is over 600 lines because its tests share the one cluster that
setUpModule starts: split, each part would start its own.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import random
import subprocess
import sys
import time
import unicodedata
import unittest
import urllib.parse
from pathlib import Path

import rgw as rgwbed
import testbed
from common import BIN, FULL_POLICY, fetch
from daemon import Daemon, wait_until
from images import make, png

MIB = 1 << 20
THRESHOLD_MB = 5      # the smallest the configuration allows
PART_MB = 5
PREFIX = "rgw+%~ é/"  # awkward too; counted in the 1,024 bytes

#: The awkward names (relative paths under the watch root).
AWKWARD = [
    "plus+sign.jpg",
    "percent%20%2B%.png",
    "tilde~name.gif",
    "bang!*'()x.jpg",
    "amp&eq=q?hash#.png",
    "at@dollar$,semi;colon:.gif",
    "accents/Crème brûlée à Zürich ñ.jpg",
    unicodedata.normalize("NFD", "nfd/Crème é.png"),
    "cjk/東京の写真/画像.png",
    "emoji/🐱📷🎉.gif",
    "all/+%~!*'()&=?#@$,;: é漢😀.jpg",
    "sp ace/two  spaces .png",
]


def long_name(prefix: str, total: int = 1024) -> str:
    """A path whose key (prefix + path) is exactly `total` UTF-8 bytes,
    in folders of at most 250 bytes (a Linux name is at most 255)."""
    parts, used = [], len(prefix.encode())
    pieces = ["ä+%~", "漢字", "😀&=", "x!*'()"]
    i = 0
    while total - used - 1 > 250:  # a folder, then its '/'
        unit = pieces[i % len(pieces)]
        comp = ""
        while len((comp + unit).encode()) <= 240:
            comp += unit
        parts.append(comp)
        used += len(comp.encode()) + 1
        i += 1
    last = "z" * (total - used - len(".png")) + ".png"
    parts.append(last)
    path = "/".join(parts)
    assert len((prefix + path).encode()) == total, len((prefix + path).encode())
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(root: Path, rel: str, data: bytes) -> bytes:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return data


def small(rel: str, w: int = 7, h: int = 5, salt: bytes = b"") -> bytes:
    return make(rel, w, h, salt or rel.encode()[-200:])[0]


def big(mib: float, w: int = 9, h: int = 4) -> bytes:
    """A valid PNG of about `mib` MiB (random bytes in a text chunk)."""
    return png(w, h, os.urandom(int(mib * MIB)))


def curl(sock: str, method: str, path: str, body=None, timeout: float = 30):
    """(status, JSON) of one control-socket request."""
    args = ["curl", "-sS", "--unix-socket", sock, "-X", method, "--max-time", str(timeout),
            "-w", "\n%{http_code}"]
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        args += ["--data-binary", "@-", "-H", "Content-Type: application/json"]
    args.append(f"http://localhost{path}")
    proc = subprocess.run(args, input=data, capture_output=True, timeout=timeout + 10)
    if proc.returncode != 0:
        raise AssertionError(f"curl {method} {path}: {proc.stderr.decode()}")
    text, _, status = proc.stdout.decode("utf-8").rpartition("\n")
    return int(status), json.loads(text) if text else None


class RgwDaemon(Daemon):
    """imgsyncd with S3 on RGW (path style) and DynamoDB on moto."""

    def __init__(self, bed, cluster, creds, bucket, **kw):
        self.cluster = cluster
        self.s3_endpoint = cluster.endpoint
        self.rgw_s3 = cluster.client("s3", creds=creds)
        super().__init__(bed, creds=creds, bucket=bucket, table=bed.table(), **kw)

    def conf_text(self, **over) -> str:
        text = super().conf_text(**over)
        old = (f'endpoint = "{self.endpoint}"; path_style = true;\n'
               "       multipart_threshold_mb = 16; part_size_mb = 8;")
        if old not in text:
            raise AssertionError("daemon.py's s3 section changed; update RgwDaemon")
        return text.replace(old, f'endpoint = "{self.s3_endpoint}"; path_style = true;\n'
                                 f"       multipart_threshold_mb = {THRESHOLD_MB}; "
                                 f"part_size_mb = {PART_MB};")

    def remote_objects(self) -> dict:
        keys = {}
        for page in self.rgw_s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for o in page.get("Contents", []):
                keys[o["Key"]] = o
        return keys


_shared: dict = {}


def setUpModule():
    """One cluster for the module (about 12 s), and the daemon's keys: a
    moto IAM user's, given to an RGW user too."""
    if sys.platform != "linux":
        raise unittest.SkipTest("needs Linux: runs a Ceph cluster")
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (installs Ceph with apt-get when missing)")
    t0 = time.monotonic()
    try:
        rgwbed.ensure_packages()
    except rgwbed.RgwUnavailable as exc:  # not root, or no apt-get
        raise unittest.SkipTest(f"cannot run Ceph RGW here: {exc}") from None
    # An apt-get that fails is an error, not a skip: CI must install it.
    cluster = rgwbed.Rgw()
    _shared["cluster"] = cluster
    print(f"\nrgw: cluster up in {cluster.startup_s:.1f}s "
          f"({time.monotonic() - t0:.1f}s with the package check)", file=sys.stderr)
    try:
        bed = testbed.auth_bed()
        creds = bed.user(FULL_POLICY)
        cluster.add_user(*creds, uid="imgsyncd")
        _shared.update(bed=bed, creds=creds, s3=cluster.client("s3", creds=creds))
    except BaseException:  # tearDownModule does not run after a failed setUpModule
        tearDownModule()
        raise


def tearDownModule():
    cluster = _shared.pop("cluster", None)
    if cluster is not None:
        cluster.stop()


class RgwCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = _shared["cluster"]
        cls.bed, cls.creds, cls.s3 = _shared["bed"], _shared["creds"], _shared["s3"]

    def setUp(self):
        self.t0 = time.monotonic()

    def tearDown(self):
        print(f"\n{self.id().rsplit('.', 1)[-1]}: {time.monotonic() - self.t0:.1f}s",
              file=sys.stderr)

    def daemon(self, **kw) -> RgwDaemon:
        bucket = testbed.unique_name("imgsync-rgw")
        self.s3.create_bucket(Bucket=bucket)
        d = RgwDaemon(self.bed, self.cluster, self.creds, bucket, **kw)
        self.addCleanup(d.close)
        return d

    def start(self, d: RgwDaemon) -> str:
        d.start()
        wait_until(lambda: "listening on" in d.log() or not d.alive(), 30,
                   what="the control socket")
        self.assertTrue(d.alive(), d.log()[-3000:])
        return str(d.dir / "imgsync.sock")

    def wait_mirror(self, d: RgwDaemon, timeout: float = 120):
        try:
            d.wait_mirror(timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- failed rows: {d.failed_rows()}\n"
                                 f"--- rgw log tail ---\n{self.cluster.log_tail(4000)}") from None

    def check_mirror(self, d: RgwDaemon) -> dict:
        """Every local file, read back with boto3: the listing holds
        exactly their keys; each object's bytes (SHA-256), size, metadata
        and ETag; each item's SHA-256, size and ETag (the object's, also
        after a multipart upload). Returns key -> item."""
        local = d.local()
        objs = d.remote_objects()
        items = d.remote_items()
        want = {d.prefix + rel: data for rel, data in local.items()}
        self.assertEqual(sorted(objs), sorted(want))
        self.assertEqual(sorted(items), sorted(want))
        for key, data in want.items():
            head = d.rgw_s3.head_object(Bucket=d.bucket, Key=key)
            body = d.rgw_s3.get_object(Bucket=d.bucket, Key=key)["Body"].read()
            self.assertEqual(sha(body), sha(data), key)
            self.assertEqual(head["ContentLength"], len(data), key)
            self.assertEqual(head["Metadata"].get("sha256"), sha(data), key)
            it = items[key]
            self.assertEqual(it["SHA256"]["S"], sha(data), key)
            self.assertEqual(it["Size"]["N"], str(len(data)), key)
            self.assertEqual(it["ETag"]["S"], head["ETag"], key)
            self.assertEqual(objs[key]["ETag"], head["ETag"], key)
            if len(data) >= THRESHOLD_MB * MIB:
                parts = math.ceil(len(data) / (PART_MB * MIB))
                self.assertTrue(head["ETag"].endswith(f'-{parts}"'), (key, head["ETag"]))
        self.assertEqual(d.failed_rows(), {})
        return items


class Launcher(unittest.TestCase):
    def test_00_a_failed_start_says_why_and_leaves_nothing(self):
        """A radosgw that cannot bind: the error names the cause with the
        log's tail, every process started is gone, the folder removed."""
        spawned, dirs = [], []

        class Recording(rgwbed.Rgw):
            def _spawn(self, name, argv):
                p = super()._spawn(name, argv)
                spawned.append(p.proc)
                dirs.append(self.dir)
                return p

        t0 = time.monotonic()
        with self.assertRaises(rgwbed.RgwError) as cm:
            Recording(extra_conf="rgw_frontends = beast endpoint=192.0.2.1:1")
        self.assertLess(time.monotonic() - t0, 90)
        msg = str(cm.exception)
        self.assertIn("client.rgw.a exited", msg)
        # the log's tail (radosgw does not always get to flush its
        # "failed to bind" line before it exits; the endpoint is there)
        self.assertIn("--- log/client.rgw.a.log ---", msg)
        self.assertIn("192.0.2.1:1", msg)
        self.assertEqual(len(spawned), 3)  # mon, osd, radosgw
        self.assertTrue(all(p.poll() is not None for p in spawned),
                        [p.pid for p in spawned])
        self.assertFalse(os.path.exists(dirs[0]))


class Sync(RgwCase):
    def test_10_create_edit_rename_delete(self):
        d = self.daemon(prefix=PREFIX)
        longest = long_name(PREFIX)
        names = AWKWARD + [longest]
        first, later = names[::2], names[1::2]
        for rel in first:  # found by the start-up scan
            put(d.root, rel, small(rel))
        put(d.root, "big/huge +%~ 😀.png", big(11))     # 3 parts
        self.start(d)
        for rel in later:  # found by the watcher
            put(d.root, rel, small(rel))
        put(d.root, "big/大きい#?&.png", big(6))          # 2 parts
        self.wait_mirror(d)
        items = self.check_mirror(d)
        self.assertEqual(len(items), len(names) + 2)
        self.assertEqual(len((PREFIX + longest).encode()), 1024)
        self.assertIn(PREFIX + longest, items)

        # edits: same size, new size and dimensions, a multipart file again
        put(d.root, "plus+sign.jpg", small("plus+sign.jpg", salt=b"X" * 13))  # same size
        put(d.root, "cjk/東京の写真/画像.png", small("cjk/東京の写真/画像.png", 31, 17))
        put(d.root, "big/huge +%~ 😀.png", big(12, 3, 3))
        put(d.root, longest, small(longest, 2, 2, b"edited"))
        self.wait_mirror(d)
        items = self.check_mirror(d)
        it = items[PREFIX + "cjk/東京の写真/画像.png"]
        self.assertEqual((it["Width"]["N"], it["Height"]["N"]), ("31", "17"))

        # renames: a file, a folder of emoji, a multipart object
        os.rename(d.root / "tilde~name.gif", d.root / "renamed ~€+.gif")
        os.rename(d.root / "emoji", d.root / "émoji 🎉+%")
        (d.root / "big/moved").mkdir()
        os.rename(d.root / "big/大きい#?&.png", d.root / "big/moved/?#& 大.png")
        self.wait_mirror(d)
        items = self.check_mirror(d)
        it = items[PREFIX + "big/moved/?#& 大.png"]
        self.assertEqual((it["Width"]["N"], it["Height"]["N"]), ("9", "4"))
        self.assertIn(PREFIX + "émoji 🎉+%/🐱📷🎉.gif", items)

        # deletes: a file, a folder, the longest key
        os.unlink(d.root / "bang!*'()x.jpg")
        for p in sorted((d.root / "accents").iterdir()):
            p.unlink()
        (d.root / "accents").rmdir()
        os.unlink(d.root / longest)
        self.wait_mirror(d)
        items = self.check_mirror(d)
        self.assertNotIn(PREFIX + longest, items)
        self.assertNotIn(PREFIX + "bang!*'()x.jpg", items)

        # verify compares the bucket, the table and the folder: no difference
        out = subprocess.run([str(BIN / "imgsyncctl"), "-s", str(d.dir / "imgsync.sock"),
                              "verify"], capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("0 differences", out.stdout)
        self.assertEqual(d.stop(), 0)


class Control(RgwCase):
    def test_20_getall_getitem_delete(self):
        d = self.daemon(prefix=PREFIX)
        longest = long_name(PREFIX)
        names = AWKWARD + [longest]
        for rel in names:
            put(d.root, rel, small(rel))
        sock = self.start(d)
        self.wait_mirror(d)
        ddb = d.bed.dynamodb()

        st, doc = curl(sock, "GET", "/getall")
        self.assertEqual(st, 200, doc)
        self.assertEqual(sorted(i["FileName"] for i in doc["images"]),
                         sorted(PREFIX + n for n in names))
        want = PREFIX + "all/"
        st, doc = curl(sock, "GET", "/getall?prefix=" + urllib.parse.quote(want, safe=""))
        self.assertEqual(st, 200, doc)
        self.assertEqual([i["FileName"] for i in doc["images"]],
                         [PREFIX + "all/+%~!*'()&=?#@$,;: é漢😀.jpg"])

        for rel in names:
            key = PREFIX + rel
            st, doc = curl(sock, "POST", "/getitem", {"FileName": key})
            self.assertEqual(st, 200, (key, doc))
            remote = ddb.get_item(TableName=d.table, Key={"FileName": {"S": key}})["Item"]
            self.assertEqual(doc["data"]["FileName"], key)
            self.assertEqual(doc["data"]["SHA256"], remote["SHA256"]["S"])
            self.assertEqual(doc["data"]["SHA256"], sha((d.root / rel).read_bytes()))
            self.assertEqual(doc["data"]["Size"], int(remote["Size"]["N"]))

        # share links: RGW checks a presigned URL's signature (each awkward
        # byte of the key encoded once) and its expiry
        for rel in names:
            key = PREFIX + rel
            st, doc = curl(sock, "POST", "/url", {"FileName": key})
            self.assertEqual(st, 200, (key, doc))
            self.assertEqual(fetch(doc["url"]), (200, (d.root / rel).read_bytes()), key)
        bad = doc["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")[:len(doc["url"])]
        st, body = fetch(bad)
        self.assertEqual(st, 403, body)
        self.assertIn(b"SignatureDoesNotMatch", body)
        t0 = time.time()
        st, doc = curl(sock, "POST", "/url", {"FileName": PREFIX + names[0], "ExpiresIn": 1})
        self.assertEqual((st, fetch(doc["url"])[0]), (200, 200), doc)
        time.sleep(max(0.0, t0 + 3 - time.time()))
        st, body = fetch(doc["url"])
        self.assertEqual(st, 403, body)
        self.assertIn(b"AccessDenied", body)

        gone = ["amp&eq=q?hash#.png", "emoji/🐱📷🎉.gif", longest,
                unicodedata.normalize("NFD", "nfd/Crème é.png")]
        for rel in gone:
            key = PREFIX + rel
            data = (d.root / rel).read_bytes()
            st, doc = curl(sock, "DELETE", "/delete", {"FileName": key})
            self.assertEqual(st, 200, (key, doc))
            self.assertEqual((doc["message"], doc["deletedFile"]), ("File deleted", key))
            self.assertNotIn("Item", ddb.get_item(TableName=d.table,
                                                  Key={"FileName": {"S": key}}))
            with self.assertRaises(d.rgw_s3.exceptions.ClientError) as cm:
                d.rgw_s3.head_object(Bucket=d.bucket, Key=key)
            self.assertEqual(cm.exception.response["Error"]["Code"], "404")
            self.assertFalse((d.root / rel).exists(), rel)
            self.assertEqual((d.dir / "trash" / rel).read_bytes(), data)
            self.assertEqual(curl(sock, "DELETE", "/delete", {"FileName": key}),
                             (404, {"error": "Item not found"}))
        self.wait_mirror(d, 30)
        self.check_mirror(d)
        self.assertEqual(d.stop(), 0)


class Crash(RgwCase):
    def test_30_sigkill_mid_multipart_and_mid_burst(self):
        from faultproxy import FaultProxy

        rng = random.Random(int(os.environ.get("IMGSYNC_TEST_SEED", "1212")))
        d = self.daemon(prefix=PREFIX, settle_ms=50)
        frags = ["+", "%", "~", "!*'()", "&=?#", "@$,;:", "é", "漢", "😀", " "]
        names = [f"b{i % 3}/{frags[i % len(frags)]}{i}.jpg" for i in range(60)]

        # 1. A crash with a multipart upload in flight: each request to RGW
        # through the proxy waits 1.5 s, time to see the upload created.
        proxy = FaultProxy(self.cluster.endpoint, slow=1.0, slow_ms=1500).start()
        self.addCleanup(proxy.stop)
        d.s3_endpoint = proxy.url
        d.write_conf()
        put(d.root, "big/crash +%~ 😀.png", big(11))
        for rel in names[:20]:
            put(d.root, rel, small(rel))
        d.start()
        uploads = wait_until(
            lambda: d.rgw_s3.list_multipart_uploads(Bucket=d.bucket).get("Uploads"),
            60, 0.1, "the multipart upload to start")
        time.sleep(0.5)  # its upload id reaches the intent at once
        d.kill()
        self.assertEqual([u["Key"] for u in uploads], [PREFIX + "big/crash +%~ 😀.png"])
        proxy.stop()
        d.s3_endpoint = self.cluster.endpoint
        d.write_conf()

        # 2. Crashes at random moments of a burst of creates, edits,
        # renames and deletes (a multipart file among them).
        for kill in range(3):
            d.start()
            if kill == 1:
                put(d.root, "big/second 漢.png", big(6))
            stop_at = time.monotonic() + rng.uniform(0.3, 1.5)
            while time.monotonic() < stop_at:
                op, rel = rng.random(), rng.choice(names)
                path = d.root / rel
                if op < 0.5 or not path.exists():
                    put(d.root, rel, small(rel, rng.randint(1, 40), rng.randint(1, 40),
                                           os.urandom(8)))
                elif op < 0.7:
                    path.unlink()
                elif op < 0.9:
                    target = d.root / rng.choice(names)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(path, target)
                else:
                    with open(path, "r+b") as f:
                        f.seek(0, 2)
                        f.write(os.urandom(16))
                time.sleep(rng.uniform(0, 0.02))
            d.kill()

        d.start()
        self.wait_mirror(d, 180)
        self.check_mirror(d)
        want = f"aborted the interrupted multipart upload of {PREFIX}big/crash +%~ 😀.png"
        self.assertTrue(want in d.log(), d.log()[-3000:])
        wait_until(lambda: not d.rgw_s3.list_multipart_uploads(Bucket=d.bucket).get("Uploads"),
                   30, 0.5, "no multipart upload left")
        self.assertEqual(d.stop(), 0)


class CheckRemote(RgwCase):
    def test_40_check_remote_passes(self):
        d = self.daemon(prefix=PREFIX)
        env = d.env()
        proc = subprocess.run([str(BIN / "imgsyncd"), "--check-remote", "-c", str(d.conf)],
                              capture_output=True, text=True, env=env, timeout=120)
        out = proc.stdout + proc.stderr
        print(f"\n--- imgsyncd --check-remote against RGW (rc={proc.returncode}) ---\n{out}",
              file=sys.stderr)
        self.assertEqual(proc.returncode, 0, out)
        self.assertNotIn(self.creds[1], out)
        # it completes a multipart upload, and says RGW's ETag is missing
        self.assertRegex(out, r"(?m)^ok +s3:PutObject .*a multipart upload, completed")
        self.assertRegex(out, r"(?m)^note +s3 store .*CompleteMultipartUpload with an empty ETag")
        # and that it deletes whatever If-Match says
        self.assertRegex(out, r"(?m)^note +s3 conditional delete .*ignores If-Match")
        # its probes leave nothing behind
        self.assertEqual(d.remote_objects(), {})
        self.assertEqual(d.rgw_s3.list_multipart_uploads(Bucket=d.bucket).get("Uploads", []), [])


class Compatibility(RgwCase):
    """What RGW 16.2 answers differently from AWS S3, asserted so that a
    Ceph that changes one fails here (update the README's table)."""

    def code(self, op: str, region: str = "us-east-1", **kw) -> str:
        """The error code of one call ("OK": none), on a client of its own:
        RGW answers some errors before reading the body, and a
        connection whose client then sends it anyway is out of step."""
        try:
            getattr(self._client_in(region), op)(**kw)
        except self.s3.exceptions.ClientError as exc:
            return exc.response["Error"]["Code"]
        return "OK"

    def test_90_compatibility_facts(self):
        import base64
        s3, b = self.s3, testbed.unique_name("imgsync-rgw")
        s3.create_bucket(Bucket=b)
        body = b"compatibility" * 100
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        wrong = base64.b64encode(bytes(32)).decode()
        facts = {}

        # Region: the zonegroup's name; any region in the signature is taken.
        facts["location"] = s3.get_bucket_location(Bucket=b).get("LocationConstraint")
        self.assertEqual(facts["location"], "default")
        self.assertEqual(self.code("create_bucket", Bucket=b + "-eu", CreateBucketConfiguration={
            "LocationConstraint": "eu-west-1"}), "InvalidLocationConstraint")
        facts["CreateBucket in eu-west-1"] = "InvalidLocationConstraint"
        self.assertEqual(self.code("put_object", "eu-west-3", Bucket=b, Key="eu", Body=b"x"),
                         "OK")
        facts["signed for eu-west-3"] = "accepted"

        # Checksums: taken and ignored (a wrong one too), never returned.
        self.assertEqual(self.code("put_object", Bucket=b, Key="c", Body=body,
                                   ChecksumSHA256=digest), "OK")
        self.assertEqual(self.code("put_object", Bucket=b, Key="w", Body=body,
                                   ChecksumSHA256=wrong), "OK")
        head = s3.head_object(Bucket=b, Key="c", ChecksumMode="ENABLED")
        self.assertNotIn("ChecksumSHA256", head)
        facts["x-amz-checksum-sha256"] = "ignored, a wrong one accepted; not in HeadObject"
        self.assertEqual(self.code("get_object_attributes", Bucket=b, Key="c",
                                   ObjectAttributes=["ETag", "Checksum"]), "500")
        facts["GetObjectAttributes"] = "500"

        # Storage classes: only STANDARD in the default placement.
        self.assertEqual(self.code("put_object", Bucket=b, Key="s", Body=b"x",
                                   StorageClass="STANDARD"), "OK")
        for sc in ("STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "ONEZONE_IA",
                   "REDUCED_REDUNDANCY"):
            self.assertEqual(self.code("put_object", Bucket=b, Key="s", Body=b"x",
                                       StorageClass=sc), "InvalidArgument", sc)
        facts["storage classes"] = "STANDARD only; others InvalidArgument"

        # SSE over plain HTTP: refused (rgw_crypt_require_ssl, true by default).
        self.assertEqual(self.code("put_object", Bucket=b, Key="e", Body=b"x",
                                   ServerSideEncryption="AES256"), "InvalidRequest")
        facts["SSE AES256 over http"] = "InvalidRequest"
        self.assertEqual(self.code("put_object", Bucket=b, Key="e", Body=b"x",
                                   ServerSideEncryption="aws:kms", SSEKMSKeyId="k1"),
                         "InvalidRequest")
        facts["SSE aws:kms over http"] = "InvalidRequest"

        # Expected bucket owner: not checked.
        self.assertEqual(self.code("put_object", Bucket=b, Key="o", Body=b"x",
                                   ExpectedBucketOwner="111122223333"), "OK")
        facts["x-amz-expected-bucket-owner"] = "ignored"

        # Multipart: Complete answers an empty ETag; HeadObject has it.
        up = s3.create_multipart_upload(Bucket=b, Key="m")
        parts = []
        for n, chunk in enumerate((b"a" * (5 * MIB), b"b" * 10), 1):
            r = s3.upload_part(Bucket=b, Key="m", UploadId=up["UploadId"], PartNumber=n,
                               Body=chunk)
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        done = s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=up["UploadId"],
                                            MultipartUpload={"Parts": parts})
        self.assertEqual(done.get("ETag"), "")
        self.assertRegex(s3.head_object(Bucket=b, Key="m")["ETag"], r'^"[0-9a-f]{32}-2"$')
        facts["CompleteMultipartUpload ETag"] = "empty (HeadObject has it)"

        # CopyObject: the ETag in its answer has no quotes (AWS quotes it).
        copied = s3.copy_object(Bucket=b, Key="c2", CopySource={"Bucket": b, "Key": "c"})
        quoted = s3.head_object(Bucket=b, Key="c2")["ETag"]
        self.assertEqual(copied["CopyObjectResult"]["ETag"], quoted.strip('"'))
        self.assertNotEqual(copied["CopyObjectResult"]["ETag"], quoted)
        facts["CopyObject ETag"] = "without quotes (HeadObject and listings quote it)"

        # DeleteObject If-Match: not checked (the object is deleted).
        s3.put_object(Bucket=b, Key="d", Body=b"x")
        self.assertEqual(self.code("delete_object", Bucket=b, Key="d",
                                   IfMatch='"00000000000000000000000000000000"'), "OK")
        self.assertEqual(self.code("head_object", Bucket=b, Key="d"), "404")
        facts["DeleteObject If-Match"] = "ignored: a wrong ETag still deletes"

        # Virtual-host style: not without rgw_dns_name (the bucket name in
        # the Host is not looked at: the path's first part is the bucket).
        facts["virtual-host style"] = self._virtual_host(b)
        self.assertEqual(facts["virtual-host style"], 404)

        print("\nrgw facts: " + json.dumps(facts, ensure_ascii=False, indent=1),
              file=sys.stderr)

    def _client_in(self, region: str, **config):
        import boto3
        from botocore.config import Config
        return boto3.session.Session().client(
            "s3", endpoint_url=self.cluster.endpoint, region_name=region,
            aws_access_key_id=self.creds[0], aws_secret_access_key=self.creds[1],
            config=Config(s3={"addressing_style": "path"},
                          retries={"mode": "standard", "total_max_attempts": 1}, **config))

    def _virtual_host(self, bucket: str) -> int:
        """HeadObject of BUCKET.localhost/c, signed for that host."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        host = f"{bucket}.localhost:{self.cluster.port}"
        req = AWSRequest(method="HEAD", url=f"http://{host}/c",
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        SigV4Auth(Credentials(*self.creds), "s3", "us-east-1").add_auth(req)
        headers = dict(req.headers.items())
        headers["Host"] = host
        conn = http.client.HTTPConnection("127.0.0.1", self.cluster.port, timeout=10)
        try:
            conn.request("HEAD", "/c", headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
