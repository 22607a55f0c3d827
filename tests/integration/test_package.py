"""The Debian package: scripts/package builds it, lintian finds no error, it
installs (user, group, state directory, conffile 0640 root:imgsync, a unit
that systemd-analyze accepts, man pages, bash completion), a reinstall keeps
the operator's configuration and state, and a purge leaves nothing behind.

Needs root (dpkg -i / --purge on this machine); skipped otherwise, and
skipped when imgsync (or a user or group imgsync) is already on the machine,
which it would clobber. The package is built once, in setUpClass, into a
temporary folder; every install is purged again by a cleanup.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = "/lib/systemd/system/imgsyncd.service"
CONF = "/etc/imgsync/imgsync.conf"
THUMB = "/usr/libexec/imgsync/imgsync-thumb"
# What the tests need besides what scripts/package installs itself.
TOOLS = ["lintian", "man-db", "systemd", "adduser", "bash-completion"]
# The hardening of the unit, as systemd-analyze security scores it (0 is
# the best, 10 the worst); 1.2 when this test was written.
MAX_EXPOSURE = 2.0


def run(*cmd: str, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: rc={proc.returncode}\n"
                             f"stdout={proc.stdout[-3000:]}\nstderr={proc.stderr[-3000:]}")
    return proc


def dpkg_status(pkg: str) -> str:
    proc = run("dpkg-query", "-W", "-f=${Status}", pkg, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


class PackageTest(unittest.TestCase):
    maxDiff = None
    deb: Path
    version: str

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: installs and purges the imgsync package with dpkg")
        status = dpkg_status("imgsync")
        if status and "not-installed" not in status:
            raise unittest.SkipTest(f"imgsync is already on this machine ({status}); "
                                    "not clobbering it (dpkg --purge imgsync to run this test)")
        if user_exists("imgsync") or group_exists("imgsync"):
            raise unittest.SkipTest("a user or group imgsync exists already; not clobbering it")
        missing = [p for p in TOOLS if "install ok installed" not in dpkg_status(p)]
        if missing:
            run("apt-get", "update", "-qq", timeout=300)
            run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
                timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        cls.version = (ROOT / "VERSION").read_text().strip()
        cls.out = tempfile.mkdtemp(prefix="imgsync-test-package.")
        proc = run(str(ROOT / "scripts" / "package"), "-o", cls.out, timeout=900)
        cls.deb = Path(proc.stdout.strip().splitlines()[-1])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def install(self):
        self.addCleanup(self.purge_quietly)
        return run("dpkg", "-i", str(self.deb), timeout=300)

    @staticmethod
    def purge_quietly():
        if dpkg_status("imgsync"):
            subprocess.run(["dpkg", "--purge", "imgsync"], capture_output=True, timeout=300)

    # ---- the .deb itself ----

    def test_deb_name_and_fields(self):
        arch = run("dpkg", "--print-architecture").stdout.strip()
        self.assertEqual(self.deb.name, f"imgsync_{self.version}_{arch}.deb")
        fields = run("dpkg-deb", "-f", str(self.deb), "Package", "Version", "Depends").stdout
        self.assertIn("Package: imgsync\n", fields)
        self.assertIn(f"Version: {self.version}\n", fields)
        self.assertIn("adduser", fields)
        self.assertIn("libcurl4", fields)  # from dh_shlibdeps
        self.assertIn("libvips42", fields)  # the thumbnail helper's

    def test_deb_contents(self):
        listing = run("dpkg-deb", "-c", str(self.deb)).stdout
        files = {}
        for line in listing.splitlines():
            mode, owner, _size, _date, _time, path = line.split(None, 5)
            files[path.removeprefix(".")] = (mode, owner)
        expect = {
            "/usr/sbin/imgsyncd": "-rwxr-xr-x",
            "/usr/bin/imgsyncctl": "-rwxr-xr-x",
            THUMB: "-rwxr-xr-x",
            CONF: "-rw-r-----",
            UNIT: "-rw-r--r--",
            "/usr/share/man/man8/imgsyncd.8.gz": "-rw-r--r--",
            "/usr/share/man/man1/imgsyncctl.1.gz": "-rw-r--r--",
            "/usr/share/man/man5/imgsync.conf.5.gz": "-rw-r--r--",
            "/usr/share/bash-completion/completions/imgsyncctl": "-rw-r--r--",
            "/usr/share/doc/imgsync/copyright": "-rw-r--r--",
            "/usr/share/doc/imgsync/changelog.gz": "-rw-r--r--",
        }
        if (ROOT / "packaging" / "iam-policy.json").exists():
            expect["/usr/share/doc/imgsync/iam-policy.json"] = "-rw-r--r--"
        for path, mode in expect.items():
            with self.subTest(path=path):
                self.assertIn(path, files)
                self.assertEqual(files[path], (mode, "root/root"))
        self.assertTrue(any(p.startswith("/usr/share/doc/imgsync/README") for p in files))
        # Nothing of the build or the test suite leaks in.
        self.assertEqual([p for p in files if "criterion" in p or "/include/" in p
                          or p.startswith("/usr/lib/") or "test" in p.lower()], [])
        conffiles = run("dpkg-deb", "-I", str(self.deb), "conffiles").stdout.split()
        self.assertEqual(conffiles, [CONF])

    def test_lintian(self):
        proc = run("lintian", "--pedantic", "--no-tag-display-limit", str(self.deb),
                   timeout=300, check=False)
        tags = [l for l in proc.stdout.splitlines() if re.match(r"^[EWIPX]: ", l)]
        errors = [l for l in tags if l.startswith("E: ")]
        self.assertEqual(errors, [], proc.stdout + proc.stderr)
        warnings = [l for l in tags if l.startswith("W: ")]
        if warnings:
            print("lintian warnings:\n" + "\n".join(warnings))
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_changelog_version_is_VERSION(self):
        with tempfile.TemporaryDirectory() as d:
            run("dpkg-deb", "-x", str(self.deb), d)
            log = run("zcat", f"{d}/usr/share/doc/imgsync/changelog.gz").stdout
        self.assertTrue(log.startswith(f"imgsync ({self.version}) "), log)

    def test_unit_security_exposure(self):
        proc = run("systemd-analyze", "security", "--offline=yes", "--no-pager",
                   str(ROOT / "packaging" / "imgsyncd.service"), check=False)
        m = re.search(r"Overall exposure level for imgsyncd.service: ([0-9.]+)", proc.stdout)
        self.assertIsNotNone(m, proc.stdout + proc.stderr)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, proc.stdout)

    # ---- installed ----

    def test_install_reinstall_purge(self):
        out = self.install()
        # Not started on install (the configuration must be edited first).
        self.assertNotIn("Created symlink", out.stdout + out.stderr)

        ver = run("/usr/sbin/imgsyncd", "--version").stdout.strip()
        self.assertEqual(ver, f"imgsyncd {self.version}")
        run("/usr/sbin/imgsyncd", "-t", "-c", CONF)
        self.assertEqual(run("/usr/bin/imgsyncctl", "--version").stdout.strip(),
                         f"imgsyncctl {self.version}")
        # No daemon runs: exit 3, "cannot be reached", on the packaged socket.
        proc = run("/usr/bin/imgsyncctl", "status", check=False,
                   env={k: v for k, v in os.environ.items() if k != "IMGSYNC_SOCKET"})
        self.assertEqual(proc.returncode, 3, proc.stderr)
        self.assertIn("/run/imgsync/imgsync.sock", proc.stderr)
        self.assertEqual(Path(CONF).read_text(), (ROOT / "conf" / "imgsync.conf").read_text())

        user = pwd.getpwnam("imgsync")
        group = grp.getgrnam("imgsync")
        self.assertLess(user.pw_uid, 1000)  # a system user
        self.assertEqual(user.pw_gid, group.gr_gid)
        self.assertEqual(user.pw_dir, "/var/lib/imgsync")
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertIn("imgsync:", run("getent", "passwd", "imgsync").stdout)

        st = os.stat(CONF)
        self.assertEqual((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid),
                         (oct(0o640), 0, group.gr_gid))
        st = os.stat("/var/lib/imgsync")
        self.assertEqual((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid),
                         (oct(0o750), user.pw_uid, group.gr_gid))
        # The daemon's user can read its configuration.
        run("runuser", "-u", "imgsync", "--", "/usr/sbin/imgsyncd", "-t", "-c", CONF)
        # The thumbnail helper finds its libraries (libvips from Depends)
        # and its sandbox holds for the daemon's user too.
        proc = run("runuser", "-u", "imgsync", "--", THUMB, "--check", check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("open /etc/passwd: Operation not permitted", proc.stderr)

        # No PID 1 systemd here: verify still loads the unit, checks its
        # directives and that ExecStart's binary exists.
        proc = run("systemd-analyze", "verify", UNIT, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stderr.strip(), "")
        unit = Path(UNIT).read_text()
        for line in ("Type=notify", "User=imgsync", "ExecStart=/usr/sbin/imgsyncd -f -c " + CONF,
                     "ExecReload=/usr/sbin/imgsyncd -t -c " + CONF,
                     "RestartPreventExitStatus=78", "StateDirectory=imgsync",
                     "RuntimeDirectory=imgsync", "ProtectSystem=strict"):
            self.assertIn(line + "\n", unit)
        self.assertFalse(Path("/etc/systemd/system/multi-user.target.wants/imgsyncd.service")
                         .exists(), "the unit must not be enabled on install")

        for page, head, word in (("imgsyncd", "IMGSYNCD(8)", "--check-remote"),
                                 ("imgsyncctl", "IMGSYNCCTL(1)", "IMGSYNC_SOCKET"),
                                 ("imgsync.conf", "IMGSYNC.CONF(5)", "max_retry_delay_ms")):
            with self.subTest(man=page):
                proc = run("man", "-P", "cat", page, env={**os.environ, "MANWIDTH": "200"})
                self.assertIn(head, proc.stdout)
                self.assertIn(word, proc.stdout.replace("\u2010", "-"))

        script = ('. /usr/share/bash-completion/bash_completion; '
                  '. /usr/share/bash-completion/completions/imgsyncctl; '
                  'COMP_WORDS=(imgsyncctl "$@"); COMP_CWORD=$#; '
                  'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; '
                  '_imgsyncctl; echo "${COMPREPLY[*]}"')
        for words, want in ((["re"], "rescan resume retry"),
                            (["--j"], "--json"),
                            (["--json", "st"], "status"),
                            (["-s", "/tmp/x", "m"], "metrics"),
                            (["get", "a"], ""),
                            (["status", "--w"], "--watch"),
                            (["list", "--l"], "--local"),
                            (["-n", "5", "list", "--p"], "--page-size"),
                            (["get", "--w"], ""),
                            (["-s", "/r"], None)):
            with self.subTest(complete=words):
                got = run("bash", "-c", script, "x", *words).stdout.strip()
                if want is None:  # -s completes file names
                    self.assertIn("/run", got.split())
                else:
                    self.assertEqual(got, want)

        # Reinstall (an upgrade for dpkg): the operator's configuration and
        # state stay, and so do the user's ids.
        with open(CONF, "a") as f:
            f.write("# edited by the operator\n")
        Path("/var/lib/imgsync/state.db").write_bytes(b"state")
        run("dpkg", "-i", str(self.deb), timeout=300)
        self.assertTrue(Path(CONF).read_text().endswith("# edited by the operator\n"))
        self.assertEqual(Path("/var/lib/imgsync/state.db").read_bytes(), b"state")
        self.assertEqual(pwd.getpwnam("imgsync").pw_uid, user.pw_uid)
        st = os.stat(CONF)
        self.assertEqual((st.st_mode & 0o7777, st.st_gid), (0o640, group.gr_gid))
        self.assertFalse(Path(CONF + ".dpkg-new").exists())

        # Remove keeps the configuration and the state; purge removes all.
        files = [l for l in run("dpkg-query", "-L", "imgsync").stdout.splitlines()
                 if l.strip() and not Path(l).is_dir()]
        self.assertIn("/usr/sbin/imgsyncd", files)
        run("dpkg", "--remove", "imgsync", timeout=300)
        self.assertTrue(Path(CONF).exists())
        self.assertTrue(Path("/var/lib/imgsync/state.db").exists())
        self.assertTrue(user_exists("imgsync"))
        run("dpkg", "--purge", "imgsync", timeout=300)
        self.assertIn(dpkg_status("imgsync"), ("", "unknown ok not-installed"))
        self.assertFalse(user_exists("imgsync"))
        self.assertFalse(group_exists("imgsync"))
        for path in ("/etc/imgsync", "/var/lib/imgsync", "/usr/share/doc/imgsync", *files):
            with self.subTest(gone=path):
                self.assertFalse(os.path.lexists(path))

    def test_installed_daemon_serves_the_group(self):
        """The install section of the README, as far as it goes without a
        systemd as PID 1: the packaged daemon runs as imgsync with the
        packaged configuration (edited for the local moto), imgsyncctl
        status answers a member of the group imgsync and refuses others."""
        import testbed
        from common import FULL_POLICY
        from daemon import wait_until
        from images import make

        self.install()
        bed = testbed.auth_bed()
        key, secret = bed.user(FULL_POLICY)
        bucket, table = bed.bucket(), bed.table()
        root = Path(tempfile.mkdtemp(prefix="imgsync-pkg-root."))
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        os.chmod(root, 0o755)
        user = pwd.getpwnam("imgsync")
        os.chown(root, user.pw_uid, user.pw_gid)
        conf = Path(CONF).read_text()
        for k, v in (("root", f'"{root}"'), ("bucket", f'"{bucket}"'), ("table", f'"{table}"'),
                     ("endpoint", f'"{bed.endpoint}"'), ("path_style", "true"),
                     ("access_key_id", f'"{key}"'), ("secret_access_key", f'"{secret}"')):
            conf, n = re.subn(rf"(?m)^(\s*){k}\s*=\s*[^;]*;", rf"\g<1>{k} = {v};", conf)
            self.assertGreater(n, 0, k)
        Path(CONF).write_text(conf)
        # What RuntimeDirectory= would make.
        Path("/run/imgsync").mkdir(mode=0o750, exist_ok=True)
        os.chown("/run/imgsync", user.pw_uid, user.pw_gid)
        self.addCleanup(shutil.rmtree, "/run/imgsync", ignore_errors=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k != "IMGSYNC_SOCKET"}
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        check = run("runuser", "-u", "imgsync", "--", "/usr/sbin/imgsyncd", "--check-remote",
                    "-c", CONF, env=env, check=False)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        log = open(root.parent / (root.name + ".log"), "wb")
        self.addCleanup(os.unlink, log.name)
        # setpriv execs imgsyncd itself (runuser would stay in between and
        # swallow the signals).
        proc = subprocess.Popen(["setpriv", "--reuid=imgsync", "--regid=imgsync",
                                 "--init-groups", "/usr/sbin/imgsyncd", "-f", "-c", CONF],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

        def stop():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        self.addCleanup(stop)
        sock = Path("/run/imgsync/imgsync.sock")
        wait_until(sock.exists, 30, what="the control socket")
        st = os.stat(sock)
        self.assertEqual((st.st_mode & 0o777, st.st_gid), (0o660, user.pw_gid))
        data, _ = make("a.png", 4, 4, b"pkg")
        (root / "a.png").write_bytes(data)
        wait_until(lambda: "a.png" in [i["FileName"]["S"] for i in
                                       bed.dynamodb().scan(TableName=table)["Items"]],
                   30, what="a.png synced by the packaged daemon")
        member = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                  f"--groups={user.pw_gid}", "/usr/bin/imgsyncctl", "status"]
        proc_st = run(*member, env=env, check=False)
        self.assertEqual(proc_st.returncode, 0, proc_st.stderr)
        self.assertRegex(proc_st.stdout, r"done:\s+1 ")
        other = run("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                    "/usr/bin/imgsyncctl", "status", env=env, check=False)
        self.assertEqual(other.returncode, 3)
        self.assertIn("permission denied", other.stderr)
        proc.send_signal(1)  # systemctl reload
        time.sleep(0.5)
        self.assertIsNone(proc.poll())
        proc.terminate()
        self.assertEqual(proc.wait(30), 0)
        self.assertFalse(sock.exists())


if __name__ == "__main__":
    unittest.main()
