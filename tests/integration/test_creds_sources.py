"""The rest of the SDKs' credential chain (issue 12), against moto with
SigV4 and IAM enforced and its STS on the same port: a profile that assumes
a role (source_profile, credential_source = Environment), web identity
(the environment's variables and a profile's web_identity_token_file),
credential_process (a script written here), short-lived credentials
refreshed through a 2,000-file burst, a process that hangs, fails or
prints nonsense, and --check-remote on a role the source may not assume.

The daemon walks the chain: its configuration names only the profile;
the shared files live in the test's folder (AWS_CONFIG_FILE,
AWS_SHARED_CREDENTIALS_FILE), STS is reached through AWS_ENDPOINT_URL_STS.
Everything it wrote is read back with boto3 as moto's admin.

moto 5.2.1 facts (seen here): assumed-role credentials are checked against
the role's policy, not the source user's; AssumeRole checks the caller's
sts:AssumeRole permission but not the role's trust policy;
AssumeRoleWithWebIdentity accepts any token; DurationSeconds is not
bounded below (60 s is accepted, AWS's minimum is 900); expired
credentials are still accepted, so a refresh is proven by counting the
credential sources' answers, not by a server refusing old keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import unittest

import testbed
from common import BIN, FULL_POLICY
from daemon import Daemon, wait_until
from images import make

SOURCE_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
FULL_AND_ASSUME = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:*", "dynamodb:*", "sts:AssumeRole"],
     "Resource": "*"}]}
S3_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"},
     "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]}]}


class CredsSources(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.bed = testbed.auth_bed()

    def role(self, policy, bed=None) -> str:
        iam = (bed or self.bed).iam()
        name = testbed.unique_name("imgsync-role")
        arn = iam.create_role(RoleName=name,
                              AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName=f"{name}-p",
                            PolicyDocument=json.dumps(policy))
        return arn

    def daemon(self, config: str = "", credentials: str = "",
               profile: str | None = "deploy", env=None, extra_conf="",
               bed=None) -> Daemon:
        """A daemon with no keys in its configuration: the chain finds them."""
        bed = bed or self.bed
        d = Daemon(bed, creds=("unused", "unused"))
        self.addCleanup(d.close)
        text = d.conf_text()
        cred_line = [l for l in text.splitlines() if l.startswith("credentials:")][0]
        new = (f'credentials: {{ profile = "{profile}"; {extra_conf} }};'
               if profile else f"credentials: {{ {extra_conf} }};")
        d.write_conf(text.replace(cred_line, new))
        (d.dir / "config").write_text(config)
        (d.dir / "credentials").write_text(credentials)
        d.extra_env.update({
            "AWS_CONFIG_FILE": str(d.dir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(d.dir / "credentials"),
            "AWS_ENDPOINT_URL_STS": bed.endpoint,
            "AWS_REGION": "us-east-1",
        })
        d.extra_env.update(env or {})
        return d

    def put(self, d: Daemon, n: int = 3, prefix: str = "f") -> dict:
        files = {}
        for i in range(n):
            rel = f"{prefix}{i}.png"
            data, _ = make(rel, 2, 2, rel.encode())
            (d.root / rel).write_bytes(data)
            files[rel] = data
        return files

    def assert_denied_for(self, keys):
        """These keys alone may not write the bucket."""
        s3 = self.bed.client("s3", creds=keys)
        with self.assertRaises(Exception) as cm:
            s3.put_object(Bucket="any-bucket-name", Key="x", Body=b"x")
        self.assertIn("AccessDenied", str(cm.exception))

    # ---- assume role --------------------------------------------------

    def test_assume_role_with_source_profile(self):
        src = self.bed.user(SOURCE_ONLY)
        self.assert_denied_for(src)
        arn = self.role(FULL_POLICY)
        d = self.daemon(
            config=f"[profile deploy]\nrole_arn = {arn}\nsource_profile = src\n"
                   "role_session_name = imgsync-test\nexternal_id = ext-42\n",
            credentials=f"[src]\naws_access_key_id = {src[0]}\n"
                        f"aws_secret_access_key = {src[1]}\n")
        files = self.put(d)
        self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
        d.wait_mirror(30, local=files)
        self.assertNotIn(src[1], d.log())

    def test_assume_role_with_credential_source_environment(self):
        src = self.bed.user(SOURCE_ONLY)
        arn = self.role(FULL_POLICY)
        d = self.daemon(
            config=f"[profile deploy]\nrole_arn = {arn}\n"
                   "credential_source = Environment\n",
            env={"AWS_ACCESS_KEY_ID": src[0], "AWS_SECRET_ACCESS_KEY": src[1]})
        files = self.put(d)
        self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
        d.wait_mirror(30, local=files)

    def test_the_roles_policy_is_what_counts(self):
        # The role may write S3 but not DynamoDB: every item is refused,
        # though the source (or the admin) could have.
        src = self.bed.user(FULL_AND_ASSUME)
        arn = self.role(S3_ONLY)
        d = self.daemon(
            config=f"[profile deploy]\nrole_arn = {arn}\nsource_profile = src\n",
            credentials=f"[src]\naws_access_key_id = {src[0]}\n"
                        f"aws_secret_access_key = {src[1]}\n")
        self.put(d, 2)
        self.assertEqual(d.once(120).returncode, 1, d.log()[-3000:])
        self.assertIn("AccessDenied", d.log())
        self.assertEqual(d.remote_items(), {})
        self.assertEqual(sorted(d.remote_objects()), ["f0.png", "f1.png"])

    def test_check_remote_names_a_refused_role(self):
        src = self.bed.user(S3_ONLY)  # no sts:AssumeRole
        arn = self.role(FULL_POLICY)
        d = self.daemon(
            config=f"[profile deploy]\nrole_arn = {arn}\nsource_profile = src\n",
            credentials=f"[src]\naws_access_key_id = {src[0]}\n"
                        f"aws_secret_access_key = {src[1]}\n")
        p = subprocess.run([str(BIN / "imgsyncd"), "--check-remote", "-c", str(d.conf)],
                           capture_output=True, text=True, timeout=120, env=d.env())
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 77, out)
        self.assertIn(f"assuming {arn} (profile \"deploy\", source_profile \"src\")", out)
        self.assertIn("refused: STS answered HTTP 403 AccessDenied", out)
        self.assertNotIn(src[1], out)

    # ---- web identity -------------------------------------------------

    def test_web_identity_from_the_environment_and_a_profile(self):
        # moto with IAM enforced answers an unsigned request (as
        # AssumeRoleWithWebIdentity is, on AWS too) with a 500: its checker
        # wants an Authorization header. So web identity runs against the
        # bed's moto without checks: the exchange and the use of what it
        # gives, not the role's policy (the assume-role tests prove that).
        bed = testbed.noauth_bed()
        arn = self.role(FULL_POLICY, bed=bed)
        for form in ("env", "profile"):
            with self.subTest(form=form):
                token = "eyJhbGciOi.test-token-%s" % form
                if form == "env":
                    d = self.daemon(profile=None, bed=bed)
                    d.extra_env.update({"AWS_WEB_IDENTITY_TOKEN_FILE": str(d.dir / "token"),
                                        "AWS_ROLE_ARN": arn,
                                        "AWS_ROLE_SESSION_NAME": "pod-1"})
                else:
                    d = self.daemon(bed=bed)
                    (d.dir / "config").write_text(
                        f"[profile deploy]\nrole_arn = {arn}\n"
                        f"web_identity_token_file = {d.dir / 'token'}\n")
                (d.dir / "token").write_text(token + "\n")
                files = self.put(d, 2, prefix=form)
                self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
                d.wait_mirror(30, local=files)
                self.assertNotIn(token, d.log())
                # A token file that is gone says which.
                (d.dir / "token").unlink()
                (d.root / "again.png").write_bytes(make("again.png", 2, 2, b"a")[0])
                self.assertEqual(d.once(120).returncode, 1)
                self.assertIn(f"web identity token file {d.dir / 'token'}", d.log())

    # ---- credential_process -------------------------------------------

    def script(self, d: Daemon, body: str) -> str:
        path = d.dir / "helper.sh"
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
        return str(path)

    def test_credential_process(self):
        keys = self.bed.user(FULL_POLICY)
        d = self.daemon()
        helper = self.script(d, (
            f"echo run >> {d.dir}/runs\n"
            "printf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": "
            "\"%s\", \"Expiration\": \"%s\"}' " f"'{keys[0]}' '{keys[1]}' "
            "\"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)\"\n"))
        (d.dir / "config").write_text(
            f"[profile deploy]\ncredential_process = {helper} --profile 'x y'\n")
        files = self.put(d)
        self.assertEqual(d.once(120).returncode, 0, d.log()[-3000:])
        d.wait_mirror(30, local=files)
        self.assertNotIn(keys[1], d.log())
        self.assertEqual((d.dir / "runs").read_text().count("run"), 1)

    def test_sixty_second_credentials_refreshed_through_a_2000_file_burst(self):
        keys = self.bed.user(FULL_POLICY)
        d = self.daemon()
        helper = self.script(d, (
            f"echo run >> {d.dir}/runs\n"
            "printf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": "
            "\"%s\", \"SessionToken\": \"\", \"Expiration\": \"%s\"}' "
            f"'{keys[0]}' '{keys[1]}' "
            "\"$(date -u -d '+60 seconds' +%Y-%m-%dT%H:%M:%SZ)\"\n"))
        (d.dir / "config").write_text(f"[profile deploy]\ncredential_process = {helper}\n")
        d.start()
        wait_until(lambda: "listening on" in d.log(), 30, what="the socket")
        # 2,000 files over about 70 s: the 60 s keys expire during the
        # burst; a refresh starts when a third of their life remains.
        files, t0 = {}, time.monotonic()
        for i in range(2000):
            rel = f"b{i % 40}/f{i}.png"
            data, _ = make(rel, 2, 2, rel.encode())
            (d.root / rel).parent.mkdir(exist_ok=True)
            (d.root / rel).write_bytes(data)
            files[rel] = data
            lag = t0 + i * 0.035 - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        self.assertGreater(time.monotonic() - t0, 65)
        d.wait_mirror(300, local=files)
        runs = (d.dir / "runs").read_text().count("run")
        self.assertGreaterEqual(runs, 2, d.log()[-3000:])
        metrics = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--unix-socket",
             str(d.dir / "imgsync.sock"), "http://localhost/metrics"],
            capture_output=True, text=True, timeout=30).stdout
        self.assertEqual(d.stop(), 0, d.log()[-3000:])
        self.assertNotIn("Forbidden", d.log())
        self.assertNotIn("AccessDenied", d.log())
        self.assertNotIn("ExpiredToken", d.log())
        self.assertEqual(d.failed_rows(), {}, d.log()[-3000:])
        # Zero failed requests: none refused, none retried.
        counted = [l for l in metrics.splitlines()
                   if l.startswith(("imgsync_failures_total", "imgsync_retries_total",
                                    "imgsync_failed_files"))]
        self.assertTrue(counted, metrics[:2000])
        self.assertEqual([l for l in counted if not l.endswith(" 0")], [], metrics[:3000])

    def test_a_process_that_hangs_fails_or_lies_says_so_without_secrets(self):
        cases = {
            "hang": ("sleep 30\n", "no answer within 1000 ms: killed"),
            "exit": ("echo 'helper: token SECRET-ON-STDERR refused' >&2\nexit 7\n",
                     "exited with status 7 (its stderr: helper: token "
                     "SECRET-ON-STDERR refused)"),
            "json": ("echo '{\"Version\": 1, \"AccessKeyId\": \"AKIASECRETOUT\"'\n",
                     "its output is not a JSON object"),
        }
        for name, (body, needle) in cases.items():
            with self.subTest(name):
                d = self.daemon(extra_conf="process_timeout_ms = 1000;")
                helper = self.script(d, body)
                (d.dir / "config").write_text(
                    f"[profile deploy]\ncredential_process = {helper} --token hunter2\n")
                t0 = time.monotonic()
                p = subprocess.run([str(BIN / "imgsyncd"), "--check-remote", "-c",
                                    str(d.conf)], capture_output=True, text=True,
                                   timeout=120, env=d.env())
                out = p.stdout + p.stderr
                self.assertEqual(p.returncode, 77, out)
                self.assertIn(f'credential_process of profile "deploy" ({helper})', out)
                self.assertIn(needle, out)
                self.assertNotIn("hunter2", out)
                self.assertNotIn("AKIASECRETOUT", out)
                self.assertLess(time.monotonic() - t0, 60)


if __name__ == "__main__":
    unittest.main()
