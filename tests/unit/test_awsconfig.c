/*
 * Unit tests for lib/awsconfig: the region and endpoints as the SDKs read
 * them, from the environment and a real config file in a temporary HOME.
 * (Reading a profile's keys is tested through the credential chain, in
 * test_creds.c.)
 */
#include <criterion/criterion.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "awsconfig.h"
#include "test_aws_env.h"

static struct {
	char dir[64];
} fx;

static void
setup(void)
{
	memset(&fx, 0, sizeof(fx));
	clear_aws_env();
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_awsconfig.XXXXXX");
	cr_assert_not_null(mkdtemp(fx.dir));
	/* Never the real ~/.aws of whoever runs the tests. */
	setenv("HOME", fx.dir, 1);
}

static void
teardown(void)
{
	nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* cppcheck-suppress unknownMacro */
TestSuite(awsconfig, .init = setup, .fini = teardown);

Test(awsconfig, region_precedence)
{
	char out[64];

	awsconfig_region(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "us-east-1");

	setenv("AWS_CONFIG_FILE",
	       write_home_file(fx.dir, "config",
	                       "[default]\n"
	                       "region = eu-central-1\n"
	                       "[profile work]\n"
	                       "region = ap-south-1\n"),
	       1);
	awsconfig_region("", out, sizeof(out));
	cr_assert_str_eq(out, "eu-central-1");
	setenv("AWS_PROFILE", "work", 1);
	awsconfig_region(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "ap-south-1");
	awsconfig_region_profile(NULL, "default", out, sizeof(out));
	cr_assert_str_eq(out, "eu-central-1");

	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	awsconfig_region(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "us-west-1");
	setenv("AWS_REGION", "us-west-2", 1);
	awsconfig_region(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "us-west-2");
	awsconfig_region("sa-east-1", out, sizeof(out));
	cr_assert_str_eq(out, "sa-east-1");
}

Test(awsconfig, endpoint_precedence)
{
	char out[128];

	awsconfig_endpoint("s3", NULL, out, sizeof(out));
	cr_assert_str_eq(out, "");

	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000", 1);
	awsconfig_endpoint("s3", NULL, out, sizeof(out));
	cr_assert_str_eq(out, "http://127.0.0.1:5000");
	setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000", 1);
	setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000", 1);
	awsconfig_endpoint("s3", "", out, sizeof(out));
	cr_assert_str_eq(out, "http://127.0.0.1:9000");
	awsconfig_endpoint("dynamodb", NULL, out, sizeof(out));
	cr_assert_str_eq(out, "http://127.0.0.1:8000");
	awsconfig_endpoint("dynamodb", "https://ddb.example", out, sizeof(out));
	cr_assert_str_eq(out, "https://ddb.example");

	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	awsconfig_endpoint("s3", NULL, out, sizeof(out));
	cr_assert_str_eq(out, "");
	awsconfig_endpoint("s3", "https://s3.example", out, sizeof(out));
	cr_assert_str_eq(out, "https://s3.example");
}

Test(awsconfig, role_process_and_sso_keys)
{
	struct awsconfig_profile prof;
	const char *path;
	struct err e;

	path =
	    write_home_file(fx.dir, "config",
	                    "[profile deploy]\n"
	                    "Role_Arn = arn:aws:iam::1:role/x\n"
	                    "source_profile = base\n"
	                    "external_id = ext\n"
	                    "role_session_name = s1\n"
	                    "duration_seconds = 900\n"
	                    "credential_process = /bin/helper --x 'a b'\n"
	                    "sso_session = corp\n"
	                    "sso_account_id = 111122223333\n"
	                    "sso_role_name = Images\n"
	                    "[sso-session corp]\n"
	                    "sso_region = eu-west-1\n"
	                    "sso_start_url = https://corp.awsapps.com/start\n"
	                    "[profile corp]\n"
	                    "sso_region = wrong\n");
	err_clear(&e);
	cr_assert_eq(
	    awsconfig_read_profile(path, AWSCONFIG_CONFIG, "deploy", &prof, &e),
	    0, "%s", e.message);
	cr_assert(prof.found);
	cr_assert_str_eq(prof.role_arn, "arn:aws:iam::1:role/x");
	cr_assert_str_eq(prof.source_profile, "base");
	cr_assert_str_eq(prof.external_id, "ext");
	cr_assert_str_eq(prof.role_session_name, "s1");
	cr_assert_str_eq(prof.duration_seconds, "900");
	cr_assert_str_eq(prof.credential_process, "/bin/helper --x 'a b'");
	cr_assert_str_eq(prof.sso_session, "corp");
	cr_assert_str_eq(prof.sso_account_id, "111122223333");
	cr_assert_str_eq(prof.sso_role_name, "Images");
	cr_assert_str_eq(prof.unsupported, "");
	/* The sso-session section is its own kind: not the profile "corp". */
	cr_assert_eq(awsconfig_read_profile(path, AWSCONFIG_SSO_SESSION, "corp",
	                                    &prof, &e),
	             0);
	cr_assert(prof.found);
	cr_assert_str_eq(prof.sso_region, "eu-west-1");
	cr_assert_str_eq(prof.sso_start_url, "https://corp.awsapps.com/start");
}
