"""Thumbnails (issue 14): imgsyncd with thumbnails.enabled against moto
(signatures and IAM checked), the helper it starts (thumb/, sandboxed) and
the bucket and table read back with boto3.

- every synced image gets a thumbnail under the prefix, named in its item
  (Thumbnail); a JPEG with EXIF orientation 6 gets an upright one, and
  its item the displayed size;
- a corrupt image and a file that is no image fail only their thumbnail,
  with the reason in the log; the sync and the daemon go on;
- deleting an image deletes its thumbnail; renaming it moves it; a folder
  named like the prefix in the watch root is never mirrored; verify counts
  no thumbnail as an orphan;
- a helper killed by its time limit fails that one image, and the next
  image gets its thumbnail from a new helper;
- rows synced while thumbnails were off get theirs when they are turned on
  (and a restart finishes what is left: the rows say what is).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import tempfile
import unittest
from pathlib import Path

import testbed
from common import BIN
from daemon import Daemon, wait_until
from images import png
from test_check_remote import EX_NOPERM, moto_policy

PREFIX = ".thumbnails/"


class ThumbDaemon(Daemon):
    """imgsyncd with a thumbnails section; its thumbnails are not part of
    the mirror the base class compares."""

    def __init__(self, bed, thumbs: str = "", enabled: bool = True, **kw):
        self.thumbs = thumbs
        self.enabled = enabled
        super().__init__(bed, **kw)

    def conf_text(self, **over) -> str:
        return super().conf_text(**over) + (
            f'thumbnails: {{ enabled = {"true" if self.enabled else "false"}; '
            f'helper = "{BIN / "imgsync-thumb"}"; {self.thumbs} }};\n')

    def remote_objects(self) -> dict:
        return {k: o for k, o in super().remote_objects().items()
                if not k.startswith(PREFIX)}

    def thumbnails(self) -> dict:
        return {k: o for k, o in super().remote_objects().items() if k.startswith(PREFIX)}


def make_image(path: Path, w: int, h: int, orientation: int = 0):
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [str(BIN / "thumbimg"), "make", str(path), str(w), str(h)]
    if orientation:
        args.append(str(orientation))
    subprocess.run(args, check=True, timeout=60)


class Thumbnails(unittest.TestCase):
    maxDiff = None

    def daemon(self, **kw) -> ThumbDaemon:
        d = ThumbDaemon(testbed.auth_bed(), **kw)
        self.addCleanup(d.close)
        return d

    def read_thumb(self, d: ThumbDaemon, key: str) -> tuple[str, str]:
        """(Content-Type, 'W H quarters') of the thumbnail at key."""
        obj = d.bed.s3().get_object(Bucket=d.bucket, Key=key)
        with tempfile.NamedTemporaryFile(suffix=".webp") as f:
            f.write(obj["Body"].read())
            f.flush()
            out = subprocess.run([str(BIN / "thumbimg"), "read", f.name], check=True,
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        return obj["ContentType"], out

    def test_thumbnails_follow_uploads_deletes_and_renames(self):
        d = self.daemon()
        make_image(d.root / "o6.jpg", 400, 300, 6)
        make_image(d.root / "a.png", 800, 600)
        make_image(d.root / "sub/b.webp", 100, 50)
        good = png(40, 30)
        # A PNG's header and its end, no picture between: typed image/png,
        # undecodable.
        (d.root / "bad.png").write_bytes(good[:33] + good[-12:])
        (d.root / "junk.jpg").write_bytes(b"not a picture at all\n" * 10)
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        d.wait_mirror(30)
        items = d.remote_items()
        thumbs = d.thumbnails()
        self.assertEqual(sorted(thumbs), [PREFIX + "a.png.webp", PREFIX + "o6.jpg.webp",
                                          PREFIX + "sub/b.webp.webp"])
        it = items["o6.jpg"]
        self.assertEqual(it["Thumbnail"]["S"], PREFIX + "o6.jpg.webp")
        self.assertEqual((it["Width"]["N"], it["Height"]["N"], it["Orientation"]["N"]),
                         ("300", "400", "6"))
        # Upright: coded 400x300 with a red top-left quarter; shown turned
        # 90 degrees clockwise, the red quarter is top-right.
        self.assertEqual(self.read_thumb(d, PREFIX + "o6.jpg.webp"),
                         ("image/webp", "240 320 wrww"))
        self.assertEqual(self.read_thumb(d, PREFIX + "a.png.webp"),
                         ("image/webp", "320 240 rwww"))
        self.assertEqual(items["sub/b.webp"]["Thumbnail"]["S"], PREFIX + "sub/b.webp.webp")
        # Failures: only the thumbnail, with the reason.
        for name in ("bad.png", "junk.jpg"):
            self.assertIn(name, items)
            self.assertNotIn("Thumbnail", items[name], name)
        log = d.log()
        self.assertRegex(log, r"bad\.png: no thumbnail: cannot decode the image")
        self.assertIn("junk.jpg: no thumbnail: not an image", log)

        d.start()
        wait_until(lambda: "watching" in d.log(), 30, what="start-up")
        # Delete: item, object and thumbnail. Rename: the thumbnail moves.
        (d.root / "a.png").unlink()
        os.rename(d.root / "sub/b.webp", d.root / "sub/c.webp")
        # A folder named like the prefix is not mirrored.
        (d.root / ".thumbnails").mkdir()
        (d.root / ".thumbnails/x.png").write_bytes(good)
        d.wait_mirror(60, local={k: v for k, v in d.local().items()
                                 if not k.startswith(PREFIX)})
        wait_until(lambda: sorted(d.thumbnails()) == [PREFIX + "o6.jpg.webp",
                                                      PREFIX + "sub/c.webp.webp"],
                   60, what=f"the thumbnails to follow: {sorted(d.thumbnails())}")
        wait_until(lambda: "Thumbnail" in d.remote_items().get("sub/c.webp", {}), 30,
                   what="the renamed item's Thumbnail")
        self.assertEqual(d.remote_items()["sub/c.webp"]["Thumbnail"]["S"],
                         PREFIX + "sub/c.webp.webp")
        self.assertNotIn(PREFIX + "x.png", d.remote_items())
        # Counted since the start: the renamed image's new thumbnail.
        metrics = subprocess.run(["curl", "-sS", "--max-time", "20", "--unix-socket",
                                  str(d.dir / "imgsync.sock"), "http://localhost/metrics"],
                                 capture_output=True, text=True, timeout=30).stdout
        self.assertIn('imgsync_thumbnails_total{result="made"} 1\n', metrics)
        self.assertIn('imgsync_thumbnails_total{result="failed"} 0\n', metrics)
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        # verify: the thumbnails are no orphans (the local .thumbnails/
        # folder is not mirrored, so not missing either).
        self.assertEqual(self.verify(d), (0, {}))
        # verify checks them: one gone behind the daemon's back, one that
        # no item names; --repair --delete-orphans mends both.
        s3 = d.bed.s3()
        s3.delete_object(Bucket=d.bucket, Key=PREFIX + "o6.jpg.webp")
        s3.put_object(Bucket=d.bucket, Key=PREFIX + "ghost.png.webp", Body=b"RIFF")
        rc, kinds = self.verify(d)
        self.assertEqual((rc, kinds), (1, {"thumbs_missing": 1, "orphan_thumbs": 1}))
        rc, kinds = self.verify(d, "--repair", "--delete-orphans")
        self.assertEqual(rc, 1)  # what it found; repaired meanwhile
        self.assertEqual(sorted(d.thumbnails()), [PREFIX + "o6.jpg.webp",
                                                  PREFIX + "sub/c.webp.webp"])
        self.assertEqual(self.verify(d), (0, {}))

    def test_the_packaged_iam_policy_is_enough(self):
        # A user with exactly packaging/iam-policy.json's actions.
        bed = testbed.auth_bed()
        bucket = bed.bucket()
        creds = bed.user(moto_policy(bucket))
        d = ThumbDaemon(bed, creds=creds, bucket=bucket)
        self.addCleanup(d.close)
        make_image(d.root / "p.png", 90, 60)
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        self.assertEqual(d.remote_items()["p.png"]["Thumbnail"]["S"], PREFIX + "p.png.webp")
        self.assertIn(PREFIX + "p.png.webp", d.thumbnails())
        # Without UpdateItem the item cannot name it: said, retried later.
        bucket = bed.bucket()
        d = ThumbDaemon(bed, creds=bed.user(moto_policy(bucket, "dynamodb:UpdateItem")),
                        bucket=bucket)
        self.addCleanup(d.close)
        make_image(d.root / "q.png", 90, 60)
        d.start()
        wait_until(lambda: "q.png: thumbnail not stored yet (UpdateItem" in d.log(), 60,
                   what="the refusal in the log")
        self.assertNotIn("Thumbnail", d.remote_items()["q.png"])

    def verify(self, d: ThumbDaemon, *args: str) -> tuple[int, dict]:
        """imgsyncd --verify: its exit status and the kinds it counted."""
        p = subprocess.run([str(BIN / "imgsyncd"), "-c", str(d.conf), "--verify", *args],
                           capture_output=True, text=True, timeout=300, env=d.env())
        kinds = {m[0]: int(m[1]) for m in re.findall(r"^([a-z_]+) +(\d+)$", p.stdout, re.M)
                 if int(m[1]) > 0}
        self.assertIn(p.returncode, (0, 1), p.stdout + p.stderr[-2000:])
        return p.returncode, kinds

    def test_a_helper_past_its_time_fails_one_thumbnail_only(self):
        d = self.daemon(thumbs="timeout_ms = 100;")
        # Interlaced: libpng must decode all 6000x6000 first, well past
        # 100 ms; then a small one, which a new helper makes.
        make_image(Path(str(d.root / "big.png") + "[interlace]"), 6000, 6000)
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        self.assertIn("big.png: no thumbnail: the thumbnail helper took longer than its "
                      "100 ms", d.log())
        make_image(d.root / "small.png", 64, 64)
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        items = d.remote_items()
        self.assertNotIn("Thumbnail", items["big.png"])
        self.assertEqual(items["small.png"]["Thumbnail"]["S"], PREFIX + "small.png.webp")

    def test_a_helper_that_cannot_start_fails_no_image(self):
        d = self.daemon()
        make_image(d.root / "p.png", 70, 50)
        # Missing: refused at start, with the key.
        d.write_conf(d.conf_text().replace(str(BIN / "imgsync-thumb"), "/nonexistent/helper"))
        p = d.once(60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("thumbnails.helper /nonexistent/helper: No such file or directory",
                      d.log())
        # Starts but exits at once (as it does when it cannot enter its
        # sandbox): the images keep wanting theirs; nothing is failed.
        d.write_conf(d.conf_text().replace(str(BIN / "imgsync-thumb"), "/bin/false"))
        self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
        # Said once, as whichever came first: its exit, or the request
        # it could not take any more.
        self.assertRegex(d.log(), r"thumbnails: (the thumbnail helper exited with status 1|"
                                  r"sending to the thumbnail helper: Broken pipe); trying again")
        self.assertNotIn("no thumbnail", d.log())
        self.assertNotIn("Thumbnail", d.remote_items()["p.png"])
        d.write_conf()
        self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
        self.assertEqual(d.remote_items()["p.png"]["Thumbnail"]["S"], PREFIX + "p.png.webp")

    def check_remote(self, d: ThumbDaemon) -> tuple[int, str]:
        p = subprocess.run([str(BIN / "imgsyncd"), "--check-remote", "-c", str(d.conf)],
                           capture_output=True, text=True, timeout=120, env=d.env())
        return p.returncode, p.stdout + p.stderr

    def test_check_remote_probes_what_thumbnails_need(self):
        bed = testbed.auth_bed()
        bucket = bed.bucket()
        d = ThumbDaemon(bed, creds=bed.user(moto_policy(bucket)), bucket=bucket)
        self.addCleanup(d.close)
        rc, out = self.check_remote(d)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^ok +dynamodb:UpdateItem ")
        self.assertRegex(out, r"(?m)^ok +thumbnail helper +/.*imgsync-thumb .*its sandbox holds")
        # Without thumbnails neither is probed.
        d.enabled = False
        d.write_conf()
        rc, out = self.check_remote(d)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("UpdateItem", out)
        self.assertNotIn("thumbnail helper", out)
        # The policy without UpdateItem: named, and among the missing.
        d = ThumbDaemon(bed, creds=bed.user(moto_policy(bucket, "dynamodb:UpdateItem")),
                        bucket=bucket)
        self.addCleanup(d.close)
        rc, out = self.check_remote(d)
        self.assertEqual(rc, EX_NOPERM, out)
        self.assertRegex(out, r"(?m)^FAIL +dynamodb:UpdateItem .*access denied")
        self.assertRegex(out, r"(?m)^missing IAM actions:.*dynamodb:UpdateItem")
        # A helper that cannot work here: said, with what it said.
        d.write_conf(d.conf_text().replace(str(BIN / "imgsync-thumb"), "/bin/false"))
        rc, out = self.check_remote(d)
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^FAIL +thumbnail helper +/bin/false : it cannot work here")

    def test_an_image_deleted_while_its_thumbnail_is_made_leaves_none(self):
        # The delete (item, object, thumbnail) runs while the helper works
        # on the image (a helper that takes 3 s to start); the thumbnail
        # stored after it must not stay behind.
        d = self.daemon()
        slow = d.dir / "slow-helper"
        slow.write_text(f'#!/bin/sh\nsleep 3\nexec "{BIN / "imgsync-thumb"}" "$@"\n')
        slow.chmod(0o755)
        d.write_conf(d.conf_text().replace(str(BIN / "imgsync-thumb"), str(slow)))
        d.start()
        wait_until(lambda: "watching" in d.log(), 30, what="start-up")
        make_image(d.dir / "p.png", 64, 64)
        os.rename(d.dir / "p.png", d.root / "p.png")
        wait_until(lambda: "uploaded p.png" in d.log(), 30, 0.02, what="p.png uploaded")
        (d.root / "p.png").unlink()
        wait_until(lambda: "deleted p.png" in d.log(), 30, 0.02, what="p.png deleted")
        self.assertNotIn("thumbnail of p.png", d.log(), "the helper was not slow enough")
        wait_until(lambda: "p.png: thumbnail dropped" in d.log(), 60, what="the dropped thumbnail")
        self.assertEqual(d.thumbnails(), {})
        self.assertEqual(d.remote_objects(), {})
        self.assertEqual(d.remote_items(), {})

    def test_turned_on_later_the_synced_images_get_theirs(self):
        d = self.daemon(enabled=False)
        for i in range(5):
            make_image(d.root / f"p{i}.png", 50 + i, 40)
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        self.assertEqual(d.thumbnails(), {})
        self.assertNotIn("Thumbnail", d.remote_items()["p0.png"])
        d.enabled = True
        d.write_conf()
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        self.assertEqual(len(d.thumbnails()), 5)
        items = d.remote_items()
        for i in range(5):
            self.assertEqual(items[f"p{i}.png"]["Thumbnail"]["S"], f"{PREFIX}p{i}.png.webp")
        turned_on = "thumbnails: turned on: every synced image without one wants one"
        self.assertEqual(d.log().count(turned_on), 1)
        # on since the last start: the table is not walked again
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        self.assertEqual(d.log().count(turned_on), 1, "walked again while they stayed on")
        # a row verify rebuilds (its state row lost) wants its thumbnail
        # again, and the next run makes it
        def thumb_of(path: str):
            with sqlite3.connect(d.state_path) as db:
                row = db.execute("SELECT thumb FROM files WHERE path = ?",
                                 (path.encode(),)).fetchone()
            return row[0] if row else "no row"
        with sqlite3.connect(d.state_path) as db:
            db.execute("DELETE FROM files WHERE path = ?", (b"p1.png",))
        rc, _ = self.verify(d, "--repair")
        self.assertIn(thumb_of("p1.png"), ("", f"{PREFIX}p1.png.webp"),
                      "the rebuilt row wants its thumbnail, or has it")
        self.assertEqual(d.once(180).returncode, 0, d.log()[-3000:])
        self.assertEqual(thumb_of("p1.png"), f"{PREFIX}p1.png.webp")


if __name__ == "__main__":
    unittest.main()
