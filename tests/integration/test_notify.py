"""systemd's notification protocol (Type=notify), without systemd: the
test plays the service manager's socket and checks what imgsyncd says and
when."""

from __future__ import annotations

import signal
import socket
import time
import unittest

import testbed
from daemon import Daemon, wait_until
from images import make


class Notify(unittest.TestCase):
    def test_ready_status_watchdog_reload_stopping(self):
        d = Daemon(testbed.auth_bed())
        self.addCleanup(d.close)
        sock_path = str(d.dir / "notify.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        srv.bind(sock_path)
        self.addCleanup(srv.close)
        srv.settimeout(0.2)
        (d.root / "a.png").write_bytes(make("a.png", 2, 2, b"n")[0])
        d.extra_env = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "1000000"}
        d.start()
        got: list[str] = []

        def until(line: str, timeout: float = 20):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    got.extend(srv.recv(4096).decode().splitlines())
                except socket.timeout:
                    pass
                if any(g.startswith(line) for g in got):
                    return
            self.fail(f"no {line!r} within {timeout}s; got {got}")

        until("READY=1")
        # READY comes once the control socket listens
        self.assertTrue((d.dir / "imgsync.sock").exists())
        self.assertIn("control: listening", d.log())
        until("STATUS=")
        self.assertRegex(next(g for g in got if g.startswith("STATUS=")),
                         r"^STATUS=running: \d+ queued, \d+ in flight, \d+ synced, \d+ failed$")
        d.wait_mirror(30)
        got.clear()
        until("WATCHDOG=1", 3)  # every WATCHDOG_USEC/2
        got.clear()
        until("WATCHDOG=1", 3)
        got.clear()
        d.signal(signal.SIGHUP)
        until("RELOADING=1")
        until("READY=1")
        d.signal(signal.SIGTERM)
        until("STOPPING=1")
        self.assertEqual(d.proc.wait(20), 0)
        d.proc = None
        d.logf.close()

    def test_watchdog_for_another_pid_is_ignored(self):
        d = Daemon(testbed.auth_bed())
        self.addCleanup(d.close)
        sock_path = str(d.dir / "notify.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        srv.bind(sock_path)
        self.addCleanup(srv.close)
        srv.settimeout(0.5)
        d.extra_env = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "200000",
                       "WATCHDOG_PID": "1"}
        d.start()
        wait_until(lambda: "watching" in d.log(), 20, what="start-up")
        seen = []
        end = time.monotonic() + 2
        while time.monotonic() < end:
            try:
                seen += srv.recv(4096).decode().splitlines()
            except socket.timeout:
                pass
        self.assertIn("READY=1", seen)
        self.assertNotIn("WATCHDOG=1", seen)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()


class NotifyStates(unittest.TestCase):
    """The states an operator must see in `systemctl status`: held
    deletions, then a root that is not the mirrored one."""

    def test_status_says_deletions_held_and_root_lost(self):
        d = Daemon(testbed.auth_bed())
        self.addCleanup(d.close)
        sock_path = str(d.dir / "notify.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        srv.bind(sock_path)
        self.addCleanup(srv.close)
        srv.settimeout(0.2)
        files = {}
        for i in range(30):
            files[f"f{i}.png"] = make(f"f{i}.png", 2, 2, str(i).encode())[0]
            (d.root / f"f{i}.png").write_bytes(files[f"f{i}.png"])
        d.extra_env = {"NOTIFY_SOCKET": sock_path}
        d.start()
        d.wait_mirror(60, local=files)
        got: list[str] = []

        def until(pattern: str, timeout: float = 20) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    got.extend(srv.recv(4096).decode().splitlines())
                except socket.timeout:
                    pass
                for g in got:
                    if g.startswith("STATUS=") and pattern in g:
                        return g
            self.fail(f"no STATUS with {pattern!r} within {timeout}s; got {got}")

        for i in range(25):
            (d.root / f"f{i}.png").unlink()
        until("; 25 deletions held (imgsyncctl deletions)")
        got.clear()
        d.root.rename(d.dir / "away")
        d.root.mkdir()
        line = until("STATUS=root lost: ")
        self.assertIn("nothing is uploaded or deleted", line)
        self.assertEqual(len(d.remote_objects()), 30)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0)
