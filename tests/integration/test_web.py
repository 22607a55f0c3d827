"""The gallery's door and its API (issue 14), over HTTP without a browser
(tests/system/test_gallery.py drives Debian's chromium): imgsyncd with
web.listen against moto (no signature checks: the door is the subject).

- nobody gets in without a login: every page and endpoint answers 401
  without the cookie, with a wrong one, and once the session expired; a
  login link works once; a request that changes something without the
  CSRF token (a cross-site form) is refused, and logged with who;
- uploads: into the root under the name asked, never over a file that
  exists, never outside the root, only images (by content), capped;
  nothing is left behind by a refused one;
- the listing pages newest first through every image, with folders,
  search and type;
- a port other machines reach is refused without TLS or trust_proxy;
  with TLS the gallery answers over HTTPS and its cookie is Secure.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import testbed
from common import BIN
from daemon import Daemon, wait_until
from images import gif, jpeg, png
from testbed import free_port


class WebDaemon(Daemon):
    """imgsyncd with a web section on a free loopback port."""

    def __init__(self, bed, web: str = "", **kw):
        self.port = free_port()
        self.web = web
        super().__init__(bed, **kw)

    def conf_text(self, **over) -> str:
        return super().conf_text(**over) + (
            f'web: {{ listen = "127.0.0.1:{self.port}"; {self.web} }};\n')

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def login_url(self) -> str:
        p = subprocess.run([str(BIN / "imgsyncctl"), "-s", f"{self.dir}/imgsync.sock",
                            "web-login"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()


class Browser:
    """A cookie jar and the CSRF token: what a logged-in page holds."""

    def __init__(self, d: WebDaemon, context=None):
        self.d = d
        self.jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar)]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.op = urllib.request.build_opener(*handlers)
        self.csrf = None

    def login(self) -> "Browser":
        r = self.op.open(self.d.login_url(), timeout=10)
        assert r.status == 200 and r.url.endswith("/"), (r.status, r.url)
        self.csrf = self.json("GET", "api/session")[1]["csrf"]
        return self

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None, csrf: bool = True) -> tuple[int, bytes, dict]:
        h = dict(headers or {})
        if csrf and self.csrf and method != "GET":
            h["X-CSRF-Token"] = self.csrf
        req = urllib.request.Request(self.d.base + path, data=body, method=method, headers=h)
        try:
            r = self.op.open(req, timeout=30)
            return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def json(self, method: str, path: str, doc=None, **kw):
        status, body, _ = self.call(method, path,
                                    json.dumps(doc).encode() if doc is not None else None, **kw)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body


ROUTES = [("GET", ""), ("GET", "index.html"), ("GET", "app.js"), ("GET", "app.css"),
          ("GET", "api/session"), ("GET", "api/list"), ("GET", "api/status"),
          ("POST", "api/getitem"), ("POST", "api/url"), ("DELETE", "api/delete"),
          ("PUT", "api/upload?name=x.png"), ("POST", "logout"), ("GET", "nothing-here")]


def started(web: str, files: dict) -> WebDaemon:
    """A gallery daemon over files (name: bytes), mirrored."""
    d = WebDaemon(testbed.noauth_bed(), web=web)
    for name, data in files.items():
        (d.root / name).parent.mkdir(parents=True, exist_ok=True)
        (d.root / name).write_bytes(data)
    d.start()
    d.wait_mirror(60)
    return d


class Door(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = started('session = "4s";', {"a/one.png": png(10, 10)})

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def assert_shut(self, b: Browser, why: str):
        for method, path in ROUTES:
            status, body, h = b.call(method, path, b"{}" if method != "GET" else None)
            self.assertEqual(status, 401, f"{why}: {method} /{path}: {body[:200]!r}")
            self.assertNotIn("Set-Cookie", h)
            if path.startswith("api/"):
                self.assertIn(b"web-login", body)

    def test_without_a_login_every_door_is_shut(self):
        b = Browser(self.d)
        self.assert_shut(b, "no cookie")
        status, body, h = b.call("GET", "")
        self.assertIn(b"imgsyncctl web-login", body, "the page says how to get in")
        self.assertIn("default-src 'none'", h["Content-Security-Policy"])
        b.jar.set_cookie(http.cookiejar.Cookie(
            0, "imgsync_session", "A" * 43, None, False, "127.0.0.1", False, False, "/",
            True, False, None, False, None, None, {}))
        self.assert_shut(b, "a made-up cookie")

    def test_a_login_link_works_once_and_sets_a_strict_cookie(self):
        url = self.d.login_url()
        self.assertRegex(url, rf"^{re.escape(self.d.base)}login\?token=[A-Za-z0-9_-]{{43}}$")
        b = Browser(self.d)
        req = urllib.request.Request(url)
        op = urllib.request.build_opener(NoRedirect)
        try:
            op.open(req, timeout=10)
            self.fail("no redirect")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 303)
            cookie = e.headers["Set-Cookie"]
            self.assertEqual(e.headers["Location"], "./")
        self.assertRegex(cookie, r"^imgsync_session=[A-Za-z0-9_-]{43}; Path=/; Max-Age=\d+; "
                                 r"HttpOnly; SameSite=Strict$")
        status, body, _ = b.call("GET", url[len(self.d.base):])
        self.assertEqual(status, 401, "a link works once")
        self.assertRegex(self.d.log(), r"web: 127\.0\.0\.1: refused a login link")

    def test_a_change_without_the_csrf_token_is_refused(self):
        b = Browser(self.d).login()
        for method, path, body in [("DELETE", "api/delete", b'{"FileName": "a/one.png"}'),
                                   ("PUT", "api/upload?name=a/x.png", png(5, 5)),
                                   ("POST", "api/url", b'{"FileName": "a/one.png"}'),
                                   ("POST", "logout", b"")]:
            # what a cross-site form sends: the cookie (were SameSite not
            # there), a form body, no token
            status, answer, _ = b.call(method, path, body, csrf=False, headers={
                "Origin": "https://evil.example", "Content-Type": "text/plain"})
            self.assertEqual(status, 403, f"{method} {path}: {answer!r}")
            self.assertIn(b"CSRF", answer)
            status, answer, _ = b.call(method, path, body, csrf=False,
                                       headers={"X-CSRF-Token": "x" * 43})
            self.assertEqual(status, 403, f"{method} {path} with a wrong token")
        self.assertTrue((self.d.root / "a" / "one.png").exists())
        self.assertFalse((self.d.root / "a" / "x.png").exists())
        self.assertIn("a/one.png", self.d.remote_items())
        self.assertRegex(self.d.log(), r"web: session \d+ \(uid \d+, 127\.0\.0\.1\): refused "
                                       r"DELETE /api/delete \(403\): CSRF token missing or wrong")
        self.assertEqual(b.json("GET", "api/session")[0], 200, "still logged in")

    def test_an_expired_session_is_refused(self):
        b = Browser(self.d).login()
        self.assertEqual(b.json("GET", "api/status")[0], 200)
        time.sleep(4.5)
        self.assert_shut(b, "expired (web.session = 4s)")

    def test_logout_ends_the_session(self):
        b = Browser(self.d).login()
        status, _, h = b.call("POST", "logout", b"")
        self.assertEqual(status, 200)
        self.assertIn("Max-Age=0", h["Set-Cookie"])
        self.assertRegex(self.d.log(), r"web: session \d+ \(uid \d+, 127\.0\.0\.1\): logged out")
        b.jar.clear()
        self.assert_shut(b, "after logout")

    def test_every_answer_has_the_security_headers(self):
        b = Browser(self.d).login()
        for path in ["", "app.js", "api/list", "nothing-here"]:
            _, _, h = b.call("GET", path)
            csp = h["Content-Security-Policy"]
            self.assertIn("script-src 'self';", csp)
            self.assertNotIn("unsafe", csp)
            self.assertIn("frame-ancestors 'none'", csp)
            self.assertEqual(h["X-Content-Type-Options"], "nosniff")
            self.assertEqual(h["Referrer-Policy"], "no-referrer")
        _, page, _ = b.call("GET", "")
        self.assertNotRegex(page, rb"<script>|<script [^>]*>[^<]|style=| on[a-z]+=",
                            "no inline script, style or handler")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


class Uploads(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = started("max_upload_mb = 1;", {"in/there.png": png(3, 3)})
        cls.b = Browser(cls.d).login()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def leftovers(self):
        return [p for p in self.d.root.rglob("*") if ".imgsync-upload-" in p.name]

    def test_an_image_lands_in_the_root_and_syncs(self):
        body = jpeg(40, 30)
        status, doc, _ = self.b.call("PUT", "api/upload?name=in/new%20one.jpg", body)
        self.assertEqual(status, 201, doc)
        self.assertEqual(json.loads(doc)["FileName"], "in/new one.jpg")
        self.assertEqual((self.d.root / "in" / "new one.jpg").read_bytes(), body)
        wait_until(lambda: "in/new one.jpg" in self.d.remote_items(), 30, what="the item")
        item = self.d.remote_items()["in/new one.jpg"]
        self.assertEqual((item["Type"]["S"], item["Width"]["N"]), ("image/jpeg", "40"))
        self.assertRegex(self.d.log(), r"web: session \d+ \(uid \d+, 127\.0\.0\.1\): "
                                       r"PUT /upload in/new one\.jpg \(\d+ bytes, image/jpeg\)")
        self.assertEqual(self.leftovers(), [])

    def test_refusals_leave_nothing(self):
        cases = [
            ("in/there.png", png(4, 4), 409, "exists"),
            ("in/text.png", b"just text, not a picture" * 10, 415, "not an image"),
            ("../escape.png", png(4, 4), 400, "relative path"),
            ("in/../../escape.png", png(4, 4), 400, "relative path"),
            ("/etc/x.png", png(4, 4), 400, "relative path"),
            ("nofolder/x.png", png(4, 4), 404, "no such folder"),
            ("in/notes.txt", png(4, 4), 415, "would not be synced"),
            ("", png(4, 4), 400, "name missing"),
        ]
        for name, body, want, why in cases:
            with self.subTest(name=name):
                status, doc, _ = self.b.call("PUT", "api/upload?" +
                                             urllib.parse.urlencode({"name": name}), body)
                self.assertEqual(status, want, doc)
                self.assertIn(why, json.loads(doc)["error"])
        self.assertEqual((self.d.root / "in" / "there.png").read_bytes(), png(3, 3),
                         "an existing file is never overwritten")
        self.assertFalse((self.d.dir / "escape.png").exists())
        self.assertEqual(self.leftovers(), [])

    def raw(self, head: str, body: bytes = b"") -> bytes:
        """A request on a socket of its own; the answer, read to its end."""
        import socket
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.b.jar)
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=10) as s:
            s.sendall((head + f"Host: x\r\nCookie: {cookie}\r\n"
                       f"X-CSRF-Token: {self.b.csrf}\r\n\r\n").encode() + body)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    def test_too_large_is_refused_before_the_body(self):
        # the answer comes before a byte of the body is sent
        out = self.raw(f"PUT /api/upload?name=in/big.png HTTP/1.1\r\n"
                       f"Content-Length: {1024 * 1024 + 1}\r\n")
        self.assertRegex(out, rb"^HTTP/1.1 413 ")
        self.assertIn(b"web.max_upload_mb (1 MiB)", out)
        self.assertEqual(self.leftovers(), [])
        self.assertFalse((self.d.root / "in" / "big.png").exists())
        out = self.raw("PUT /api/upload?name=in/chunked.png HTTP/1.1\r\n"
                       "Transfer-Encoding: chunked\r\n", b"0\r\n\r\n")
        self.assertRegex(out, rb"^HTTP/1.1 411 ", "no length, no upload")

    def test_a_symlinked_folder_is_not_followed(self):
        outside = self.d.dir / "outside"
        outside.mkdir(exist_ok=True)
        link = self.d.root / "link"
        link.symlink_to(outside)
        self.addCleanup(link.unlink)
        status, doc, _ = self.b.call("PUT", "api/upload?name=link/x.png", png(4, 4))
        self.assertEqual(status, 400, doc)
        self.assertEqual(list(outside.iterdir()), [])

    def test_a_cut_connection_leaves_nothing(self):
        import socket
        s = socket.create_connection(("127.0.0.1", self.d.port))
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.b.jar)
        s.sendall((f"PUT /api/upload?name=in/cut.png HTTP/1.1\r\nHost: x\r\n"
                   f"Cookie: {cookie}\r\nX-CSRF-Token: {self.b.csrf}\r\n"
                   f"Content-Length: 100000\r\n\r\n").encode() + png(4, 4))
        wait_until(lambda: self.leftovers() != [], 10, what="the temporary file")
        s.close()
        wait_until(lambda: self.leftovers() == [], 10, what="the temporary file removed")
        self.assertFalse((self.d.root / "in" / "cut.png").exists())


class Listing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = WebDaemon(testbed.noauth_bed())
        now = time.time()
        cls.names = []
        for i in range(130):
            folder = ["", "cats/", "cats/small/", "dogs/"][i % 4]
            name = f"{folder}img{i:03d}" + (".png" if i % 3 else ".gif")
            p = cls.d.root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(png(5, 5, bytes([i])) if i % 3 else gif(5, 5, bytes([i])))
            os.utime(p, (now - i, now - i))
            cls.names.append(name)
        cls.d.start()
        cls.d.wait_mirror(120)
        cls.b = Browser(cls.d).login()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def pages(self, **q):
        seen, cursor, n = [], None, 0
        while True:
            args = dict(q, limit="7")
            if cursor:
                args["cursor"] = cursor
            status, doc = self.b.json("GET", "api/list?" + urllib.parse.urlencode(args))
            self.assertEqual(status, 200, doc)
            seen += [i["FileName"] for i in doc["images"]]
            n += 1
            cursor = doc["cursor"]
            if not cursor:
                return seen, doc
            self.assertLess(n, 100)

    def test_paging_reaches_every_image_newest_first(self):
        seen, _ = self.pages(dir="cats/small/")
        want = [n for n in self.names if n.startswith("cats/small/")]
        self.assertEqual(seen, want, "newest (mtime) first, each once")

    def test_folders_and_breadcrumb_levels(self):
        status, doc = self.b.json("GET", "api/list?dir=")
        self.assertEqual(doc["folders"], ["cats", "dogs"])
        self.assertTrue(all("/" not in i["FileName"] for i in doc["images"]))
        status, doc = self.b.json("GET", "api/list?dir=cats/")
        self.assertEqual(doc["folders"], ["small"])
        self.assertTrue(all(i["FileName"].count("/") == 1 for i in doc["images"]))

    def test_search_and_type_narrow(self):
        seen, _ = self.pages(dir="cats/", q="IMG00")
        self.assertEqual(sorted(seen), sorted(n for n in self.names
                                              if n.startswith("cats/") and "img00" in n))
        seen, _ = self.pages(dir="", type="image/gif")
        self.assertEqual(sorted(seen), sorted(n for n in self.names if n.endswith(".gif")
                                              and "/" not in n))

    def test_bad_queries(self):
        for q in ["dir=/etc/", "dir=cats", "limit=0", "limit=501", "cursor=nonsense"]:
            status, doc = self.b.json("GET", "api/list?" + q)
            self.assertEqual(status, 400, (q, doc))


class Listener(unittest.TestCase):
    def test_web_login_when_the_gallery_is_off(self):
        d = Daemon(testbed.noauth_bed())
        self.addCleanup(d.close)
        d.start()
        sock = f"{d.dir}/imgsync.sock"
        wait_until(lambda: os.path.exists(sock), 30, what="the socket")
        p = subprocess.run([str(BIN / "imgsyncctl"), "-s", sock, "web-login"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("the gallery is off: set web.listen", p.stderr)

    def test_a_port_others_reach_needs_tls_or_a_proxy(self):
        d = WebDaemon(testbed.noauth_bed())
        self.addCleanup(d.close)
        text = d.conf_text().replace(f"127.0.0.1:{d.port}", f"0.0.0.0:{d.port}")
        d.write_conf(text)
        p = d.once(timeout=30)
        self.assertEqual(p.returncode, 78, p)
        self.assertRegex(d.log(), r'key "web\.listen": "0\.0\.0\.0:\d+" is reachable from '
                                  r'other machines: set web\.tls_cert and web\.tls_key, or '
                                  r'web\.trust_proxy')
        for bad, why in [('listen = "127.0.0.1"', "HOST:PORT"),
                         ('listen = "example.com:80"', "numeric IPv4"),
                         ('listen = "127.0.0.1:0"', "port must be 1 to 65535"),
                         ('tls_cert = "/x.pem"', "set together"),
                         ('session = "forever"', "duration")]:
            if bad.startswith("listen"):
                d.write_conf(d.conf_text().replace(f'listen = "127.0.0.1:{d.port}";',
                                                   bad + ";"))
            else:
                d.write_conf(d.conf_text().replace("web: {", "web: { " + bad + ";"))
            p = d.once(timeout=30)
            self.assertEqual(p.returncode, 78, (bad, d.log()[-500:]))
            self.assertIn(why, d.log().splitlines()[-1], bad)

    def test_behind_a_proxy_the_client_is_forwarded_for(self):
        d = started("trust_proxy = true;", {})
        self.addCleanup(d.close)
        op = urllib.request.build_opener(NoRedirect)
        try:
            op.open(d.login_url(), timeout=10)
            self.fail("no redirect")
        except urllib.error.HTTPError as e:
            cookie = e.headers["Set-Cookie"]
        self.assertTrue(cookie.endswith("; Secure"), "the proxy speaks HTTPS: " + cookie)
        sid = cookie.split(";")[0]
        for forwarded, shown in [("198.51.100.7, 203.0.113.9", "203.0.113.9"),
                                 ("<script>", "127.0.0.1")]:
            req = urllib.request.Request(d.base + "api/upload?name=x.png", data=b"x", method="PUT",
                                         headers={"Cookie": sid, "X-Forwarded-For": forwarded})
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(cm.exception.code, 403)
            self.assertRegex(d.log(), rf"web: session 1 \(uid \d+, {re.escape(shown)}\): "
                                      r"refused PUT /api/upload \(403\)")

    def test_tls(self):
        d = WebDaemon(testbed.noauth_bed())
        self.addCleanup(d.close)
        cert, key = d.dir / "cert.pem", d.dir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True,
                       capture_output=True, timeout=60)
        # TLS allows a port others reach: listen on all addresses
        d.write_conf(d.conf_text().replace(f'listen = "127.0.0.1:{d.port}";',
                                           f'listen = "0.0.0.0:{d.port}"; tls_cert = "{cert}"; '
                                           f'tls_key = "{key}";'))
        d.start()
        ctx = ssl.create_default_context(cafile=str(cert))
        b = Browser(d, context=ctx)
        wait_until(lambda: os.path.exists(f"{d.dir}/imgsync.sock"), 30, what="the socket")
        url = d.login_url()
        self.assertTrue(url.startswith(f"https://0.0.0.0:{d.port}/login?token="), url)
        url = url.replace("0.0.0.0", "127.0.0.1")
        r = b.op.open(url, timeout=10)
        self.assertEqual(r.status, 200)
        (c,) = list(b.jar)
        self.assertTrue(c.secure, "the cookie is Secure over HTTPS")
        self.assertIn("max-age", r.headers["Strict-Transport-Security"])
        with self.assertRaises((urllib.error.URLError, ConnectionError)):  # no plain HTTP
            urllib.request.urlopen(f"http://127.0.0.1:{d.port}/", timeout=5).read()


if __name__ == "__main__":
    unittest.main()
