#!/usr/bin/env python3
"""First benchmark: 2,000 images of ~30 KB dropped at once into 20 folders.

Against one moto server on 127.0.0.1 (started here, without signature
checks so every peer can talk to it), in one invocation:
  imgsyncd   - time until every file is an object AND an item
  rclone     - `rclone copy` of the same files (objects only)
  aws CLI    - `aws s3 cp --recursive` (objects only)
  curl       - `curl --parallel` sending the same PUTs unsigned: the raw
               ceiling of the server
For each: wall time, requests/s, CPU time (user+sys) and peak RSS, and the
ratios the targets are stated in. Prints a Markdown report.

--server emulators runs the same four clients against the npm emulators
instead: S3 on s3rver, DynamoDB on dynalite (both on 127.0.0.1, installed
on demand by the test bed). Unlike moto, which closes the connection after
every response, both keep connections alive, so this measures the clients
when connections are reused. s3rver accepts only the key pair
S3RVER/S3RVER; dynalite checks no key, so everyone is given S3RVER/S3RVER.
--strace FILE attaches `strace -f -c` to imgsyncd for its run (syscall
counts, e.g. connect(); that run's CPU time is inflated by strace).

Modes (issue 13), each one command; all take --server and --link:

  bench/run --server emulators --link 40ms,1gbit
      The burst above over a far-away link. --link RTT,RATE (root) makes a
      network namespace with a veth pair into it, tbf at RATE on both veth
      ends (so both directions are limited), and runs the servers inside
      it on the namespace's address; the clients reach them through delay
      relays on 127.0.0.1 (bench/linkrelay.py: RTT/2 each way, a
      timestamped queue per direction, bounded with back-pressure; a new
      connection's first bytes also wait one RTT, the emulated handshake).
      The endpoints stay http://127.0.0.1:PORT, so every client uses the
      same path style as on loopback. First the link is proven with curl
      (small GETs show the RTT, a --proof-size PUT and GET the bandwidth,
      through the relay and directly for comparison); then imgsyncd,
      rclone copy --transfers 16, aws s3 cp --recursive and curl
      --parallel: wall, CPU, peak RSS, the peers' wall over imgsyncd's,
      and requests per file as the relays counted them on the wire (S3
      and DynamoDB separately, by operation), and connections opened.
      Set-up and verification (buckets, tables, boto3 checks) go to the
      servers directly and are not counted.
  bench/run --bigfile 1GiB [--link 40ms,1gbit --server emulators]
      One file of random bytes (real, not sparse), made once: imgsyncd
      from the close(2) of its copy in the watched folder to its row
      marked synced in the state database (then object size and item
      checked with boto3), `aws s3 cp` of the file, unsigned `curl -T`.
      Wall, MB/s, share of the link rate (with --link), CPU, peak RSS
      (imgsyncd VmHWM from /proc, the peers GNU time).
  bench/run --latency 50 [--link 40ms,1gbit] [--settle-ms MS]
      N files of ~30 KB written one at a time; per file, close(2) -> item
      readable (GetItem, ConsistentRead, polled every ~1 ms directly at the
      server, i.e. without the relay's delay on the way back) and close ->
      the state database's 'synced' row: p50/p90/p99. The floor: boto3
      PutObject + PutItem one after the other over the same endpoints,
      median. The settle delay printed is --settle-ms, else the default of
      watch.settle_ms in this tree's lib/config.c (a --bin from another
      tree may differ: pass --settle-ms to be sure).

  bench/run --thumbnails [--server emulators]
      Issue 14: the burst (--files, --folders, --size) of real JPEGs that
      libvips decodes (one 640x480 picture made with tests/tools/thumbimg,
      a comment segment making each file different and --size long),
      synced by imgsyncd twice on the same servers, alternating: without
      thumbnails, then with (thumbnails.enabled, the helper next to
      --bin), then both again. Per run: the time until every file is an
      object and an item, and with thumbnails the time until every row has
      its thumbnail too; imgsyncd's CPU (the helper's is its own process)
      and peak RSS. The sync's rate with thumbnails over without is the
      number: thumbnails follow the sync, they must not slow it.

Everything started here is stopped by pid and the namespace (with its veth
pair and qdiscs) is deleted at the end, on failure, on SIGTERM/SIGHUP and at
exit. Traffic goes only to 127.0.0.1 and to the namespace's address.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "testbed"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import netlink  # noqa: E402
import testbed  # noqa: E402
from images import jpeg  # noqa: E402


def make_tree(dst: Path, n: int, folders: int, size: int) -> None:
    for i in range(n):
        d = dst / f"folder{i % folders:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"img{i:05d}.jpg").write_bytes(jpeg(640, 480, b"%d" % i, pad=size - 300))


def run_measured(argv, env=None, cwd=None) -> dict:
    """Runs a command under GNU time: wall time, CPU time, peak RSS. (Not
    wait4 from here: a child forked from this Python process starts with
    its resident set, which ru_maxrss would report.)"""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *argv],
                           env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({p.returncode}): "
                               f"{p.stderr.decode(errors='replace')[-2000:]}")
        user, sys_, rss = tf.read().split()[-3:]
    return {"wall": wall, "cpu": float(user) + float(sys_), "rss_kb": int(rss)}


class Daemon:
    """imgsyncd with a config written here, over the given endpoints
    (direct, or the link's relays)."""

    def __init__(self, binary: Path, work: Path, s3_endpoint: str, ddb_endpoint: str,
                 bucket: str, table: str, keys: tuple[str, str],
                 settle_ms: int | None = None, root: Path | None = None,
                 concurrency: int | None = None, extra_conf: str = ""):
        """root: a folder that is there already (its files found by the
        start-up scan); else work/watch, made empty."""
        self.work = work
        self.root = root or work / "watch"
        if root is None:
            self.root.mkdir()
        self.state = work / "state.db"
        conf = work / "imgsync.conf"
        settle = f" settle_ms = {settle_ms};" if settle_ms is not None else ""
        conc = (f"sync: {{ concurrency = {concurrency}; }};"
                if concurrency is not None else "")
        conf.write_text(f"""
watch: {{ root = "{self.root}";{settle} }};
s3: {{ bucket = "{bucket}"; region = "us-east-1"; endpoint = "{s3_endpoint}"; path_style = true; }};
dynamodb: {{ table = "{table}"; endpoint = "{ddb_endpoint}"; }};
credentials: {{ access_key_id = "{keys[0]}"; secret_access_key = "{keys[1]}"; }};
state: {{ path = "{self.state}"; }};
control: {{ socket = "{work}/s.sock"; trash = "{work}/trash"; }};
log: {{ level = "info"; }};
{conc}
{extra_conf}
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        self.log_path = work / "imgsyncd.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(binary), "-c", str(conf)], stdout=self.log,
                                     stderr=self.log, env=env)
        atexit.register(self.stop)
        deadline = time.monotonic() + 20
        while "watching" not in self.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("imgsyncd did not start watching: "
                                   + self.log_path.read_text(errors="replace")[-2000:])
            time.sleep(0.05)

    def count(self, sql: str, args=(), failed: int = 0) -> int:
        """A count(*) from the state database, read-only; failed when it
        cannot be read (yet)."""
        try:
            db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=1)
            try:
                return db.execute(sql, args).fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            return failed

    def synced(self, key: str | None = None) -> int:
        """Rows marked synced (all, or the one with S3 key ``key``)."""
        if key is None:
            return self.count("SELECT count(*) FROM files WHERE status='synced'")
        return self.count("SELECT count(*) FROM files WHERE status='synced' AND key=?",
                          (key,))

    def wait_synced(self, n: int, timeout: float, key: str | None = None,
                    interval: float = 0.02) -> int:
        deadline = time.monotonic() + timeout
        done = 0
        while time.monotonic() < deadline:
            done = self.synced(key)
            if done >= n:
                break
            time.sleep(interval)
        return done

    def thumbs_left(self) -> int:
        """Synced rows still waiting for their thumbnail."""
        return self.count("SELECT count(*) FROM files WHERE thumb = '' AND "
                          "status = 'synced'", failed=-1)

    def stop_and_give_back(self, src: Path) -> None:
        """Stops imgsyncd and moves the dropped tree back to src."""
        self.stop()
        if (self.root / src.name).exists():
            os.rename(self.root / src.name, src)

    def cpu(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def hwm_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))

    def stop(self) -> None:
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
        self.log.close()


def bench_imgsyncd(t: "Target", src: Path, work: Path, n: int, binary: Path,
                   strace_out: str | None = None) -> dict:
    """The 2,000-file burst: time until all are synced (object and item)."""
    bucket, table = t.s3.bucket(), t.ddb.table()
    d = Daemon(binary, work, t.s3_endpoint, t.ddb_endpoint, bucket, table, t.s3.admin)
    try:
        tracer = None
        if strace_out:
            tracer = subprocess.Popen(["strace", "-f", "-c", "-o", strace_out, "-p",
                                       str(d.proc.pid)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)  # attached to every thread before the files appear
        t.reset_counts()
        t0 = time.monotonic()
        # dropped at once: the whole tree appears in the folder in one rename
        os.rename(src, d.root / src.name)
        done = d.wait_synced(n, 600)
        wall = time.monotonic() - t0
        counts = t.counts()
        cpu, rss = d.cpu(), d.hwm_kb()
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)  # detaches and writes the summary
            tracer.wait(30)
    finally:
        d.stop_and_give_back(src)
    if done < n:
        raise RuntimeError(f"imgsyncd synced {done} of {n}")
    # verify with boto3, not our own client
    objs = sum(pg.get("KeyCount", 0) for pg in
               t.s3.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket))
    items = sum(pg["Count"] for pg in
                t.ddb.dynamodb().get_paginator("scan").paginate(TableName=table))
    if objs != n or items != n:
        raise RuntimeError(f"imgsyncd: {objs} objects, {items} items, want {n}")
    return {"wall": wall, "cpu": cpu, "rss_kb": rss, "requests": 2 * n, **counts}


class Target:
    """Where the clients go. ``s3`` / ``ddb`` are the server beds, reached
    directly (set-up and verification); ``s3_endpoint`` / ``ddb_endpoint``
    are what the measured clients get: the same servers, or with --link the
    relays on 127.0.0.1 in front of them (the same http://127.0.0.1:PORT form
    as without the link, so every client picks the same path style)."""

    def __init__(self, s3, ddb, relays: dict | None = None, link=None,
                 rtt_ms: float = 0.0):
        self.s3, self.ddb = s3, ddb
        self.relays = relays or {}
        self.link, self.rtt_ms = link, rtt_ms
        self.s3_endpoint = self.relays["s3"].endpoint if "s3" in self.relays else s3.endpoint
        self.ddb_endpoint = (self.relays["ddb"].endpoint if "ddb" in self.relays else
                             self.s3_endpoint if ddb is s3 else ddb.endpoint)
        self.cs3 = testbed.Bed(self.s3_endpoint, s3.admin)    # clients over the link
        self.cddb = testbed.Bed(self.ddb_endpoint, ddb.admin)

    def reset_counts(self) -> None:
        for r in self.relays.values():
            r.reset()

    def counts(self) -> dict:
        """Requests the relays forwarded since the last reset: S3 and
        DynamoDB separately (DynamoDB requests carry X-Amz-Target), and the
        connections opened. Empty without --link."""
        if not self.relays:
            return {}
        s3 = ddb = conns = 0
        ops: dict = {}
        for r in self.relays.values():
            st = r.stats()
            conns += st["connections"]
            for op, k in st["by_op"].items():
                ops[op] = ops.get(op, 0) + k
                if " " in op or op.isupper():   # "PUT ?partNumber", "GET": S3
                    s3 += k
                else:                           # "PutItem": DynamoDB
                    ddb += k
        return {"s3_requests": s3, "ddb_requests": ddb, "connections": conns, "ops": ops}


def peer_env(bed) -> dict:
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": bed.admin[0], "AWS_SECRET_ACCESS_KEY": bed.admin[1],
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"})
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def rclone_env(t: Target) -> dict:
    env = peer_env(t.s3)
    env.pop("AWS_CA_BUNDLE", None)  # rclone 1.60 refuses to start with it set
    env.update({"RCLONE_CONFIG_M_TYPE": "s3", "RCLONE_CONFIG_M_PROVIDER": "Other",
                "RCLONE_CONFIG_M_ENV_AUTH": "true", "RCLONE_CONFIG_M_ENDPOINT": t.s3_endpoint,
                "RCLONE_CONFIG_M_FORCE_PATH_STYLE": "true"})
    return env


def measured(t: Target, argv, env=None) -> dict:
    t.reset_counts()
    r = run_measured(argv, env=env)
    r.update(t.counts())
    return r


def bench_rclone(t: Target, src: Path, n: int) -> dict:
    bucket = t.s3.bucket()
    r = measured(t, ["rclone", "copy", "--config", "/dev/null", "--transfers", "16",
                     "--checkers", "16", str(src), f"m:{bucket}/"], env=rclone_env(t))
    r["requests"] = n
    return r


def bench_aws(t: Target, src: Path, n: int) -> dict:
    bucket = t.s3.bucket()
    r = measured(t, ["aws", "--endpoint-url", t.s3_endpoint, "s3", "cp", "--recursive",
                     "--only-show-errors", str(src), f"s3://{bucket}/"], env=peer_env(t.s3))
    r["requests"] = n
    return r


def bench_curl(t: Target, src: Path, n: int, work: Path) -> dict:
    bucket = t.s3.bucket()
    cfg = work / "curl.cfg"
    with cfg.open("w") as f:
        for p in sorted(src.rglob("*.jpg")):
            rel = p.relative_to(src).as_posix()
            f.write(f'url = "{t.s3_endpoint}/{bucket}/{rel}"\nupload-file = "{p}"\n'
                    f'output = "/dev/null"\n')
    r = measured(t, ["curl", "--parallel", "--parallel-max", "16", "-sS", "--fail",
                     "-H", "Expect:", "-K", str(cfg)])
    r["requests"] = n
    return r


def run_clients(t: Target, src: Path, work: Path, args) -> dict:
    """The four clients in turn, each with a bucket of its own."""
    res = {}
    progress("imgsyncd")
    res["imgsyncd"] = bench_imgsyncd(t, src, work, args.files, Path(args.bin),
                                     strace_out=args.strace)
    progress("rclone")
    res["rclone copy"] = bench_rclone(t, src, args.files)
    progress("aws")
    res["aws s3 cp"] = bench_aws(t, src, args.files)
    progress("curl")
    res["curl --parallel"] = bench_curl(t, src, args.files, work)
    return res


# --------------------------------------------------------------------------
# servers, optionally behind the shaped link
# --------------------------------------------------------------------------

@contextlib.contextmanager
def open_target(args):
    """The servers of --server, on 127.0.0.1, or with --link in a network
    namespace behind tbf (netlink.ShapedLink) with a delay relay each."""
    with contextlib.ExitStack() as stack:
        link = None
        kw = {}
        rtt_ms = 0.0
        if args.link:
            rtt_ms, _ = netlink.parse_link(args.link)
            link = stack.enter_context(netlink.ShapedLink(args.link.split(",", 1)[1]))
            kw = {"host": link.ns_addr, "prefix": link.prefix}
        if args.server == "moto":
            s3 = stack.enter_context(testbed.Moto(auth=False, **kw))
            ddb = s3
        elif args.server == "s3rver+moto":
            s3 = stack.enter_context(testbed.S3rver(**kw))
            ddb = stack.enter_context(testbed.Moto(auth=False, **kw))
        else:
            s3 = stack.enter_context(testbed.S3rver(**kw))
            ddb = stack.enter_context(testbed.Dynalite(**kw))
        relays = {}
        if link:
            relays["s3"] = netlink.Relay(link.ns_addr, s3.port, rtt_ms / 2, name="s3")
            stack.callback(relays["s3"].stop)
            if ddb is not s3:
                relays["ddb"] = netlink.Relay(link.ns_addr, ddb.port, rtt_ms / 2, name="ddb")
                stack.callback(relays["ddb"].stop)
        yield Target(s3, ddb, relays, link, rtt_ms)


def server_desc(args) -> str:
    if args.server == "moto":
        s = "moto (no auth; closes every connection)"
    elif args.server == "s3rver+moto":
        s = (f"s3rver {testbed.NPM_PACKAGES['s3rver']} (S3, keep-alive) and moto "
             f"(DynamoDB, which has TransactWriteItems; closes every connection)")
    else:
        s = (f"s3rver {testbed.NPM_PACKAGES['s3rver']} (S3) and dynalite "
             f"{testbed.NPM_PACKAGES['dynalite']} (DynamoDB), keep-alive")
    if args.link:
        rtt, rate = netlink.parse_link(args.link)
        return (f"{s}, in a network namespace behind a veth pair shaped by tbf at "
                f"{rate / 1e6:.0f} Mbit/s each way and a delay relay of {rtt / 2:g} ms each "
                f"way ({rtt:g} ms RTT) on 127.0.0.1")
    return f"{s} on 127.0.0.1"


def machine_desc() -> str:
    return (f"{os.cpu_count()} cores, {platform.platform()}, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}")


def write_random(path: Path, size: int) -> None:
    """Real bytes (not sparse): os.urandom in 8 MiB chunks."""
    with open(path, "wb") as f:
        left = size
        while left:
            k = min(left, 8 << 20)
            f.write(os.urandom(k))
            left -= k


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KMG]i?B)?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"size {text!r}: want e.g. 1GiB, 256MiB")
    unit = (m.group(2) or "B").lower()
    mult = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
            "kb": 10**3, "mb": 10**6, "gb": 10**9}[unit]
    return int(m.group(1)) * mult


def curl_times(urls: list[str], extra=()) -> list[tuple[float, int]]:
    """One curl invocation for all ``urls`` (connections reused when the
    server keeps them): (seconds, new connections) per transfer."""
    argv = ["curl", "-sS", "--max-time", "120", "-w", "%{time_total} %{num_connects}\\n",
            *extra]
    for u in urls:
        argv += ["-o", "/dev/null", u]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout
    return [(float(a), int(b)) for a, b in (line.split() for line in out.splitlines())]


def prove_link(t: Target, work: Path, proof_size: int) -> list[str]:
    """curl through the relay: small requests show the RTT, a large PUT and
    GET the bandwidth; the same directly to the server (shaped, no delay)
    for comparison. Returns Markdown lines."""
    bucket = t.s3.bucket()
    progress("proving the link")
    out = ["### The link, proven with curl", ""]
    out.append(f"tbf on both veth ends: rate {t.link.rate}, burst {t.link.burst}, "
               f"latency {t.link.latency} (`{t.link.describe().splitlines()[0]}`)")
    out.append("")
    rows = []
    for name, ep in (("relay (link)", t.s3_endpoint), ("direct (tbf only)", t.s3.endpoint)):
        first, reused = [], []
        for _ in range(5):
            ts = curl_times([f"{ep}/{bucket}/"] * 3)
            first.append(ts[0][0])
            reused += [x for x, c in ts[1:] if c == 0]
        rows.append((name, statistics.median(first) * 1e3,
                     statistics.median(reused) * 1e3 if reused else None))
    out.append("| small GET (bucket listing) | new connection, median of 5 ms | "
               "connection reused, median of 10 ms |")
    out.append("|---|---|---|")
    for name, a, b in rows:
        out.append(f"| {name} | {a:.1f} | {b:.1f} |" if b is not None else
                   f"| {name} | {a:.1f} | (server closes connections) |")
    relay_reused, direct_reused = rows[0][2], rows[1][2]
    if relay_reused is not None and direct_reused is not None:
        out.append("")
        out.append(f"RTT added by the relay (reused connection, relay - direct): "
                   f"**{relay_reused - direct_reused:.1f} ms** (configured {t.rtt_ms:g} ms); "
                   f"a new connection pays one more RTT for the emulated handshake "
                   f"({rows[0][1] - relay_reused:.1f} ms more).")
    else:
        out.append("")
        out.append(f"RTT added by the relay (new connections, relay - direct): "
                   f"**{rows[0][1] - rows[1][1]:.1f} ms** (configured: {t.rtt_ms:g} ms RTT, "
                   f"plus one RTT for the emulated handshake = {2 * t.rtt_ms:g} ms)")
    big = work / "proof.bin"
    write_random(big, proof_size)
    out.append("")
    out.append(f"| {proof_size >> 20} MiB with curl | wall s | Mbit/s (payload) | "
               f"of {t.link.rate_bps / 1e6:.0f} Mbit/s |")
    out.append("|---|---|---|---|")
    for name, ep in (("relay (link)", t.s3_endpoint), ("direct (tbf only)", t.s3.endpoint)):
        url = f"{ep}/{bucket}/proof.bin"
        for what, argv in (("PUT", ["curl", "-sS", "--fail", "-H", "Expect:", "-T", str(big),
                                    "-o", "/dev/null", url]),
                           ("GET", ["curl", "-sS", "--fail", "-o", "/dev/null", url])):
            t0 = time.monotonic()
            subprocess.run(argv, check=True, timeout=600)
            w = time.monotonic() - t0
            mbit = proof_size * 8 / w / 1e6
            out.append(f"| {what} {name} | {w:.2f} | {mbit:.0f} | "
                       f"{mbit * 1e6 / t.link.rate_bps:.2f} |")
    t.s3.s3().delete_object(Bucket=bucket, Key="proof.bin")
    big.unlink()
    st = t.relays["s3"].stats()
    out.append("")
    out.append(f"(Largest payload share possible: 1448 of every 1514 bytes tbf counts "
               f"= 0.956. The S3 relay so far: {st['cpu_s']:.2f} s CPU, peak queue "
               f"{st['peak_queued'] / 2**20:.1f} MiB, max RSS {st['maxrss_kb'] / 1024:.0f} MB.)")
    out.append("")
    return out


# --------------------------------------------------------------------------
# mode 1: the burst (existing benchmark; with --link, over the link)
# --------------------------------------------------------------------------

def progress(msg: str) -> None:
    print(f"bench: {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def make_real_tree(dst: Path, n: int, folders: int, size: int, thumbimg: Path) -> None:
    """n decodable JPEGs: one 640x480 picture, each file with its own
    comment segment (COM), padded to about size bytes."""
    base = dst.parent / "base.jpg"
    subprocess.run([str(thumbimg), "make", str(base), "640", "480"], check=True, timeout=60)
    pic = base.read_bytes()
    assert pic[:2] == b"\xff\xd8"
    for i in range(n):
        d = dst / f"folder{i % folders:02d}"
        d.mkdir(parents=True, exist_ok=True)
        body = (b"imgsync bench %d " % i).ljust(max(16, min(65000, size - len(pic))), b".")
        com = b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body
        (d / f"img{i:05d}.jpg").write_bytes(pic[:2] + com + pic[2:])


def bench_thumbnails_run(t: "Target", src: Path, work: Path, n: int, binary: Path,
                         thumbs: bool) -> dict:
    bucket, table = t.s3.bucket(), t.ddb.table()
    extra = (f'thumbnails: {{ enabled = true; helper = "{binary.parent / "imgsync-thumb"}"; }};'
             if thumbs else "")
    d = Daemon(binary, work, t.s3_endpoint, t.ddb_endpoint, bucket, table, t.s3.admin,
               extra_conf=extra)
    try:
        t0 = time.monotonic()
        os.rename(src, d.root / src.name)
        done = d.wait_synced(n, 600)
        wall = time.monotonic() - t0
        cpu_sync = d.cpu()
        thumbs_wall = None
        if thumbs:
            deadline = time.monotonic() + 900
            while d.thumbs_left() != 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            thumbs_wall = time.monotonic() - t0
        cpu, rss = d.cpu(), d.hwm_kb()
        failures = len(re.findall(r"no thumbnail", d.log_path.read_text(errors="replace")))
    finally:
        d.stop_and_give_back(src)
    if done < n:
        raise RuntimeError(f"imgsyncd synced {done} of {n}")
    out = {"wall": wall, "cpu_sync": cpu_sync, "cpu": cpu, "rss_kb": rss,
           "thumbs_wall": thumbs_wall, "thumb_failures": failures}
    if thumbs:
        keys = sum(pg.get("KeyCount", 0) for pg in t.s3.s3().get_paginator(
            "list_objects_v2").paginate(Bucket=bucket, Prefix=".thumbnails/"))
        out["thumbnails"] = keys
    return out


def mode_thumbnails(t: Target, work: Path, args) -> list[str]:
    src = work / "images"
    # A build with its tests has the tool and the helper beside imgsyncd.
    thumbimg = Path(args.bin).resolve().parent / "thumbimg"
    for need in (thumbimg, Path(args.bin).resolve().parent / "imgsync-thumb"):
        if not need.exists():
            raise SystemExit(f"bench: {need} is missing (--thumbnails needs a build with "
                             "IMGSYNC_TESTS=ON: tests/tools/thumbimg and thumb/)")
    make_real_tree(src, args.files, args.folders, args.size, thumbimg)
    size = sum(f.stat().st_size for f in src.rglob("*.jpg")) / args.files
    runs = []
    for i, thumbs in enumerate((False, True, False, True)):
        w = work / f"run{i}"
        w.mkdir()
        print(f"bench: {time.strftime('%H:%M:%S')} imgsyncd, thumbnails "
              f"{'on' if thumbs else 'off'}", file=sys.stderr, flush=True)
        r = bench_thumbnails_run(t, src, w, args.files, Path(args.bin), thumbs)
        print(json.dumps(r), file=sys.stderr)
        runs.append((thumbs, r))
    n = args.files
    out = [f"{n} JPEGs (640x480, ~{size / 1000:.0f} KB) in {args.folders} folders, "
           f"{server_desc(args)}; {machine_desc()}\n",
           "| run | thumbnails | synced (object + item) s | files/s | all thumbnails s | "
           "thumbnails in the bucket | imgsyncd CPU s (at synced / at the end) | "
           "peak RSS MB |",
           "|---|---|---|---|---|---|---|---|"]
    for i, (thumbs, r) in enumerate(runs):
        out.append(f"| {i + 1} | {'on' if thumbs else 'off'} | {r['wall']:.2f} | "
                   f"{n / r['wall']:.0f} | "
                   f"{r['thumbs_wall']:.2f} | {r['thumbnails']} |" if thumbs else
                   f"| {i + 1} | off | {r['wall']:.2f} | {n / r['wall']:.0f} | - | - |")
        out[-1] += f" {r['cpu_sync']:.2f} / {r['cpu']:.2f} | {r['rss_kb'] / 1024:.1f} |"
    off = [r["wall"] for th, r in runs if not th]
    on = [r["wall"] for th, r in runs if th]
    out.append("")
    out.append(f"- sync rate with thumbnails / without: "
               f"{(sum(off) / len(off)) / (sum(on) / len(on)):.2f} (target: about 1)")
    return out


def mode_burst(t: Target, work: Path, args) -> list[str]:
    src = work / "images"
    make_tree(src, args.files, args.folders, args.size)
    res = run_clients(t, src, work, args)
    out = []
    print(json.dumps(res), file=sys.stderr)
    out.append(f"{args.files} files of ~{args.size // 1000} KB in {args.folders} folders, "
               f"{server_desc(args)}; {machine_desc()}\n")
    if not args.link:
        ceiling = res["curl --parallel"]["requests"] / res["curl --parallel"]["wall"]
        out.append("| client | wall s | requests/s | of curl ceiling | CPU s | peak RSS MB |")
        out.append("|---|---|---|---|---|---|")
        for name, r in res.items():
            rate = r["requests"] / r["wall"]
            out.append(f"| {name} | {r['wall']:.2f} | {rate:.0f} | {rate / ceiling:.2f} | "
                       f"{r['cpu']:.2f} | {r['rss_kb'] / 1024:.1f} |")
        i, rc = res["imgsyncd"], res["rclone copy"]
        out.append("")
        out.append(f"- imgsyncd wall / rclone wall: {i['wall'] / rc['wall']:.2f} (target <= 1)")
        out.append(f"- imgsyncd request rate / curl ceiling: "
                   f"{i['requests'] / i['wall'] / ceiling:.2f} (target >= 0.9)")
        out.append(f"- imgsyncd CPU / rclone CPU: {i['cpu'] / rc['cpu']:.2f} (target <= 0.2)")
        out.append(f"- imgsyncd peak RSS: {i['rss_kb'] / 1024:.1f} MB (target < 16)")
        return out
    n = args.files
    out.append("| client | wall s | files/s | CPU s | CPU ms/file | peak RSS MB | "
               "S3 requests/file | DynamoDB requests/file | connections | requests seen |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        ops = ", ".join(f"{k} {v}" for k, v in sorted(r["ops"].items(), key=lambda x: -x[1]))
        out.append(f"| {name} | {r['wall']:.2f} | {n / r['wall']:.0f} | {r['cpu']:.2f} | "
                   f"{r['cpu'] / n * 1e3:.2f} | {r['rss_kb'] / 1024:.1f} | "
                   f"{r['s3_requests'] / n:.2f} | {r['ddb_requests'] / n:.2f} | "
                   f"{r['connections']} | {ops} |")
    i = res["imgsyncd"]
    out.append("")
    for peer in ("rclone copy", "aws s3 cp", "curl --parallel"):
        target = " (target >= 4)" if peer != "curl --parallel" else ""
        out.append(f"- {peer} wall / imgsyncd wall: {res[peer]['wall'] / i['wall']:.2f}{target}")
    out.append(f"- imgsyncd requests per file (S3 + DynamoDB, counted by the relays): "
               f"{(i['s3_requests'] + i['ddb_requests']) / n:.2f} (target <= 1.1)")
    out.append(f"- imgsyncd CPU per file: {i['cpu'] / n * 1e3:.3f} ms (target <= 0.15 "
               f"against keep-alive servers)")
    out.append(f"- imgsyncd peak RSS: {i['rss_kb'] / 1024:.1f} MB")
    return out


# --------------------------------------------------------------------------
# mode 2: one big file
# --------------------------------------------------------------------------

def mode_bigfile(t: Target, work: Path, args) -> list[str]:
    size = args.bigfile
    big = work / "big" / "big.jpg"
    big.parent.mkdir()
    write_random(big, size)
    timeout = 120 + size / 5e6
    res = {}

    # imgsyncd: from the close of the file in the watched folder to its row
    # marked synced (object and item), then both checked with boto3.
    progress(f"imgsyncd, {size >> 20} MiB")
    bucket, table = t.s3.bucket(), t.ddb.table()
    dwork = work / "imgsyncd-big"
    dwork.mkdir()
    d = Daemon(Path(args.bin), dwork, t.s3_endpoint, t.ddb_endpoint, bucket, table,
               t.s3.admin, settle_ms=args.settle_ms)
    try:
        with open(big, "rb") as fin, open(d.root / "big.jpg", "wb") as fout:
            shutil.copyfileobj(fin, fout, 8 << 20)
            t.reset_counts()
        t0 = time.monotonic()   # just after close(2)
        done = d.wait_synced(1, timeout, key="big.jpg")
        wall = time.monotonic() - t0
        counts = t.counts()
        cpu, rss = d.cpu(), d.hwm_kb()
    finally:
        d.stop()
    if not done:
        raise RuntimeError("imgsyncd did not sync the big file: "
                           + d.log_path.read_text(errors="replace")[-2000:])
    head = t.s3.s3().head_object(Bucket=bucket, Key="big.jpg")
    item = t.ddb.dynamodb().get_item(TableName=table, Key={"FileName": {"S": "big.jpg"}},
                                     ConsistentRead=True)
    if head["ContentLength"] != size or "Item" not in item:
        raise RuntimeError(f"imgsyncd: object {head['ContentLength']} bytes, "
                           f"item {'Item' in item}")
    t.s3.s3().delete_object(Bucket=bucket, Key="big.jpg")
    os.unlink(d.root / "big.jpg")
    res["imgsyncd (close -> synced)"] = {"wall": wall, "cpu": cpu, "rss_kb": rss, **counts}

    progress("aws s3 cp")
    bucket = t.s3.bucket()
    res["aws s3 cp"] = measured(t, ["aws", "--endpoint-url", t.s3_endpoint, "s3", "cp",
                                    "--only-show-errors", str(big), f"s3://{bucket}/big.jpg"],
                                env=peer_env(t.s3))
    if t.s3.s3().head_object(Bucket=bucket, Key="big.jpg")["ContentLength"] != size:
        raise RuntimeError("aws s3 cp: wrong size")
    t.s3.s3().delete_object(Bucket=bucket, Key="big.jpg")

    progress("curl -T")
    bucket = t.s3.bucket()
    res["curl -T (unsigned PUT)"] = measured(
        t, ["curl", "-sS", "--fail", "-H", "Expect:", "-T", str(big), "-o", "/dev/null",
            f"{t.s3_endpoint}/{bucket}/big.jpg"])
    if t.s3.s3().head_object(Bucket=bucket, Key="big.jpg")["ContentLength"] != size:
        raise RuntimeError("curl -T: wrong size")
    t.s3.s3().delete_object(Bucket=bucket, Key="big.jpg")
    print(json.dumps(res), file=sys.stderr)

    out = [f"One file of {size / 2**20:.0f} MiB (random bytes), {server_desc(args)}; "
           f"{machine_desc()}\n"]
    link_col = t.link is not None
    hdr = "| client | wall s | MB/s | Mbit/s |" + (" of link rate |" if link_col else "") + \
        " CPU s | peak RSS MB |" + (" requests (by the relay) |" if link_col else "")
    out.append(hdr)
    out.append("|" + "---|" * (hdr.count("|") - 1))
    for name, r in res.items():
        mbit = size * 8 / r["wall"] / 1e6
        row = f"| {name} | {r['wall']:.2f} | {size / r['wall'] / 1e6:.1f} | {mbit:.0f} |"
        if link_col:
            row += f" {mbit * 1e6 / t.link.rate_bps:.2f} |"
        row += f" {r['cpu']:.2f} | {r['rss_kb'] / 1024:.1f} |"
        if link_col:
            row += " " + ", ".join(f"{k} {v}" for k, v in sorted(r["ops"].items())) + " |"
        out.append(row)
    i, a, c = (res["imgsyncd (close -> synced)"], res["aws s3 cp"],
               res["curl -T (unsigned PUT)"])
    out.append("")
    out.append(f"- imgsyncd speed / aws s3 cp: {a['wall'] / i['wall']:.2f}"
               f" (target >= {'1' if link_col else '1.5'})")
    out.append(f"- imgsyncd speed / curl -T: {c['wall'] / i['wall']:.2f}"
               + ("" if link_col else " (target >= 0.8)"))
    if link_col:
        out.append(f"- imgsyncd share of the link rate: "
                   f"{size * 8 / i['wall'] / t.link.rate_bps:.2f} (target >= 0.9; payload "
                   f"can reach at most ~0.956 of tbf's rate)")
    out.append(f"- imgsyncd peak RSS: {i['rss_kb'] / 1024:.1f} MB (target < 32)")
    return out


# --------------------------------------------------------------------------
# mode 3: close -> item readable, one file at a time
# --------------------------------------------------------------------------

def default_settle_ms() -> int | None:
    """watch.settle_ms's default in this tree's lib/config.c."""
    try:
        text = (ROOT / "lib" / "config.c").read_text()
    except OSError:
        return None
    m = re.search(r'K_INT\("watch\.settle_ms",\s*[\w.]+,\s*(\d+)', text)
    return int(m.group(1)) if m else None


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class ItemPoller:
    """GetItem (consistent) on one kept-alive connection, signed per request
    with botocore's SigV4 but sent with http.client: a poll takes a fraction
    of a millisecond on loopback where a boto3 call takes several, so the
    moment an item becomes readable is seen to within that."""

    def __init__(self, endpoint: str, region: str, keys: tuple[str, str], table: str):
        import http.client
        import urllib.parse

        from botocore.credentials import Credentials

        u = urllib.parse.urlsplit(endpoint)
        self.url = endpoint.rstrip("/") + "/"
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        self.creds = Credentials(*keys)
        self.region = region
        self.table = table

    def readable(self, name: str) -> bool:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        body = json.dumps({"TableName": self.table, "Key": {"FileName": {"S": name}},
                           "ConsistentRead": True})
        req = AWSRequest("POST", self.url, data=body, headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.GetItem"})
        SigV4Auth(self.creds, "dynamodb", self.region).add_auth(req)
        self.conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
        r = self.conn.getresponse()
        doc = json.loads(r.read() or b"{}")
        if r.status != 200:
            raise RuntimeError(f"GetItem: {r.status} {doc}")
        return "Item" in doc

    def close(self) -> None:
        self.conn.close()


def mode_latency(t: Target, work: Path, args) -> list[str]:
    n = args.latency
    bucket, table = t.s3.bucket(), t.ddb.table()
    body = jpeg(640, 480, b"latency", pad=args.size - 300)
    # The poller reads the item from the server directly (no relay, so
    # no delay on the way back; tbf only): the time it is readable at
    # the server, resolution one raw GetItem (ItemPoller: well under a
    # millisecond on loopback; a boto3 GetItem took several).
    poll = ItemPoller(t.ddb.endpoint, t.ddb.region, t.ddb.admin, table)
    d = Daemon(Path(args.bin), work, t.s3_endpoint, t.ddb_endpoint, bucket, table,
               t.s3.admin, settle_ms=args.settle_ms)
    item_ms, synced_ms = [], []
    try:
        t.reset_counts()
        for k in range(n):
            name = f"lat{k:05d}.jpg"
            with open(d.root / name, "wb") as f:
                f.write(body + b"%d" % k)
            t0 = time.monotonic()   # just after close(2)
            t_item = t_synced = None
            deadline = t0 + 60
            while (t_item is None or t_synced is None) and time.monotonic() < deadline:
                if t_item is None:
                    a = time.monotonic()
                    if poll.readable(name):   # the middle of the GetItem that saw it
                        t_item = (a + time.monotonic()) / 2 - t0
                if t_synced is None and d.synced(name):
                    t_synced = time.monotonic() - t0
                time.sleep(0.0005)
            if t_item is None or t_synced is None:
                raise RuntimeError(f"{name}: item {t_item}, synced {t_synced} after 60 s")
            item_ms.append(t_item * 1e3)
            synced_ms.append(t_synced * 1e3)
            time.sleep(0.1)   # the daemon idle again before the next file
        counts = t.counts()
        cpu, rss = d.cpu(), d.hwm_kb()
    finally:
        d.stop()
        poll.close()

    progress("floor")
    # The floor: one PutObject + one PutItem with boto3 over the same
    # endpoints (connections kept alive by boto3 where the server allows).
    s3c = t.cs3.client("s3")
    # botocore sends PutObject with "Expect: 100-continue", one more round
    # trip before the body; the floor is the two requests' round trips only.
    import botocore.handlers
    s3c.meta.events.unregister("before-call.s3",
                               botocore.handlers.add_expect_header)
    ddbc = t.cddb.client("dynamodb")
    fb, ftable = t.s3.bucket(), t.ddb.table()
    put_ms, item_put_ms, both_ms = [], [], []
    nfloor = max(5, min(n, 50))
    for k in range(nfloor + 2):
        key = f"floor{k:05d}.jpg"
        a = time.monotonic()
        s3c.put_object(Bucket=fb, Key=key, Body=body)
        b = time.monotonic()
        ddbc.put_item(TableName=ftable, Item={"FileName": {"S": key}, "Bucket": {"S": fb}},
                      ConditionExpression="attribute_not_exists(FileName)")
        c = time.monotonic()
        if k >= 2:   # two warm-up rounds (connections, boto3's first-call costs)
            put_ms.append((b - a) * 1e3)
            item_put_ms.append((c - b) * 1e3)
            both_ms.append((c - a) * 1e3)
    print(json.dumps({"item_ms": item_ms, "synced_ms": synced_ms, "floor_ms": both_ms}),
          file=sys.stderr)

    settle_src = "set by --settle-ms" if args.settle_ms is not None else \
        "default of watch.settle_ms in this tree's lib/config.c"
    settle = args.settle_ms if args.settle_ms is not None else default_settle_ms()
    floor = statistics.median(both_ms)
    out = [f"{n} files of ~{args.size // 1000} KB written one at a time (write + close, "
           f"then wait), {server_desc(args)}; {machine_desc()}\n"]
    out.append("| close(2) -> | p50 ms | p90 ms | p99 ms | min ms | max ms |")
    out.append("|---|---|---|---|---|---|")
    for name, xs in (("item readable at the server (GetItem, consistent, polled "
                      "directly on a kept-alive connection; middle of the GetItem "
                      "that saw it)", item_ms),
                     ("daemon's state database row 'synced'", synced_ms)):
        out.append(f"| {name} | {pct(xs, 50):.1f} | {pct(xs, 90):.1f} | {pct(xs, 99):.1f} | "
                   f"{min(xs):.1f} | {max(xs):.1f} |")
    out.append("")
    out.append(f"| floor: boto3 over the same endpoints, median of {nfloor} | ms |")
    out.append("|---|---|")
    out.append(f"| PutObject ({len(body) // 1000} KB, without Expect: 100-continue) | "
               f"{statistics.median(put_ms):.1f} |")
    out.append(f"| PutItem (conditional) | {statistics.median(item_put_ms):.1f} |")
    out.append(f"| PutObject + PutItem, one after the other | {floor:.1f} |")
    out.append("")
    out.append(f"- settle delay: {settle} ms ({settle_src})")
    if settle is not None:
        out.append(f"- p50 close -> item readable minus (settle + PutObject + PutItem "
                   f"floor): {pct(item_ms, 50) - settle - floor:.1f} ms (target <= 5)")
        out.append(f"- p50 close -> 'synced' row minus (settle + floor): "
                   f"{pct(synced_ms, 50) - settle - floor:.1f} ms (the item is readable at "
                   f"the server one one-way delay before the daemon hears so)")
    if counts:
        out.append(f"- requests imgsyncd sent for {n} files (relay count): S3 "
                   f"{counts['s3_requests']}, DynamoDB {counts['ddb_requests']}, "
                   f"connections {counts['connections']}")
    out.append(f"- imgsyncd CPU {cpu:.2f} s, peak RSS {rss / 1024:.1f} MB")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--folders", type=int, default=20)
    ap.add_argument("--size", type=int, default=30000)
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "imgsyncd"))
    ap.add_argument("--server", choices=("moto", "emulators", "s3rver+moto"), default="moto",
                    help="moto (default), or s3rver + dynalite, which keep connections "
                         "alive, or s3rver with moto's DynamoDB (dynalite has no "
                         "TransactWriteItems)")
    ap.add_argument("--strace", metavar="FILE",
                    help="write `strace -f -c` of imgsyncd's run to FILE")
    ap.add_argument("--link", metavar="RTT,RATE",
                    help="put the servers behind a shaped link, e.g. 40ms,1gbit (root)")
    ap.add_argument("--proof-size", type=parse_size, default=parse_size("256MiB"),
                    help="size of the curl PUT/GET that proves the link's bandwidth")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--bigfile", type=parse_size, metavar="SIZE",
                      help="big-file mode: one file of SIZE (e.g. 1GiB)")
    mode.add_argument("--thumbnails", action="store_true",
                      help="thumbnails mode: the burst of real JPEGs, thumbnails off and on")
    mode.add_argument("--latency", type=int, metavar="N",
                      help="latency mode: N files one at a time, close -> item readable")
    ap.add_argument("--settle-ms", type=int,
                    help="set watch.settle_ms in imgsyncd's config (default: the daemon's)")
    args = ap.parse_args()
    if args.link:
        try:
            netlink.parse_link(args.link)
        except ValueError as e:
            ap.error(str(e))
        if os.geteuid() != 0:
            ap.error("--link needs root (ip netns, tc)")
    tools = ("rclone", "aws", "curl") + (("strace",) if args.strace else ())
    for tool in tools:
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing", file=sys.stderr)
            return 1
    # SIGTERM/SIGHUP unwind like Ctrl-C: every finally and atexit runs
    # (servers, relays, daemon stopped by pid; namespace and veth removed).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: sys.exit(128 + s))
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="imgsync-bench-") as tmp:
        work = Path(tmp)
        with open_target(args) as t:
            if t.link:
                out += prove_link(t, work, args.proof_size)
                print("\n".join(out), flush=True)
                out = []
            if args.bigfile:
                out += mode_bigfile(t, work, args)
            elif args.latency:
                out += mode_latency(t, work, args)
            elif args.thumbnails:
                out += mode_thumbnails(t, work, args)
            else:
                out += mode_burst(t, work, args)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
