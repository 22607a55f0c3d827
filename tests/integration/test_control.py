"""The control socket of a running imgsyncd, through `curl --unix-socket`,
against moto with signature and policy checks on; results read back with
boto3."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import socket
import subprocess
import threading
import time
import unittest
from pathlib import Path

import testbed
from common import FULL_POLICY
from daemon import Daemon, wait_until
from faultproxy import FaultProxy
from images import make


def curl(sock: str, method: str, path: str, body=None, raw: bytes | None = None,
         headers=(), timeout: float = 30):
    """(status, parsed JSON or text, headers text) of one request."""
    args = ["curl", "-sS", "--unix-socket", sock, "-X", method, "-D", "-",
            "--max-time", str(timeout)]
    for h in headers:
        args += ["-H", h]
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        args += ["--data-binary", "@-", "-H", "Content-Type: application/json"]
    args.append(f"http://localhost{path}")
    proc = subprocess.run(args, input=data, capture_output=True, timeout=timeout + 10)
    if proc.returncode != 0:
        raise AssertionError(f"curl {method} {path}: {proc.stderr.decode()}")
    head, _, text = proc.stdout.decode("utf-8", "replace").partition("\r\n\r\n")
    status = int(head.split()[1])
    try:
        doc = json.loads(text)
    except ValueError:
        doc = text
    return status, doc, head


def raw_request(sock: str, data: bytes, timeout: float = 15) -> bytes:
    """Sends bytes, half-closes, returns everything the server answers
    before it closes (a reset counts as a close: the server may drop a
    connection with unread input)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    out = b""
    try:
        s.connect(sock)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        return out
    finally:
        s.close()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class ControlCase(unittest.TestCase):
    maxDiff = None

    def daemon(self, bed=None, **kw) -> Daemon:
        d = Daemon(bed or testbed.auth_bed(), **kw)
        self.addCleanup(d.close)
        return d

    def start(self, d: Daemon, user: str | None = None) -> str:
        d.start(user=user)
        sock = str(d.dir / "imgsync.sock")
        wait_until(lambda: "listening on" in d.log(), 30, what="the control socket")
        return sock

    def drop(self, d: Daemon, names) -> dict:
        files = {}
        for n in names:
            data, _ = make(n, 3, 5, n.encode())
            p = d.root / n
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            files[n] = data
        return files


class Endpoints(ControlCase):
    def test_every_endpoint_and_error(self):
        d = self.daemon(prefix="img/", extra='include = [ "*.png", "*.jpg" ];')
        (d.root / "sub").mkdir()
        self.drop(d, ["a.png", "sub/b.jpg", "c.png"])
        sock = self.start(d)
        d.wait_mirror(60)
        s3, ddb = d.bed.s3(), d.bed.dynamodb()

        # /status
        st, doc, _ = curl(sock, "GET", "/status")
        self.assertEqual(st, 200)
        for k in ("state", "queued", "in_flight", "uploaded", "failed", "bytes",
                  "last_error", "uptime_s", "rate", "done", "version"):
            self.assertIn(k, doc)
        self.assertEqual(doc["state"], "running")
        self.assertEqual(doc["uploaded"], 3)
        self.assertEqual(doc["queued"], 0)

        # /getall and /getitem: DynamoDB's items, plain JSON
        st, doc, head = curl(sock, "GET", "/getall")
        self.assertEqual(st, 200)
        self.assertIn("application/json", head)
        self.assertEqual(sorted(i["FileName"] for i in doc["images"]),
                         ["img/a.png", "img/c.png", "img/sub/b.jpg"])
        self.assertNotIn("cursor", doc)
        st, doc, _ = curl(sock, "POST", "/getitem", {"FileName": "img/sub/b.jpg"})
        self.assertEqual(st, 200)
        item = doc["data"]
        remote = ddb.get_item(TableName=d.table, Key={"FileName": {"S": "img/sub/b.jpg"}})["Item"]
        self.assertEqual(item["SHA256"], remote["SHA256"]["S"])
        self.assertEqual(item["Size"], int(remote["Size"]["N"]))
        self.assertEqual((item["Width"], item["Height"]), (3, 5))
        self.assertEqual(item["Type"], "image/jpeg")
        st, doc, _ = curl(sock, "GET", "/getall?prefix=img/sub/")
        self.assertEqual([i["FileName"] for i in doc["images"]], ["img/sub/b.jpg"])
        st, doc, _ = curl(sock, "GET", "/getall?local=1")
        self.assertEqual([i["FileName"] for i in doc["images"]],
                         ["img/a.png", "img/c.png", "img/sub/b.jpg"])

        # 400, 404, 405, 413
        self.assertEqual(curl(sock, "POST", "/getitem", {"FileName": "img/none.png"})[:2],
                         (404, {"error": "Item not found"}))
        self.assertEqual(curl(sock, "POST", "/getitem", {})[:2],
                         (400, {"error": "FileName missing"}))
        self.assertEqual(curl(sock, "POST", "/getitem")[:2],
                         (400, {"error": "FileName missing"}))
        st, doc, _ = curl(sock, "POST", "/getitem", raw=b'{"FileName": ')
        self.assertEqual(st, 400)
        self.assertTrue(doc["error"].startswith("Malformed JSON"), doc)
        self.assertEqual(curl(sock, "POST", "/getitem", {"FileName": 7})[:2],
                         (400, {"error": "FileName must be a string"}))
        self.assertEqual(curl(sock, "POST", "/getitem", {"FileName": "other/a.png"})[0], 400)
        self.assertEqual(curl(sock, "GET", "/getall?limit=0")[0], 400)
        self.assertEqual(curl(sock, "GET", "/getall?cursor=%2B%2B%2B")[0], 400)
        self.assertEqual(curl(sock, "GET", "/nope")[:2], (404, {"error": "Not found"}))
        st, doc, head = curl(sock, "GET", "/delete")
        self.assertEqual((st, doc), (405, {"error": "Method not allowed"}))
        self.assertRegex(head, r"(?i)\nallow: DELETE")
        self.assertEqual(curl(sock, "POST", "/status")[0], 405)
        st, doc, _ = curl(sock, "POST", "/getitem", raw=b'{"FileName":"' + b"x" * 70000 + b'"}')
        self.assertEqual((st, doc), (413, {"error": "Request body too large"}))

        # /upload: a file changed while paused is synced on /resume
        self.assertEqual(curl(sock, "POST", "/pause")[:2], (200, {"message": "Paused"}))
        self.assertEqual(curl(sock, "GET", "/status")[1]["state"], "paused")
        new, _ = make("a.png", 9, 9, b"new content")
        (d.root / "a.png").write_bytes(new)
        st, doc, _ = curl(sock, "POST", "/upload", {"FileName": "img/a.png"})
        self.assertEqual((st, doc), (202, {"message": "Upload queued", "FileName": "img/a.png"}))
        time.sleep(1)
        self.assertEqual(int(ddb.get_item(TableName=d.table, Key={"FileName": {"S": "img/a.png"}})
                             ["Item"]["Width"]["N"]), 3, "nothing may start while paused")
        self.assertEqual(curl(sock, "POST", "/resume")[:2], (200, {"message": "Resumed"}))
        d.wait_mirror(60)
        self.assertEqual(curl(sock, "POST", "/upload", {"FileName": "img/gone.png"})[:2],
                         (404, {"error": "File not found in the watch root"}))
        (d.root / "notes.txt").write_text("x")
        self.assertEqual(curl(sock, "POST", "/upload", {"FileName": "img/notes.txt"})[0], 400)
        (d.root / "notes.txt").unlink()
        self.assertEqual(curl(sock, "POST", "/upload", {"FileName": "img/../x.png"})[0], 400)

        # /rescan, /failed, /retry: an unreadable file fails, then is retried
        self.assertEqual(curl(sock, "POST", "/rescan")[:2], (202, {"message": "Rescan started"}))
        st, doc, _ = curl(sock, "GET", "/failed")
        self.assertEqual((st, doc), (200, {"failed": []}))
        st, doc, _ = curl(sock, "POST", "/retry")
        self.assertEqual((st, doc["count"]), (202, 0))

        # /metrics: Prometheus text with the counters asked for
        st, text, head = curl(sock, "GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertIn("text/plain; version=0.0.4", head)
        for name in ("imgsync_files_synced_total{op=\"upload\"} 4",
                     "imgsync_bytes_uploaded_total", "imgsync_failures_total{reason=",
                     "imgsync_retries_total{service=\"s3\"}", "imgsync_queue_depth 0",
                     "imgsync_in_flight 0",
                     "imgsync_request_duration_seconds_bucket{service=\"dynamodb\",le=\"+Inf\"}",
                     "# TYPE imgsync_request_duration_seconds histogram"):
            self.assertIn(name, text)

        # /delete: item, object, then the file into the trash
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "img/sub/b.jpg"})
        self.assertEqual(st, 200, doc)
        self.assertEqual((doc["message"], doc["deletedFile"]), ("File deleted", "img/sub/b.jpg"))
        self.assertNotIn("Item", ddb.get_item(TableName=d.table,
                                              Key={"FileName": {"S": "img/sub/b.jpg"}}))
        self.assertNotIn("img/sub/b.jpg", d.remote_objects())
        self.assertFalse((d.root / "sub" / "b.jpg").exists())
        self.assertTrue((d.dir / "trash" / "sub" / "b.jpg").is_file())
        self.assertEqual(curl(sock, "DELETE", "/delete", {"FileName": "img/sub/b.jpg"})[:2],
                         (404, {"error": "Item not found"}))
        d.wait_mirror(30)
        # the uid of every mutating call is logged
        self.assertRegex(d.log(), r"control: uid 0 \(pid \d+\): DELETE /delete img/sub/b.jpg")
        self.assertRegex(d.log(), r"control: uid 0 \(pid \d+\): POST /pause")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(sock), "the socket is removed at exit")

    def test_failed_and_retry(self):
        d = self.daemon()
        self.drop(d, ["ok.png", "locked.png"])
        os.chmod(d.root / "locked.png", 0)
        # root reads mode 000 files: run the daemon as nobody
        if os.geteuid() != 0:
            self.skipTest("needs root to run the daemon as nobody")
        sock = self.start(d, user="nobody")
        wait_until(lambda: d.failed_rows(), 60, what="a failed row")
        st, doc, _ = curl(sock, "GET", "/failed")
        self.assertEqual(st, 200)
        self.assertEqual([f["FileName"] for f in doc["failed"]], ["locked.png"])
        self.assertIn("Permission denied", doc["failed"][0]["error"])
        st, text, _ = curl(sock, "GET", "/metrics")
        self.assertIn('imgsync_failures_total{reason="unreadable"} 1', text)
        self.assertIn("imgsync_failed_files 1", text)
        self.assertEqual(curl(sock, "GET", "/status")[1]["failed"], 1)
        os.chmod(d.root / "locked.png", 0o644)
        st, doc, _ = curl(sock, "POST", "/retry")
        self.assertEqual((st, doc), (202, {"message": "Retrying 1 failed file", "count": 1}))
        d.wait_mirror(60)
        wait_until(lambda: curl(sock, "GET", "/failed")[1] == {"failed": []}, 20,
                   what="an empty failed list")


class Refused(ControlCase):
    def test_dynamodb_refusal_is_500(self):
        # A user that may sync but not read the table back.
        policy = json.loads(json.dumps(FULL_POLICY))
        policy["Statement"].append({"Effect": "Deny", "Resource": "*",
                                    "Action": ["dynamodb:GetItem", "dynamodb:Scan"]})
        d = self.daemon(creds=testbed.auth_bed().user(policy))
        self.drop(d, ["a.png"])
        sock = self.start(d)
        d.wait_mirror(60)
        for method, path, body, what in (("POST", "/getitem", {"FileName": "a.png"}, "GetItem"),
                                         ("GET", "/getall", None, "Scan"),
                                         ("DELETE", "/delete", {"FileName": "a.png"}, "GetItem")):
            st, doc, _ = curl(sock, method, path, body)
            self.assertEqual(st, 500, doc)
            self.assertTrue(doc["error"].startswith(f"DynamoDB {what}: "), doc)
            self.assertIn("AccessDenied", doc["error"])
        # nothing was deleted by the refused /delete
        self.assertTrue((d.root / "a.png").exists())
        d.wait_mirror(5)
        self.assertEqual(d.stop(), 0)


class NonBlocking(ControlCase):
    def test_a_slow_scan_does_not_block_other_clients(self):
        d = self.daemon()
        proxy = FaultProxy(d.bed.endpoint, slow=1.0, slow_ms=3000).start()
        self.addCleanup(proxy.stop)
        d.write_conf(d.conf_text().replace(f'endpoint = "{d.endpoint}"',
                                           f'endpoint = "{proxy.url}"'))
        sock = self.start(d)
        result = {}

        def getall():
            result["getall"] = curl(sock, "GET", "/getall")[:2]
        t = threading.Thread(target=getall)
        t.start()
        time.sleep(0.5)  # the Scan is on its way (the proxy holds it 3 s)
        # While the Scan waits on the (slow) server, the loop serves others.
        for _ in range(5):
            self.assertEqual(curl(sock, "GET", "/status")[0], 200)
            self.assertEqual(curl(sock, "GET", "/getall?local=1")[0], 200)
        self.assertTrue(t.is_alive(), "the Scan finished too early to prove anything")
        t.join(30)
        self.assertEqual(result["getall"], (200, {"images": []}))
        self.assertEqual(d.stop(), 0)


class Deadline(ControlCase):
    def test_a_request_waiting_on_dynamodb_is_answered_504(self):
        d = self.daemon()
        self.drop(d, ["a.png"])
        proxy = FaultProxy(d.bed.endpoint).start()
        self.addCleanup(proxy.stop)
        d.write_conf(d.conf_text(extra="").replace(f'endpoint = "{d.endpoint}"',
                                                   f'endpoint = "{proxy.url}"')
                     .replace('trash = ', 'timeout_ms = 1000; trash = '))
        sock = self.start(d)
        d.wait_mirror(60)
        proxy.set_shares(slow=1.0)
        proxy.slow_ms = 4000
        for method, path, body in (("POST", "/getitem", {"FileName": "a.png"}),
                                   ("GET", "/getall", None)):
            st, doc, _ = curl(sock, method, path, body)
            self.assertEqual(st, 504, doc)
            self.assertIn("DynamoDB did not answer in time", doc["error"])
        self.assertEqual(curl(sock, "GET", "/status")[0], 200)
        time.sleep(4.5)  # the held calls come back to answered requests
        proxy.set_shares(slow=0.0)
        self.assertEqual(curl(sock, "POST", "/getitem", {"FileName": "a.png"})[0], 200)
        self.assertTrue(d.alive())
        self.assertEqual(d.stop(), 0)


class Pages(ControlCase):
    def test_getall_pages_2500_items_once_each(self):
        d = self.daemon()
        # Items written straight into the table, as another agent would.
        want = set()
        ddb = d.bed.dynamodb()
        batch = []
        for i in range(2500):
            name = f"p{i % 7}/img-{i:05d}.png"
            want.add(name)
            batch.append({"PutRequest": {"Item": {
                "FileName": {"S": name}, "Bucket": {"S": d.bucket},
                "Size": {"N": str(i)}, "Type": {"S": "image/png"}}}})
            if len(batch) == 25:
                ddb.batch_write_item(RequestItems={d.table: batch})
                batch = []
        sock = self.start(d)
        seen, pages, cursor = [], 0, None
        while True:
            path = "/getall?limit=300" + (f"&cursor={cursor}" if cursor else "")
            st, doc, _ = curl(sock, "GET", path)
            self.assertEqual(st, 200)
            self.assertLessEqual(len(doc["images"]), 300)
            seen += [i["FileName"] for i in doc["images"]]
            pages += 1
            self.assertLess(pages, 40)
            cursor = doc.get("cursor")
            if not cursor:
                break
        self.assertEqual(len(seen), 2500)
        self.assertEqual(set(seen), want)
        self.assertGreaterEqual(pages, 9)
        # a prefix filter pages the same way
        seen, cursor = [], None
        for _ in range(40):
            st, doc, _ = curl(sock, "GET", "/getall?prefix=p3/&limit=50"
                              + (f"&cursor={cursor}" if cursor else ""))
            seen += [i["FileName"] for i in doc["images"]]
            cursor = doc.get("cursor")
            if not cursor:
                break
        self.assertEqual(sorted(seen), sorted(n for n in want if n.startswith("p3/")))
        # the default page is 100
        self.assertEqual(len(curl(sock, "GET", "/getall")[1]["images"]), 100)

    def test_local_pages(self):
        d = self.daemon(prefix="p/")
        names = [f"l{i:02d}.png" for i in range(23)] + [f"m/{i}.png" for i in range(7)]
        self.drop(d, names)
        sock = self.start(d)
        d.wait_mirror(60)

        def pages(query):
            seen, cursor = [], None
            for _ in range(20):
                st, doc, _ = curl(sock, "GET", f"/getall?local=1&limit=5{query}"
                                  + (f"&cursor={cursor}" if cursor else ""))
                self.assertEqual(st, 200)
                self.assertLessEqual(len(doc["images"]), 5)
                seen += [i["FileName"] for i in doc["images"]]
                cursor = doc.get("cursor")
                if not cursor:
                    return seen
            self.fail("no end")
        self.assertEqual(pages(""), ["p/" + n for n in sorted(names)])
        self.assertEqual(pages("&prefix=p/m/"), [f"p/m/{i}.png" for i in range(7)])
        self.assertEqual(pages("&prefix=p/l1"), [f"p/l{i}.png" for i in range(10, 20)])
        self.assertEqual(pages("&prefix=p"), ["p/" + n for n in sorted(names)])
        self.assertEqual(pages("&prefix=q/"), [])


class Safety(ControlCase):
    def test_delete_outside_the_root_is_refused(self):
        d = self.daemon()
        self.drop(d, ["keep.png"])
        outside = d.dir / "outside"
        outside.mkdir()
        secret = outside / "secret.png"
        secret.write_bytes(b"secret")
        os.symlink(secret, d.root / "link.png")
        os.symlink(outside, d.root / "linkdir")
        sock = self.start(d)
        d.wait_mirror(60, local={"keep.png": (d.root / "keep.png").read_bytes()})
        ddb = d.bed.dynamodb()
        # items under those names exist (another agent's): still refused
        for n in ("link.png", "linkdir/secret.png"):
            ddb.put_item(TableName=d.table, Item={"FileName": {"S": n}})
        for name in ("../../etc/passwd", "/etc/passwd", "a/../../etc/passwd", "link.png",
                     "linkdir/secret.png", "./keep.png", "a//b.png"):
            st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": name})
            self.assertEqual(st, 400, (name, doc))
            self.assertIn("error", doc)
        self.assertEqual(secret.read_bytes(), b"secret")
        self.assertTrue((d.root / "link.png").is_symlink())
        self.assertTrue(os.path.exists("/etc/passwd"))
        self.assertFalse((d.dir / "trash").exists())
        self.assertEqual(set(d.remote_items()), {"keep.png", "link.png", "linkdir/secret.png"})
        self.assertEqual(set(d.remote_objects()), {"keep.png"})
        self.assertEqual(d.stop(), 0)

    def test_trash_name_clashes_and_another_file_system(self):
        shm = Path("/dev/shm")
        if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tempfile.gettempdir()).st_dev:
            self.skipTest("no second file system for the trash (/dev/shm)")
        trash = Path(tempfile.mkdtemp(prefix="imgsync-trash.", dir=shm))
        self.addCleanup(shutil.rmtree, trash, ignore_errors=True)
        d = self.daemon()
        d.write_conf(d.conf_text().replace(f'trash = "{d.dir}/trash"', f'trash = "{trash}"'))
        files = self.drop(d, ["y.png"])
        # big enough to be copied in several steps (4 MiB a loop turn)
        big = os.urandom(18 << 20)
        (d.root / "x.png").write_bytes(big)
        sock = self.start(d)
        d.wait_mirror(120)
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "x.png"})
        self.assertEqual(st, 200, doc)
        # copied across file systems, then unlinked; no partial file left
        self.assertEqual((trash / "x.png").read_bytes(), big)
        self.assertFalse((d.root / "x.png").exists())
        # a folder now has the name of the trashed file: the next delete
        # under it goes to a fresh folder of the trash
        (d.root / "x.png").mkdir()
        files = self.drop(d, ["x.png/b.png"])
        d.wait_mirror(60, local={"y.png": (d.root / "y.png").read_bytes(), **files})
        st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "x.png/b.png"})
        self.assertEqual(st, 200, doc)
        moved = list(trash.glob(".deleted-*/x.png/b.png"))
        self.assertEqual(len(moved), 1, doc)
        self.assertEqual(moved[0].read_bytes(), files["x.png/b.png"])
        # the same name again: trash/y.png, then trash/y.png.1
        for _ in range(2):
            data = (d.root / "y.png").read_bytes()
            st, doc, _ = curl(sock, "DELETE", "/delete", {"FileName": "y.png"})
            self.assertEqual(st, 200, doc)
            (d.root / "y.png").write_bytes(data + b"again")
            d.wait_mirror(60)
        self.assertTrue((trash / "y.png").is_file())
        self.assertTrue((trash / "y.png.1").is_file())
        self.assertEqual([p.name for p in trash.iterdir() if "partial" in p.name], [])
        self.assertEqual(d.stop(), 0)

    def test_delete_cut_short_is_finished_at_start(self):
        d = self.daemon()
        files = self.drop(d, ["a.png", "b.png"])
        self.start(d)
        d.wait_mirror(60)
        self.assertEqual(d.stop(), 0)
        # What a crash between the remote deletes and the move leaves: the
        # note of the delete (and the file still in the root).
        db = sqlite3.connect(d.state_path)
        db.execute("INSERT INTO meta(name, value) VALUES (?, ?)",
                   ("trash:a.png", str(d.dir / "trash").encode()))
        db.commit()
        db.close()
        self.start(d)
        d.wait_mirror(60, local={"b.png": files["b.png"]})
        self.assertEqual((d.dir / "trash" / "a.png").read_bytes(), files["a.png"])
        self.assertIn("finishing an interrupted delete of a.png", d.log())
        self.assertEqual(d.stop(), 0)

    def test_stale_socket_replaced_live_one_refused(self):
        d = self.daemon()
        sock = d.dir / "imgsync.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(sock))
        s.close()  # a socket file nobody listens on: stale
        self.start(d)
        st = os.stat(sock)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertIn("removing the stale socket", d.log())
        # a second daemon on the same socket is refused
        d2 = Daemon(d.bed, root=str(d.root))
        self.addCleanup(d2.close)
        d2.write_conf(d2.conf_text().replace(f"{d2.dir}/imgsync.sock", str(sock)))
        d2.start()
        rc = d2.proc.wait(30)
        self.assertNotEqual(rc, 0)
        self.assertIn("another imgsyncd answers on", d2.log())
        self.assertEqual(curl(str(sock), "GET", "/status")[0], 200)
        # any other file there is left alone
        d.stop()
        sock.write_text("not a socket")
        d3 = self.daemon()
        d3.write_conf(d3.conf_text().replace(f"{d3.dir}/imgsync.sock", str(sock)))
        d3.start()
        self.assertNotEqual(d3.proc.wait(30), 0)
        self.assertIn("exists and is not a socket", d3.log())
        self.assertEqual(sock.read_text(), "not a socket")


MALFORMED = [
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /status HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /getitem HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /getitem HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n\xff\xfe\x00{]",
    b"POST /getitem HTTP/1.1\r\nHost: x\r\nContent-Length: 23\r\n\r\n{\"FileName\":\"a\\u0000b\"}",
    b"POST /getitem HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n{\"FileName\":\"\xff\"}",
    b"POST /getitem HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n" + b"[" * 2000 + b"]" * 2000,
    b"DELETE /delete HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]",
    b"GET /getall?limit=%ff%00&cursor=%00%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /status HTTP/1.1\r\n" + b"X-A: " + b"b" * 60000 + b"\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 5000 + b"\r\n",
    b"BREW /status HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /status?\xff\xfe=\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: x\r\n\r\nGET /status HTTP/1.1\r\nHost: x\r\n\r\n" * 50,
]


class Abuse(ControlCase):
    def test_abuse_does_not_disturb_syncing(self):
        d = self.daemon()
        sock = self.start(d)
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        base_fds = open_fds(d.proc.pid)
        errors = []

        def big_body():
            # 1 GB announced and streamed: answered 413 and cut off early
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(20)
            s.connect(sock)
            s.sendall(b"POST /getitem HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
            sent, got = 0, b""
            try:
                chunk = b"x" * 65536
                while sent < (1 << 30):
                    s.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            try:
                got = s.recv(4096)
            except OSError:
                pass
            s.close()
            if sent >= (1 << 30):
                errors.append("the daemon read the whole 1 GB")
            if got and b" 413 " not in got.split(b"\r\n")[0]:
                errors.append(f"1 GB body: {got[:80]!r}")

        def big_chunked():
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(20)
            s.connect(sock)
            s.sendall(b"POST /getitem HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent = 0
            try:
                while sent < (256 << 20):
                    s.sendall(b"10000\r\n" + b"y" * 65536 + b"\r\n")
                    sent += 65536
            except OSError:
                pass
            s.close()
            if sent >= (256 << 20):
                errors.append("the daemon read 256 MiB of chunked body")

        hung = []

        def half_request():
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(b"POST /getitem HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"File")
            hung.append(s)  # never finished, never closed by us

        statuses = []

        def status():
            try:
                statuses.append(curl(sock, "GET", "/status", timeout=30)[0])
            except AssertionError as exc:
                errors.append(str(exc))

        for _ in range(5):
            half_request()
        threads = [threading.Thread(target=big_body), threading.Thread(target=big_chunked)]
        threads += [threading.Thread(target=status) for _ in range(200)]
        for t in threads:
            t.start()
        # the burst, during the abuse
        files = self.drop(d, [f"burst/{i // 50}/f{i:03d}.png" for i in range(200)])
        answers = [raw_request(sock, m) for m in MALFORMED]
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertEqual(statuses, [200] * 200)
        for m, a in zip(MALFORMED, answers):
            # either an HTTP error answer or a closed connection, never a crash
            if a:
                self.assertRegex(a.split(b"\r\n")[0], rb"^HTTP/1\.[01] [2-5]\d\d", m[:60])
        d.wait_mirror(120, local=files)
        self.assertTrue(d.alive())
        # the half-sent requests are closed by the idle timeout (10 s)
        for s in hung:
            s.settimeout(30)
            self.assertEqual(s.recv(100), b"")
            s.close()
        wait_until(lambda: open_fds(d.proc.pid) <= base_fds + 2, 30,
                   what=f"the fd count back to {base_fds}")
        self.assertEqual(curl(sock, "GET", "/status")[1]["queued"], 0)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
