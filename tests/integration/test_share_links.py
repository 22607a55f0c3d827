"""Share links (issue 14): `imgsyncctl url NAME [--expires DURATION]` and
POST /url answer a presigned GET of a synced file. Fetched with curl, as
someone holding the link would: the bytes are the file's. The default is an
hour, the most seven days; a link from credentials that expire sooner is cut
to their expiry (credential_process with an Expiration), and the answer says
so. s3rver checks a presigned URL's expiry (moto does not look at query
signatures at all): a two-second link works, then stops working. RGW, which
also checks the signature, is tests/system/test_rgw.py's Control case."""

from __future__ import annotations

import json
import re
import subprocess
import time
import unittest
import urllib.parse

import testbed
from common import BIN, fetch
from daemon import Daemon, wait_until
from images import make

FILES = {"a/one.png": (10, 20), "sp ace/Crème +&=?.jpg": (30, 40)}


def put_files(d: Daemon) -> dict:
    out = {}
    for rel, (w, h) in FILES.items():
        data, _ = make(rel, w, h, rel.encode())
        (d.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (d.root / rel).write_bytes(data)
        out[rel] = data
    return out


class Links(unittest.TestCase):
    maxDiff = None

    def ctl(self, d: Daemon, *args) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "imgsyncctl"), "-s", str(d.dir / "imgsync.sock"),
                               *args], capture_output=True, timeout=60)

    def api(self, d: Daemon, body) -> tuple[int, dict]:
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "--unix-socket",
                            str(d.dir / "imgsync.sock"), "-X", "POST", "-w", "\n%{http_code}",
                            "--data-binary", body if isinstance(body, str) else json.dumps(body),
                            "http://localhost/url"], capture_output=True, timeout=30)
        text, _, code = p.stdout.decode().rpartition("\n")
        return int(code), json.loads(text)

    def started(self, d: Daemon) -> dict:
        files = put_files(d)
        d.start()
        try:
            wait_until(lambda: set(FILES) <= set(d.remote_items()), 60, what="the files synced")
        except AssertionError:
            raise AssertionError(d.log()[-3000:]) from None
        return files

    def expires_param(self, url: str) -> int:
        return int(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Expires"][0])


class LinksMoto(Links):
    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.noauth_bed()

    def test_a_link_gives_the_file_to_whoever_holds_it(self):
        d = Daemon(self.bed, creds=self.bed.admin)
        self.addCleanup(d.close)
        files = self.started(d)
        for rel, data in files.items():
            p = self.ctl(d, "url", rel)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.decode().splitlines()
            self.assertEqual(len(lines), 1, "the link alone on stdout, for scripts")
            url = lines[0]
            self.assertEqual(self.expires_param(url), 3600, "the default: an hour")
            self.assertRegex(p.stderr.decode(),
                             r"^expires in 1h 0m 0s \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\n$")
            self.assertEqual(fetch(url), (200, data), rel)
        self.assertIn("link to a/one.png for 3600 s", d.log(), "who asked is logged")
        # --expires and --json
        p = self.ctl(d, "--json", "url", "--expires", "7d", "a/one.png")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual((doc["FileName"], doc["expires_in"], doc["capped"]),
                         ("a/one.png", 604800, False))
        self.assertEqual(self.expires_param(doc["url"]), 604800)
        self.assertEqual(fetch(doc["url"]), (200, files["a/one.png"]))
        for arg, secs in (("90", 90), ("30m", 1800), ("12h", 43200)):
            p = self.ctl(d, "url", "--expires", arg, "a/one.png")
            self.assertEqual(self.expires_param(p.stdout.decode().strip()), secs, arg)

    def test_what_gets_no_link(self):
        d = Daemon(self.bed, creds=self.bed.admin)
        self.addCleanup(d.close)
        self.started(d)
        # a file that is not there, or not synced (syncing paused), gets none
        self.assertEqual(self.ctl(d, "pause").returncode, 0)
        (d.root / "later.png").write_bytes(make("later.png", 2, 2, b"l")[0])
        time.sleep(0.5)
        for name in ("a/none.png", "later.png"):
            p = self.ctl(d, "url", name)
            self.assertEqual((p.returncode, p.stdout, p.stderr),
                             (1, b"", b"imgsyncctl: No synced file by that name\n"), name)
        for body, why in (({"FileName": "a/one.png", "ExpiresIn": 0}, "ExpiresIn"),
                          ({"FileName": "a/one.png", "ExpiresIn": 604801}, "ExpiresIn"),
                          ({"FileName": "a/one.png", "ExpiresIn": "1h"}, "ExpiresIn"),
                          ({"FileName": "a/one.png", "ExpiresIn": 1.5}, "ExpiresIn"),
                          ({"FileName": "../etc/passwd"}, "escapes"),
                          ({}, "FileName missing"),
                          ("{", "Malformed JSON")):
            status, doc = self.api(d, body)
            self.assertEqual(status, 400, body)
            self.assertIn(why, doc["error"], body)
        status, doc = self.api(d, {"FileName": "a/one.png", "ExpiresIn": 5})
        self.assertEqual((status, doc["expires_in"]), (200, 5))
        # the CLI refuses what it cannot send
        for args in (("url", "--expires", "8d", "a/one.png"), ("url", "--expires", "0", "x"),
                     ("url", "--expires", "1w", "x"), ("status", "--expires", "1h")):
            p = self.ctl(d, *args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(b"--expires", p.stderr, args)

    def test_a_link_ends_with_the_credentials_that_signed_it(self):
        d = Daemon(self.bed, creds=("unused", "unused"))
        self.addCleanup(d.close)
        text = d.conf_text()
        cred_line = [l for l in text.splitlines() if l.startswith("credentials:")][0]
        d.write_conf(text.replace(cred_line, 'credentials: { profile = "deploy"; };'))
        helper = d.dir / "helper.sh"
        akid, secret = self.bed.admin
        helper.write_text(
            "#!/bin/sh\nprintf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": "
            "\"%s\", \"SessionToken\": \"tok\", \"Expiration\": \"%s\"}' "
            f"'{akid}' '{secret}' \"$(date -u -d '+20 minutes' +%Y-%m-%dT%H:%M:%SZ)\"\n")
        helper.chmod(0o755)
        (d.dir / "config").write_text(f"[profile deploy]\ncredential_process = {helper}\n")
        (d.dir / "credentials").write_text("")
        d.extra_env.update({"AWS_CONFIG_FILE": str(d.dir / "config"),
                            "AWS_SHARED_CREDENTIALS_FILE": str(d.dir / "credentials")})
        self.started(d)
        p = self.ctl(d, "url", "--expires", "2h", "a/one.png")
        self.assertEqual(p.returncode, 0, p.stderr)
        url = p.stdout.decode().strip()
        secs = self.expires_param(url)
        self.assertTrue(1100 < secs <= 1200, secs)
        self.assertIn("X-Amz-Security-Token=tok", url, "the session token travels in the link")
        self.assertRegex(p.stderr.decode(), r"expires in (19|20)m \d+s \(at .*\): cut to the "
                         r"expiry of the daemon's credentials\n$")
        status, doc = self.api(d, {"FileName": "a/one.png", "ExpiresIn": 600})
        self.assertEqual((status, doc["expires_in"], doc["capped"]), (200, 600, False),
                         "a link within the credentials' life is not cut")


class LinksExpire(Links):
    """s3rver refuses a presigned URL past X-Amz-Date + X-Amz-Expires."""

    def test_a_link_stops_working_when_it_expires(self):
        s3 = testbed.S3rver()
        self.addCleanup(s3.stop)
        ddb = testbed.Dynalite()
        self.addCleanup(ddb.stop)
        d = Daemon(s3, creds=s3.admin, table=ddb.table())
        self.addCleanup(d.close)
        d.write_conf(d.conf_text().replace(
            f'dynamodb: {{ table = "{d.table}"; endpoint = "{d.endpoint}"; }}',
            f'dynamodb: {{ table = "{d.table}"; endpoint = "{ddb.endpoint}"; }}'))
        files = put_files(d)
        d.start()
        wait_until(lambda: self.ctl(d, "url", "a/one.png").returncode == 0, 60,
                   what="a/one.png synced")
        t0 = time.time()
        p = self.ctl(d, "url", "--expires", "2", "a/one.png")
        self.assertEqual(p.returncode, 0, p.stderr)
        url = p.stdout.decode().strip()
        self.assertEqual(fetch(url), (200, files["a/one.png"]))
        # X-Amz-Date has whole seconds: past 2 s after the next one
        time.sleep(max(0.0, t0 + 4 - time.time()))
        status, body = fetch(url)
        self.assertEqual(status, 403, body)
        self.assertRegex(body.decode(), r"<Code>AccessDenied</Code>.*Request has expired")
        # a fresh link works again
        p = self.ctl(d, "url", "a/one.png")
        self.assertEqual(fetch(p.stdout.decode().strip()), (200, files["a/one.png"]))


if __name__ == "__main__":
    unittest.main()
