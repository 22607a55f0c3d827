#!/usr/bin/env python3
"""Huge trees: a first sync of N small images in F folders, then a restart
over the synced tree. One command:

    python3 bench/tree.py --bin BUILD/bin/imgsyncd [--files N] [--folders F]
                          [--server moto|emulators]

Against moto (no auth) or s3rver + dynalite on 127.0.0.1 (tests/testbed).
The files are ~100-byte PNGs made here (the tree is what is measured, not
the bytes). Reports, from the daemon's /status and /proc:
  first sync  wall time until every file is synced (state database), files/s,
              peak RSS (VmHWM), and RSS once idle (VmRSS)
  restart     time from start until idle (nothing queued or in flight, the
              scan over), requests the servers logged meanwhile (their own
              logs: werkzeug's access lines for moto; 0 is the target),
              peak RSS of the restarted daemon (s3rver and dynalite log no
              requests: there the daemon's own imgsync_requests_total)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "testbed"))

import testbed  # noqa: E402
from bench import Daemon  # noqa: E402


def png(salt: int) -> bytes:
    """A valid 1x1 PNG, different for each salt (a tEXt chunk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data +
                zlib.crc32(kind + data).to_bytes(4, "big"))
    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"tEXt", b"n\x00%d" % salt) +
            chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def make_tree(root: Path, n: int, folders: int) -> None:
    for f in range(folders):
        (root / f"f{f:05d}").mkdir(parents=True)
    for i in range(n):
        (root / f"f{i % folders:05d}" / f"i{i:07d}.png").write_bytes(png(i))


def status(work: Path) -> dict:
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--unix-socket",
                          str(work / "s.sock"), "http://imgsync/status"],
                         capture_output=True, text=True, timeout=20)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {}


def idle(st: dict) -> bool:
    return (bool(st) and st.get("queued") == 0 and st.get("in_flight") == 0
            and st.get("scanning") is False)


def rss_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def daemon_requests(work: Path) -> int:
    """Requests the daemon says it sent (imgsync_requests_total, S3 and
    DynamoDB): the count for servers that log no access lines."""
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--unix-socket",
                          str(work / "s.sock"), "http://imgsync/metrics"],
                         capture_output=True, text=True, timeout=20)
    return sum(int(float(line.split()[-1])) for line in out.stdout.splitlines()
               if line.startswith("imgsync_requests_total"))


def log_lines(paths) -> int:
    n = 0
    for p in paths:
        try:
            with open(p, "rb") as f:
                n += sum(1 for line in f if b'HTTP/1.1"' in line)
        except OSError:
            pass
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--folders", type=int, default=1_000)
    ap.add_argument("--server", choices=("moto", "emulators"), default="moto")
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--concurrency", type=int,
                    help="sync.concurrency (default: the daemon's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgsync-tree-") as tmp:
        work = Path(tmp)
        if args.server == "moto":
            s3 = ddb = testbed.Moto(auth=False)
        else:
            s3, ddb = testbed.S3rver(), testbed.Dynalite()
        try:
            t0 = time.monotonic()
            make_tree(work / "tree", args.files, args.folders)
            made = time.monotonic() - t0
            bucket, table = s3.bucket(), ddb.table()
            # the tree is there before the daemon: the start-up scan finds it
            t0 = time.monotonic()
            d = Daemon(Path(args.bin), work, s3.endpoint, ddb.endpoint, bucket, table, s3.admin,
                       root=work / "tree", concurrency=args.concurrency)
            done = 0
            deadline = t0 + args.timeout
            while done < args.files and time.monotonic() < deadline:
                time.sleep(1)
                done = d.synced()
                if d.proc.poll() is not None:
                    break
            first = time.monotonic() - t0
            deadline = time.monotonic() + 120
            while not idle(status(work)) and time.monotonic() < deadline:
                time.sleep(0.5)
            first_hwm, first_rss = rss_kb(d.proc.pid, "VmHWM"), rss_kb(d.proc.pid, "VmRSS")
            d.stop()
            if done < args.files:
                raise RuntimeError(f"first sync: {done} of {args.files}")
            logs = [p for p in {s3.log_path, ddb.log_path} if p]
            before = log_lines(logs)
            t0 = time.monotonic()
            d = Daemon(Path(args.bin), work, s3.endpoint, ddb.endpoint, bucket, table, s3.admin,
                       root=work / "tree", concurrency=args.concurrency)
            deadline = t0 + 600
            while not idle(status(work)) and time.monotonic() < deadline:
                time.sleep(0.1)
            restart = time.monotonic() - t0
            if args.server == "moto":
                requests = f"{log_lines(logs) - before} (moto's log)"
            else:
                requests = f"{daemon_requests(work)} (imgsyncd's /metrics)"
            re_hwm, re_rss = rss_kb(d.proc.pid, "VmHWM"), rss_kb(d.proc.pid, "VmRSS")
            d.stop()
            # before the clean-up, which takes minutes for a million files
            conc = f", sync.concurrency {args.concurrency}" if args.concurrency else ""
            print(f"{args.files} files of ~100 bytes in {args.folders} folders{conc} (made in "
                  f"{made:.0f} s), {args.server} on 127.0.0.1; {os.cpu_count()} cores, "
                  f"{platform.platform()}, {time.strftime('%Y-%m-%d %H:%M %Z')}\n")
            print("| phase | wall s | files/s | peak RSS MB | RSS idle MB | requests |")
            print("|---|---|---|---|---|---|")
            print(f"| first sync (start-up scan) | {first:.1f} | {args.files / first:.0f} | "
                  f"{first_hwm / 1024:.1f} | {first_rss / 1024:.1f} | - |")
            print(f"| restart over the synced tree, until idle | {restart:.1f} | "
                  f"{args.files / restart:.0f} | {re_hwm / 1024:.1f} | {re_rss / 1024:.1f} | "
                  f"{requests} |")
            sys.stdout.flush()
        finally:
            s3.stop()
            if ddb is not s3:
                ddb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
