"""The .deb under a real systemd: a Debian 12 container booted with
systemd-nspawn (systemd as PID 1), the package installed and configured by
the README's install steps, run word for word, against moto on the host.

What it proves, in order (one container per run, so the tests are
numbered and each builds on the ones before):

- 10  the README block marked ``<!-- install-steps -->`` works as it stands:
      apt install of the .deb, the watch root, the configuration (through
      ``sudoedit``, whose editor is the one thing the test supplies: it sets
      the keys for the local moto), ``imgsyncd -t``, ``--check-remote`` as
      the service's user, ``systemctl enable --now``, ``imgsyncctl status``;
- 20  the unit is active (READY=1 came) with a STATUS= text;
- 30  files in nested folders are mirrored (read back with boto3);
- 40  ``imgsyncctl upload`` and ``delete`` of a file in a subfolder work
      under the unit's sandbox (RestrictSUIDSGID= makes openat2 fail there),
      and the trash keeps the deleted file's bytes, mode and mtime;
- 50  a folder swapped for a symlink between the event and the upload
      uploads nothing from outside the root; 55: /upload and /delete through
      such a symlink are refused and touch nothing outside;
- 60  ``systemctl reload`` with a good file applies it (the new sync.source
      shows in the next item) and with a broken one fails while the daemon
      keeps running with the old configuration (same MainPID); the refusal
      is in ``journalctl -u imgsyncd -p err``;
- 70  the daemon's lines reach the journal at their priority: an unreadable
      file (mode 000, owned by root) is a warning, so it is checked with
      ``-p warning``; an info line stays at priority 6;
- 80  the watchdog (shortened to 10 s by a drop-in) does not fire in a
      minute's run, and the daemon's pings keep coming;
- 82  thumbnails turned on (and the service restarted): the helper starts
      inside the unit's sandbox (its own seccomp filter and limits on top
      of the unit's system-call filter and MemoryDenyWriteExecute=), and
      the item names the thumbnail, which is in the bucket;
- 84  the gallery turned on (web.listen on a loopback port): its TCP
      listener works inside the unit's sandbox, a web-login link logs a
      client in, and a file uploaded through it is written into the watch
      root (the unit lets the daemon write there) and synced; the journal
      says who uploaded it;
- 85  an upgrade (the same .deb again) keeps the edited configuration and
      restarts the running service;
- 90  ``systemctl stop`` is clean (inactive, Result=success);
- 92  a configuration error exits 78 and is not restarted;
- 99  ``apt-get purge`` leaves nothing: no /etc/imgsync, /var/lib/imgsync,
      user, group or unit.

Needs root, systemd-nspawn (Debian's systemd-container) and mmdebstrap; it
installs both with apt-get when they are missing. It skips, saying why,
only where the machine cannot run a container at all. The Debian root is
made by mmdebstrap from the machine's own apt sources and cached in
/var/cache/imgsync-test (IMGSYNC_SYSTEM_CACHE) under a hash of what goes
into it; each run boots a fresh copy, and stops it and removes it at the
end. IMGSYNC_SYSTEM_DEB=FILE tests that .deb instead of building one with
scripts/package. The host has no system bus: nspawn runs with --register=no
--keep-unit, and commands go into the container through nsenter. The
container shares the host's network, so it reaches moto on 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SUITE = "bookworm"
CACHE = Path(os.environ.get("IMGSYNC_SYSTEM_CACHE", "/var/cache/imgsync-test"))
# Besides the .deb's own Depends: an init, its bus, and sudo (the README's
# steps use it).
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "sudo"]
HOST_TOOLS = {"systemd-nspawn": "systemd-container", "mmdebstrap": "mmdebstrap",
              "nsenter": "util-linux"}
CONF = "/etc/imgsync/imgsync.conf"
WATCH = "/srv/images"
TRASH = "/var/lib/imgsync/trash"
OUTSIDE = "/opt/outside"
DROPIN_DIR = "/etc/systemd/system/imgsyncd.service.d"
WATCHDOG_S = 10
WATCH_RUN_S = 60
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run(*cmd: str, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: rc={proc.returncode}\n"
                             f"stdout={_text(proc.stdout)[-3000:]}\n"
                             f"stderr={_text(proc.stderr)[-3000:]}")
    return proc


def _text(b) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")


def wait_until(pred, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Polls pred() until it returns a true value; bounded in time."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the Debian root --------------------------------------------------------

def apt_sources() -> list[str]:
    """The machine's Debian sources for SUITE, as one-line "deb URI SUITE
    COMPONENTS" entries for mmdebstrap (which finds the keyring itself).
    Third-party sources (their own Signed-By keyring) are left out."""
    entries: list[tuple[str, str, list[str], str]] = []  # uri, suite, comps, signed-by
    files = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                key = None
                for line in stanza.splitlines():
                    if line.startswith("#") or not line.strip():
                        continue
                    if line[0].isspace() and key:
                        fields[key] += " " + line.strip()
                        continue
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        entries.append((uri, suite, fields.get("components", "main").split(),
                                        fields.get("signed-by", "")))
        elif f.name == "sources.list" or f.suffix == ".list":
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                m = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
                if m:
                    opts = m.group(1) or ""
                    signed = re.search(r"signed-by=(\S+)", opts)
                    entries.append((m.group(2), m.group(3), m.group(4).split() or ["main"],
                                    signed.group(1) if signed else ""))
    out = []
    for uri, suite, comps, signed in entries:
        if not re.match(rf"^{SUITE}([-/].*)?$", suite):
            continue
        if signed and "debian-archive-keyring" not in signed:
            continue
        line = f"deb {uri} {suite} {' '.join(comps)}"
        if line not in out:
            out.append(line)
    return out


def deb_depends(deb: Path) -> list[str]:
    """The package names in the .deb's Depends and Pre-Depends (the first
    of each set of alternatives)."""
    names = []
    for field in ("Pre-Depends", "Depends"):
        value = _text(run("dpkg-deb", "-f", str(deb), field).stdout).strip()
        for part in filter(None, (p.strip() for p in value.split(","))):
            m = re.match(r"([a-z0-9][a-z0-9+.-]*)", part.split("|")[0].strip())
            if m:
                names.append(m.group(1))
    return names


def apt_options() -> list[str]:
    """The host's date checks of Release files, which mmdebstrap's own apt
    would not read (a snapshot mirror's Release may be past Valid-Until)."""
    opts = []
    for key in ("Acquire::Check-Valid-Until", "Acquire::Check-Date"):
        proc = subprocess.run(["apt-config", "dump", key], capture_output=True, text=True)
        m = re.search(rf'^{re.escape(key)} "([^"]*)";', proc.stdout, re.M)
        if m:
            opts.append(f'--aptopt={key} "{m.group(1)}"')
    return opts


def cached_root(packages: list[str]) -> Path:
    """A tarball of a Debian SUITE root with packages, made by mmdebstrap
    once and kept under CACHE by a hash of its inputs."""
    sources = apt_sources()
    opts = apt_options()
    version = _text(run("mmdebstrap", "--version").stdout).strip()
    key = json.dumps([SUITE, sorted(set(packages)), sources, opts, version])
    name = f"{SUITE}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.tar"
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = CACHE / name
    with open(CACHE / ".lock", "w") as lock:
        deadline = time.monotonic() + 1200
        while True:  # another run may be building it
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for the lock on {CACHE}")
                time.sleep(1)
        if tar.exists():
            return tar
        part = CACHE / (name + ".part")
        if part.is_file():  # a run stopped half-way
            part.unlink()
        started = time.monotonic()
        run("mmdebstrap", "--variant=minbase", "--format=tar",
            "--include=" + ",".join(sorted(set(packages))), *opts, SUITE, str(part), *sources,
            timeout=1500)
        os.replace(part, tar)
        print(f"system test: built {tar} in {time.monotonic() - started:.0f}s")
        for old in CACHE.glob(f"{SUITE}-*.tar"):
            if old != tar:
                old.unlink()
        (CACHE / "README").write_text(
            "Debian roots for imgsync's tests/system/test_systemd.py, made by\n"
            "mmdebstrap; safe to delete (the next run makes them again).\n")
    return tar


# ---- the container --------------------------------------------------------

class Container:
    """A booted copy of the cached root; commands run inside through
    nsenter into its PID 1."""

    def __init__(self, tar: Path, workdir: Path):
        self.dir = workdir / "root"
        self.dir.mkdir()
        run("tar", "-C", str(self.dir), "-xpf", str(tar), "--numeric-owner",
            "--xattrs", "--xattrs-include=*", timeout=300)
        self.log_path = workdir / "nspawn.log"
        self.log = open(self.log_path, "wb")
        self.name = f"imgsync-test-{os.getpid()}"
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", str(self.dir), "-b", "--register=no", "--keep-unit",
             "--console=passive", f"--machine={self.name}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid1 = 0

    def find_init(self, timeout: float = 60) -> int:
        """The container's PID 1 (as the host numbers it): nspawn's child
        systemd. 0 when nspawn exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for stat in glob.glob("/proc/[0-9]*/stat"):
                try:
                    text = Path(stat).read_text()
                except OSError:
                    continue
                comm = text[text.index("(") + 1:text.rindex(")")]
                ppid = int(text[text.rindex(")") + 2:].split()[1])
                if ppid == self.proc.pid and comm == "systemd":
                    self.pid1 = int(stat.split("/")[2])
                    return self.pid1
            time.sleep(0.2)
        return 0

    def nspawn_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def exec(self, *cmd: str, input: bytes | None = None, timeout: float = 120,
             check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        base = {"PATH": PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root",
                "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        base.update(env or {})
        argv = ["nsenter", "-t", str(self.pid1), "-a", "env", "-i",
                *[f"{k}={v}" for k, v in base.items()], *cmd]
        proc = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"in the container: {' '.join(cmd)}: rc={proc.returncode}\n"
                                 f"stdout={_text(proc.stdout)[-3000:]}\n"
                                 f"stderr={_text(proc.stderr)[-3000:]}")
        return proc

    def sh(self, script: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.exec("sh", "-ec", script, "sh", *args, **kw)

    def out(self, *cmd: str, **kw) -> str:
        return _text(self.exec(*cmd, **kw).stdout)

    def path(self, inside: str) -> Path:
        """The host's path of a file inside (for reading only)."""
        return self.dir / inside.lstrip("/")

    def stop(self, timeout: float = 60):
        """SIGTERM (nspawn powers the container off), SIGKILL on timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.log.close()


# ---- the test -------------------------------------------------------------

def readme_install_steps() -> str:
    """The fenced sh block right after <!-- install-steps --> in README.md."""
    lines = README.read_text().splitlines()
    start = lines.index("<!-- install-steps -->") + 1
    while not lines[start].strip():
        start += 1
    if lines[start].strip() != "```sh":
        raise AssertionError(f"README: <!-- install-steps --> is not followed by ```sh: "
                             f"{lines[start]!r}")
    end = lines.index("```", start + 1)
    return "\n".join(lines[start + 1:end]) + "\n"


def editor_script(values: dict) -> str:
    """An editor for sudoedit: sets each `key = value;` in the file, as an
    operator would by hand (both `endpoint` keys: S3's and DynamoDB's)."""
    exprs = []
    for key, value in values.items():
        value = value.replace("\\", "\\\\").replace("|", "\\|").replace("&", "\\&")
        exprs.append(f"-e 's|^([[:space:]]*){key}[[:space:]]*=[^;]*;|\\1{key} = {value};|'")
    return "#!/bin/sh\nset -e\nexec sed -E -i " + " ".join(exprs) + ' "$1"\n'


class SystemdTest(unittest.TestCase):
    maxDiff = None
    box: Container | None = None
    installed = False

    @classmethod
    def setUpClass(cls):
        if not os.path.isdir("/proc/1") or os.uname().sysname != "Linux":
            raise unittest.SkipTest("needs Linux: boots a container with systemd-nspawn")
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: boots a container with systemd-nspawn "
                                    "(and installs it and mmdebstrap when missing)")
        missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if not shutil.which(tool)})
        if missing:
            if not shutil.which("apt-get"):
                raise unittest.SkipTest(f"cannot run a container here: {', '.join(missing)} "
                                        "missing and no apt-get to install them")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            upd = run("apt-get", "update", "-qq", timeout=300, check=False, env=env)
            inst = run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
                       timeout=900, check=False, env=env)
            if inst.returncode != 0 or any(not shutil.which(t) for t in HOST_TOOLS):
                raise unittest.SkipTest(
                    f"cannot run a container here: apt-get install {' '.join(missing)} failed: "
                    f"{_text(upd.stderr)[-500:]} {_text(inst.stderr)[-1000:]}")
        cls.started = time.monotonic()
        cls.work = Path(tempfile.mkdtemp(prefix="imgsync-systemd.", dir="/var/tmp"))
        cls.had_nspawn_dir = os.path.exists("/run/systemd/nspawn")
        try:
            cls._set_up()
        except BaseException:
            cls._tear_down()
            raise

    @classmethod
    def _set_up(cls):
        import testbed
        from common import FULL_POLICY

        if os.environ.get("IMGSYNC_SYSTEM_DEB"):  # a .deb built elsewhere
            cls.deb = Path(os.environ["IMGSYNC_SYSTEM_DEB"]).resolve()
        else:
            proc = run(str(ROOT / "scripts" / "package"), "-o", str(cls.work / "deb"),
                       timeout=900)
            cls.deb = Path(_text(proc.stdout).strip().splitlines()[-1])
        tar = cached_root(BASE_PACKAGES + deb_depends(cls.deb))
        t0 = time.monotonic()
        cls.box = Container(tar, cls.work)
        if not cls.box.find_init():
            log = cls.box.nspawn_log()
            cls.box.stop()
            raise unittest.SkipTest(f"cannot run a container here: systemd-nspawn started "
                                    f"no systemd within 60 s (exit status "
                                    f"{cls.box.proc.returncode}):\n{log}")
        state = cls.box.exec("timeout", "120", "systemctl", "is-system-running", "--wait",
                             timeout=150, check=False)
        state = _text(state.stdout).strip()
        if state not in ("running", "degraded"):
            raise AssertionError(f"the container did not boot: {state!r}\n"
                                 f"{cls.box.nspawn_log()}")
        if state == "degraded":
            print("container degraded:", cls.box.out("systemctl", "--failed", "--no-legend"))
        print(f"system test: container up in {time.monotonic() - t0:.1f}s "
              f"({time.monotonic() - cls.started:.0f}s since the start)")

        cls.bed = testbed.auth_bed()
        cls.creds = cls.bed.user(FULL_POLICY)
        cls.bucket, cls.table = cls.bed.bucket(), cls.bed.table()

    @classmethod
    def tearDownClass(cls):
        cls._tear_down()
        print(f"system test: {time.monotonic() - cls.started:.0f}s in all")

    @classmethod
    def _tear_down(cls):
        if cls.box is not None:
            cls.box.stop()
        # nspawn mounted everything in its own namespace; never delete
        # through a mount that would still be there.
        mounts = [l.split()[4] for l in Path("/proc/self/mountinfo").read_text().splitlines()
                  if l.split()[4].startswith(str(cls.work))]
        if mounts:
            raise AssertionError(f"mounts left under {cls.work}: {mounts}")
        shutil.rmtree(cls.work, ignore_errors=True)
        if not cls.had_nspawn_dir:  # nspawn's empty runtime folders
            for d in ("/run/systemd/nspawn/locks", "/run/systemd/nspawn/propagate",
                      "/run/systemd/nspawn"):
                try:
                    os.rmdir(d)
                except OSError:
                    pass

    def setUp(self):
        if not self.id().endswith("test_10_readme_install_steps") and not type(self).installed:
            self.skipTest("the README's install steps failed (test_10)")

    # ---- helpers ----------------------------------------------------------

    def show(self, *props: str) -> dict:
        out = self.box.out("systemctl", "show", "imgsyncd", *[f"-p{p}" for p in props])
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    def journal(self, *args: str) -> list[dict]:
        """imgsyncd.service's journal entries, parsed (-o json)."""
        out = self.box.out("journalctl", "-u", "imgsyncd", "--no-pager", "-o", "json", *args)
        entries = []
        for line in out.splitlines():
            e = json.loads(line)
            msg = e.get("MESSAGE")
            if isinstance(msg, list):
                e["MESSAGE"] = bytes(msg).decode("utf-8", "replace")
            entries.append(e)
        return entries

    def daemon_lines(self, *args: str) -> list[dict]:
        return [e for e in self.journal(*args) if e.get("SYSLOG_IDENTIFIER") == "imgsyncd"]

    def log_tail(self) -> str:
        return _text(self.box.exec("journalctl", "-u", "imgsyncd", "--no-pager", "-n", "60",
                                   check=False).stdout)

    def now(self) -> str:
        return "@" + self.box.out("date", "+%s").strip()

    def put(self, rel: str, data: bytes, mode: str | None = None):
        """Writes a file under the watch root as a writer with umask 002 would
        (the README's advice for folders /delete must work in): under a
        temporary name, then moved in (as rsync does), so that its mode is
        set before the daemon sees it."""
        self.box.sh('umask 002; mkdir -p "$(dirname "$1")"; cat > "$1.tmp-write"; '
                    'if [ -n "$2" ]; then chmod "$2" "$1.tmp-write"; fi; '
                    'mv "$1.tmp-write" "$1"', f"{WATCH}/{rel}", mode or "", input=data)

    def ctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return self.box.exec("imgsyncctl", *args, check=check, timeout=60)

    def objects(self) -> dict:
        s3 = self.bed.s3()
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for o in page.get("Contents", []):
                out[o["Key"]] = o
        return out

    def object_bytes(self, key: str) -> bytes | None:
        try:
            return self.bed.s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.bed.s3().exceptions.NoSuchKey:
            return None

    def items(self) -> dict:
        out = {}
        for page in self.bed.dynamodb().get_paginator("scan").paginate(TableName=self.table):
            for it in page["Items"]:
                out[it["FileName"]["S"]] = it
        return out

    def synced(self, rel: str, data: bytes) -> bool:
        it = self.items().get(rel)
        return (it is not None and it["SHA256"]["S"] == sha(data)
                and self.object_bytes(rel) == data)

    def wait_synced(self, files: dict, timeout: float = 60):
        try:
            wait_until(lambda: all(self.synced(k, v) for k, v in files.items()), timeout,
                       what=f"{sorted(files)} mirrored")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nobjects: {sorted(self.objects())}\n"
                                 f"items: {sorted(self.items())}\n{self.log_tail()}") from None

    def assert_nowhere(self, data: bytes, what: str):
        """No object and no item holds these bytes."""
        digest = sha(data)
        for key, it in self.items().items():
            self.assertNotEqual(it["SHA256"]["S"], digest, f"item {key} holds {what}")
        for key in self.objects():
            self.assertNotEqual(self.object_bytes(key), data, f"object {key} holds {what}")

    # ---- the tests, in order ----------------------------------------------

    def test_10_readme_install_steps(self):
        steps = readme_install_steps()
        # What the README must tell an operator: the watch root is made
        # (it is the shipped configuration's), then the service started.
        self.assertRegex(steps, r"install -d .*-g imgsync .*" + re.escape(WATCH))
        self.assertIn("systemctl enable --now imgsyncd", steps)
        deb_dir = self.box.path("/root/build/package")
        deb_dir.mkdir(parents=True)
        shutil.copy(self.deb, deb_dir / self.deb.name)
        # The only stand-in: the operator's editor for the sudoedit line.
        editor = self.box.path("/root/imgsync-test-editor")
        editor.write_text(editor_script({
            "bucket": f'"{self.bucket}"', "table": f'"{self.table}"',
            "endpoint": f'"{self.bed.endpoint}"', "path_style": "true",
            "region": '"us-east-1"',
            "access_key_id": f'"{self.creds[0]}"',
            "secret_access_key": f'"{self.creds[1]}"'}))
        editor.chmod(0o755)
        self.box.path("/root/install-steps.sh").write_text(steps)
        t0 = time.monotonic()
        proc = self.box.exec("sh", "-c", "cd /root && exec sh -e -x install-steps.sh",
                             check=False, timeout=600,
                             env={"SUDO_EDITOR": "/root/imgsync-test-editor"})
        out = _text(proc.stdout) + _text(proc.stderr)
        print(f"system test: README install steps took {time.monotonic() - t0:.1f}s:")
        print("\n".join(l for l in _text(proc.stderr).splitlines() if l.startswith("+ ")))
        self.assertEqual(proc.returncode, 0, f"the README's install steps failed:\n{out[-6000:]}"
                                             f"\n{self.log_tail()}")
        conf = self.box.path(CONF).read_text()
        for want in (self.bucket, self.table, self.bed.endpoint, self.creds[0]):
            self.assertIn(want, conf)
        st = self.box.path(CONF).stat()
        self.assertEqual(st.st_mode & 0o7777, 0o640)
        st = self.box.path(WATCH).stat()
        self.assertEqual(st.st_mode & 0o7777, 0o2775)
        self.assertIn("imgsyncd -t", out)
        self.assertRegex(out, r"state:\s+running")  # imgsyncctl status
        self.assertEqual(self.box.out("systemctl", "is-enabled", "imgsyncd").strip(), "enabled")
        # The installed unit, as systemd 252 reads it (no man-db here).
        verify = self.box.exec("systemd-analyze", "verify", "--man=no", "imgsyncd.service",
                               check=False)
        self.assertEqual((verify.returncode, _text(verify.stderr).strip()), (0, ""))
        type(self).installed = True

    def test_20_active_ready_status(self):
        p = self.show("ActiveState", "SubState", "Type", "StatusText", "MainPID", "Result")
        self.assertEqual((p["Type"], p["ActiveState"], p["SubState"]),
                         ("notify", "active", "running"), p)
        self.assertNotEqual(p["MainPID"], "0")
        # A Type=notify unit is "Started" only once READY=1 came.
        started = [e for e in self.journal() if e.get("MESSAGE", "").startswith("Started ")]
        self.assertTrue(started, self.log_tail())
        text = wait_until(lambda: self.show("StatusText")["StatusText"], 30,
                          what="a STATUS= text")
        print(f"system test: StatusText={text!r}")
        # A shorter watchdog (a drop-in, as `systemctl edit` makes), so that
        # test_80's minute spans six periods.
        self.box.sh(f'mkdir -p {DROPIN_DIR}; printf "[Service]\\nWatchdogSec={WATCHDOG_S}s\\n" '
                    f'> {DROPIN_DIR}/50-test-watchdog.conf; systemctl daemon-reload; '
                    'systemctl restart imgsyncd')
        p = self.show("ActiveState", "WatchdogUSec", "MainPID", "NRestarts")
        self.assertEqual(p["ActiveState"], "active", self.log_tail())
        self.assertEqual(p["WatchdogUSec"], f"{WATCHDOG_S}s")
        type(self).watch_since = time.monotonic()
        type(self).watch_pid = p["MainPID"]

    def test_30_nested_folders_sync(self):
        from images import make

        files = {}
        for rel, w, h in (("a/b/c/x.jpg", 640, 480), ("a/b/y.png", 32, 16), ("a/z.gif", 7, 9),
                          ("top.png", 4, 4), ("sub/a.png", 10, 20), ("sub/b.jpg", 30, 40)):
            data, mime = make(rel, w, h, rel.encode())
            files[rel] = (data, mime, w, h)
            self.put(rel, data)
        self.wait_synced({k: v[0] for k, v in files.items()})
        items = self.items()
        for rel, (data, mime, w, h) in files.items():
            with self.subTest(rel=rel):
                it = items[rel]
                self.assertEqual((it["Type"]["S"], it["Size"]["N"], it["Width"]["N"],
                                  it["Height"]["N"], it["Bucket"]["S"]),
                                 (mime, str(len(data)), str(w), str(h), self.bucket))
        type(self).files = files

    def test_40_ctl_upload_and_delete_in_subfolder(self):
        up = self.ctl("upload", "sub/a.png")
        self.assertEqual(up.returncode, 0, _text(up.stderr) + self.log_tail())
        data = self.files["sub/b.jpg"][0]
        before = self.box.path(f"{WATCH}/sub/b.jpg").stat()
        rm = self.ctl("--json", "delete", "sub/b.jpg")
        self.assertEqual(rm.returncode, 0, _text(rm.stderr) + self.log_tail())
        print("system test: delete answered", _text(rm.stdout).strip())
        wait_until(lambda: "sub/b.jpg" not in self.items() and
                   "sub/b.jpg" not in self.objects(), 30, what="sub/b.jpg deleted remotely")
        self.assertFalse(self.box.path(f"{WATCH}/sub/b.jpg").exists())
        trashed = self.box.path(f"{TRASH}/sub/b.jpg")
        self.assertEqual(trashed.read_bytes(), data)
        st = trashed.stat()
        with self.subTest("the trash keeps the mode and mtime"):
            self.assertEqual(oct(st.st_mode & 0o7777), oct(before.st_mode & 0o7777))
            self.assertEqual(st.st_mtime_ns, before.st_mtime_ns)
        self.assertTrue(self.synced("sub/a.png", self.files["sub/a.png"][0]))

    def outside(self, name: str, salt: bytes) -> bytes:
        """A file outside the root that the service's user could read."""
        from images import make

        data, _ = make(name, 11, 11, salt)
        self.box.sh(f'mkdir -p {OUTSIDE}; chmod 755 {OUTSIDE}; cat > "$1"; chmod 644 "$1"',
                    f"{OUTSIDE}/{name}", input=data)
        return data

    def test_50_symlink_swap_before_upload(self):
        """Issue 9: a folder swapped for a symlink between the event and the
        upload must upload nothing from outside the root."""
        from images import make

        secret = self.outside("x.jpg", b"OUTSIDE-x")
        inside, _ = make("x.jpg", 12, 12, b"inside sub2")
        self.assertEqual(self.ctl("pause").returncode, 0)
        try:
            self.put("sub2/x.jpg", inside)
            self.box.sh(f"cd {WATCH} && mv sub2 sub2real && ln -s {OUTSIDE} sub2")
        finally:
            self.assertEqual(self.ctl("resume").returncode, 0)
        converged = None
        try:
            self.wait_synced({"sub2real/x.jpg": inside}, 60)
        except AssertionError as exc:
            converged = exc
        time.sleep(2)
        got = self.object_bytes("sub2/x.jpg")
        self.assertNotEqual(got, secret, "s3 sub2/x.jpg holds the file outside the root")
        self.assert_nowhere(secret, f"{OUTSIDE}/x.jpg")
        if converged:
            raise converged

    def test_55_symlink_swap_upload_and_delete_refused(self):
        """/upload and /delete of a name whose folder is now a symlink to
        outside the root are refused, and nothing outside is touched."""
        from images import make

        inside, _ = make("y.jpg", 13, 13, b"inside sub3")
        self.put("sub3/y.jpg", inside)
        self.wait_synced({"sub3/y.jpg": inside})
        secret = self.outside("y.jpg", b"OUTSIDE-y")
        self.box.sh(f"cd {WATCH} && mv sub3 sub3real && ln -s {OUTSIDE} sub3")
        up = self.ctl("upload", "sub3/y.jpg")
        rm = self.ctl("delete", "sub3/y.jpg")
        self.assertNotEqual(up.returncode, 0, f"upload through a symlink accepted: "
                                              f"{_text(up.stdout)}{_text(up.stderr)}")
        self.assertNotEqual(rm.returncode, 0, f"delete through a symlink accepted: "
                                              f"{_text(rm.stdout)}{_text(rm.stderr)}")
        print("system test: refusals:", _text(up.stderr).strip(), "|", _text(rm.stderr).strip())
        self.wait_synced({"sub3real/y.jpg": inside})
        time.sleep(2)
        self.assertEqual(self.box.path(f"{OUTSIDE}/y.jpg").read_bytes(), secret)
        self.assert_nowhere(secret, f"{OUTSIDE}/y.jpg")
        trash = self.box.out("sh", "-c", f"find {TRASH} -type f -exec sha256sum {{}} + "
                                         "2>/dev/null || true")
        self.assertNotIn(sha(secret), trash)

    def restore_conf(self, data: bytes):
        """Writes the configuration back (mode and owner stay: same file)."""
        self.box.exec("sh", "-c", f"cat > {CONF}", input=data)

    def restart_with(self, conf: str):
        """Restarts the service with conf as its configuration; the test's
        end puts the old one back and restarts again."""
        good = self.box.path(CONF).read_bytes()
        self.restore_conf(conf.encode())
        self.addCleanup(lambda: (self.restore_conf(good),
                                 self.box.exec("systemctl", "restart", "imgsyncd",
                                               check=False, timeout=60)))
        proc = self.box.exec("systemctl", "restart", "imgsyncd", check=False, timeout=60)
        self.assertEqual(proc.returncode, 0, _text(proc.stderr) + self.log_tail())

    def set_key(self, key: str, value: str):
        self.box.exec("sed", "-E", "-i",
                      f"s|^([[:space:]]*){key}[[:space:]]*=[^;]*;|\\1{key} = {value};|", CONF)

    def test_60_reload_good_and_broken(self):
        from images import make

        pid = self.show("MainPID")["MainPID"]
        self.set_key("source", '"imgsync@reloaded"')
        proc = self.box.exec("systemctl", "reload", "imgsyncd", check=False)
        self.assertEqual(proc.returncode, 0, _text(proc.stderr) + self.log_tail())
        wait_until(lambda: any("configuration reloaded" in e["MESSAGE"]
                               for e in self.daemon_lines()), 30, what="the reload")
        one, _ = make("reload/one.png", 5, 5, b"one")
        self.put("reload/one.png", one)
        self.wait_synced({"reload/one.png": one})
        self.assertEqual(self.items()["reload/one.png"]["Source"]["S"], "imgsync@reloaded")

        good = self.box.path(CONF).read_bytes()
        self.addCleanup(self.restore_conf, good)
        since = self.now()
        self.set_key("concurrency", "100000")  # out of range (1..256)
        proc = self.box.exec("systemctl", "reload", "imgsyncd", check=False)
        self.assertNotEqual(proc.returncode, 0, "a reload with a broken file succeeded")
        p = self.show("MainPID", "ActiveState", "SubState")
        self.assertEqual((p["MainPID"], p["ActiveState"], p["SubState"]),
                         (pid, "active", "running"), self.log_tail())
        errors = wait_until(lambda: [e for e in self.daemon_lines("-p", "err", "--since", since)
                                     if "concurrency" in e["MESSAGE"]], 10,
                            what="the refusal in journalctl -p err")
        self.assertEqual(errors[0]["PRIORITY"], "3")
        self.assertIn("imgsync.conf:", errors[0]["MESSAGE"])
        self.assertFalse(errors[0]["MESSAGE"].startswith("<"), errors[0]["MESSAGE"])
        # Still the running configuration.
        two, _ = make("reload/two.png", 6, 6, b"two")
        self.put("reload/two.png", two)
        self.wait_synced({"reload/two.png": two})
        self.assertEqual(self.items()["reload/two.png"]["Source"]["S"], "imgsync@reloaded")
        self.restore_conf(good)
        self.assertEqual(self.box.exec("systemctl", "reload", "imgsyncd",
                                       check=False).returncode, 0)
        self.assertEqual(self.show("MainPID")["MainPID"], pid)

    def test_70_journal_priorities(self):
        """journalctl -p: the daemon's lines carry their priority. An
        unreadable file is a warning (so -p warning); the start's info lines
        stay at 6 and so are not in -p warning."""
        from images import make

        since = self.now()
        data, _ = make("locked.png", 3, 3, b"locked")
        self.addCleanup(self.box.exec, "rm", "-rf", f"{WATCH}/locked")
        self.put("locked/locked.png", data, mode="000")
        warnings = wait_until(
            lambda: [e for e in self.daemon_lines("-p", "warning", "--since", since)
                     if "locked.png" in e["MESSAGE"]], 30,
            what="the unreadable file in journalctl -p warning")
        self.assertEqual(warnings[0]["PRIORITY"], "4", warnings[0])
        print("system test: warning:", warnings[0]["MESSAGE"])
        self.assertNotIn("locked/locked.png", self.items())
        infos = [e for e in self.daemon_lines() if "configuration reloaded" in e["MESSAGE"]]
        self.assertTrue(infos)
        self.assertEqual({e["PRIORITY"] for e in infos}, {"6"})
        self.assertFalse([e for e in self.daemon_lines("-p", "warning")
                          if "configuration reloaded" in e["MESSAGE"]])

    def test_80_watchdog_quiet_for_a_minute(self):
        left = WATCH_RUN_S - (time.monotonic() - self.watch_since)
        if left > 0:
            time.sleep(left)
        p = self.show("ActiveState", "MainPID", "NRestarts", "WatchdogUSec",
                      "WatchdogTimestampMonotonic")
        self.assertEqual((p["ActiveState"], p["MainPID"], p["NRestarts"]),
                         ("active", self.watch_pid, "0"), self.log_tail())
        self.assertEqual(p["WatchdogUSec"], f"{WATCHDOG_S}s")
        # The pings go on (each one moves the timestamp).
        first = p["WatchdogTimestampMonotonic"]
        wait_until(lambda: self.show("WatchdogTimestampMonotonic")[
            "WatchdogTimestampMonotonic"] != first, WATCHDOG_S, what="a watchdog ping")
        timeouts = [e["MESSAGE"] for e in self.journal() if "atchdog timeout" in e["MESSAGE"]]
        self.assertEqual(timeouts, [])

    def test_82_thumbnails_under_the_units_sandbox(self):
        from images import png

        good = self.box.path(CONF).read_bytes()
        head, sep, tail = good.decode().partition("\nthumbnails:")
        self.assertTrue(sep, "no thumbnails section in the installed configuration")
        self.restart_with(head + sep + tail.replace("enabled = false;", "enabled = true;", 1))
        data = png(64, 48, b"thumbnail")
        self.put("thumbs/t.png", data)
        self.wait_synced({"thumbs/t.png": data})
        try:
            wait_until(lambda: "Thumbnail" in self.items().get("thumbs/t.png", {}), 60,
                       what="the item's Thumbnail")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        key = self.items()["thumbs/t.png"]["Thumbnail"]["S"]
        self.assertEqual(key, ".thumbnails/thumbs/t.png.webp")
        self.assertIn(key, self.objects())
        self.assertEqual(self.object_bytes(key)[:4], b"RIFF")
        # The earlier tests' images are headers only: theirs fail, each
        # with libvips' reason; this one's did not.
        self.assertEqual([e["MESSAGE"] for e in self.daemon_lines()
                          if "thumbs/t.png" in e["MESSAGE"] or "helper" in e["MESSAGE"]], [])

    def test_84_gallery_under_the_units_sandbox(self):
        import http.cookiejar
        import urllib.request

        from images import png
        from testbed import free_port

        port = free_port()
        text = self.box.path(CONF).read_bytes().decode()
        self.assertIn('\tlisten = "";', text, "no web section in the installed configuration")
        self.restart_with(text.replace('\tlisten = "";', f'\tlisten = "127.0.0.1:{port}";', 1))
        login = self.ctl("web-login")
        self.assertEqual(login.returncode, 0, _text(login.stderr) + self.log_tail())
        url = _text(login.stdout).strip()
        self.assertTrue(url.startswith(f"http://127.0.0.1:{port}/login?token="), url)
        jar = http.cookiejar.CookieJar()
        op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.assertEqual(op.open(url, timeout=10).status, 200)
        csrf = json.load(op.open(f"http://127.0.0.1:{port}/api/session", timeout=10))["csrf"]
        data = png(30, 20, b"from the gallery")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/upload?name=web-up.png",
                                     data=data, method="PUT", headers={"X-CSRF-Token": csrf})
        self.assertEqual(op.open(req, timeout=30).status, 201)
        self.wait_synced({"web-up.png": data})
        self.assertTrue(any(re.search(r"web: session 1 \(uid 0, 127\.0\.0\.1\): PUT /upload "
                                      r"web-up\.png", e["MESSAGE"])
                            for e in self.daemon_lines()), self.log_tail())

    def test_85_upgrade_keeps_configuration_and_restarts(self):
        conf = self.box.path(CONF).read_bytes()
        pid = self.show("MainPID")["MainPID"]
        name = self.deb.name
        proc = self.box.exec("dpkg", "-i", f"/root/build/package/{name}", check=False,
                             timeout=300, env={"DEBIAN_FRONTEND": "noninteractive"})
        self.assertEqual(proc.returncode, 0, _text(proc.stdout) + _text(proc.stderr))
        self.assertEqual(self.box.path(CONF).read_bytes(), conf)
        st = self.box.path(CONF).stat()
        self.assertEqual(st.st_mode & 0o7777, 0o640)
        p = self.show("ActiveState", "MainPID")
        self.assertEqual(p["ActiveState"], "active", self.log_tail())
        self.assertNotEqual(p["MainPID"], pid, "the upgrade did not restart the service")

    def test_90_stop_is_clean(self):
        proc = self.box.exec("systemctl", "stop", "imgsyncd", check=False, timeout=60)
        self.assertEqual(proc.returncode, 0, _text(proc.stderr))
        p = self.show("ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
        self.assertEqual((p["ActiveState"], p["Result"], p["ExecMainStatus"]),
                         ("inactive", "success", "0"), f"{p}\n{self.log_tail()}")
        self.assertFalse(self.box.path("/run/imgsync/imgsync.sock").exists())

    def test_92_configuration_error_is_not_restarted(self):
        good = self.box.path(CONF).read_bytes()
        since = self.now()
        self.box.exec("sh", "-c", f"echo 'watch: {{ nonsense = 1; }};' >> {CONF}")
        try:
            proc = self.box.exec("systemctl", "start", "imgsyncd", check=False, timeout=60)
            self.assertNotEqual(proc.returncode, 0)
            p = self.show("ActiveState", "Result", "ExecMainStatus", "NRestarts")
            self.assertEqual(p["ExecMainStatus"], "78", p)
            time.sleep(12)  # RestartSec=5s: two restarts would have happened
            p = self.show("ActiveState", "Result", "ExecMainStatus", "NRestarts")
            self.assertEqual((p["ActiveState"], p["Result"], p["NRestarts"], p["ExecMainStatus"]),
                             ("failed", "exit-code", "0", "78"), f"{p}\n{self.log_tail()}")
            errors = [e for e in self.daemon_lines("-p", "err", "--since", since)
                      if "imgsync.conf:" in e["MESSAGE"]]
            self.assertEqual(len(errors), 1, self.log_tail())
        finally:
            self.restore_conf(good)
            self.box.exec("systemctl", "reset-failed", "imgsyncd", check=False)

    def test_99_purge_leaves_nothing(self):
        # The test's own drop-in goes the way an operator's would.
        self.box.exec("systemctl", "revert", "imgsyncd")
        proc = self.box.exec("apt-get", "purge", "-y", "imgsync", check=False, timeout=300,
                             env={"DEBIAN_FRONTEND": "noninteractive"})
        self.assertEqual(proc.returncode, 0, _text(proc.stdout) + _text(proc.stderr))
        status = self.box.exec("dpkg-query", "-W", "-f=${Status}", "imgsync", check=False)
        self.assertNotIn("installed", _text(status.stdout).replace("not-installed", ""))
        for path in ("/etc/imgsync", "/var/lib/imgsync", "/run/imgsync",
                     "/lib/systemd/system/imgsyncd.service", DROPIN_DIR,
                     "/etc/systemd/system/multi-user.target.wants/imgsyncd.service",
                     "/usr/sbin/imgsyncd", "/usr/bin/imgsyncctl", "/usr/share/doc/imgsync"):
            with self.subTest(gone=path):
                self.assertFalse(os.path.lexists(self.box.path(path)))
        for db in ("passwd", "group"):
            with self.subTest(gone=db):
                got = self.box.exec("getent", db, "imgsync", check=False)
                self.assertEqual(got.returncode, 2, _text(got.stdout))
        self.box.exec("systemctl", "daemon-reload")
        units = self.box.exec("systemctl", "list-unit-files", "--no-legend", "imgsyncd.service",
                              check=False)
        self.assertEqual(_text(units.stdout).strip(), "")
        # The operator's files are theirs.
        self.assertTrue(self.box.path(f"{WATCH}/a/b/c/x.jpg").exists())


if __name__ == "__main__":
    unittest.main()
