"""Self-test of the test bed: are the servers and the fault proxy what the
imgsync tests believe they are?

Run: ``cd tests/testbed && python3 -m unittest -v test_testbed``.  Uses the
servers of ``testbed.py serve`` when IMGSYNC_TEST_MOTO_* is exported, else
starts private ones.  Server start-up times are printed to stderr.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
import zlib

from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

import faultproxy
import testbed

ALLOW_S3 = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
GET_ONLY = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
ONE_TRY = {"mode": "standard", "total_max_attempts": 1}  # no retries

AUTH = NOAUTH = None
TIMINGS: dict[str, float] = {}


def setUpModule():
    global AUTH, NOAUTH
    AUTH = testbed.auth_bed()
    NOAUTH = testbed.noauth_bed()


def tearDownModule():
    if TIMINGS:
        lines = [f"  {name:<32} {secs:6.2f}s" for name, secs in TIMINGS.items()]
        sys.stderr.write("\nserver start-up times:\n" + "\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def error_of(call, *args, **kwargs) -> tuple[int, str, dict]:
    """Run a boto3 call that must fail; return (HTTP status, code, response)."""
    try:
        call(*args, **kwargs)
    except ClientError as exc:
        resp = exc.response
        return (resp["ResponseMetadata"]["HTTPStatusCode"],
                resp["Error"].get("Code"), resp)
    raise AssertionError(f"{call} unexpectedly succeeded")


def raw(url: str, method: str, path: str, headers: dict | None = None,
        body: bytes | None = None) -> tuple[int, dict, bytes]:
    """One unsigned request; returns (status, lower-cased headers, body)."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def ddb_headers(op: str = "ListTables") -> dict:
    return {"X-Amz-Target": f"DynamoDB_20120810.{op}",
            "Content-Type": "application/x-amz-json-1.0"}


def date_of(headers: dict) -> float:
    return email.utils.parsedate_to_datetime(headers["date"]).timestamp()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def port_closed(port: int, timeout_s: float = 15.0) -> bool:
    """True once nothing accepts on 127.0.0.1:port (bounded poll)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------
# moto with signature + IAM checks
# --------------------------------------------------------------------------

class MotoAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = AUTH.bucket()

    def test_unsigned_requests_are_refused(self):
        # moto 5.2.1 answers an Authorization-less request with 500 (KeyError
        # 'HTTP_AUTHORIZATION'), not 403: assert "refused and nothing written".
        status, _, _ = raw(AUTH.endpoint, "PUT", f"/{self.bucket}/unsigned",
                           body=b"should not land")
        self.assertIn(status, (403, 500))
        status, _, _ = raw(AUTH.endpoint, "GET", "/")
        self.assertIn(status, (403, 500))
        forged = {"Authorization": "AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/s3/"
                  "aws4_request, SignedHeaders=host;x-amz-date, Signature=%s"
                  % (AUTH.admin[0], "0" * 64),
                  "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
        status, _, body = raw(AUTH.endpoint, "GET", "/", forged)
        self.assertEqual(status, 403, body)
        status, code, _ = error_of(AUTH.s3().head_object, Bucket=self.bucket,
                                   Key="unsigned")
        self.assertEqual(status, 404)

    def test_wrong_secret_is_refused_with_403(self):
        bad = (AUTH.admin[0], "not-the-secret")
        status, code, _ = error_of(AUTH.client("s3", bad, retries=ONE_TRY).list_buckets)
        self.assertEqual((status, code), (403, "SignatureDoesNotMatch"))
        status, _, _ = error_of(AUTH.client("dynamodb", bad, retries=ONE_TRY).list_tables)
        self.assertEqual(status, 403)

    def test_unknown_access_key_is_refused_with_403(self):
        status, code, _ = error_of(
            AUTH.client("s3", ("AKIAUNKNOWNUNKNOWN00", "x"), retries=ONE_TRY).list_buckets)
        self.assertEqual((status, code), (403, "InvalidAccessKeyId"))

    def test_admin_and_created_user_are_accepted(self):
        AUTH.s3().put_object(Bucket=self.bucket, Key="by-admin", Body=b"a")
        user = AUTH.user(ALLOW_S3)
        s3 = AUTH.client("s3", user)
        s3.put_object(Bucket=self.bucket, Key="by-user", Body=b"u")
        self.assertEqual(s3.get_object(Bucket=self.bucket, Key="by-admin")["Body"].read(), b"a")

    def test_policy_is_enforced(self):
        AUTH.s3().put_object(Bucket=self.bucket, Key="readable", Body=b"r")
        reader = AUTH.client("s3", AUTH.user(GET_ONLY), retries=ONE_TRY)
        self.assertEqual(reader.get_object(Bucket=self.bucket, Key="readable")["Body"].read(),
                         b"r")
        status, code, _ = error_of(reader.put_object, Bucket=self.bucket, Key="nope",
                                   Body=b"x")
        self.assertEqual((status, code), (403, "AccessDenied"))


class MotoNoAuthTest(unittest.TestCase):
    def test_anything_is_accepted(self):
        s3 = NOAUTH.client("s3", ("whatever", "garbage"))
        bucket = NOAUTH.bucket()
        s3.put_object(Bucket=bucket, Key="k+~!*'()é", Body=b"special")
        got = s3.get_object(Bucket=bucket, Key="k+~!*'()é")["Body"].read()
        self.assertEqual(got, b"special")
        status, _, _ = raw(NOAUTH.endpoint, "GET", "/")
        self.assertEqual(status, 200)


# --------------------------------------------------------------------------
# fault proxy: transparent forwarding
# --------------------------------------------------------------------------

class ProxyForwardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = AUTH.bucket()
        cls.table = AUTH.table()

    def test_signed_requests_pass_through_on_keepalive(self):
        big = os.urandom(2 * 1024 * 1024)
        with faultproxy.FaultProxy(AUTH.endpoint) as proxy:
            s3 = AUTH.client("s3", endpoint=proxy.url)
            s3.put_object(Bucket=self.bucket, Key="small", Body=b"hello")
            s3.put_object(Bucket=self.bucket, Key="big", Body=io.BytesIO(big))  # Expect
            self.assertEqual(s3.get_object(Bucket=self.bucket, Key="small")["Body"].read(),
                             b"hello")
            got = s3.get_object(Bucket=self.bucket, Key="big")["Body"].read()
            self.assertEqual(sha256(got), sha256(big))
            self.assertEqual(s3.head_object(Bucket=self.bucket, Key="big")["ContentLength"],
                             len(big))
            ddb = AUTH.client("dynamodb", endpoint=proxy.url)
            ddb.put_item(TableName=self.table, Item={"FileName": {"S": "a.jpg"}})
            item = ddb.get_item(TableName=self.table, Key={"FileName": {"S": "a.jpg"}})
            self.assertEqual(item["Item"]["FileName"]["S"], "a.jpg")
            stats, log = proxy.stats(), proxy.log()
        self.assertEqual(stats["requests"], 7)
        self.assertEqual(stats["forwarded"], 7)
        self.assertEqual(stats["connections"], 2, "one keep-alive connection per client")
        self.assertTrue(any(e["expect"] for e in log), "no Expect: 100-continue seen")
        self.assertEqual([e["service"] for e in log][-2:], ["dynamodb", "dynamodb"])

    def test_wrong_signature_is_still_refused_through_proxy(self):
        with faultproxy.FaultProxy(AUTH.endpoint) as proxy:
            s3 = AUTH.client("s3", (AUTH.admin[0], "wrong"), endpoint=proxy.url,
                             retries=ONE_TRY)
            status, code, _ = error_of(s3.list_buckets)
        self.assertEqual((status, code), (403, "SignatureDoesNotMatch"))

    def test_chunked_request_body_is_forwarded(self):
        bucket = NOAUTH.bucket()
        with faultproxy.FaultProxy(NOAUTH.endpoint) as proxy:
            port = proxy.port
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("PUT", f"/{bucket}/chunked", body=iter([b"hello ", b"world"]),
                             encode_chunked=True)
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
                conn.request("GET", "/")  # second request on the same connection
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
            finally:
                conn.close()
            self.assertEqual(proxy.stats()["connections"], 1)
        got = NOAUTH.s3().get_object(Bucket=bucket, Key="chunked")["Body"].read()
        self.assertEqual(got, b"hello world")


# --------------------------------------------------------------------------
# fault proxy: fault shapes
# --------------------------------------------------------------------------

class ProxyFaultShapesTest(unittest.TestCase):
    def proxy(self, **kw) -> faultproxy.FaultProxy:
        proxy = faultproxy.FaultProxy(AUTH.endpoint, seed=1, **kw).start()
        self.addCleanup(proxy.stop)
        return proxy

    def assert_s3_error(self, kind, status, code, message):
        proxy = self.proxy(**{kind: 1.0})
        got_status, headers, body = raw(proxy.url, "GET", "/some-bucket/some-key")
        self.assertEqual(got_status, status)
        root = ET.fromstring(body)
        self.assertEqual(root.tag, "Error")
        self.assertEqual(root.findtext("Code"), code)
        self.assertEqual(root.findtext("Message"), message)
        self.assertTrue(root.findtext("RequestId"))
        self.assertEqual(headers["content-type"], "application/xml")
        self.assertEqual(headers["x-amz-request-id"], root.findtext("RequestId"))
        self.assertAlmostEqual(date_of(headers), time.time(), delta=5)
        s3 = AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY)
        self.assertEqual(error_of(s3.list_buckets)[:2], (status, code))
        self.assertEqual(proxy.stats()["faults"][kind], 2)
        self.assertEqual(proxy.stats()["forwarded"], 0)

    def assert_ddb_error(self, kind, status, type_name):
        proxy = self.proxy(**{kind: 1.0})
        got_status, headers, body = raw(proxy.url, "POST", "/", ddb_headers(), b"{}")
        self.assertEqual(got_status, status)
        doc = json.loads(body)
        self.assertEqual(doc["__type"], "com.amazonaws.dynamodb.v20120810#" + type_name)
        self.assertTrue(doc["message"])
        self.assertTrue(headers["x-amzn-requestid"])
        self.assertEqual(int(headers["x-amz-crc32"]), zlib.crc32(body))
        self.assertEqual(headers["content-type"], "application/x-amz-json-1.0")
        self.assertAlmostEqual(date_of(headers), time.time(), delta=5)
        ddb = AUTH.client("dynamodb", endpoint=proxy.url, retries=ONE_TRY)
        self.assertEqual(error_of(ddb.list_tables)[:2], (status, type_name))
        # The DynamoDB kinds never touch S3 requests.
        AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY).list_buckets()
        self.assertEqual(proxy.stats()["faults"][kind], 2)

    def test_s3_500(self):
        self.assert_s3_error("s3_500", 500, "InternalError",
                             "We encountered an internal error. Please try again.")

    def test_s3_503(self):
        self.assert_s3_error("s3_503", 503, "SlowDown", "Please reduce your request rate.")

    def test_ddb_throttle(self):
        self.assert_ddb_error("ddb_throttle", 400, "ProvisionedThroughputExceededException")

    def test_ddb_throttling(self):
        self.assert_ddb_error("ddb_throttling", 400, "ThrottlingException")

    def test_ddb_500(self):
        self.assert_ddb_error("ddb_500", 500, "InternalServerError")

    def test_s3_kinds_spare_dynamodb(self):
        proxy = self.proxy(s3_500=1.0, s3_503=0.0)
        AUTH.client("dynamodb", endpoint=proxy.url, retries=ONE_TRY).list_tables()
        self.assertEqual(proxy.stats()["faults_total"], 0)

    def test_reset(self):
        proxy = self.proxy(reset=1.0)
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)):
            raw(proxy.url, "PUT", "/b/k", body=b"x" * 1000)
        s3 = AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY)
        with self.assertRaises((ConnectionClosedError, EndpointConnectionError)):
            s3.list_buckets()
        self.assertEqual(proxy.stats()["faults"]["reset"], 2)

    def test_slow(self):
        proxy = self.proxy(slow=1.0, slow_ms=300)
        t0 = time.monotonic()
        AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY).list_buckets()
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.assertEqual(proxy.stats()["faults"]["slow"], 1)
        self.assertEqual(proxy.stats()["forwarded"], 1)

    def test_fault_on_expect_continue_upload(self):
        proxy = self.proxy(s3_503=1.0)
        s3 = AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY)
        status, code, _ = error_of(s3.put_object, Bucket="any-bucket", Key="k",
                                   Body=io.BytesIO(b"z" * 100_000))
        self.assertEqual((status, code), (503, "SlowDown"))
        self.assertTrue(proxy.log()[-1]["expect"])

    def test_max_faults_bounds_the_total(self):
        proxy = self.proxy(s3_500=1.0, max_faults=2)
        s3 = AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY)
        self.assertEqual(error_of(s3.list_buckets)[1], "InternalError")
        self.assertEqual(error_of(s3.list_buckets)[1], "InternalError")
        s3.list_buckets()
        self.assertEqual(proxy.stats()["faults_total"], 2)

    def test_same_seed_same_faults(self):
        def run() -> list:
            with faultproxy.FaultProxy(NOAUTH.endpoint, seed=42, s3_500=0.3,
                                       s3_503=0.2) as proxy:
                for _ in range(20):
                    raw(proxy.url, "GET", "/")
                return [e["fault"] for e in proxy.log()]
        first = run()
        self.assertEqual(first, run())
        self.assertTrue(any(first) and not all(first), first)

    def test_bad_shares_are_rejected(self):
        with self.assertRaises(ValueError):
            faultproxy.FaultProxy(AUTH.endpoint, s3_500=0.6, s3_503=0.6)
        with self.assertRaises(ValueError):
            faultproxy.FaultProxy(AUTH.endpoint, slow=1.5)


# --------------------------------------------------------------------------
# fault proxy: clock skew
# --------------------------------------------------------------------------

_AMZ = r"(\d{8}T\d{6}Z)"


class ProxyClockSkewTest(unittest.TestCase):
    def proxy(self, offset: float) -> faultproxy.FaultProxy:
        proxy = faultproxy.FaultProxy(AUTH.endpoint, clock_offset_s=offset).start()
        self.addCleanup(proxy.stop)
        return proxy

    def test_s3_request_too_skewed(self):
        proxy = self.proxy(1200)
        s3 = AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY)
        status, code, resp = error_of(s3.list_buckets)
        self.assertEqual((status, code), (403, "RequestTimeTooSkewed"))
        headers = resp["ResponseMetadata"]["HTTPHeaders"]
        self.assertAlmostEqual(date_of(headers), time.time() + 1200, delta=5)
        self.assertEqual(proxy.stats()["skewed"], 1)

    def test_s3_error_body(self):
        proxy = self.proxy(1200)
        sent = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        status, headers, body = raw(proxy.url, "GET", "/", {"X-Amz-Date": sent})
        self.assertEqual(status, 403)
        root = ET.fromstring(body)
        self.assertEqual(root.findtext("Code"), "RequestTimeTooSkewed")
        self.assertEqual(root.findtext("Message"), "The difference between the request "
                         "time and the current time is too large.")
        self.assertEqual(root.findtext("RequestTime"), sent)
        self.assertRegex(root.findtext("ServerTime"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(root.findtext("MaxAllowedSkewMilliseconds"), "900000")
        self.assertRegex(headers["date"], r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")

    def test_date_header_is_checked_without_x_amz_date(self):
        proxy = self.proxy(0)
        old = email.utils.formatdate(time.time() - 1000, usegmt=True)
        status, _, body = raw(proxy.url, "GET", "/", {"Date": old})
        self.assertEqual(status, 403)
        self.assertEqual(ET.fromstring(body).findtext("Code"), "RequestTimeTooSkewed")

    def test_skewed_upload_refused_before_body(self):
        proxy = self.proxy(1200)
        s3 = AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY)
        bucket = AUTH.bucket()
        t0 = time.monotonic()
        status, code, _ = error_of(s3.put_object, Bucket=bucket, Key="k",
                                   Body=io.BytesIO(os.urandom(4 * 1024 * 1024)))
        self.assertEqual((status, code), (403, "RequestTimeTooSkewed"))
        self.assertLess(time.monotonic() - t0, 5)
        self.assertTrue(proxy.log()[-1]["expect"])
        self.assertEqual(error_of(AUTH.s3().head_object, Bucket=bucket, Key="k")[0], 404)

    def test_dynamodb_signature_expired(self):
        proxy = self.proxy(1200)
        ddb = AUTH.client("dynamodb", endpoint=proxy.url, retries=ONE_TRY)
        status, code, resp = error_of(ddb.list_tables)
        self.assertEqual((status, code), (400, "InvalidSignatureException"))
        match = re.fullmatch(rf"Signature expired: {_AMZ} is now earlier than {_AMZ} "
                             rf"\({_AMZ} - 15 min\.\)", resp["Error"]["Message"])
        self.assertIsNotNone(match, resp["Error"]["Message"])
        req, limit, now = (self._ts(g) for g in match.groups())
        self.assertEqual(now - limit, 900)
        self.assertAlmostEqual(now - req, 1200, delta=5)
        self.assertIn("date", resp["ResponseMetadata"]["HTTPHeaders"])

    def test_dynamodb_signature_not_yet_current(self):
        proxy = self.proxy(-1200)
        status, _, body = raw(proxy.url, "POST", "/",
                              dict(ddb_headers(), **{"X-Amz-Date": time.strftime(
                                  "%Y%m%dT%H%M%SZ", time.gmtime())}), b"{}")
        self.assertEqual(status, 400)
        doc = json.loads(body)
        self.assertEqual(doc["__type"], "com.amazon.coral.service#InvalidSignatureException")
        self.assertRegex(doc["message"], rf"^Signature not yet current: {_AMZ} is still "
                         rf"later than {_AMZ} \({_AMZ} \+ 15 min\.\)$")

    def test_within_15_minutes_passes_and_date_follows_proxy_clock(self):
        proxy = self.proxy(600)
        resp = AUTH.client("s3", endpoint=proxy.url, retries=ONE_TRY).list_buckets()
        headers = resp["ResponseMetadata"]["HTTPHeaders"]
        self.assertAlmostEqual(date_of(headers), time.time() + 600, delta=5)
        self.assertEqual(proxy.stats()["skewed"], 0)

    @staticmethod
    def _ts(amz: str) -> float:
        return time.mktime(time.strptime(amz, "%Y%m%dT%H%M%SZ"))


# --------------------------------------------------------------------------
# fault proxy: boto3's retries survive a 20 % fault rate
# --------------------------------------------------------------------------

class ProxyMixedFaultsTest(unittest.TestCase):
    def test_boto3_completes_50_requests_at_20_percent_faults(self):
        bucket, table = AUTH.bucket(), AUTH.table()
        shares = dict(s3_500=0.05, s3_503=0.05, ddb_throttle=0.05, ddb_throttling=0.03,
                      ddb_500=0.02, reset=0.05, slow=0.05)
        retries = {"mode": "standard", "total_max_attempts": 10}
        with faultproxy.FaultProxy(AUTH.endpoint, seed=2026, slow_ms=50,
                                   **shares) as proxy:
            s3 = AUTH.client("s3", endpoint=proxy.url, retries=retries)
            ddb = AUTH.client("dynamodb", endpoint=proxy.url, retries=retries)
            bodies = {f"img-{i}.jpg": os.urandom(1000 + i) for i in range(13)}
            for key, body in bodies.items():                                  # 13
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            for key in list(bodies)[:12]:                                      # 12
                got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                self.assertEqual(sha256(got), sha256(bodies[key]))
            for key, body in bodies.items():                                  # 13
                ddb.put_item(TableName=table, Item={"FileName": {"S": key},
                                                    "Sha256": {"S": sha256(body)}})
            for key in list(bodies)[:12]:                                      # 12
                item = ddb.get_item(TableName=table, Key={"FileName": {"S": key}})["Item"]
                self.assertEqual(item["Sha256"]["S"], sha256(bodies[key]))
            stats = proxy.stats()
        sys.stderr.write(f"\n  50 ops -> {stats['requests']} requests, "
                         f"faults {stats['faults']} ")
        self.assertGreater(stats["faults_total"], 0)
        self.assertGreaterEqual(stats["requests"], 50 + stats["faults_total"]
                                - stats["faults"]["slow"])


# --------------------------------------------------------------------------
# npm emulators
# --------------------------------------------------------------------------

class CompatServersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            testbed.ensure_npm_packages()
        except testbed.NpmUnavailable as exc:
            if exc.registry_unreachable:
                raise unittest.SkipTest(f"npm registry unreachable, s3rver/dynalite "
                                        f"not installed: {exc}")
            raise

    def test_s3rver_put_get(self):
        t0 = time.monotonic()
        with testbed.S3rver() as bed:
            TIMINGS["s3rver 3.7.1"] = time.monotonic() - t0
            bucket = bed.bucket()
            body = os.urandom(300_000)
            bed.s3().put_object(Bucket=bucket, Key="a/b c.jpg", Body=body)
            got = bed.s3().get_object(Bucket=bucket, Key="a/b c.jpg")["Body"].read()
            self.assertEqual(sha256(got), sha256(body))
            other = bed.client("s3", ("AKIAOTHER", "other"), retries=ONE_TRY)
            self.assertEqual(error_of(other.list_buckets)[0], 403)

    def test_dynalite_put_get(self):
        t0 = time.monotonic()
        with testbed.Dynalite() as bed:
            TIMINGS["dynalite 4.0.0"] = time.monotonic() - t0
            table = bed.table()
            ddb = bed.dynamodb()
            ddb.put_item(TableName=table, Item={"FileName": {"S": "x.jpg"},
                                                "Size": {"N": "12"}})
            item = ddb.get_item(TableName=table, Key={"FileName": {"S": "x.jpg"}})["Item"]
            self.assertEqual(item["Size"]["N"], "12")


# --------------------------------------------------------------------------
# start-up times and the serve CLI
# --------------------------------------------------------------------------

class StartupTest(unittest.TestCase):
    def test_moto_startup_times(self):
        for auth in (True, False):
            t0 = time.monotonic()
            with testbed.Moto(auth=auth) as bed:
                total = time.monotonic() - t0
                name = "moto auth" if auth else "moto no-auth"
                TIMINGS[f"{name} (process ready)"] = bed.startup_s
                TIMINGS[f"{name} (incl. bootstrap)"] = total
                self.assertTrue(bed.server.alive())
                port = bed.port
            self.assertTrue(port_closed(port))


    def test_bootstrap_needs_exactly_three_free_actions(self):
        # 2: CreateAccessKey is already checked and refused; 4: one unchecked
        # request would remain, which Moto.start() detects and refuses.
        original = testbed.BOOTSTRAP_ACTIONS
        self.addCleanup(setattr, testbed, "BOOTSTRAP_ACTIONS", original)
        testbed.BOOTSTRAP_ACTIONS = 2
        with self.assertRaises(ClientError):
            testbed.Moto()
        testbed.BOOTSTRAP_ACTIONS = 4
        with self.assertRaisesRegex(testbed.TestbedError, "auth is not on"):
            testbed.Moto()


class ServeCliTest(unittest.TestCase):
    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testbed.py")

    def start_serve(self, *extra) -> tuple[subprocess.Popen, dict]:
        tmp = tempfile.mkdtemp(prefix="imgsync-serve-")
        self.addCleanup(shutil.rmtree, tmp, True)
        env_file = os.path.join(tmp, "env")
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSYNC_TEST_")}
        proc = subprocess.Popen([sys.executable, self.SCRIPT, "serve", "--env-file",
                                 env_file, *extra], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(self._reap, proc)
        deadline = time.monotonic() + 60
        while not os.path.exists(env_file) and time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "serve exited early")
            time.sleep(0.1)
        self.assertTrue(os.path.exists(env_file), "serve never wrote the env file")
        values = {}
        with open(env_file) as fh:
            for line in fh:
                name, _, value = line.removeprefix("export ").strip().partition("=")
                values[name] = shlex.split(value)[0]
        values["_file"] = env_file
        return proc, values

    @staticmethod
    def _reap(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()

    def test_serve_exports_working_servers_and_stops_on_sigterm(self):
        proc, env = self.start_serve()
        bed = testbed.Bed(env[testbed.ENV_URL], (env[testbed.ENV_ADMIN_KEY],
                                                 env[testbed.ENV_ADMIN_SECRET]))
        bed.s3().list_buckets()
        self.assertIn(raw(bed.endpoint, "GET", "/")[0], (403, 500))
        self.assertEqual(raw(env[testbed.ENV_NOAUTH_URL], "GET", "/")[0], 200)
        ports = [int(env[v].rsplit(":", 1)[1])
                 for v in (testbed.ENV_URL, testbed.ENV_NOAUTH_URL)]
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0)
        for port in ports:
            self.assertTrue(port_closed(port), f"port {port} still open")
        self.assertFalse(os.path.exists(env["_file"]), "env file left behind")

    def test_sigkilled_serve_leaves_no_orphans(self):
        proc, env = self.start_serve("--no-noauth")
        self.assertNotIn(testbed.ENV_NOAUTH_URL, env)
        port = int(env[testbed.ENV_URL].rsplit(":", 1)[1])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.assertTrue(port_closed(port), "moto outlived a SIGKILLed serve")
        # A SIGKILLed serve cannot tidy up: remove moto's temp dir ourselves.
        shutil.rmtree(os.path.dirname(env[testbed.ENV_LOG]), ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
