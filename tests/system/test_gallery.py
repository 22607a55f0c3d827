"""The gallery in a real browser (issue 14): Debian's chromium, headless,
driven by npm's playwright-core (tests/system/gallery.mjs), against
imgsyncd with thumbnails and web.listen. S3 is s3rver, which checks a
presigned link's signature and expiry (moto with auth answers 500 to a
presigned GET, and moto without auth checks neither); DynamoDB is moto.
What the browser saw is checked here, and the bucket, the table and the
trash are read back with boto3.

- the grid shows the thumbnails of 300 synced images, newest first, and
  paging reaches every one; folders with breadcrumbs and search narrow
  them, and so does the type;
- the detail view shows every attribute, and its image, fetched through
  the presigned link, is the file byte for byte;
- a share link for 3 s, fetched by curl, gives the image, then 403;
- an upload through the file input ends as object, item and thumbnail
  (and one dropped on the page as a file and an item);
  a delete confirmed in the page removes all three and the file lands in
  the trash;
- names made to inject script (`<img src=x onerror=alert(1)>.png` and
  `"><script>alert(1)</script>.jpg`) show as text: no dialog opens, no
  element is injected, and the console has no CSP violation; markup with
  an inline handler put in by hand does not run (the CSP is enforced);
- the status bar stays live (the uploads' thumbnails show up in it);
- the screenshots of the grid and the detail view are saved (the README
  shows them): $IMGSYNC_SCREENSHOTS, else beside the binaries.

Needs chromium (installed with apt-get when missing, as root) and npm.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import testbed
from common import BIN
from daemon import Daemon, wait_until
from images import png

HERE = Path(__file__).resolve().parent
ODD_DIR = '"><script>alert(1)<'  # '/' cannot be in a name: the rest is a file below
XSS = ["<img src=x onerror=alert(1)>.png", '"><script>alert(1)</script>.jpg']


def chromium() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise unittest.SkipTest("needs Debian's chromium (apt-get install chromium), "
                                "installed by this test only as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
                   check=True, env=env, timeout=1200, stdout=subprocess.DEVNULL)
    return shutil.which("chromium")


class GalleryDaemon(Daemon):
    def __init__(self, bed, ddb_endpoint: str, **kw):
        self.port = testbed.free_port()
        self.ddb_endpoint = ddb_endpoint
        super().__init__(bed, **kw)

    def conf_text(self, **over) -> str:
        text = super().conf_text(**over).replace(
            f'dynamodb: {{ table = "{self.table}"; endpoint = "{self.endpoint}"; }}',
            f'dynamodb: {{ table = "{self.table}"; endpoint = "{self.ddb_endpoint}"; }}')
        return text + (
            f'thumbnails: {{ enabled = true; helper = "{BIN / "imgsync-thumb"}"; }};\n'
            f'web: {{ listen = "127.0.0.1:{self.port}"; }};\n')

    def remote_items(self) -> dict:
        items = {}
        ddb = testbed.noauth_bed().dynamodb()
        for page in ddb.get_paginator("scan").paginate(TableName=self.table):
            for it in page["Items"]:
                items[it["FileName"]["S"]] = it
        return items


class Gallery(unittest.TestCase):
    maxDiff = None

    def test_the_gallery_in_chromium(self):
        browser = chromium()
        npm = testbed.ensure_npm_packages()
        s3 = testbed.S3rver()
        self.addCleanup(s3.stop)
        moto = testbed.noauth_bed()
        table = moto.table()
        d = GalleryDaemon(s3, moto.endpoint, creds=s3.admin, table=table, level="info")
        self.addCleanup(d.close)

        # 300 images: 219 JPEGs and one PNG at the root, 50 in trips/,
        # 29 in trips/alps/, one in the folder the odd name makes; the
        # newest first by mtime, one second apart
        names, now = [], time.time()
        for i in range(219):
            names.append(f"photo-{i:03d}.jpg")
        names += [f"trips/beach-{i:02d}.jpg" for i in range(50)]
        names += [f"trips/alps/peak-{i:02d}.jpg" for i in range(29)]
        names += XSS
        self.assertEqual(len(names), 300)
        for i, name in enumerate(names):
            p = d.root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".png"):
                p.write_bytes(png(40, 30))
            else:
                subprocess.run([str(BIN / "thumbimg"), "make", str(p), str(60 + i % 40),
                                str(40 + i % 30)], check=True, timeout=60)
            os.utime(p, (now - i, now - i))
        files = {n: hashlib.sha256((d.root / n).read_bytes()).hexdigest() for n in names}
        d.start()
        wait_until(lambda: sum(1 for it in d.remote_items().values() if "Thumbnail" in it) == 300,
                   300, interval=1, what="300 items with thumbnails")

        upload = d.dir / "from-the-browser.jpg"
        subprocess.run([str(BIN / "thumbimg"), "make", str(upload), "90", "60"], check=True)
        shots = Path(os.environ.get("IMGSYNC_SCREENSHOTS") or BIN.parent / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([str(BIN / "imgsyncctl"), "-s", f"{d.dir}/imgsync.sock", "web-login"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        plan = {"login": p.stdout.strip(), "npm": str(npm), "chromium": browser,
                "shots": str(shots), "tmp": tmp.name, "oddFolder": ODD_DIR,
                "search": "photo-01", "detail": "photo-007.jpg",
                "upload": str(upload), "del": "trips/beach-03.jpg"}
        run = subprocess.run(["node", str(HERE / "gallery.mjs")], input=json.dumps(plan),
                             capture_output=True, text=True, timeout=900)
        self.assertEqual(run.returncode, 0, run.stderr[-4000:] + d.log()[-3000:])
        report = json.loads(run.stdout)
        steps = {s["name"]: s for s in report["steps"]}

        root = [n for n in names if "/" not in n]
        newest_first = lambda ns: sorted(ns, key=names.index)  # noqa: E731
        self.assertEqual(steps["root"]["names"], newest_first(root))
        self.assertEqual(steps["root"]["folders"], [ODD_DIR, "trips"])
        self.assertEqual(steps["trips"]["names"],
                         [n.split("/")[1] for n in names if n.count("/") == 1 and
                          n.startswith("trips/")])
        self.assertEqual(steps["trips"]["crumbs"], ["root", "trips"])
        self.assertEqual(steps["alps"]["names"],
                         [n.split("/")[2] for n in names if n.startswith("trips/alps/")])
        self.assertEqual(steps["alps"]["crumbs"], ["root", "trips", "alps"])
        self.assertEqual(steps["odd"]["names"], ["script>.jpg"])
        shown = sum(len(steps[k]["thumbs"]) for k in ("root", "trips", "alps", "odd"))
        self.assertEqual(shown, 300, "every image on some page")
        for k in ("root", "trips", "alps", "odd"):
            for size in steps[k]["thumbs"]:
                self.assertIsNotNone(size, f"{k}: an image without a thumbnail")
                self.assertTrue(0 < max(size) <= 320 and min(size) > 0, (k, size))
        self.assertEqual(steps["search"]["names"],
                         newest_first([n for n in names if "photo-01" in n]))
        self.assertEqual(sorted(steps["search-odd"]["names"]), sorted(XSS))
        self.assertEqual(steps["type"]["names"], [XSS[0]])

        # injected names are text
        self.assertEqual(steps["root"]["injected"], 0)
        self.assertIn(XSS[0], steps["root"]["names"])
        self.assertEqual(report["dialogs"], [], "no dialog opened")
        self.assertEqual(report["csp"], [], "no CSP violation")
        self.assertEqual(report["pageErrors"], [])

        detail = steps["detail"]
        self.assertEqual(detail["sha256"], files["photo-007.jpg"])
        self.assertIn("X-Amz-Signature=", detail["src"])
        attrs = dict(detail["attrs"])
        for k in ("FileName", "Bucket", "Source", "Timestamp", "Size", "Type", "Width",
                  "Height", "SHA256", "ETag", "MTime", "Thumbnail"):
            self.assertIn(k, attrs)
        self.assertEqual(attrs["SHA256"], files["photo-007.jpg"])

        share = steps["share"]
        self.assertEqual(share["before"], ["200", files["photo-007.jpg"]])
        self.assertEqual(share["after"][0], "403", "the link stops working after 3 s")

        self.assertRegex(steps["upload"]["text"], r"synced")
        items = d.remote_items()
        objects = {o["Key"] for o in s3.s3().list_objects_v2(Bucket=d.bucket).get("Contents", [])}
        up = items.get("trips/from-the-browser.jpg")
        self.assertIsNotNone(up, "the upload's item")
        self.assertIn("trips/from-the-browser.jpg", objects)
        wait_until(lambda: "Thumbnail" in d.remote_items()["trips/from-the-browser.jpg"], 60,
                   what="the upload's thumbnail")
        thumb = d.remote_items()["trips/from-the-browser.jpg"]["Thumbnail"]["S"]
        objects = {o["Key"] for o in s3.s3().list_objects_v2(Bucket=d.bucket).get("Contents", [])}
        self.assertIn(thumb, objects)
        self.assertEqual((d.root / "trips" / "from-the-browser.jpg").read_bytes(),
                         upload.read_bytes())

        self.assertNotIn("beach-03.jpg", steps["delete"]["left"])
        self.assertNotIn("trips/beach-03.jpg", items)
        self.assertNotIn("trips/beach-03.jpg", objects)
        self.assertNotIn(".thumbnails/trips/beach-03.jpg.webp", objects)
        self.assertFalse((d.root / "trips" / "beach-03.jpg").exists())
        self.assertTrue(list((d.dir / "trash").rglob("beach-03.jpg")), "in the trash")
        self.assertRegex(d.log(), r"web: session 1 \(uid \d+, 127\.0\.0\.1\): DELETE /delete "
                                  r"trips/beach-03\.jpg")
        self.assertRegex(steps["status"]["text"], r"queued \d+ in flight \d+ failed 0 "
                                                  r"held deletions 0 root: ok thumbnails 302")
        self.assertRegex(steps["drop"]["text"], r"synced")
        self.assertIn("trips/dropped.jpg", d.remote_items(), "the dropped file's item")
        self.assertEqual((d.root / "trips" / "dropped.jpg").read_bytes(), upload.read_bytes())
        probe = steps["csp-probe"]
        self.assertFalse(probe["pwned"], "an inline handler ran")
        self.assertTrue(probe["violations"], "the CSP refused the inline handler, and said so")
        for shot in ("gallery-grid.png", "gallery-detail.png"):
            self.assertGreater((shots / shot).stat().st_size, 10000, shot)


if __name__ == "__main__":
    unittest.main()
