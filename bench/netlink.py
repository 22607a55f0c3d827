"""The shaped link of bench/bench.py --link: a network namespace, a veth pair
into it, tbf on both ends, and the delay relays (bench/linkrelay.py).

    with ShapedLink(rate="1gbit") as link:     # namespace + veth + tbf
        ... start servers with prefix=link.prefix, host=link.ns_addr ...
        relay = Relay(link.ns_addr, port, delay_ms=20)   # 127.0.0.1:relay.port

The namespace is ``imgsb-<pid>``, the veth pair ``ib<pid>h`` (host side,
10.213.X.1/30) and ``ib<pid>n`` (namespace side, 10.213.X.2/30), X from the
pid; nothing else on the machine is touched. Both veth ends get a root tbf
(rate, burst, latency), so each direction is limited at its sender: host ->
namespace on the host end, namespace -> host on the namespace end. Everything
is removed by ``close()``, which also runs at exit (atexit) and is idempotent:
deleting the namespace deletes its veth end, which deletes the pair and both
qdiscs.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CMD_TIMEOUT_S = 20


def _run(*argv, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check,
                          timeout=_CMD_TIMEOUT_S)


def parse_rate(text: str) -> int:
    """'1gbit', '200mbit', '500kbit' -> bits/s."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)bit", text.strip().lower())
    if not m:
        raise ValueError(f"rate {text!r}: want e.g. 1gbit, 200mbit")
    return int(float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)])


def parse_link(text: str) -> tuple[float, int]:
    """'40ms,1gbit' -> (RTT in ms, bits/s)."""
    rtt, _, rate = text.partition(",")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)ms", rtt.strip())
    if not m or not rate:
        raise ValueError(f"--link {text!r}: want RTT,RATE e.g. 40ms,1gbit")
    return float(m.group(1)), parse_rate(rate)


class ShapedLink:
    def __init__(self, rate: str = "1gbit", burst: str | None = None,
                 latency: str = "20ms"):
        self.rate = rate
        self.rate_bps = parse_rate(rate)
        # tbf's bucket: at least a few GSO packets (veth sends up to 64 KB
        # super-packets), and about 1 ms of the rate; see report.
        self.burst = burst or f"{max(256 * 1024, self.rate_bps // 8 // 1000)}b"
        self.latency = latency
        pid = os.getpid()
        self.ns = f"imgsb-{pid}"
        self.veth_host = f"ib{pid}h"[:15]
        self.veth_ns = f"ib{pid}n"[:15]
        x = pid % 250 + 1
        net = ipaddress.ip_network(f"10.213.{x}.0/30")
        self.host_addr = str(net[1])
        self.ns_addr = str(net[2])
        self.net = net
        self.prefix = ["ip", "netns", "exec", self.ns]
        self._up = False
        self._closed = False

    def _check_free(self) -> None:
        routes = _run("ip", "-j", "route", "show").stdout
        for r in json.loads(routes or "[]"):
            dst = r.get("dst", "")
            if dst in ("default", ""):
                continue
            try:
                if ipaddress.ip_network(dst, strict=False).overlaps(self.net):
                    raise RuntimeError(f"{self.net} overlaps the route {dst}: not touching it")
            except ValueError:
                continue
        if self.ns in _run("ip", "netns", "list").stdout.split():
            raise RuntimeError(f"namespace {self.ns} exists already")

    def open(self) -> "ShapedLink":
        self._check_free()
        atexit.register(self.close)
        self._up = True
        try:
            _run("ip", "netns", "add", self.ns)
            _run("ip", "link", "add", self.veth_host, "type", "veth",
                 "peer", "name", self.veth_ns, "netns", self.ns)
            _run("ip", "addr", "add", f"{self.host_addr}/30", "dev", self.veth_host)
            _run("ip", "link", "set", self.veth_host, "up")
            ns = self.prefix
            _run(*ns, "ip", "link", "set", "lo", "up")
            _run(*ns, "ip", "addr", "add", f"{self.ns_addr}/30", "dev", self.veth_ns)
            _run(*ns, "ip", "link", "set", self.veth_ns, "up")
            tbf = ["root", "tbf", "rate", self.rate, "burst", self.burst,
                   "latency", self.latency]
            _run("tc", "qdisc", "add", "dev", self.veth_host, *tbf)
            _run(*ns, "tc", "qdisc", "add", "dev", self.veth_ns, *tbf)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # bounded: the link comes up at once
                if self._reachable():
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"{self.ns_addr} unreachable over {self.veth_host}")
        except BaseException:
            self.close()
            raise
        return self

    def _reachable(self) -> bool:
        """A TCP connect to a closed port in the namespace: refused (RST)
        means the link is up."""
        with socket.socket() as s:
            s.settimeout(1)
            try:
                s.connect((self.ns_addr, 9))
            except ConnectionRefusedError:
                return True
            except OSError:
                return False
        return True

    def describe(self) -> str:
        q = _run("tc", "qdisc", "show", "dev", self.veth_host).stdout.strip()
        qn = _run(*self.prefix, "tc", "qdisc", "show", "dev", self.veth_ns).stdout.strip()
        return f"{self.veth_host}: {q}\n{self.veth_ns} (in {self.ns}): {qn}"

    def close(self) -> None:
        if self._closed or not self._up:
            return
        self._closed = True
        # Anything still running in the namespace was started by us with
        # PR_SET_PDEATHSIG and stopped by pid before this; the pids left
        # (if any) are listed and killed one by one.
        pids = _run("ip", "netns", "pids", self.ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        _run("ip", "link", "del", self.veth_host, check=False)
        _run("ip", "netns", "del", self.ns, check=False)

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


class Relay:
    """bench/linkrelay.py as a child: 127.0.0.1:port -> host:port with the
    one-way delay; request counts through ``stats()`` / ``reset()``."""

    def __init__(self, to_host: str, to_port: int, delay_ms: float, name: str = "relay",
                 max_queued_mb: float = 16.0):
        self.name = name
        self.target = f"{to_host}:{to_port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "linkrelay.py"), "--to", self.target,
             "--delay-ms", str(delay_ms), "--max-queued-mb", str(max_queued_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        atexit.register(self.stop)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            self.stop()
            raise RuntimeError(f"linkrelay did not start: {line}")
        self.port = int(line[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _cmd(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stats(self) -> dict:
        return self._cmd("stats")

    def reset(self) -> dict:
        return self._cmd("reset")

    def stop(self) -> None:
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
