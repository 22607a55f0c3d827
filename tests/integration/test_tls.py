"""TLS: imgsyncd against an https endpoint on 127.0.0.1 (a TLS-terminating
forwarder in front of moto, with a certificate made for the test). With
the certificate's CA in AWS_CA_BUNDLE files sync; without it the peer is
refused, and the files are reported failed with the reason, not sent in
clear and not retried forever."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import unittest
import urllib.parse

import testbed
from daemon import Daemon, wait_until
from images import make


class TlsForwarder:
    """https://127.0.0.1:PORT -> the plain-HTTP upstream, one upstream
    connection per client connection."""

    def __init__(self, upstream: str, cert: str, key: str):
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.handshakes_failed = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            conn.close()
            return
        up = socket.create_connection(self.upstream, timeout=30)
        t = threading.Thread(target=self._pipe, args=(up, tls), daemon=True)
        t.start()
        self._pipe(tls, up)
        t.join(30)
        tls.close()
        up.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class Tls(unittest.TestCase):
    def setUp(self):
        self.bed = testbed.auth_bed()
        self.d = Daemon(self.bed)
        self.addCleanup(self.d.close)
        self.cert = str(self.d.dir / "cert.pem")
        key = str(self.d.dir / "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True,
                       timeout=60)
        self.fwd = TlsForwarder(self.bed.endpoint, self.cert, key)
        self.addCleanup(self.fwd.stop)
        self.d.write_conf(self.d.conf_text().replace(f'endpoint = "{self.d.endpoint}"',
                                                     f'endpoint = "{self.fwd.url}"'))

    def test_trusted_certificate_syncs(self):
        self.d.extra_env = {"AWS_CA_BUNDLE": self.cert}
        data, _ = make("a.png", 3, 3, b"tls")
        (self.d.root / "a.png").write_bytes(data)
        self.d.start()
        self.d.wait_mirror(60)
        self.assertEqual(self.fwd.handshakes_failed, 0)
        self.assertEqual(self.d.stop(), 0)

    def test_untrusted_certificate_is_refused(self):
        data, _ = make("a.png", 3, 3, b"tls")
        (self.d.root / "a.png").write_bytes(data)
        self.d.start()
        wait_until(lambda: "watching" in self.d.log(), 30, what="start-up")
        rows = wait_until(self.d.failed_rows, 60, what="the file failed")
        self.assertRegex(rows[b"a.png"], r"(?i)certificate|SSL")
        self.assertGreater(self.fwd.handshakes_failed, 0)
        self.assertEqual(self.d.remote_objects(), {})
        self.assertTrue(self.d.alive())
        self.assertEqual(self.d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
