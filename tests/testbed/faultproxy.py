#!/usr/bin/env python3
"""Fault-injecting HTTP/1.1 reverse proxy for the imgsync test bed.

Why it exists (DESIGN.md section 7): moto never answers 500/503/throttling,
never checks the request time and never resets a connection, yet imgsync must
survive all of these against real S3 and DynamoDB.  This proxy sits on
127.0.0.1 in front of moto and, per request and with a seeded RNG, either
forwards the request byte-for-byte (so moto's SigV4 check still sees the Host
header and payload the client signed) or answers with an AWS-shaped fault.

Request framing that is handled: keep-alive (many requests per client
connection), Content-Length bodies, chunked request bodies, and
``Expect: 100-continue`` (answered by the proxy at once, so a client never
waits on moto's slow 100).  One upstream connection is used per request:
moto closes every connection anyway.

Stdlib only.  Module use::

    with FaultProxy(moto_url, seed=7, s3_500=0.1, reset=0.05) as proxy:
        client = boto3.client("s3", endpoint_url=proxy.url, ...)
        ...
        proxy.stats()["faults"]

CLI use: ``python3 faultproxy.py --upstream URL --share s3_500=0.1 ...``
(see ``--help``); it prints ``FAULTPROXY_URL=...`` and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import email.utils
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

__all__ = ["FaultProxy", "FAULT_KINDS", "S3_KINDS", "DDB_KINDS", "MAX_SKEW_S"]

#: Every fault kind the proxy can inject.
FAULT_KINDS = ("s3_500", "s3_503", "ddb_throttle", "ddb_throttling",
               "ddb_500", "reset", "slow")
#: Kinds eligible for S3-shaped requests (no DynamoDB X-Amz-Target).
S3_KINDS = ("s3_500", "s3_503", "reset", "slow")
#: Kinds eligible for DynamoDB requests (X-Amz-Target: DynamoDB_20120810.*).
DDB_KINDS = ("ddb_throttle", "ddb_throttling", "ddb_500", "reset", "slow")
#: AWS refuses requests dated more than 15 minutes from its clock.
MAX_SKEW_S = 15 * 60

DDB_TARGET_PREFIX = "dynamodb_20120810."
DDB_CONTENT_TYPE = "application/x-amz-json-1.0"
DDB_TYPE = "com.amazonaws.dynamodb.v20120810#"

_MAX_LINE = 16 * 1024           # request/status/header line
_MAX_HEADERS = 200
_MAX_REQUESTS_PER_CONN = 100_000
_COPY_CHUNK = 64 * 1024
_LINGER_BYTES = 8 * 1024 * 1024  # at most this much is drained on a lingering close
_LINGER_S = 2.0
_NO_BODY_STATUS = {204, 304}


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.x we can frame."""


# --------------------------------------------------------------------------
# HTTP/1.1 parsing helpers (raw bytes kept so the request is forwarded as sent)
# --------------------------------------------------------------------------

class Message:
    """One parsed request or response head; ``raw`` is exactly what was read."""

    def __init__(self, start_line: str, raw: bytes, headers: list[tuple[str, str]]):
        self.start_line = start_line
        self.raw = raw
        self.header_list = headers
        self.headers = {}
        for name, value in headers:
            key = name.lower()
            # Repeated headers are joined as RFC 9110 allows for list headers.
            self.headers[key] = (self.headers[key] + ", " + value
                                 if key in self.headers else value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def connection_tokens(self) -> set[str]:
        value = self.get("connection", "") or ""
        return {t.strip().lower() for t in value.split(",") if t.strip()}

    def is_chunked(self) -> bool:
        te = (self.get("transfer-encoding", "") or "").lower()
        return "chunked" in te

    def content_length(self) -> int | None:
        value = self.get("content-length")
        if value is None:
            return None
        try:
            n = int(value.split(",")[0].strip())
        except ValueError as exc:
            raise ProtocolError(f"bad Content-Length {value!r}") from exc
        if n < 0:
            raise ProtocolError("negative Content-Length")
        return n


def _read_line(rfile) -> bytes:
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise ProtocolError("line too long")
    return line


def read_head(rfile) -> Message | None:
    """Read a start line plus headers; None on a clean EOF before any byte.

    Blank lines before a request line are tolerated (RFC 9112 2.2)."""
    raw = bytearray()
    line = b""
    for _ in range(4):
        line = _read_line(rfile)
        if not line:
            return None
        if line not in (b"\r\n", b"\n"):
            break
    else:
        raise ProtocolError("only blank lines")
    raw += line
    start = line.decode("latin-1").rstrip("\r\n")
    headers: list[tuple[str, str]] = []
    for _ in range(_MAX_HEADERS + 1):
        line = _read_line(rfile)
        if not line:
            raise ProtocolError("EOF inside header block")
        raw += line
        if line in (b"\r\n", b"\n"):
            return Message(start, bytes(raw), headers)
        text = line.decode("latin-1").rstrip("\r\n")
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"bad header line {text[:80]!r}")
        headers.append((name, value.strip()))
    raise ProtocolError("too many headers")


def iter_body(rfile, msg: Message, until_eof: bool = False):
    """Yield the body of ``msg`` as raw wire bytes (chunk framing included).

    Raw bytes, not decoded ones, so a forwarded body is byte-identical."""
    if msg.is_chunked():
        yield from _iter_chunked(rfile)
        return
    length = msg.content_length()
    if length is None and not until_eof:
        return
    remaining = length if length is not None else None
    while remaining is None or remaining > 0:
        want = _COPY_CHUNK if remaining is None else min(_COPY_CHUNK, remaining)
        data = rfile.read1(want) if hasattr(rfile, "read1") else rfile.read(want)
        if not data:
            if remaining is None:
                return
            raise ProtocolError("EOF inside body")
        if remaining is not None:
            remaining -= len(data)
        yield data


def _iter_chunked(rfile):
    for _ in range(10_000_000):
        size_line = _read_line(rfile)
        if not size_line:
            raise ProtocolError("EOF inside chunked body")
        yield size_line
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from exc
        if size == 0:
            break
        remaining = size + 2  # data + CRLF
        while remaining:
            data = rfile.read(min(_COPY_CHUNK, remaining))
            if not data:
                raise ProtocolError("EOF inside chunk")
            remaining -= len(data)
            yield data
    for _ in range(_MAX_HEADERS + 1):  # trailers, then the final CRLF
        line = _read_line(rfile)
        if not line:
            raise ProtocolError("EOF inside trailers")
        yield line
        if line in (b"\r\n", b"\n"):
            return
    raise ProtocolError("too many trailers")


def http_date(ts: float) -> str:
    """RFC 7231 IMF-fixdate, e.g. 'Sun, 22 Nov 2026 10:30:00 GMT'."""
    return email.utils.formatdate(ts, usegmt=True)


def amz_date(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


def parse_request_time(req: Message) -> float | None:
    """The signing time of a request (X-Amz-Date wins over Date), or None."""
    value = req.get("x-amz-date")
    if value:
        try:
            parsed = _dt.datetime.strptime(value.strip(), "%Y%m%dT%H%M%SZ")
            return parsed.replace(tzinfo=_dt.timezone.utc).timestamp()
        except ValueError:
            return None
    value = req.get("date")
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError):
            return None
    return None


# --------------------------------------------------------------------------
# AWS-shaped error responses
# --------------------------------------------------------------------------

def _request_id() -> str:
    return uuid.uuid4().hex.upper()[:16]


def _s3_error(status: int, reason: str, code: str, message: str, now: float,
              extra_xml: str = "") -> tuple[int, str, list, bytes]:
    rid = _request_id()
    host_id = uuid.uuid4().hex
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>{extra_xml}"
            f"<RequestId>{rid}</RequestId><HostId>{host_id}</HostId></Error>")
    headers = [("x-amz-request-id", rid), ("x-amz-id-2", host_id),
               ("Content-Type", "application/xml"), ("Date", http_date(now)),
               ("Server", "AmazonS3")]
    return status, reason, headers, body.encode()


def _ddb_error(status: int, reason: str, type_: str, message: str,
               now: float) -> tuple[int, str, list, bytes]:
    body = json.dumps({"__type": type_, "message": message},
                      separators=(",", ":")).encode()
    rid = uuid.uuid4().hex.upper()[:52]
    headers = [("x-amzn-RequestId", rid),
               # botocore verifies x-amz-crc32 on DynamoDB responses: keep it right.
               ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF)),
               ("Content-Type", DDB_CONTENT_TYPE), ("Date", http_date(now))]
    return status, reason, headers, body


def fault_response(kind: str, now: float) -> tuple[int, str, list, bytes]:
    """The (status, reason, headers, body) AWS sends for an injected fault."""
    if kind == "s3_500":
        return _s3_error(500, "Internal Server Error", "InternalError",
                         "We encountered an internal error. Please try again.", now)
    if kind == "s3_503":
        return _s3_error(503, "Slow Down", "SlowDown",
                         "Please reduce your request rate.", now)
    if kind == "ddb_throttle":
        return _ddb_error(400, "Bad Request",
                          DDB_TYPE + "ProvisionedThroughputExceededException",
                          "The level of configured provisioned throughput for the "
                          "table was exceeded. Consider increasing your provisioning "
                          "level with the UpdateTable API.", now)
    if kind == "ddb_throttling":
        return _ddb_error(400, "Bad Request", DDB_TYPE + "ThrottlingException",
                          "Rate of requests exceeds the allowed throughput.", now)
    if kind == "ddb_500":
        return _ddb_error(500, "Internal Server Error",
                          DDB_TYPE + "InternalServerError", "Internal server error",
                          now)
    raise ValueError(f"no response shape for fault {kind!r}")


def skew_response(service: str, req_value: str, req_ts: float,
                  now: float) -> tuple[int, str, list, bytes]:
    """What S3 / DynamoDB answer to a request dated >15 min from their clock."""
    if service == "dynamodb":
        if req_ts < now:
            msg = (f"Signature expired: {amz_date(req_ts)} is now earlier than "
                   f"{amz_date(now - MAX_SKEW_S)} ({amz_date(now)} - 15 min.)")
        else:
            msg = (f"Signature not yet current: {amz_date(req_ts)} is still later "
                   f"than {amz_date(now + MAX_SKEW_S)} ({amz_date(now)} + 15 min.)")
        return _ddb_error(400, "Bad Request",
                          "com.amazon.coral.service#InvalidSignatureException",
                          msg, now)
    server_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    extra = (f"<RequestTime>{_xml_escape(req_value)}</RequestTime>"
             f"<ServerTime>{server_time}</ServerTime>"
             f"<MaxAllowedSkewMilliseconds>{MAX_SKEW_S * 1000}"
             "</MaxAllowedSkewMilliseconds>")
    return _s3_error(403, "Forbidden", "RequestTimeTooSkewed",
                     "The difference between the request time and the current "
                     "time is too large.", now, extra)


def _xml_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def render_response(status: int, reason: str, headers: list, body: bytes,
                    head_only: bool, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {0 if head_only else len(body)}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


# --------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------

class FaultProxy:
    """Reverse proxy on 127.0.0.1 that injects AWS faults per request.

    Shares are probabilities per request, drawn once per eligible request from
    ``random.Random(seed)``; a request is eligible for S3 kinds unless it has a
    DynamoDB ``X-Amz-Target``, then for DDB kinds (``reset`` and ``slow`` fit
    both).  Faults are independent per request, so retries can be hit again;
    ``max_faults`` bounds the total.  Clock skew is checked on every request,
    not randomly: the proxy's clock is ``time.time() + clock_offset_s``.
    """

    def __init__(self, upstream_url: str, seed: int = 0, *,
                 s3_500: float = 0.0, s3_503: float = 0.0,
                 ddb_throttle: float = 0.0, ddb_throttling: float = 0.0,
                 ddb_500: float = 0.0, reset: float = 0.0, slow: float = 0.0,
                 slow_ms: int = 500, clock_offset_s: float = 0.0,
                 check_skew: bool = True, max_faults: int | None = None,
                 fault_filter=None, port: int = 0,
                 idle_timeout_s: float = 120.0, upstream_timeout_s: float = 300.0,
                 max_connections: int = 256, log_limit: int = 100_000):
        parsed = urllib.parse.urlsplit(upstream_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be http://host:port, got {upstream_url!r}")
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("upstream must be on 127.0.0.1 (test bed rule)")
        self.upstream = ("127.0.0.1", parsed.port or 80)
        self.slow_ms = slow_ms
        self.clock_offset_s = clock_offset_s
        self.check_skew = check_skew
        self.max_faults = max_faults
        self.fault_filter = fault_filter
        self.idle_timeout_s = idle_timeout_s
        self.upstream_timeout_s = upstream_timeout_s
        self.max_connections = max_connections
        self._requested_port = port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._shares = {k: 0.0 for k in FAULT_KINDS}
        self.set_shares(s3_500=s3_500, s3_503=s3_503, ddb_throttle=ddb_throttle,
                        ddb_throttling=ddb_throttling, ddb_500=ddb_500,
                        reset=reset, slow=slow)
        self._log = collections.deque(maxlen=log_limit)
        self._counters = self._zero_counters()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self.port: int | None = None

    # ---- configuration and counters ------------------------------------

    def set_shares(self, **shares: float) -> None:
        """Change fault shares at run time (e.g. faults off during set-up)."""
        with self._lock:
            new = dict(self._shares)
            for kind, share in shares.items():
                if kind not in FAULT_KINDS:
                    raise ValueError(f"unknown fault kind {kind!r}")
                if not 0.0 <= float(share) <= 1.0:
                    raise ValueError(f"share for {kind} must be within [0, 1]")
                new[kind] = float(share)
            for group in (S3_KINDS, DDB_KINDS):
                if sum(new[k] for k in group) > 1.0 + 1e-9:
                    raise ValueError(f"shares of {group} add up to more than 1")
            self._shares = new

    @staticmethod
    def _zero_counters() -> dict:
        return {"connections": 0, "requests": 0, "forwarded": 0, "skewed": 0,
                "upstream_errors": 0, "bad_requests": 0,
                "faults": {k: 0 for k in FAULT_KINDS}}

    def stats(self) -> dict:
        """Snapshot of the counters (the ``faults`` dict is per kind)."""
        with self._lock:
            snap = dict(self._counters)
            snap["faults"] = dict(self._counters["faults"])
            snap["faults_total"] = sum(snap["faults"].values())
            return snap

    def log(self) -> list[dict]:
        """Per-request log: method, path, service, status, fault, expect."""
        with self._lock:
            return list(self._log)

    def reset_counters(self) -> None:
        with self._lock:
            self._counters = self._zero_counters()
            self._log.clear()

    def now(self) -> float:
        """The proxy's (possibly shifted) idea of the current time."""
        return time.time() + self.clock_offset_s

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("proxy not started")
        return f"http://127.0.0.1:{self.port}"

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counters[key] += n

    def _record(self, req: Message, service: str, status, fault) -> None:
        method, _, rest = req.start_line.partition(" ")
        path = rest.rsplit(" ", 1)[0]
        with self._lock:
            self._log.append({"method": method, "path": path, "service": service,
                              "status": status, "fault": fault,
                              "expect": _expects_continue(req),
                              # server-side proof of copy versus upload
                              "copy_source": req.get("x-amz-copy-source"),
                              "target": req.get("x-amz-target"),
                              "owner": req.get("x-amz-expected-bucket-owner"),
                              "length": req.content_length() or 0})

    # ---- lifecycle -----------------------------------------------------

    def start(self) -> "FaultProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._requested_port))
        listener.listen(128)
        listener.settimeout(0.2)  # so the accept loop notices stop() quickly
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop,
                                               name=f"faultproxy-{self.port}",
                                               daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, cut open connections, join threads (bounded)."""
        self._stopping.set()
        if self._accept_thread:
            self._accept_thread.join(timeout_s)
        if self._listener:
            self._listener.close()
        with self._lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout_s
        for _, thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "FaultProxy":
        return self.start() if self.port is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                too_many = len(self._conns) >= self.max_connections
            if too_many:
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.idle_timeout_s)
            thread = threading.Thread(target=self._serve_connection, args=(sock,),
                                      daemon=True)
            with self._lock:
                self._conns[sock] = thread
                self._counters["connections"] += 1
            thread.start()

    # ---- one client connection -----------------------------------------

    def _serve_connection(self, sock: socket.socket) -> None:
        rfile = sock.makefile("rb", buffering=_COPY_CHUNK)
        how = "close"
        try:
            for _ in range(_MAX_REQUESTS_PER_CONN):
                if self._stopping.is_set():
                    break
                req = read_head(rfile)
                if req is None:
                    break
                how = self._handle(req, sock, rfile)
                if how != "keep":
                    break
        except ProtocolError:
            self._count("bad_requests")
            _send_quietly(sock, render_response(400, "Bad Request", [], b"",
                                                False, True))
        except (OSError, ValueError):
            pass  # client went away or timed out idle
        finally:
            _finish(sock, rfile, how)
            with self._lock:
                self._conns.pop(sock, None)

    def _handle(self, req: Message, sock: socket.socket, rfile) -> str:
        """Answer one request; returns 'keep', 'close', 'linger' or 'reset'."""
        self._count("requests")
        service = _service_of(req)
        head_only = req.start_line.upper().startswith("HEAD ")
        keep = _client_keeps_alive(req)

        skew = self._skew(req, service)
        if skew is not None:
            self._count("skewed")
            self._record(req, service, skew[0], "skew")
            if _expects_continue(req):
                # Like S3: refuse on the headers, never ask for the body.
                sock.sendall(render_response(*skew, head_only, True))
                return "linger"
            _drain(rfile, req)
            sock.sendall(render_response(*skew, head_only, not keep))
            return "keep" if keep else "close"

        fault = self._decide(req, service)
        if _expects_continue(req):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if fault == "reset":
            _drain(rfile, req)
            self._record(req, service, None, fault)
            return "reset"
        if fault is not None and fault != "slow":
            _drain(rfile, req)
            response = fault_response(fault, self.now())
            self._record(req, service, response[0], fault)
            sock.sendall(render_response(*response, head_only, not keep))
            return "keep" if keep else "close"
        if fault == "slow" and self._stopping.wait(self.slow_ms / 1000.0):
            return "close"
        return self._forward(req, service, fault, sock, rfile, keep, head_only)

    def _skew(self, req: Message, service: str):
        if not self.check_skew:
            return None
        req_ts = parse_request_time(req)
        if req_ts is None:
            return None
        now = self.now()
        if abs(req_ts - now) <= MAX_SKEW_S:
            return None
        value = req.get("x-amz-date") or req.get("date") or ""
        return skew_response(service, value, req_ts, now)

    def _decide(self, req: Message, service: str) -> str | None:
        """Pick at most one fault for this request (one RNG draw if eligible)."""
        kinds = DDB_KINDS if service == "dynamodb" else S3_KINDS
        with self._lock:
            if self.max_faults is not None and \
                    sum(self._counters["faults"].values()) >= self.max_faults:
                return None
            if not any(self._shares[k] for k in kinds):
                return None
            if self.fault_filter is not None and not self.fault_filter(req):
                return None
            draw = self._rng.random()
            edge = 0.0
            for kind in kinds:
                edge += self._shares[kind]
                if draw < edge:
                    self._counters["faults"][kind] += 1
                    return kind
        return None

    # ---- forwarding ----------------------------------------------------

    def _forward(self, req, service, fault, sock, rfile, keep, head_only) -> str:
        try:
            upstream = socket.create_connection(self.upstream,
                                                timeout=self.upstream_timeout_s)
        except OSError:
            return self._upstream_failed(req, service, fault, sock, rfile, keep,
                                         head_only, body_read=False)
        ufile = upstream.makefile("rb", buffering=_COPY_CHUNK)
        try:
            try:
                upstream.sendall(req.raw)
                for piece in iter_body(rfile, req):
                    upstream.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # upstream answered early; its answer is read below
            resp = _read_final_response(ufile)
            if resp is None:
                return self._upstream_failed(req, service, fault, sock, rfile,
                                             keep, head_only, body_read=True)
            return self._relay(req, service, fault, resp, ufile, sock, keep,
                               head_only)
        finally:
            ufile.close()
            upstream.close()

    def _upstream_failed(self, req, service, fault, sock, rfile, keep, head_only,
                         body_read: bool) -> str:
        self._count("upstream_errors")
        if not body_read:
            _drain(rfile, req)
        self._record(req, service, 502, fault)
        sock.sendall(render_response(502, "Bad Gateway", [("Date", http_date(self.now()))],
                                     b"faultproxy: upstream unreachable\n",
                                     head_only, True))
        return "close"

    def _relay(self, req, service, fault, resp: Message, ufile, sock, keep,
               head_only) -> str:
        status = _status_of(resp)
        no_body = head_only or status in _NO_BODY_STATUS or status < 200
        until_eof = (not no_body and not resp.is_chunked()
                     and resp.content_length() is None)
        keep = keep and not until_eof
        # Count before the client can see the answer, so a test reading the
        # counters right after its call returns never races this thread.
        self._count("forwarded")
        self._record(req, service, status, fault)
        sock.sendall(self._rewrite_response_head(resp, close=not keep))
        if not no_body:
            for piece in iter_body(ufile, resp, until_eof=until_eof):
                sock.sendall(piece)
        return "keep" if keep else "close"

    def _rewrite_response_head(self, resp: Message, close: bool) -> bytes:
        """Drop upstream hop-by-hop headers (moto says 'Connection: close' on
        every answer, which would defeat client keep-alive) and, when the
        proxy's clock is shifted, restate Date in that clock so a client
        correcting skew from Date sees one consistent server time."""
        hop = {"connection", "keep-alive", "proxy-connection"} | resp.connection_tokens()
        lines = [resp.start_line]
        for name, value in resp.header_list:
            lname = name.lower()
            if lname in hop:
                continue
            if lname == "date" and self.clock_offset_s:
                value = http_date(self.now())
            lines.append(f"{name}: {value}")
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --------------------------------------------------------------------------
# small connection helpers
# --------------------------------------------------------------------------

def _service_of(req: Message) -> str:
    target = (req.get("x-amz-target") or "").lower()
    return "dynamodb" if target.startswith(DDB_TARGET_PREFIX) else "s3"


def _expects_continue(req: Message) -> bool:
    return (req.get("expect") or "").strip().lower() == "100-continue"


def _client_keeps_alive(req: Message) -> bool:
    if not req.start_line.endswith("HTTP/1.1"):
        return False  # HTTP/1.0: one request per connection keeps it simple
    return "close" not in req.connection_tokens()


def _status_of(resp: Message) -> int:
    parts = resp.start_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ProtocolError(f"bad status line {resp.start_line[:80]!r}")
    try:
        return int(parts[1])
    except ValueError as exc:
        raise ProtocolError(f"bad status line {resp.start_line[:80]!r}") from exc


def _read_final_response(ufile) -> Message | None:
    """Read the upstream answer, skipping interim 1xx (the proxy already
    answered 100-continue itself)."""
    for _ in range(16):
        try:
            resp = read_head(ufile)
        except (OSError, ProtocolError):
            return None
        if resp is None:
            return None
        if _status_of(resp) >= 200 or _status_of(resp) == 101:
            return resp
    return None


def _drain(rfile, req: Message) -> None:
    for _ in iter_body(rfile, req):
        pass


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


def _finish(sock: socket.socket, rfile, how: str) -> None:
    """Close a client connection the requested way.

    'reset' sends RST (SO_LINGER 0); 'linger' half-closes and drains for a
    bounded time so the client can read our early answer before the close."""
    try:
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        elif how == "linger":
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.2)
            deadline = time.monotonic() + _LINGER_S
            drained = 0
            while time.monotonic() < deadline and drained < _LINGER_BYTES:
                try:
                    data = sock.recv(_COPY_CHUNK)
                except socket.timeout:
                    continue
                if not data:
                    break
                drained += len(data)
    except OSError:
        pass
    finally:
        try:
            rfile.close()
        finally:
            sock.close()


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _die_with_parent() -> None:
    """SIGTERM us when the launcher dies (Linux prctl), so a crashed test
    harness never leaves a proxy behind."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _parse_share(text: str) -> tuple[str, float]:
    kind, sep, value = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=SHARE with KIND in {', '.join(FAULT_KINDS)}")
    return kind, float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--share", type=_parse_share, action="append", default=[],
                        metavar="KIND=P", help=f"kinds: {', '.join(FAULT_KINDS)}")
    parser.add_argument("--slow-ms", type=int, default=500)
    parser.add_argument("--clock-offset-s", type=float, default=0.0)
    parser.add_argument("--no-skew-check", action="store_true")
    parser.add_argument("--max-faults", type=int, default=None)
    parser.add_argument("--url-file", help="write the proxy URL here once listening")
    parser.add_argument("--stats-file", help="write counters as JSON here on exit")
    parser.add_argument("--max-seconds", type=float, default=4 * 3600,
                        help="exit after this long even if never signalled")
    parser.add_argument("--no-die-with-parent", action="store_true",
                        help="keep running if the launching process dies")
    args = parser.parse_args(argv)
    if not args.no_die_with_parent:
        _die_with_parent()

    proxy = FaultProxy(args.upstream, seed=args.seed, slow_ms=args.slow_ms,
                       clock_offset_s=args.clock_offset_s,
                       check_skew=not args.no_skew_check,
                       max_faults=args.max_faults, port=args.port,
                       **dict(args.share))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    proxy.start()
    try:
        print(f"FAULTPROXY_URL={proxy.url}", flush=True)
        if args.url_file:
            with open(args.url_file, "w", encoding="ascii") as fh:
                fh.write(proxy.url + "\n")
        stop.wait(args.max_seconds)
    finally:
        proxy.stop()
        stats = json.dumps(proxy.stats(), sort_keys=True)
        if args.stats_file:
            with open(args.stats_file, "w", encoding="ascii") as fh:
                fh.write(stats + "\n")
        print(stats, file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
