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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "testbed"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

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


def bench_imgsyncd(bed, src: Path, work: Path, n: int, binary: Path,
                   ddb_bed=None, strace_out: str | None = None) -> dict:
    """``bed`` serves S3 (and DynamoDB unless ``ddb_bed`` is given)."""
    ddb_bed = ddb_bed or bed
    bucket, table = bed.bucket(), ddb_bed.table()
    root = work / "watch"
    root.mkdir()
    state = work / "state.db"
    conf = work / "imgsync.conf"
    conf.write_text(f"""
watch: {{ root = "{root}"; }};
s3: {{ bucket = "{bucket}"; region = "us-east-1"; endpoint = "{bed.endpoint}"; path_style = true; }};
dynamodb: {{ table = "{table}"; endpoint = "{ddb_bed.endpoint}"; }};
credentials: {{ access_key_id = "{bed.admin[0]}"; secret_access_key = "{bed.admin[1]}"; }};
state: {{ path = "{state}"; }};
control: {{ socket = "{work}/s.sock"; trash = "{work}/trash"; }};
log: {{ level = "info"; }};
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    log = open(work / "imgsyncd.log", "wb")
    p = subprocess.Popen([str(binary), "-c", str(conf)], stdout=log, stderr=log, env=env)
    deadline = time.monotonic() + 20
    while "watching" not in (work / "imgsyncd.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    tracer = None
    if strace_out:
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", strace_out, "-p", str(p.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)  # attached to every thread before the files appear
    t0 = time.monotonic()
    # dropped at once: the whole tree appears in the folder in one rename
    os.rename(src, root / src.name)
    done = 0
    deadline = t0 + 600
    while time.monotonic() < deadline:
        try:
            db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
            done = db.execute("SELECT count(*) FROM files WHERE status='synced'").fetchone()[0]
            db.close()
        except sqlite3.Error:
            pass
        if done >= n:
            break
        time.sleep(0.02)
    wall = time.monotonic() - t0
    with open(f"/proc/{p.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick
    with open(f"/proc/{p.pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    if tracer is not None:
        tracer.send_signal(signal.SIGINT)  # detaches and writes the summary
        tracer.wait(30)
    p.terminate()
    p.wait(30)
    log.close()
    os.rename(root / src.name, src)
    if done < n:
        raise RuntimeError(f"imgsyncd synced {done} of {n}")
    # verify with boto3, not our own client
    objs = sum(pg.get("KeyCount", 0) for pg in
               bed.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket))
    items = sum(pg["Count"] for pg in
                ddb_bed.dynamodb().get_paginator("scan").paginate(TableName=table))
    if objs != n or items != n:
        raise RuntimeError(f"imgsyncd: {objs} objects, {items} items, want {n}")
    return {"wall": wall, "cpu": cpu, "rss_kb": rss, "requests": 2 * n}


def peer_env(bed) -> dict:
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": bed.admin[0], "AWS_SECRET_ACCESS_KEY": bed.admin[1],
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"})
    env.pop("AWS_PROFILE", None)
    return env


def bench_rclone(bed, src: Path, n: int) -> dict:
    bucket = bed.bucket()
    env = peer_env(bed)
    env.pop("AWS_CA_BUNDLE", None)  # rclone 1.60 refuses to start with it set
    env.update({"RCLONE_CONFIG_M_TYPE": "s3", "RCLONE_CONFIG_M_PROVIDER": "Other",
                "RCLONE_CONFIG_M_ENV_AUTH": "true", "RCLONE_CONFIG_M_ENDPOINT": bed.endpoint,
                "RCLONE_CONFIG_M_FORCE_PATH_STYLE": "true"})
    r = run_measured(["rclone", "copy", "--config", "/dev/null", "--transfers", "16",
                      "--checkers", "16", str(src), f"m:{bucket}/"], env=env)
    r["requests"] = n
    return r


def bench_aws(bed, src: Path, n: int) -> dict:
    bucket = bed.bucket()
    r = run_measured(["aws", "--endpoint-url", bed.endpoint, "s3", "cp", "--recursive",
                      "--only-show-errors", str(src), f"s3://{bucket}/"], env=peer_env(bed))
    r["requests"] = n
    return r


def bench_curl(bed, src: Path, n: int, work: Path) -> dict:
    bucket = bed.bucket()
    cfg = work / "curl.cfg"
    with cfg.open("w") as f:
        for p in sorted(src.rglob("*.jpg")):
            rel = p.relative_to(src).as_posix()
            f.write(f'url = "{bed.endpoint}/{bucket}/{rel}"\nupload-file = "{p}"\n'
                    f'output = "/dev/null"\n')
    r = run_measured(["curl", "--parallel", "--parallel-max", "16", "-sS", "--fail",
                      "-H", "Expect:", "-K", str(cfg)])
    r["requests"] = n
    return r


def run_clients(bed, ddb_bed, src: Path, work: Path, args) -> dict:
    """The four clients in turn; ``bed`` serves S3 (and DynamoDB unless
    ``ddb_bed``): each gets a bucket of its own."""
    res = {}
    res["imgsyncd"] = bench_imgsyncd(bed, src, work, args.files, Path(args.bin),
                                     ddb_bed=ddb_bed, strace_out=args.strace)
    res["rclone copy"] = bench_rclone(bed, src, args.files)
    res["aws s3 cp"] = bench_aws(bed, src, args.files)
    res["curl --parallel"] = bench_curl(bed, src, args.files, work)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--folders", type=int, default=20)
    ap.add_argument("--size", type=int, default=30000)
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "imgsyncd"))
    ap.add_argument("--server", choices=("moto", "emulators"), default="moto",
                    help="moto (default), or s3rver + dynalite, which keep connections alive")
    ap.add_argument("--strace", metavar="FILE",
                    help="write `strace -f -c` of imgsyncd's run to FILE")
    args = ap.parse_args()
    for tool in ("rclone", "aws", "curl") + (("strace",) if args.strace else ()):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="imgsync-bench-") as tmp:
        work = Path(tmp)
        src = work / "images"
        make_tree(src, args.files, args.folders, args.size)
        if args.server == "moto":
            with testbed.Moto(auth=False) as bed:
                res = run_clients(bed, None, src, work, args)
        else:
            with testbed.S3rver() as bed, testbed.Dynalite() as ddb_bed:
                res = run_clients(bed, ddb_bed, src, work, args)
    ceiling = res["curl --parallel"]["requests"] / res["curl --parallel"]["wall"]
    if args.server == "moto":
        server = (f"moto {testbed.moto_version() if hasattr(testbed, 'moto_version') else ''} "
                  f"on 127.0.0.1")
    else:
        server = (f"s3rver {testbed.NPM_PACKAGES['s3rver']} (S3) and dynalite "
                  f"{testbed.NPM_PACKAGES['dynalite']} (DynamoDB) on 127.0.0.1, keep-alive")
    print(f"{args.files} files of ~{args.size // 1000} KB in {args.folders} folders, "
          f"{server}; {os.cpu_count()} cores, {platform.platform()}\n")
    print("| client | wall s | requests/s | of curl ceiling | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, r in res.items():
        rate = r["requests"] / r["wall"]
        print(f"| {name} | {r['wall']:.2f} | {rate:.0f} | {rate / ceiling:.2f} | "
              f"{r['cpu']:.2f} | {r['rss_kb'] / 1024:.1f} |")
    i, rc = res["imgsyncd"], res["rclone copy"]
    print()
    print(f"- imgsyncd wall / rclone wall: {i['wall'] / rc['wall']:.2f} (target <= 1)")
    print(f"- imgsyncd request rate / curl ceiling: "
          f"{i['requests'] / i['wall'] / ceiling:.2f} (target >= 0.9)")
    print(f"- imgsyncd CPU / rclone CPU: {i['cpu'] / rc['cpu']:.2f} (target <= 0.2)")
    print(f"- imgsyncd peak RSS: {i['rss_kb'] / 1024:.1f} MB (target < 16)")
    print(json.dumps(res), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
