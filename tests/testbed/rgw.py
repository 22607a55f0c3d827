#!/usr/bin/env python3
"""Ceph RGW for the test bed: a second, real S3 (DESIGN.md section 7).

RGW is a production S3 implementation that verifies SigV4 itself, so it
judges every key our signer sends, awkward ones included, where moto's
checker cannot. ``Rgw()`` makes a single-node Ceph cluster in a temporary
folder, everything bound to 127.0.0.1 on free ports:

* one monitor (its own fsid and monmap, msgr2 only), no manager (RGW does
  not need one);
* one OSD on ``memstore`` (objects in memory, nothing on a disk), pools of
  size 1;
* cluster auth ``none``; radosgw then needs ``ms_mon_client_mode = crc
  secure`` in its client section, or it loops on "get_initial_auth_request
  returned -13";
* radosgw with the beast frontend, and one user made with radosgw-admin,
  whose keys are ``admin``.

It comes up in about 12 s. Every process is started here, in its own
process group with PR_SET_PDEATHSIG (so it dies with us even if we are
SIGKILLed), and stopped by its pid in ``stop()``, which also removes the
folder; each wait is bounded and fails with the log's tail.

``ensure_packages()`` installs Debian's packages with apt-get when they
are missing (root only); ``RgwUnavailable`` says why a machine cannot run
the cluster at all, for a test to skip with. RGW has no DynamoDB: pair it
with moto's (``testbed.noauth_bed()``).

``python3 rgw.py serve --env-file FILE`` runs one until SIGTERM, for
trying things by hand (the file gets its endpoint and keys).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from testbed import (Bed, TestbedError, _child_preexec, _load_libc, free_port,
                     http_probe, set_parent_death_signal)

#: Debian's packages for a monitor, an OSD and radosgw (ceph-mgr is not
#: needed: nothing here asks a manager).
PACKAGES = ["ceph-mon", "ceph-osd", "radosgw", "ceph-common"]
#: A binary from each package, to tell whether it is installed.
BINARIES = {"ceph-mon": "ceph-mon", "ceph-osd": "ceph-osd",
            "radosgw": "radosgw", "ceph": "ceph-common",
            "radosgw-admin": "ceph-common", "monmaptool": "ceph-base"}

USER = "imgsync"
_APT_TIMEOUT_S = 900.0
_CMD_TIMEOUT_S = 60.0
_MON_TIMEOUT_S = 30.0
_OSD_TIMEOUT_S = 60.0
_RGW_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 3.0
_START_ATTEMPTS = 3   # a fresh pair of ports each (another process may take one)
#: The OSD's memory store: a ceiling, not an allocation.
MEMSTORE_BYTES = 2 << 30

ENV_URL = "IMGSYNC_TEST_RGW_URL"
ENV_KEY = "IMGSYNC_TEST_RGW_KEY"
ENV_SECRET = "IMGSYNC_TEST_RGW_SECRET"
ENV_KEEP = "IMGSYNC_TEST_KEEP_LOGS"  # the test bed's: keep the folder

__all__ = ["Rgw", "RgwError", "RgwUnavailable", "ensure_packages",
           "missing_binaries", "PACKAGES"]


class RgwError(TestbedError):
    """The cluster did not come up; the message has the log's tail."""


class RgwUnavailable(RgwError):
    """This machine cannot run the cluster at all (not root, no apt-get)."""


# --------------------------------------------------------------------------
# packages
# --------------------------------------------------------------------------

def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def ensure_packages() -> None:
    """apt-get install PACKAGES when one of their binaries is missing.

    Raises RgwUnavailable where installing is impossible (not root, not
    Debian), RgwError when apt-get itself fails."""
    if not missing_binaries():
        return
    if os.geteuid() != 0:
        raise RgwUnavailable(f"Ceph is not installed ({', '.join(missing_binaries())} "
                             "missing) and installing it needs root")
    if shutil.which("apt-get") is None:
        raise RgwUnavailable("Ceph is not installed and there is no apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]):
        try:
            done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True,
                                  timeout=_APT_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise RgwError(f"{' '.join(cmd)}: no end after {_APT_TIMEOUT_S:.0f}s") from exc
        if done.returncode != 0:
            raise RgwError(f"{' '.join(cmd)}: rc={done.returncode}\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    if missing_binaries():
        raise RgwError(f"still missing after apt-get: {', '.join(missing_binaries())}")


# --------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------

def _conf(d: str, fsid: str, mon_port: int, rgw_port: int, dns_name: str,
          extra: str) -> str:
    dns = f"rgw_dns_name = {dns_name}\n" if dns_name else ""
    return f"""[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
ms_bind_msgr1 = false
ms_bind_ipv6 = false
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 2
mon_data_avail_crit = 1
run_dir = {d}/run
log_file = {d}/log/$name.log
admin_socket = {d}/run/$name.asok
pid_file = {d}/run/$name.pid
keyring = {d}/keyring
mon_data = {d}/mon.$id
osd_data = {d}/osd.$id
osd_objectstore = memstore
memstore_device_bytes = {MEMSTORE_BYTES}

[client]
ms_mon_client_mode = crc secure
admin_socket = {d}/run/$name.$pid.asok
log_file = {d}/log/$name.log
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port}
{dns}{extra}
"""


class _Proc:
    """One daemon in the foreground, in its own process group."""

    def __init__(self, name: str, argv: list[str], cwd: str, env: dict):
        self.name = name
        self.out = os.path.join(cwd, "log", f"{name}.out")
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_child_preexec(os.getpid()))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, a short wait, then SIGKILL: by the pid (its group)."""
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                continue
        try:
            self.proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # stuck in the kernel: leave it
            pass


def _tail(path: str, max_bytes: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Rgw(Bed):
    """A single-node Ceph cluster with radosgw on 127.0.0.1 (S3 only).

    ``dns_name`` sets ``rgw_dns_name`` (virtual-host style for
    ``BUCKET.<dns_name>``); ``extra_conf`` is added to the client section
    (e.g. ``rgw_crypt_require_ssl = false``)."""

    supports_iam = False

    def __init__(self, start: bool = True, dns_name: str = "",
                 extra_conf: str = ""):
        super().__init__()
        self.dns_name = dns_name
        self.extra_conf = extra_conf
        self.dir: str | None = None
        self.conf: str | None = None
        self.port: int | None = None
        self.procs: list[_Proc] = []
        self.startup_s: float | None = None
        if start:
            self.start()

    # ---- start ---------------------------------------------------------

    def start(self) -> "Rgw":
        ensure_packages()
        _load_libc()
        t0 = time.monotonic()
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    self._start_once()
                    break
                except RgwError as exc:
                    busy = "in use" in str(exc).lower()
                    self._stop_procs()
                    self._remove_dir()
                    if not busy or attempt == _START_ATTEMPTS:
                        raise
            self.startup_s = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def _start_once(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="imgsync-rgw-")
        d = self.dir
        for sub in ("run", "log", "mon.a", "osd.0"):
            os.mkdir(os.path.join(d, sub))
        mon_port, self.port = free_port(), free_port()
        while self.port == mon_port:
            self.port = free_port()
        fsid = str(uuid.uuid4())
        self.conf = os.path.join(d, "ceph.conf")
        with open(self.conf, "w") as fh:
            fh.write(_conf(d, fsid, mon_port, self.port, self.dns_name, self.extra_conf))
        self.log_path = os.path.join(d, "log", "client.rgw.a.log")

        monmap = os.path.join(d, "monmap")
        self._run("monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                  f"[v2:127.0.0.1:{mon_port}]", monmap)
        self._run("ceph-mon", "-c", self.conf, "--mkfs", "-i", "a", "--monmap", monmap)
        mon = self._spawn("mon.a", ["ceph-mon", "-c", self.conf, "-i", "a", "-f"])
        self._wait(mon, _MON_TIMEOUT_S, "the monitor's quorum",
                   lambda: self._ceph_ok("mon", "stat"))

        osd_uuid = str(uuid.uuid4())
        self._ceph("osd", "new", osd_uuid)
        self._run("ceph-osd", "-c", self.conf, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        osd = self._spawn("osd.0", ["ceph-osd", "-c", self.conf, "-i", "0", "-f"])
        self._wait(osd, _OSD_TIMEOUT_S, "the OSD to be up",
                   self._osd_up)

        rgw = self._spawn("client.rgw.a",
                          ["radosgw", "-c", self.conf, "-n", "client.rgw.a", "-f"])
        self._wait(rgw, _RGW_TIMEOUT_S, "radosgw to answer",
                   self._rgw_answers)

        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.admin = self.add_user("AKIARGW" + secrets.token_hex(7).upper(),
                                   secrets.token_urlsafe(30), USER)

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CEPH_")}
        env["CEPH_CONF"] = self.conf
        return env

    def _run(self, *argv: str, quiet: bool = False) -> str:
        """One command to its end; quiet: its output (a secret) is not
        put into the error."""
        try:
            done = subprocess.run(list(argv), env=self._env(), cwd=self.dir,
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=_CMD_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise RgwError(f"{argv[0]}: no answer in {_CMD_TIMEOUT_S:.0f}s\n"
                           f"{self.log_tail()}") from exc
        if done.returncode != 0:
            out = "" if quiet else f"{done.stdout[-2000:]}\n"
            raise RgwError(f"{' '.join(argv[:3])}...: rc={done.returncode}\n{out}"
                           f"{done.stderr[-3000:]}")
        return done.stdout

    def _ceph(self, *args: str) -> str:
        return self._run("ceph", "-c", self.conf, "--connect-timeout", "10", *args)

    def _ceph_ok(self, *args: str) -> bool:
        try:
            self._ceph(*args)
            return True
        except RgwError:
            return False

    def _osd_up(self) -> bool:
        try:
            stat = json.loads(self._ceph("osd", "stat", "-f", "json"))
        except (RgwError, ValueError):
            return False
        return stat.get("num_up_osds") == 1 and stat.get("num_in_osds") == 1

    def _rgw_answers(self) -> bool:
        try:
            status, _ = http_probe(self.port, "/", timeout=1.0)
            return status == 200
        except OSError:
            return False

    def _spawn(self, name: str, argv: list[str]) -> _Proc:
        p = _Proc(name, argv, self.dir, self._env())
        self.procs.append(p)
        return p

    def _wait(self, proc: _Proc, timeout: float, what: str, ready) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RgwError(f"{proc.name} exited (rc={proc.proc.returncode}) "
                               f"before {what}:\n{self._tails(proc.name)}")
            if ready():
                return
            time.sleep(0.25)
        raise RgwError(f"timed out after {timeout:.0f}s waiting for {what}:\n"
                       f"{self._tails(proc.name)}")

    def _tails(self, name: str) -> str:
        """The daemon's output and the end of its log (log/NAME.log)."""
        logs = os.path.join(self.dir, "log")
        return (f"--- {name} output ---\n{_tail(os.path.join(logs, name + '.out'), 3000)}\n"
                f"--- log/{name}.log ---\n{_tail(os.path.join(logs, name + '.log'), 6000)}")

    # ---- what tests use ------------------------------------------------

    def add_user(self, key: str, secret: str, uid: str | None = None) -> tuple[str, str]:
        """An RGW user with these keys (e.g. the same as a moto IAM user's,
        so one daemon's credentials are checked by both servers)."""
        uid = uid or f"user-{secrets.token_hex(4)}"
        self._run("radosgw-admin", "-c", self.conf, "user", "create", f"--uid={uid}",
                  f"--display-name={uid}", f"--access-key={key}", f"--secret={secret}",
                  quiet=True)
        return key, secret

    def alive(self) -> bool:
        return bool(self.procs) and all(p.alive() for p in self.procs)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def ceph(self, *args: str) -> str:
        """A `ceph` command against this cluster (its output)."""
        return self._ceph(*args)

    def log_tail(self, max_bytes: int = 20000) -> str:
        if not self.dir:
            return ""
        return "".join(f"--- {n} ---\n{_tail(os.path.join(self.dir, 'log', n), max_bytes // 3)}\n"
                       for n in ("mon.a.log", "osd.0.log", "client.rgw.a.log"))

    def table(self, name=None):
        raise NotImplementedError("RGW has no DynamoDB: use moto's")

    # ---- stop ----------------------------------------------------------

    def _stop_procs(self) -> None:
        for p in reversed(self.procs):  # radosgw, then the OSD, then the monitor
            p.stop()
        self.procs = []

    def _remove_dir(self) -> None:
        if self.dir and not os.environ.get(ENV_KEEP):
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def stop(self) -> None:
        self._stop_procs()
        self._remove_dir()
        self._clients.clear()


# --------------------------------------------------------------------------
# CLI: rgw.py serve --env-file FILE
# --------------------------------------------------------------------------

class _Signalled(Exception):
    pass


def _raise_signalled(signum, _frame):
    raise _Signalled(signum)


def serve(env_file: str, max_seconds: float) -> int:
    set_parent_death_signal(signal.SIGTERM)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_signalled)
    bed = None
    rc = 0
    try:
        if os.path.exists(env_file):
            os.unlink(env_file)
        bed = Rgw()
        values = {ENV_URL: bed.endpoint, ENV_KEY: bed.admin[0], ENV_SECRET: bed.admin[1]}
        tmp = f"{env_file}.tmp{os.getpid()}"
        with open(tmp, "w") as fh:
            fh.write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items()))
        os.replace(tmp, env_file)
        print(f"rgw: {bed.endpoint} (up in {bed.startup_s:.1f}s, folder {bed.dir})",
              flush=True)
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if not bed.alive():
                print(f"rgw: a daemon died:\n{bed.log_tail(6000)}", file=sys.stderr)
                rc = 1
                break
    except _Signalled:
        rc = 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if bed is not None:
            bed.stop()
        if os.path.exists(env_file):
            os.unlink(env_file)
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ceph RGW for the imgsync test bed")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run one cluster until SIGTERM")
    p.add_argument("--env-file", required=True)
    p.add_argument("--max-seconds", type=float, default=4 * 3600)
    args = parser.parse_args(argv)
    return serve(args.env_file, args.max_seconds)


if __name__ == "__main__":
    sys.exit(main())
