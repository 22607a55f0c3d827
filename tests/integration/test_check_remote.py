"""imgsyncd --check-remote against moto with SigV4 and IAM enforced.

Users get packaging/iam-policy.json with the placeholders filled in: the real
bucket ARN for S3, but ``*`` as the DynamoDB resource, because moto 5.2.1
matches S3 resource ARNs and not DynamoDB table ARNs (DESIGN.md section 7:
a table ARN in a moto policy denies everything). Every result is read back
with boto3 as the admin, never with our own client.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import testbed
from common import BIN, FULL_POLICY
from faultproxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
POLICY_PATH = REPO / "packaging" / "iam-policy.json"

EX_UNAVAILABLE = 69
EX_NOPERM = 77
EX_CONFIG = 78

#: What the daemon calls, and nothing else (see the report of issue 5):
#: PutObject (uploads, multipart, summary.json, copy target), GetObject (copy
#: source), DeleteObject, AbortMultipartUpload (a failed multipart upload);
#: PutItem, DeleteItem, GetItem (/getitem), Scan (/getall), DescribeTable
#: (--check-remote's key schema check).
EXPECTED_ACTIONS = {
    "s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
    "dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:GetItem",
    "dynamodb:DeleteItem", "dynamodb:Scan",
    # Only with thumbnails.enabled (the item names its thumbnail)
    "dynamodb:UpdateItem",
    # Only with s3.sse = "aws:kms" (S3 asks KMS with the uploader's rights)
    "kms:GenerateDataKey", "kms:Decrypt",
}
#: What --check-remote probes with no s3.sse (and no thumbnails).
PLAIN_ACTIONS = {a for a in EXPECTED_ACTIONS
                 if not a.startswith("kms:") and a != "dynamodb:UpdateItem"}

CHECK_TIMEOUT_S = 90


def load_policy() -> dict:
    return json.loads(POLICY_PATH.read_text())


def policy_actions(policy: dict) -> list[str]:
    out = []
    for st in policy["Statement"]:
        acts = st["Action"]
        out.extend([acts] if isinstance(acts, str) else acts)
    return out


def moto_policy(bucket: str, without: str | None = None) -> dict:
    """iam-policy.json for this bucket; DynamoDB resource '*' (moto matches
    no table ARN); optionally without one action."""
    policy = copy.deepcopy(load_policy())
    for st in policy["Statement"]:
        res = st["Resource"]
        res = [res] if isinstance(res, str) else res
        if any(r.startswith(("arn:aws:dynamodb:", "arn:aws:kms:")) for r in res):
            st["Resource"] = "*"
        else:
            st["Resource"] = [r.replace("BUCKET", bucket) for r in res]
        acts = st["Action"]
        acts = [acts] if isinstance(acts, str) else acts
        st["Action"] = [a for a in acts if a != without]
    policy["Statement"] = [st for st in policy["Statement"] if st["Action"]]
    return policy


def env() -> dict:
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("AWS_"):
            e.pop(k)
    e["AWS_EC2_METADATA_DISABLED"] = "true"
    return e


class CheckRemote(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.auth_bed()
        cls.bucket = cls.bed.bucket()
        cls.table = cls.bed.table()
        cls.keys = cls.bed.user(moto_policy(cls.bucket))
        cls.tmp = tempfile.TemporaryDirectory(prefix="imgsync-check-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # ---- helpers --------------------------------------------------------

    def conf(self, *, keys=None, bucket=None, table=None, s3_endpoint=None,
             ddb_endpoint=None, ddb_region="", prefix="") -> Path:
        keys = keys or self.keys
        d = Path(tempfile.mkdtemp(dir=self.tmp.name))
        (d / "images").mkdir()
        conf = d / "imgsync.conf"
        conf.write_text(f"""
watch: {{ root = "{d / 'images'}"; }};
s3: {{ bucket = "{bucket or self.bucket}"; prefix = "{prefix}"; region = "us-east-1";
       endpoint = "{s3_endpoint or self.bed.endpoint}"; path_style = true; }};
dynamodb: {{ table = "{table or self.table}"; region = "{ddb_region}";
             endpoint = "{ddb_endpoint or self.bed.endpoint}"; }};
credentials: {{ access_key_id = "{keys[0]}"; secret_access_key = "{keys[1]}"; }};
sync: {{ source = "imgsync@check-test"; max_retry_delay_ms = 1000; }};
state: {{ path = "{d / 'state.db'}"; }};
control: {{ socket = "{d / 'imgsync.sock'}"; trash = "{d / 'trash'}"; }};
log: {{ level = "info"; }};
""")
        return conf

    def check(self, conf: Path) -> tuple[int, str, float]:
        t0 = time.monotonic()
        proc = subprocess.run([str(BIN / "imgsyncd"), "--check-remote", "-c", str(conf)],
                              capture_output=True, text=True, env=env(),
                              timeout=CHECK_TIMEOUT_S)
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0

    def probe_objects(self, bucket=None) -> list[str]:
        s3 = self.bed.s3()
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket or self.bucket):
            keys += [o["Key"] for o in page.get("Contents", []) if "imgsync-probe" in o["Key"]]
        return keys

    def probe_items(self, table=None) -> list[str]:
        names = []
        for page in self.bed.dynamodb().get_paginator("scan").paginate(
                TableName=table or self.table):
            names += [i["FileName"]["S"] for i in page["Items"]
                      if "imgsync-probe" in i["FileName"]["S"]]
        return names

    def remove_probes(self):
        for k in self.probe_objects():
            self.bed.s3().delete_object(Bucket=self.bucket, Key=k)
        for k in self.probe_items():
            self.bed.dynamodb().delete_item(TableName=self.table,
                                            Key={"FileName": {"S": k}})

    @staticmethod
    def lines(out: str, status: str) -> list[str]:
        return [l for l in out.splitlines() if l.startswith(status + " ")]

    # ---- the policy file ---------------------------------------------------

    def test_policy_is_exact_and_least_privilege(self):
        policy = load_policy()
        self.assertEqual(policy["Version"], "2012-10-17")
        acts = policy_actions(policy)
        self.assertEqual(len(acts), len(set(acts)), acts)
        self.assertEqual(set(acts), EXPECTED_ACTIONS)
        for st in policy["Statement"]:
            self.assertEqual(st["Effect"], "Allow")
            res = st["Resource"]
            res = [res] if isinstance(res, str) else res
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            self.assertTrue(all("*" not in a for a in acts), acts)
            if all(a.startswith("s3:") for a in acts):
                self.assertEqual(res, ["arn:aws:s3:::BUCKET/*"])
            elif all(a.startswith("kms:") for a in acts):
                self.assertEqual(st["Sid"], "OnlyWithSseKms")
                self.assertEqual(res, ["arn:aws:kms:REGION:ACCOUNT:key/KEY_ID"])
            else:
                self.assertTrue(all(a.startswith("dynamodb:") for a in acts), acts)
                self.assertEqual(res, ["arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE"])

    # ---- everything allowed ---------------------------------------------

    def test_policy_passes_every_check_and_leaves_nothing(self):
        for prefix in ("", "host-a/"):
            with self.subTest(prefix=prefix):
                rc, out, _ = self.check(self.conf(prefix=prefix))
                self.assertEqual(rc, 0, out)
                self.assertEqual(self.lines(out, "FAIL"), [], out)
                self.assertEqual(self.lines(out, "skip"), [], out)
                ok = self.lines(out, "ok")
                named = {l.split()[1] for l in ok}
                self.assertTrue(PLAIN_ACTIONS <= named, (named, out))
                # a delete with another ETag was refused (412), as the
                # daemon's deletes need
                self.assertRegex(out, r"(?m)^info +s3 conditional delete .*honoured")
                self.assertIn("key schema", out)
                self.assertIn(f"arn:aws:s3:::{self.bucket}/{prefix}.imgsync-probe-", out)
                self.assertRegex(out, r"arn:aws:dynamodb:us-east-1:\d{12}:table/" + self.table)
                self.assertIn("result: all", out)
                self.assertEqual(self.probe_objects(), [])
                self.assertEqual(self.probe_items(), [])
                self.assertFalse(any(k.startswith(prefix + ".imgsync-probe") for k in
                                     self.probe_objects()))

    # ---- bucket versioning (advice, never a failure) -------------------

    def test_versioning_is_reported(self):
        from common import FULL_POLICY
        full = self.bed.user(FULL_POLICY)
        bucket = self.bed.bucket()
        rc, out, _ = self.check(self.conf(keys=full, bucket=bucket))
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^note +s3 versioning +arn:aws:s3:::" + bucket +
                         " : off: a delete cannot be undone")
        self.bed.s3().put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        rc, out, _ = self.check(self.conf(keys=full, bucket=bucket))
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^info +s3 versioning +arn:aws:s3:::" + bucket + " : on")
        # The least-privilege policy need not allow it: said, not failed.
        rc, out, _ = self.check(self.conf())
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^note +s3 versioning .*cannot tell")

    # ---- one action missing ---------------------------------------------

    def test_each_missing_action_is_named(self):
        # The KMS actions matter only with s3.sse = "aws:kms":
        # test_s3_options checks those.
        for action in sorted(PLAIN_ACTIONS):
            with self.subTest(action=action):
                keys = self.bed.user(moto_policy(self.bucket, without=action))
                try:
                    rc, out, _ = self.check(self.conf(keys=keys))
                    self.assertEqual(rc, EX_NOPERM, out)
                    fails = self.lines(out, "FAIL")
                    self.assertTrue(fails, out)
                    # the missing action fails, nothing else does
                    self.assertEqual({l.split()[1] for l in fails}, {action}, out)
                    resource = (f"arn:aws:s3:::{self.bucket}/" if action.startswith("s3:")
                                else f":table/{self.table}")
                    self.assertTrue(any(resource in l and "access denied" in l
                                        for l in fails), out)
                    missing = [l for l in out.splitlines()
                               if l.startswith("missing IAM actions:")]
                    self.assertEqual(len(missing), 1, out)
                    self.assertIn(action, missing[0])
                    others = PLAIN_ACTIONS - {action}
                    self.assertFalse(any(a + " " in missing[0] for a in others), out)
                    # what could be removed was removed; what not is named
                    if action == "s3:DeleteObject":
                        self.assertTrue(self.probe_objects(), out)
                        self.assertIn("note: the probe object", out)
                    else:
                        self.assertEqual(self.probe_objects(), [], out)
                    if action == "dynamodb:DeleteItem":
                        self.assertTrue(self.probe_items(), out)
                        self.assertIn("note: the probe item", out)
                    else:
                        self.assertEqual(self.probe_items(), [], out)
                finally:
                    self.remove_probes()

    # ---- misconfiguration, each with its own message --------------------

    def test_wrong_bucket(self):
        # a user whose policy covers every bucket learns that it is missing
        keys = self.bed.user(FULL_POLICY)
        rc, out, _ = self.check(self.conf(keys=keys, bucket="imgsync-no-such-bucket"))
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn("the bucket imgsync-no-such-bucket does not exist", out)
        self.assertIn("check s3.bucket", out)
        self.assertNotIn("access denied", out)
        self.assertRegex(out, r"(?m)^skip +s3:GetObject ")
        # the table is still checked
        self.assertRegex(out, r"(?m)^ok +dynamodb:Scan ")
        self.assertEqual(self.probe_items(), [])

    def test_bucket_outside_the_policy(self):
        # with iam-policy.json, as on AWS, another bucket is AccessDenied:
        # the output says the bucket name may be the mistake
        bucket = self.bed.bucket()
        rc, out, _ = self.check(self.conf(bucket=bucket))
        self.assertEqual(rc, EX_NOPERM, out)
        self.assertEqual({l.split()[1] for l in self.lines(out, "FAIL")},
                         {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}, out)
        self.assertIn(f'note: every S3 call was denied: if the policy does allow these '
                      f'actions on arn:aws:s3:::{bucket}/*, check s3.bucket ("{bucket}")', out)
        self.assertNotIn("every DynamoDB call", out)
        self.assertEqual(self.probe_objects(bucket), [])

    def test_wrong_table(self):
        rc, out, _ = self.check(self.conf(table="imgsync_no_such_table"))
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn("the table imgsync_no_such_table does not exist in the region us-east-1",
                      out)
        self.assertIn("check dynamodb.table", out)
        self.assertRegex(out, r"(?m)^skip +dynamodb:PutItem ")
        self.assertRegex(out, r"(?m)^ok +s3:PutObject ")
        self.assertEqual(self.probe_objects(), [])

    def test_table_in_another_region(self):
        # moto keeps one DynamoDB per region, as AWS does
        rc, out, _ = self.check(self.conf(ddb_region="eu-west-1"))
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn(f"the table {self.table} does not exist in the region eu-west-1", out)
        self.assertIn("dynamodb.region", out)

    def test_wrong_key_schema(self):
        ddb = self.bed.dynamodb()
        name = testbed.unique_name("imgsync_badkey")
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"},
                                    {"AttributeName": "Ts", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "N"},
                                               {"AttributeName": "Ts", "AttributeType": "S"}])
        rc, out, _ = self.check(self.conf(table=name))
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertRegex(out, r"(?m)^FAIL +key schema .*Id \(N, HASH\) \+ Ts \(S, RANGE\)")
        self.assertIn("FileName", out)
        self.assertEqual(ddb.scan(TableName=name)["Items"], [])

    def test_dead_endpoint(self):
        port = testbed.free_port()  # closed: nothing listens there
        url = f"http://127.0.0.1:{port}"
        rc, out, secs = self.check(self.conf(s3_endpoint=url, ddb_endpoint=url))
        self.assertEqual(rc, EX_UNAVAILABLE, out)
        self.assertIn(f"nothing accepts connections at the endpoint {url}", out)
        self.assertIn("check s3.endpoint", out)
        self.assertIn("check dynamodb.endpoint", out)
        self.assertLess(secs, 30, out)
        self.assertRegex(out, r"(?m)^skip +s3:DeleteObject ")

    def test_wrong_secret(self):
        rc, out, _ = self.check(self.conf(keys=(self.keys[0], "x" * 40)))
        self.assertEqual(rc, EX_NOPERM, out)
        self.assertIn("the server rejects the credentials", out)
        self.assertIn("SignatureDoesNotMatch", out)
        self.assertNotIn("access denied", out)
        self.assertEqual(len(self.lines(out, "FAIL")), 2, out)  # one per service

    def test_unknown_access_key(self):
        rc, out, _ = self.check(self.conf(keys=("AKIAIMGSYNCUNKNOWN00", "x" * 40)))
        self.assertEqual(rc, EX_NOPERM, out)
        self.assertIn("the server rejects the credentials", out)
        self.assertIn("InvalidAccessKeyId", out)
        self.assertIn("InvalidClientTokenId", out)

    def test_clock_far_off(self):
        # moto never checks the time: the proxy in front of it does, as AWS
        # does (15 minutes), and is 20 minutes ahead of us.
        proxy = FaultProxy(self.bed.endpoint, clock_offset_s=1200).start()
        self.addCleanup(proxy.stop)
        rc, out, _ = self.check(self.conf(s3_endpoint=proxy.url, ddb_endpoint=proxy.url))
        self.assertEqual(rc, EX_CONFIG, out)
        m = re.search(r"(?m)^FAIL +clock .*the local clock is (\d+) s behind", out)
        self.assertIsNotNone(m, out)
        self.assertAlmostEqual(int(m.group(1)), 1200, delta=5)
        self.assertIn("NTP", out)
        self.assertGreaterEqual(proxy.stats()["skewed"], 1)
        # corrected, so every permission was still checked
        self.assertEqual([l.split()[1] for l in self.lines(out, "FAIL")], ["clock"], out)
        self.assertEqual(self.probe_objects(), [])
        self.assertEqual(self.probe_items(), [])


if __name__ == "__main__":
    unittest.main()
