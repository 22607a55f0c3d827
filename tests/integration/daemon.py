"""Running imgsyncd against the test bed, and checking the mirror with
boto3 (never with our own client)."""

from __future__ import annotations

import hashlib
import os
import pwd
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from common import BIN, FULL_POLICY


def wait_until(pred, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Polls pred() until it returns a true value; bounded in time."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Daemon:
    """One imgsyncd process with its own folder, state and config."""

    def __init__(self, bed, *, creds=None, bucket=None, table=None, endpoint=None,
                 settle_ms=100, concurrency=16, prefix="", summary=False, extra="",
                 level="debug", root=None, max_retry_ms=1000):
        self.bed = bed
        self.tmp = tempfile.TemporaryDirectory(prefix="imgsyncd-")
        self.dir = Path(self.tmp.name)
        self.root = Path(root) if root else self.dir / "images"
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state" / "state.db"
        self.creds = creds or bed.user(FULL_POLICY)
        self.bucket = bucket or bed.bucket()
        self.table = table or bed.table()
        self.endpoint = endpoint or bed.endpoint
        self.prefix = prefix
        self.conf = self.dir / "imgsync.conf"
        self.log_path = self.dir / "imgsyncd.log"
        self.settle_ms = settle_ms
        self.concurrency = concurrency
        self.summary = summary
        self.extra = extra
        self.level = level
        self.max_retry_ms = max_retry_ms
        self.proc: subprocess.Popen | None = None
        self.extra_env: dict = {}
        self.write_conf()

    def conf_text(self, **over) -> str:
        v = dict(settle=self.settle_ms, conc=self.concurrency, level=self.level,
                 summary="true" if self.summary else "false", extra=self.extra)
        v.update(over)
        return f"""
watch: {{ root = "{self.root}"; settle_ms = {v['settle']}; {v['extra']} }};
s3: {{ bucket = "{self.bucket}"; prefix = "{self.prefix}"; region = "us-east-1";
       endpoint = "{self.endpoint}"; path_style = true;
       multipart_threshold_mb = 16; part_size_mb = 8; }};
dynamodb: {{ table = "{self.table}"; endpoint = "{self.endpoint}"; }};
credentials: {{ access_key_id = "{self.creds[0]}"; secret_access_key = "{self.creds[1]}"; }};
sync: {{ concurrency = {v['conc']}; source = "imgsync@test"; max_retry_delay_ms = {self.max_retry_ms}; }};
state: {{ path = "{self.state_path}"; }};
control: {{ socket = "{self.dir}/imgsync.sock"; trash = "{self.dir}/trash"; }};
summary: {{ enabled = {v['summary']}; interval_ms = 300; }};
log: {{ level = "{v['level']}"; }};
"""

    def write_conf(self, text: str | None = None):
        self.conf.write_text(text if text is not None else self.conf_text())

    def env(self) -> dict:
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_"):
                env.pop(k)
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env.update(self.extra_env)
        return env

    def start(self, *args: str, user: str | None = None, wrap=()) -> "Daemon":
        """Runs imgsyncd; as `user` (its folders handed over to it) when
        given, which needs root and setpriv; through the command `wrap`
        (e.g. the no_openat2 tool) when given."""
        cmd = [*wrap, str(BIN / "imgsyncd"), "-c", str(self.conf), *args]
        if user is not None:
            pw = pwd.getpwnam(user)
            for dirpath, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    os.lchown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o755)
            cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                   "--clear-groups", *cmd]
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env())
        return self

    def once(self, timeout: float = 300, wrap=()) -> subprocess.CompletedProcess:
        with open(self.log_path, "ab") as logf:
            proc = subprocess.run([*wrap, str(BIN / "imgsyncd"), "-c", str(self.conf), "--once"],
                                  stdout=logf, stderr=subprocess.STDOUT, env=self.env(),
                                  timeout=timeout)
        return proc

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.logf.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.logf.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def failed_rows(self) -> dict:
        db = sqlite3.connect(f"file:{self.state_path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT path, error FROM files WHERE status = 'failed'").fetchall()
        finally:
            db.close()
        return {bytes(p) if isinstance(p, (bytes, memoryview)) else p.encode(): e
                for p, e in rows}

    def close(self):
        self.stop()
        self.tmp.cleanup()

    # ---- the mirror, as boto3 sees it -----------------------------------

    def local(self) -> dict:
        """relative path -> bytes, for every file the daemon should mirror."""
        out = {}
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                p = Path(dirpath) / f
                if p.is_symlink() or not p.is_file():
                    continue
                rel = p.relative_to(self.root).as_posix()
                if rel == ".imgsync-root":  # the root's marker: never mirrored
                    continue
                out[rel] = p.read_bytes()
        return out

    def remote_objects(self) -> dict:
        s3 = self.bed.s3()
        keys = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for o in page.get("Contents", []):
                keys[o["Key"]] = o
        return keys

    def remote_items(self) -> dict:
        items = {}
        for page in self.bed.dynamodb().get_paginator("scan").paginate(TableName=self.table):
            for it in page["Items"]:
                items[it["FileName"]["S"]] = it
        return items

    def mirror_diff(self, local=None) -> str:
        """'' when bucket and table hold exactly the local files."""
        local = self.local() if local is None else local
        want = {self.prefix + k: hashlib.sha256(v).hexdigest() for k, v in local.items()}
        objs = {k: o for k, o in self.remote_objects().items()
                if not (self.summary and k == self.prefix + "summary.json")}
        items = self.remote_items()
        problems = []
        if set(objs) != set(want):
            problems.append(f"objects: missing {sorted(set(want) - set(objs))[:5]} "
                            f"extra {sorted(set(objs) - set(want))[:5]}")
        if set(items) != set(want):
            problems.append(f"items: missing {sorted(set(want) - set(items))[:5]} "
                            f"extra {sorted(set(items) - set(want))[:5]}")
        for k, sha in want.items():
            it = items.get(k)
            if it is not None and it["SHA256"]["S"] != sha:
                problems.append(f"item {k!r}: sha {it['SHA256']['S']} != {sha}")
            o = objs.get(k)
            if o is not None and o["Size"] != len(local[k[len(self.prefix):]]):
                problems.append(f"object {k!r}: size {o['Size']}")
        return "; ".join(problems[:10])

    def wait_mirror(self, timeout: float = 120, local=None):
        last = {"d": None}

        def check():
            last["d"] = self.mirror_diff(local)
            return last["d"] == ""
        try:
            wait_until(check, timeout, 0.5, "the mirror")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {last['d']}\n--- daemon log tail ---\n"
                                 f"{self.log()[-4000:]}") from None
