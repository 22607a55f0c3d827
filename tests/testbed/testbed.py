#!/usr/bin/env python3
"""Local test bed for imgsync: real AWS-compatible servers on 127.0.0.1.

Why (DESIGN.md section 7): tests run against real servers, never mocks.
This module starts and stops them and hands tests ready-made credentials,
buckets and tables:

* ``Moto(auth=True)``  - moto_server with SigV4 + IAM policy enforcement.  The
  first ``BOOTSTRAP_ACTIONS`` (3) requests are unauthenticated: exactly
  CreateUser, PutUserPolicy and CreateAccessKey for an all-powerful admin, so
  every later request - including the test's own set-up - is checked.
* ``Moto(auth=False)`` - no checks at all (moto's signature checker mishandles
  keys with ``+``, UTF-8 or ``~!*'()``).
* ``S3rver()`` / ``Dynalite()`` - the npm emulators, a second independent
  implementation for compatibility checks (installed on demand).
* ``auth_bed()`` / ``noauth_bed()`` - the servers ``scripts/test`` started once
  per run (``testbed.py serve``), or a private one when a test runs by hand.

Servers run in their own process group with PR_SET_PDEATHSIG, so they die
with the process that started them even if it is SIGKILLed.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import fcntl
import http.client
import itertools
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REGION = "us-east-1"
HERE = Path(__file__).resolve().parent
NPM_PREFIX = HERE / ".npm"
NPM_PACKAGES = {"s3rver": "3.7.1", "dynalite": "4.0.0", "playwright-core": "1.64.1"}

#: Unauthenticated requests moto allows before it checks everything:
#: CreateUser + PutUserPolicy + CreateAccessKey for the admin.  (2 is too few:
#: CreateAccessKey is then refused; anything more leaves a window open.)
BOOTSTRAP_ACTIONS = 3
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
NOAUTH_KEYS = ("AKIAIMGSYNCNOAUTH000", "imgsync-noauth-any-secret-works")
S3RVER_KEYS = ("S3RVER", "S3RVER")  # the only pair s3rver accepts
DYNALITE_KEYS = ("AKIAIMGSYNCDYNALITE0", "dynalite-checks-no-secret")

ENV_URL = "IMGSYNC_TEST_MOTO_URL"
ENV_ADMIN_KEY = "IMGSYNC_TEST_MOTO_ADMIN_KEY"
ENV_ADMIN_SECRET = "IMGSYNC_TEST_MOTO_ADMIN_SECRET"
ENV_LOG = "IMGSYNC_TEST_MOTO_LOG"
ENV_NOAUTH_URL = "IMGSYNC_TEST_MOTO_NOAUTH_URL"
ENV_NOAUTH_LOG = "IMGSYNC_TEST_MOTO_NOAUTH_LOG"
ENV_SERVE_PID = "IMGSYNC_TEST_SERVE_PID"
ENV_KEEP_LOGS = "IMGSYNC_TEST_KEEP_LOGS"  # set to 1 to keep server temp dirs

_START_ATTEMPTS = 5          # fresh port per attempt (another process may grab it)
_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 5.0
_NPM_TIMEOUT_S = 300.0
_TABLE_ACTIVE_TIMEOUT_S = 30.0

__all__ = ["Bed", "Moto", "S3rver", "Dynalite", "ServerProcess", "TestbedError",
           "NpmUnavailable", "from_env", "auth_bed", "noauth_bed",
           "ensure_npm_packages", "free_port", "unique_name", "serve", "main"]


class TestbedError(RuntimeError):
    """A server could not be started or set up."""


class NpmUnavailable(TestbedError):
    """npm could not install s3rver/dynalite.

    ``registry_unreachable`` tells a network failure (tests may skip) from
    anything else (tests should fail)."""

    def __init__(self, message: str, registry_unreachable: bool = False):
        super().__init__(message)
        self.registry_unreachable = registry_unreachable


_NPM_NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET",
                       "ETIMEDOUT", "ENETUNREACH", "EHOSTUNREACH", "network",
                       "ERR_SOCKET_TIMEOUT", "FETCH_ERROR", "request to http")


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc = None


def _load_libc():
    """Load libc before any fork: the child's preexec_fn must not import."""
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send us ``signum`` when our parent dies (Linux).

    Note the kernel ties this to the parent *thread*: start long-lived servers
    from a thread that outlives them (normally the main thread)."""
    libc = _load_libc()
    if libc is None:
        return False
    return libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def _child_preexec(parent_pid: int):
    def setup() -> None:
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent_pid:  # parent died before prctl took hold
            os._exit(1)
    return setup


def free_port() -> int:
    """A port that was free a moment ago (bind 0, read it, release it).

    Racy by nature, hence the retries in ServerProcess.start()."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_probe(port: int, path: str = "/", method: str = "GET",
               headers: dict | None = None, body: bytes | None = None,
               timeout: float = 2.0, host: str = "127.0.0.1") -> tuple[int, bytes]:
    """One plain HTTP request to ``host`` (127.0.0.1 unless given; no
    proxies, no signing)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class ServerProcess:
    """One server child on a free 127.0.0.1 port.

    Own process group (so stop() gets every descendant), PR_SET_PDEATHSIG
    (so it never outlives us), stdout+stderr in ``log_path`` (so a failing
    test can show it).  ``argv_for(port, workdir)`` builds the command line.

    ``host`` is the address the server listens on (probed there; the
    benchmark's shaped link uses an address in a network namespace) and
    ``prefix`` a command the server runs under (e.g. ``ip netns exec NS``,
    which execs it: same pid, so the death signal and process group hold).
    The port is still picked free on the host, which is harmless in a fresh
    namespace."""

    def __init__(self, name: str, argv_for, env: dict | None = None,
                 probe_path: str = "/", ready_timeout_s: float = _READY_TIMEOUT_S,
                 host: str = "127.0.0.1", prefix: list[str] | None = None):
        self.name = name
        self.host = host
        self.prefix = list(prefix or [])
        self.argv_for = argv_for
        self.env = env
        self.probe_path = probe_path
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.workdir: str | None = None
        self.log_path: str | None = None
        self.startup_s: float | None = None

    def start(self) -> "ServerProcess":
        _load_libc()
        self.workdir = tempfile.mkdtemp(prefix=f"imgsync-{self.name}-")
        self.log_path = os.path.join(self.workdir, f"{self.name}.log")
        t0 = time.monotonic()
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = free_port()
            self._spawn(attempt)
            if self._wait_ready():
                self.startup_s = time.monotonic() - t0
                return self
            self._kill()
            if "in use" not in self.log_tail(4000).lower():
                break
        raise TestbedError(f"{self.name} did not start; log {self.log_path}:\n"
                           f"{self.log_tail()}")

    def _spawn(self, attempt: int) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"--- start attempt {attempt} on port {self.port}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.prefix + self.argv_for(self.port, self.workdir), env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_child_preexec(os.getpid()),
                cwd=self.workdir)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                http_probe(self.port, self.probe_path, timeout=1.0, host=self.host)
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _kill(self) -> None:
        """SIGTERM the whole group, then SIGKILL it; bounded waits."""
        if self.proc is None:
            return
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(_STOP_TIMEOUT_S)
                break
            except subprocess.TimeoutExpired:
                continue
        # Descendants in the group that survived the leader's TERM.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        self._kill()
        self.proc = None
        if self.workdir and not os.environ.get(ENV_KEEP_LOGS):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, max_bytes: int = 20000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - max_bytes))
                return fh.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""


# --------------------------------------------------------------------------
# the bed: clients and fixtures over one endpoint
# --------------------------------------------------------------------------

_name_counter = itertools.count(1)
_session_lock = threading.Lock()


def unique_name(prefix: str) -> str:
    """Lower-case, DNS- and table-name-safe, unique across processes."""
    return f"{prefix}-{os.getpid()}-{next(_name_counter)}-{secrets.token_hex(3)}"


class Bed:
    """Clients and fixtures for one endpoint; the base of every server class.

    A plain Bed (from ``from_env``) owns no process: stop() is a no-op."""

    supports_iam = True

    def __init__(self, endpoint: str | None = None,
                 admin: tuple[str, str] | None = None,
                 log_path: str | None = None):
        self.endpoint = endpoint
        self.admin = admin
        self.log_path = log_path
        self.region = REGION
        self._session = None
        self._clients: dict = {}

    # ---- clients -------------------------------------------------------

    def client(self, service: str, creds: tuple[str, str] | None = None,
               endpoint: str | None = None, **config):
        """A boto3 client on this bed (admin keys unless ``creds``).

        ``endpoint`` lets a test go through a FaultProxy; ``config`` is merged
        into botocore's Config (e.g. ``retries={...}``)."""
        import boto3
        from botocore.config import Config

        akid, secret = creds or self.admin
        base = Config(region_name=self.region, s3={"addressing_style": "path"},
                      connect_timeout=5, read_timeout=60,
                      retries={"mode": "standard", "total_max_attempts": 3})
        with _session_lock:  # boto3 sessions are not thread-safe to build on
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session.client(
                service, endpoint_url=endpoint or self.endpoint,
                region_name=self.region, aws_access_key_id=akid,
                aws_secret_access_key=secret,
                config=base.merge(Config(**config)) if config else base)

    def _admin_client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]

    def s3(self):
        return self._admin_client("s3")

    def dynamodb(self):
        return self._admin_client("dynamodb")

    def iam(self):
        return self._admin_client("iam")

    # ---- fixtures ------------------------------------------------------

    def user(self, policy, name: str | None = None) -> tuple[str, str]:
        """Create an IAM user with ``policy`` inline; return its access key."""
        if not self.supports_iam:
            raise NotImplementedError(f"{type(self).__name__} has no IAM")
        name = name or unique_name("imgsync-user")
        document = policy if isinstance(policy, str) else json.dumps(policy)
        iam = self.iam()
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy",
                            PolicyDocument=document)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def bucket(self, name: str | None = None) -> str:
        name = name or unique_name("imgsync-b")
        self.s3().create_bucket(Bucket=name)
        return name

    def table(self, name: str | None = None) -> str:
        """imgsync's table shape: FileName (S) HASH, on-demand; waits ACTIVE."""
        name = name or unique_name("imgsync_t")
        ddb = self.dynamodb()
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "FileName", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "FileName",
                                                "AttributeType": "S"}])
        deadline = time.monotonic() + _TABLE_ACTIVE_TIMEOUT_S
        while time.monotonic() < deadline:
            status = ddb.describe_table(TableName=name)["Table"]["TableStatus"]
            if status == "ACTIVE":
                return name
            time.sleep(0.05)
        raise TestbedError(f"table {name} not ACTIVE after {_TABLE_ACTIVE_TIMEOUT_S}s")

    def env(self, akid: str, secret: str, endpoint: str | None = None,
            base: dict | None = None) -> dict:
        """A full environment for running our binaries against this bed.

        Starts from ``base`` (default os.environ) and removes profile/session
        variables so nothing but these keys can be picked up."""
        env = dict(os.environ if base is None else base)
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                    "AWS_SECURITY_TOKEN"):
            env.pop(var, None)
        no_proxy = ",".join(filter(None, [env.get("NO_PROXY"), "127.0.0.1,localhost"]))
        env.update({
            "AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",  # never reach for 169.254.169.254
            "NO_PROXY": no_proxy, "no_proxy": no_proxy,
        })
        return env

    # ---- lifecycle / diagnostics ----------------------------------------

    def log_tail(self, max_bytes: int = 20000) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - max_bytes))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Nothing to stop for a bed over someone else's server."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _ServerBed(Bed):
    """A Bed that owns its ServerProcess."""

    server: ServerProcess | None = None

    @property
    def startup_s(self) -> float | None:
        return self.server.startup_s if self.server else None

    @property
    def port(self) -> int | None:
        return self.server.port if self.server else None

    def _start_server(self, server: ServerProcess) -> None:
        self.server = server
        server.start()
        self.endpoint = f"http://{server.host}:{server.port}"
        self.log_path = server.log_path

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self._clients.clear()

    def log_tail(self, max_bytes: int = 20000) -> str:
        return self.server.log_tail(max_bytes) if self.server else ""


# --------------------------------------------------------------------------
# moto
# --------------------------------------------------------------------------

def _moto_command() -> list[str]:
    """moto.server under this interpreter (skips the pyenv shim's startup)."""
    try:
        import moto.server  # noqa: F401
        return [sys.executable, "-m", "moto.server"]
    except ImportError:
        exe = shutil.which("moto_server")
        if not exe:
            raise TestbedError("moto_server not found (pip install 'moto[server]')")
        return [exe]


class Moto(_ServerBed):
    """moto_server on a free port; with ``auth`` every request after the
    3-action bootstrap is SigV4- and IAM-checked."""

    def __init__(self, auth: bool = True, start: bool = True,
                 host: str = "127.0.0.1", prefix: list[str] | None = None):
        super().__init__()
        self.auth = auth
        self.host, self.prefix = host, prefix
        if start:
            self.start()

    def start(self) -> "Moto":
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_ACTIONS)
        cmd = _moto_command()
        name = "moto" if self.auth else "moto-noauth"
        try:
            # /moto-api/ is not an AWS action: probing it spends no free action.
            self._start_server(ServerProcess(
                name, lambda port, _wd: cmd + ["-H", self.host, "-p", str(port)],
                env=env, probe_path="/moto-api/", host=self.host, prefix=self.prefix))
            self.admin = self._bootstrap_admin() if self.auth else NOAUTH_KEYS
        except BaseException:
            self.stop()
            raise
        return self

    def _bootstrap_admin(self) -> tuple[str, str]:
        """Spend exactly the BOOTSTRAP_ACTIONS free requests on the admin,
        then prove the window is shut (an unsigned request is refused)."""
        self.admin = ("AKIAIMGSYNCBOOTSTRAP", "unchecked-during-bootstrap")
        iam = self.client("iam", retries={"mode": "standard", "total_max_attempts": 1})
        iam.create_user(UserName="imgsync-admin")
        iam.put_user_policy(UserName="imgsync-admin", PolicyName="admin-all",
                            PolicyDocument=json.dumps(ADMIN_POLICY))
        key = iam.create_access_key(UserName="imgsync-admin")["AccessKey"]
        # A bogus key (not an absent header: moto 5.2.1 answers that with a
        # 500 and a traceback in its log) must now be refused.
        status, _ = http_probe(self.port, "/", host=self.host, headers={"Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIAIMGSYNCPROBE0000/20260101/us-east-1/"
            "s3/aws4_request, SignedHeaders=host, Signature=00")})
        if status != 403:
            raise TestbedError(f"moto still accepts unsigned requests ({status}) "
                               "after the bootstrap: auth is not on")
        return key["AccessKeyId"], key["SecretAccessKey"]


# --------------------------------------------------------------------------
# npm emulators
# --------------------------------------------------------------------------

def _npm_package_version(name: str) -> str | None:
    try:
        with open(NPM_PREFIX / "node_modules" / name / "package.json") as fh:
            return json.load(fh).get("version")
    except (OSError, ValueError):
        return None


def _npm_installed() -> bool:
    return all(_npm_package_version(n) == v for n, v in NPM_PACKAGES.items())


def ensure_npm_packages() -> Path:
    """Install s3rver/dynalite under tests/testbed/.npm once (file-locked so
    parallel tests do not race); raise NpmUnavailable on failure."""
    if _npm_installed():
        return NPM_PREFIX
    if not shutil.which("node") or not shutil.which("npm"):
        raise NpmUnavailable("node/npm not on PATH")
    NPM_PREFIX.mkdir(exist_ok=True)
    with open(NPM_PREFIX / ".install.lock", "w") as lock:
        deadline = time.monotonic() + _NPM_TIMEOUT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise NpmUnavailable("timed out waiting for another npm install")
                time.sleep(0.2)
        if not _npm_installed():
            _run_npm_install()
    return NPM_PREFIX


def _run_npm_install() -> None:
    specs = [f"{n}@{v}" for n, v in NPM_PACKAGES.items()]
    cmd = ["npm", "install", "--no-save", "--no-audit", "--no-fund",
           "--prefix", str(NPM_PREFIX)] + specs
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=_NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise NpmUnavailable(f"npm install timed out: {' '.join(cmd)}",
                             registry_unreachable=True) from exc
    if done.returncode != 0 or not _npm_installed():
        unreachable = any(e in done.stderr for e in _NPM_NETWORK_ERRORS)
        raise NpmUnavailable(f"npm install failed (rc={done.returncode}"
                             f"{', registry unreachable' if unreachable else ''}): "
                             f"{' '.join(cmd)}\n{done.stderr[-4000:]}",
                             registry_unreachable=unreachable)


def _node_env() -> dict:
    env = dict(os.environ)
    # s3rver 3.7.1 on Node 20 fails listings past 1,000 keys without it.
    env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") +
                           " --openssl-legacy-provider").strip()
    return env


class S3rver(_ServerBed):
    """npm s3rver 3.7.1 (S3 only; keys S3RVER/S3RVER; data in a temp dir)."""

    supports_iam = False

    def __init__(self, start: bool = True, host: str = "127.0.0.1",
                 prefix: list[str] | None = None):
        super().__init__(admin=S3RVER_KEYS)
        self.host, self.prefix = host, prefix
        if start:
            self.start()

    def start(self) -> "S3rver":
        script = ensure_npm_packages() / "node_modules/s3rver/bin/s3rver.js"

        def argv(port: int, workdir: str) -> list[str]:
            data = os.path.join(workdir, "data")
            os.makedirs(data, exist_ok=True)
            return ["node", str(script), "-d", data, "-a", self.host,
                    "-p", str(port)]
        try:
            self._start_server(ServerProcess("s3rver", argv, env=_node_env(),
                                             host=self.host, prefix=self.prefix))
        except BaseException:
            self.stop()
            raise
        return self

    def table(self, name=None):
        raise NotImplementedError("s3rver has no DynamoDB: use Dynalite")


class Dynalite(_ServerBed):
    """npm dynalite 4.0.0 (DynamoDB only, in memory; any keys accepted).

    Tables go ACTIVE at once (createTableMs 0) to keep tests fast."""

    supports_iam = False

    def __init__(self, start: bool = True, create_table_ms: int = 0,
                 host: str = "127.0.0.1", prefix: list[str] | None = None):
        super().__init__(admin=DYNALITE_KEYS)
        self.create_table_ms = create_table_ms
        self.host, self.prefix = host, prefix
        if start:
            self.start()

    def start(self) -> "Dynalite":
        script = ensure_npm_packages() / "node_modules/dynalite/cli.js"
        ms = str(self.create_table_ms)

        def argv(port: int, _workdir: str) -> list[str]:
            return ["node", str(script), "--host", self.host, "--port", str(port),
                    "--createTableMs", ms, "--deleteTableMs", ms,
                    "--updateTableMs", ms]
        try:
            self._start_server(ServerProcess("dynalite", argv, env=_node_env(),
                                             host=self.host, prefix=self.prefix))
        except BaseException:
            self.stop()
            raise
        return self

    def bucket(self, name=None):
        raise NotImplementedError("dynalite has no S3: use S3rver")


# --------------------------------------------------------------------------
# shared servers (scripts/test) or private ones (a test run by hand)
# --------------------------------------------------------------------------

def from_env(auth: bool = True) -> Bed | None:
    """A Bed over the servers ``testbed.py serve`` exported, or None."""
    if auth:
        url, key, secret = (os.environ.get(v) for v in
                            (ENV_URL, ENV_ADMIN_KEY, ENV_ADMIN_SECRET))
        if url and key and secret:
            return Bed(url, (key, secret), os.environ.get(ENV_LOG))
        return None
    url = os.environ.get(ENV_NOAUTH_URL)
    return Bed(url, NOAUTH_KEYS, os.environ.get(ENV_NOAUTH_LOG)) if url else None


_private: dict[bool, Moto] = {}
_private_lock = threading.Lock()


def _private_moto(auth: bool) -> Moto:
    with _private_lock:
        if auth not in _private:
            _private[auth] = Moto(auth=auth)
            atexit.register(_private[auth].stop)
        return _private[auth]


def auth_bed() -> Bed:
    """The run's shared auth moto, else one private to this process."""
    return from_env(True) or _private_moto(True)


def noauth_bed() -> Bed:
    """The run's shared no-auth moto, else one private to this process."""
    return from_env(False) or _private_moto(False)


# --------------------------------------------------------------------------
# CLI: testbed.py serve --env-file FILE
# --------------------------------------------------------------------------

class _Signalled(Exception):
    pass


def _raise_signalled(signum, _frame):
    raise _Signalled(signum)


def _env_lines(auth: Moto | None, noauth: Moto | None) -> list[str]:
    values = {ENV_SERVE_PID: str(os.getpid())}
    if auth:
        values.update({ENV_URL: auth.endpoint, ENV_ADMIN_KEY: auth.admin[0],
                       ENV_ADMIN_SECRET: auth.admin[1], ENV_LOG: auth.log_path})
    if noauth:
        values.update({ENV_NOAUTH_URL: noauth.endpoint, ENV_NOAUTH_LOG: noauth.log_path})
    return [f"export {k}={shlex.quote(v)}" for k, v in values.items()]


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def serve(env_file: str, noauth: bool = True, max_seconds: float = 4 * 3600,
          die_with_parent: bool = True) -> int:
    """Run the shared servers until SIGTERM/SIGINT (or ``max_seconds``).

    ``env_file`` exists exactly while the servers are up: removed at start,
    written atomically once ready, removed on exit - so its appearance is the
    readiness signal for scripts/test."""
    if die_with_parent:
        set_parent_death_signal(signal.SIGTERM)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_signalled)
    servers: list[Moto] = []
    rc = 0
    try:
        if os.path.exists(env_file):
            os.unlink(env_file)
        auth_moto = Moto(auth=True)
        servers.append(auth_moto)
        noauth_moto = Moto(auth=False) if noauth else None
        if noauth_moto:
            servers.append(noauth_moto)
        _write_atomically(env_file, "\n".join(_env_lines(auth_moto, noauth_moto)) + "\n")
        for bed in servers:
            print(f"testbed: {bed.server.name} at {bed.endpoint} "
                  f"(started in {bed.startup_s:.2f}s, log {bed.log_path})", flush=True)
        rc = _watch(servers, max_seconds)
    except _Signalled:
        rc = 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        for bed in servers:
            bed.stop()
        if os.path.exists(env_file):
            os.unlink(env_file)
    return rc


def _watch(servers: list[Moto], max_seconds: float) -> int:
    """Sleep until signalled; fail fast if a server dies underneath us."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        for bed in servers:
            if not bed.server.alive():
                print(f"testbed: {bed.server.name} died; log tail:\n"
                      f"{bed.log_tail(4000)}", file=sys.stderr, flush=True)
                return 1
    print("testbed: --max-seconds reached, stopping", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="imgsync local test bed")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the shared moto servers")
    p_serve.add_argument("--env-file", required=True,
                         help="written with 'export VAR=value' lines once ready")
    p_serve.add_argument("--no-noauth", action="store_true",
                         help="skip the no-auth moto")
    p_serve.add_argument("--max-seconds", type=float, default=4 * 3600)
    p_serve.add_argument("--no-die-with-parent", action="store_true",
                         help="keep running if the launching process dies")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.env_file, noauth=not args.no_noauth,
                     max_seconds=args.max_seconds,
                     die_with_parent=not args.no_die_with_parent)
    return 2


if __name__ == "__main__":
    sys.exit(main())
