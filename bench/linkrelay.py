#!/usr/bin/env python3
"""A TCP delay relay for the far-away-region benchmark (bench/bench.py --link).

    python3 bench/linkrelay.py --to HOST:PORT --delay-ms 20 [--listen 127.0.0.1:0]

Listens on 127.0.0.1 (a free port unless given) and forwards every accepted
connection to HOST:PORT. Every chunk read from either side is held for the
one-way delay before it is written to the other side: a timestamped queue per
direction (a chunk read at t goes out at t + delay, later chunks keep flowing
behind it), so the delay does not serialise the stream and throughput is not
cut by it. Each direction's queue is bounded (--max-queued-mb, default 16 MiB,
above rate x delay of a 1 Gbit/s link at 20 ms = 2.5 MB): while over the bound
the relay stops reading from the source (TCP back-pressure), and while the
destination socket's buffer is full it stops emptying the queue. Memory stays
bounded whatever the transfer size.

Connection set-up: the client's connect() to the relay returns at once, so
unless --no-handshake the client's first bytes are held until one round trip
(2 x delay) after the accept plus the one-way delay, as after a real TCP
handshake over the link.

Counting: the relay parses the client-to-server byte stream as HTTP/1.1
requests (request line + headers, then Content-Length or chunked body,
skipped by count) and counts them by method and by operation: the last part
of X-Amz-Target for DynamoDB (e.g. ``PutItem``), else the method and the
names of the query parameters for S3 (e.g. ``PUT ?partNumber&uploadId``).

Control on stdin/stdout, one line each: the relay prints
``listening PORT`` once ready; ``stats`` prints one JSON line (requests,
connections, bytes each way, peak queued bytes, CPU seconds); ``reset``
zeroes the counters and prints the stats before zeroing. EOF on stdin or
SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import signal
import sys

EOF = object()  # queue marker: the source half-closed
CLOSE = object()  # queue marker: the source connection is gone
SLACK = 0.0005    # s: a chunk goes out at most this early (timer rounding)


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: collections.Counter = collections.Counter()
        self.methods: collections.Counter = collections.Counter()
        self.connections = 0
        self.bytes_up = 0      # client -> server
        self.bytes_down = 0    # server -> client
        self.peak_queued = 0
        self.unparsed = 0      # connections whose stream was not HTTP/1.1 as expected

    def as_dict(self) -> dict:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {"requests": sum(self.methods.values()), "by_method": dict(self.methods),
                "by_op": dict(self.requests), "connections": self.connections,
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                "peak_queued": self.peak_queued, "unparsed": self.unparsed,
                "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}


STATS = Stats()


class RequestCounter:
    """Incremental HTTP/1.1 request framing of one client->server stream."""

    MAX_HEAD = 1 << 16

    def __init__(self) -> None:
        self.state = "head"
        self.buf = bytearray()
        self.skip = 0          # body bytes still to skip
        self.dead = False

    def feed(self, data: bytes) -> None:
        if self.dead:
            return
        mv = memoryview(data)
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                continue
            if self.state == "body_done":
                self.state = "head"
            # head, chunk-size line, chunk CRLF or trailers: line-oriented
            j = data.find(b"\n", i)
            if j < 0:
                self.buf += mv[i:]
                if len(self.buf) > self.MAX_HEAD:
                    self._give_up()
                return
            self.buf += mv[i:j + 1]
            i = j + 1
            self._line()
            if self.dead:
                return

    def _give_up(self) -> None:
        self.dead = True
        STATS.unparsed += 1

    def _line(self) -> None:
        buf = self.buf
        if self.state == "head":
            if not buf.endswith(b"\r\n\r\n") and buf != b"\r\n":
                return  # header line; wait for the blank one
            if buf == b"\r\n":  # stray CRLF between requests
                self.buf = bytearray()
                return
            self.buf = bytearray()
            self._request(bytes(buf))
        elif self.state == "chunk_size":
            line = bytes(buf).strip()
            self.buf = bytearray()
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                self._give_up()
                return
            if size == 0:
                self.state = "trailers"
            else:
                self.skip = size
                self.state = "chunk_crlf"
        elif self.state == "chunk_crlf":
            self.buf = bytearray()
            self.state = "chunk_size"
        elif self.state == "trailers":
            line = bytes(buf)
            self.buf = bytearray()
            if line == b"\r\n":
                self.state = "head"

    def _request(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._give_up()
            return
        method = parts[0].decode("latin-1")
        target = parts[1].decode("latin-1")
        headers = {}
        for line in lines[1:]:
            k, sep, v = line.partition(b":")
            if sep:
                headers[k.strip().lower()] = v.strip()
        amz = headers.get(b"x-amz-target")
        if amz:
            op = amz.decode("latin-1").rsplit(".", 1)[-1]
        else:
            q = target.partition("?")[2]
            names = sorted({p.partition("=")[0] for p in q.split("&") if p}) if q else []
            op = method + (" ?" + "&".join(names) if names else "")
            if method == "PUT" and b"x-amz-copy-source" in headers:
                op += " (copy)"
        STATS.methods[method] += 1
        STATS.requests[op] += 1
        te = headers.get(b"transfer-encoding", b"").lower()
        if b"chunked" in te:
            self.state = "chunk_size"
            return
        try:
            self.skip = int(headers.get(b"content-length", b"0"))
        except ValueError:
            self._give_up()
            return
        self.state = "head"


class Pipe:
    """One direction: a queue of (due, chunk), written to dst when due."""

    def __init__(self, loop, delay: float, bound: int, not_before: float = 0.0,
                 up: bool = False):
        self.loop = loop
        self.delay = delay
        self.bound = bound
        self.not_before = not_before
        self.up = up
        self.q: collections.deque = collections.deque()
        self.queued = 0
        self.src = None
        self.dst = None
        self.dst_paused = False
        self.src_paused = False
        self.timer = None
        self.counter = RequestCounter() if up else None
        self.done = False

    def push(self, item) -> None:
        now = self.loop.time()
        due = max(now, self.not_before) + self.delay
        self.q.append((due, item))
        if isinstance(item, (bytes, bytearray)):
            self.queued += len(item)
            if self.up:
                STATS.bytes_up += len(item)
                self.counter.feed(item)
            else:
                STATS.bytes_down += len(item)
            if self.queued > STATS.peak_queued:
                STATS.peak_queued = self.queued
            if self.queued > self.bound and not self.src_paused and self.src is not None:
                self.src_paused = True
                self.src.pause_reading()
        self._arm()

    def _arm(self) -> None:
        if self.timer is None and self.q and not self.dst_paused and self.dst is not None:
            # epoll rounds the wait up to the next millisecond: aim half
            # a millisecond early, and send what is due within that slack
            self.timer = self.loop.call_at(self.q[0][0] - SLACK, self._flush)

    def _flush(self) -> None:
        self.timer = None
        now = self.loop.time() + SLACK
        q = self.q
        if self.dst.is_closing():  # the other side is gone: drop what is queued
            q.clear()
            self.queued = 0
        while q and q[0][0] <= now and not self.dst_paused:
            _, item = q.popleft()
            if item is EOF:
                if self.dst.can_write_eof():
                    self.dst.write_eof()
                continue
            if item is CLOSE:
                self.dst.close()
                q.clear()
                self.done = True
                break
            self.queued -= len(item)
            self.dst.write(item)
        if self.src_paused and self.queued <= self.bound // 2 and self.src is not None:
            self.src_paused = False
            try:
                self.src.resume_reading()
            except (RuntimeError, AttributeError):
                pass
        self._arm()

    def pause_writing(self) -> None:
        self.dst_paused = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def resume_writing(self) -> None:
        self.dst_paused = False
        self._flush()


class Side(asyncio.Protocol):
    """One socket; reads into ``inbound`` (its queue towards the other
    side), and is the destination of ``outbound``."""

    def __init__(self, inbound: Pipe, outbound: Pipe):
        self.inbound = inbound
        self.outbound = outbound
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.inbound.src = transport
        self.outbound.dst = transport
        self.outbound._arm()

    def data_received(self, data: bytes) -> None:
        self.inbound.push(data)

    def eof_received(self):
        self.inbound.push(EOF)
        return True  # keep the write side open until the other side is done

    def connection_lost(self, exc) -> None:
        self.inbound.src = None
        self.inbound.push(CLOSE)

    def pause_writing(self) -> None:
        self.outbound.pause_writing()

    def resume_writing(self) -> None:
        self.outbound.resume_writing()


class Relay:
    def __init__(self, host: str, port: int, delay: float, bound: int, handshake: bool):
        self.host, self.port = host, port
        self.delay, self.bound, self.handshake = delay, bound, handshake

    def client_factory(self):
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        not_before = accepted + 2 * self.delay if self.handshake else 0.0
        up = Pipe(loop, self.delay, self.bound, not_before=not_before, up=True)
        down = Pipe(loop, self.delay, self.bound)
        STATS.connections += 1
        side = Side(up, down)
        loop.create_task(self._connect(up, down))
        return side

    async def _connect(self, up: Pipe, down: Pipe) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: Side(down, up), self.host, self.port)
        except OSError as e:
            print(f"linkrelay: connect {self.host}:{self.port}: {e}", file=sys.stderr)
            if up.src is not None:
                up.src.close()


async def control(server, bound_port: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"listening {bound_port}", flush=True)
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = line.strip().decode()
        if cmd == "stats":
            print(json.dumps(STATS.as_dict()), flush=True)
        elif cmd == "reset":
            print(json.dumps(STATS.as_dict()), flush=True)
            STATS.reset()
        elif cmd == "quit":
            return


async def amain(args) -> None:
    host, _, port = args.to.rpartition(":")
    lhost, _, lport = args.listen.rpartition(":")
    relay = Relay(host, int(port), args.delay_ms / 1000.0,
                  int(args.max_queued_mb * (1 << 20)), not args.no_handshake)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(relay.client_factory, lhost, int(lport),
                                      backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    ctl = loop.create_task(control(server, server.sockets[0].getsockname()[1]))
    waiter = loop.create_task(stop.wait())
    await asyncio.wait({ctl, waiter}, return_when=asyncio.FIRST_COMPLETED)
    server.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--to", required=True, help="HOST:PORT of the server")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    ap.add_argument("--max-queued-mb", type=float, default=16.0,
                    help="bound of each direction's queue (MiB)")
    ap.add_argument("--no-handshake", action="store_true",
                    help="do not hold a new connection's first bytes for one round trip")
    args = ap.parse_args()
    if not args.listen.startswith("127."):
        print("linkrelay: listens on 127.0.0.0/8 only", file=sys.stderr)
        return 2
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
