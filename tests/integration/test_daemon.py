"""imgsyncd end to end against moto (signature- and policy-checked where
moto's checker can judge the keys), read back with boto3."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
import unittest
from pathlib import Path

import testbed
from daemon import Daemon, wait_until
from faultproxy import FaultProxy
from images import exif_jpeg, jpeg, make


def put_image(root: Path, rel: str, w: int, h: int, salt: bytes = b"") -> bytes:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    data, _ = make(rel, w, h, salt or rel.encode())
    p.write_bytes(data)
    return data


class DaemonCase(unittest.TestCase):
    maxDiff = None

    def daemon(self, bed=None, **kw) -> Daemon:
        d = Daemon(bed or testbed.auth_bed(), **kw)
        self.addCleanup(d.close)
        return d

    def proxy(self, d: Daemon, **kw) -> FaultProxy:
        p = FaultProxy(d.bed.endpoint, **kw).start()
        self.addCleanup(p.stop)
        return p


class Burst(DaemonCase):
    def test_500_images_in_nested_folders_created_at_once(self):
        d = self.daemon()
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        want = {}
        # folders and files in the same instant: mkdir -p then write at once
        for i in range(500):
            rel = f"shoot{i % 7}/day{i % 5}/set{i % 3}/img{i:03d}{['.jpg', '.png', '.gif'][i % 3]}"
            w, h = 10 + i % 50, 20 + i % 30
            data = put_image(d.root, rel, w, h)
            want[rel] = (data, w, h)
        d.wait_mirror(180)
        items = d.remote_items()
        objs = d.remote_objects()
        for rel, (data, w, h) in want.items():
            it = items[rel]
            mime = {".jpg": "image/jpeg", ".png": "image/png", ".gif": "image/gif"}[rel[-4:]]
            self.assertEqual(it["Size"]["N"], str(len(data)), rel)
            self.assertEqual(it["Type"]["S"], mime, rel)
            self.assertEqual((it["Width"]["N"], it["Height"]["N"]), (str(w), str(h)), rel)
            self.assertEqual(it["SHA256"]["S"], hashlib.sha256(data).hexdigest(), rel)
            self.assertEqual(it["Bucket"]["S"], d.bucket)
            self.assertEqual(it["Source"]["S"], "imgsync@test")
            self.assertRegex(it["Timestamp"]["S"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertRegex(it["MTime"]["S"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
            self.assertEqual(it["ETag"]["S"], objs[rel]["ETag"])
        # a sample read back byte for byte, with its type
        for rel in list(want)[:20]:
            got = d.bed.s3().get_object(Bucket=d.bucket, Key=rel)
            self.assertEqual(got["Body"].read(), want[rel][0])
            self.assertEqual(got["Metadata"]["sha256"], hashlib.sha256(want[rel][0]).hexdigest())
        self.assertEqual(d.stop(), 0)


class Changes(DaemonCase):
    def test_delete_rename_edit(self):
        d = self.daemon()
        p = self.proxy(d)
        d.endpoint = p.url
        d.write_conf()
        for i in range(6):
            put_image(d.root, f"a/{i}.jpg", 30, 40)
            put_image(d.root, f"dir/sub/{i}.png", 5, 6)
        big = put_image(d.root, "keep/x.png", 100, 50)
        d.start()
        d.wait_mirror(60)
        p.reset_counters()

        # delete a file and a whole folder
        os.unlink(d.root / "a/0.jpg")
        for f in (d.root / "dir/sub").iterdir():
            f.unlink()
        (d.root / "dir/sub").rmdir()
        (d.root / "dir").rmdir()
        d.wait_mirror(60)

        # rename a file and a folder: copies, no content upload
        p.reset_counters()
        os.rename(d.root / "a/1.jpg", d.root / "a/renamed.jpg")
        d.wait_mirror(60)
        os.rename(d.root / "a", d.root / "b")
        d.wait_mirror(60)
        log = p.log()
        puts = [r for r in log if r["method"] == "PUT" and r["target"] is None]
        self.assertTrue(all(r["copy_source"] for r in puts),
                        [r for r in puts if not r["copy_source"]])
        # a/1 -> a/renamed, then a/{renamed,2,3,4,5} -> b/
        self.assertEqual(len(puts), 6, log)
        # the item of a moved file keeps its content description
        it = d.remote_items()["b/renamed.jpg"]
        self.assertEqual(it["SHA256"]["S"],
                         hashlib.sha256((d.root / "b/renamed.jpg").read_bytes()).hexdigest())
        self.assertEqual((it["Width"]["N"], it["Height"]["N"]), ("30", "40"))

        # a same-size edit is uploaded again
        p.reset_counters()
        new = bytearray(big)
        new[-20] ^= 0xFF  # inside the IEND-adjacent data, same length
        (d.root / "keep/x.png").write_bytes(bytes(new))
        d.wait_mirror(60)
        uploads = [r for r in p.log() if r["method"] == "PUT" and not r["copy_source"]
                   and r["target"] is None]
        self.assertEqual(len(uploads), 1, p.log())
        self.assertEqual(d.stop(), 0)

    def test_exif_orientation_gives_the_displayed_size(self):
        # A camera held on its side codes 4032x3024 and says "turn 90"
        # (6, 8) or "mirror and turn" (5, 7): the item gives the size as
        # shown (3024x4032) and the Orientation; 1 and 3 keep the sides.
        d = self.daemon()
        want = {"side6.jpg": (6, False, "3024", "4032"), "side8.jpg": (8, True, "3024", "4032"),
                "flip5.jpg": (5, True, "3024", "4032"), "up1.jpg": (1, False, "4032", "3024"),
                "down3.jpg": (3, True, "4032", "3024")}
        for name, (o, be, _, _) in want.items():
            (d.root / name).write_bytes(exif_jpeg(4032, 3024, o, be))
        (d.root / "plain.jpg").write_bytes(jpeg(40, 30))
        self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
        items = d.remote_items()
        for name, (o, _, w, h) in want.items():
            it = items[name]
            self.assertEqual((it["Width"]["N"], it["Height"]["N"]), (w, h), name)
            self.assertEqual(it["Orientation"]["N"], str(o), name)
        self.assertNotIn("Orientation", items["plain.jpg"])
        # A rename keeps it (the copy's item is built from the row).
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        os.rename(d.root / "side6.jpg", d.root / "moved6.jpg")
        d.wait_mirror(60)
        it = d.remote_items()["moved6.jpg"]
        self.assertEqual((it["Width"]["N"], it["Height"]["N"], it["Orientation"]["N"]),
                         ("3024", "4032", "6"))

    def test_slow_writer_uploaded_once_whole(self):
        d = self.daemon()
        p = self.proxy(d)
        d.endpoint = p.url
        d.write_conf()
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        data, _ = make("slow.png", 64, 64, os.urandom(3000))
        chunks = [data[i:i + len(data) // 5 + 1] for i in range(0, len(data), len(data) // 5 + 1)]
        with open(d.root / "slow.png", "wb") as f:
            for c in chunks:
                f.write(c)
                f.flush()
                time.sleep(0.4)
        d.wait_mirror(60)
        puts = [r for r in p.log() if r["method"] == "PUT" and r["target"] is None]
        self.assertEqual(len(puts), 1, p.log())
        got = d.bed.s3().get_object(Bucket=d.bucket, Key="slow.png")["Body"].read()
        self.assertEqual(got, data)
        self.assertEqual(d.stop(), 0)

    def test_once_converges_and_unchanged_costs_nothing(self):
        d = self.daemon()
        p = self.proxy(d)
        d.endpoint = p.url
        d.write_conf()
        for i in range(30):
            put_image(d.root, f"o/{i}.jpg", 8, 8)
        self.assertEqual(d.once().returncode, 0, d.log()[-3000:])
        d.wait_mirror(10)
        # changed while the daemon was down: new, edited, deleted, renamed
        put_image(d.root, "o/new.png", 9, 9)
        put_image(d.root, "o/1.jpg", 10, 10, b"edited")
        os.unlink(d.root / "o/2.jpg")
        os.rename(d.root / "o/3.jpg", d.root / "o/3-moved.jpg")
        self.assertEqual(d.once().returncode, 0, d.log()[-3000:])
        d.wait_mirror(10)
        # nothing changed: not one request
        p.reset_counters()
        self.assertEqual(d.once().returncode, 0)
        self.assertEqual(p.stats()["requests"], 0, p.log())
        self.assertIn("requests: s3 0, dynamodb 0", d.log().splitlines()[-1])


class Summary(DaemonCase):
    def test_summary_json_lists_every_image_sorted(self):
        import json
        d = self.daemon(summary=True)
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        for i in range(25):
            put_image(d.root, f"s/{i:02d}{['.png', '.jpg'][i % 2]}", 3 + i, 4)
        d.wait_mirror(60)

        def summary():
            try:
                body = d.bed.s3().get_object(Bucket=d.bucket, Key="summary.json")["Body"]
                return json.loads(body.read())
            except d.bed.s3().exceptions.NoSuchKey:
                return None
        wait_until(lambda: (summary() or [None]) and len(summary() or []) == 25, 30,
                   what="25 entries")
        entries = summary()
        self.assertEqual([e["name"] for e in entries], sorted(e["name"] for e in entries))
        first = entries[0]
        self.assertEqual(set(first), {"name", "size", "type", "timestamp", "width", "height"})
        self.assertEqual((first["name"], first["type"], first["width"], first["height"]),
                         ("s/00.png", "image/png", 3, 4))
        self.assertEqual(first["size"], (d.root / "s/00.png").stat().st_size)
        # a change is reflected; the summary is never mirrored back
        os.unlink(d.root / "s/00.png")
        wait_until(lambda: len(summary()) == 24, 30, what="24 entries")
        self.assertFalse((d.root / "summary.json").exists())
        self.assertEqual(d.stop(), 0)


class Reload(DaemonCase):
    def test_sighup_bad_then_good(self):
        d = self.daemon()
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        good = d.conf_text()
        d.write_conf(good.replace("settle_ms = 100;", "settle_ms = 100; bogus_key = 1;"))
        d.signal(signal.SIGHUP)
        wait_until(lambda: "reload failed" in d.log(), 10, what="the reload error")
        self.assertRegex(d.log(), r"imgsync\.conf:2: unknown key \"watch\.bogus_key\"")
        self.assertTrue(d.alive())
        put_image(d.root, "after-bad.png", 3, 3)
        d.wait_mirror(30)
        # a valid one applies: PNGs are now excluded
        d.write_conf(d.conf_text(extra='exclude = [ "*.png", "*.tmp" ];'))
        d.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in d.log(), 10, what="the reload")
        put_image(d.root, "excluded.png", 3, 3)
        put_image(d.root, "included.jpg", 3, 3)
        wait_until(lambda: "included.jpg" in d.remote_items(), 30, what="included.jpg")
        time.sleep(1)
        items = d.remote_items()
        self.assertNotIn("excluded.png", items)
        # the PNG synced before is now outside the mirror: removed remotely
        wait_until(lambda: "after-bad.png" not in d.remote_items(), 30, what="after-bad removal")
        self.assertEqual(d.stop(), 0)


class Outage(DaemonCase):
    def test_server_down_20s_during_burst(self):
        d = self.daemon()
        p = self.proxy(d)
        port = p.port
        d.endpoint = p.url
        d.write_conf()
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        for i in range(40):
            put_image(d.root, f"before/{i}.jpg", 4, 4)
        time.sleep(0.3)
        p.stop()  # connection refused from now on
        for i in range(60):
            put_image(d.root, f"during/{i}.png", 4, 4)
        time.sleep(20)
        self.assertTrue(d.alive())
        p2 = FaultProxy(d.bed.endpoint, port=port).start()
        self.addCleanup(p2.stop)
        d.wait_mirror(120)
        self.assertIn("retrying", d.log())
        self.assertEqual(d.stop(), 0)


class Crashes(DaemonCase):
    def test_sigkill_at_random_moments(self):
        rng = random.Random(int(os.environ.get("IMGSYNC_TEST_SEED", "4242")))
        d = self.daemon(settle_ms=50)
        names = [f"c{i % 4}/f{i}.jpg" for i in range(40)]
        kills = 0
        deadline = time.monotonic() + 240
        while kills < 22 and time.monotonic() < deadline:
            d.start()
            stop_at = time.monotonic() + rng.uniform(0.05, 0.8)
            while time.monotonic() < stop_at:
                op = rng.random()
                name = rng.choice(names)
                path = d.root / name
                if op < 0.45 or not path.exists():
                    put_image(d.root, name, rng.randint(1, 60), rng.randint(1, 60),
                              os.urandom(8))
                elif op < 0.65:
                    path.unlink()
                elif op < 0.85:
                    target = d.root / rng.choice(names)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(path, target)
                else:
                    with open(path, "r+b") as f:
                        f.seek(0, 2)
                        f.write(os.urandom(16))
                time.sleep(rng.uniform(0, 0.02))
            d.kill()
            kills += 1
        self.assertGreaterEqual(kills, 20)
        d.start()
        d.wait_mirror(180)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
