#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* Every file a test writes lives in one temporary directory per test. */
static char tmpdir[256];
static char *written[32];
static size_t nwritten;

static void
setup(void)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX", base);
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void
teardown(void)
{
	size_t i;

	for (i = 0; i < nwritten; i++) {
		unlink(written[i]);
		free(written[i]);
	}
	nwritten = 0;
	rmdir(tmpdir);
}

/* cppcheck-suppress unknownMacro */
TestSuite(config, .init = setup, .fini = teardown);

static const char *
write_conf(const char *text)
{
	char path[PATH_MAX];
	size_t len = strlen(text);
	int fd;

	cr_assert_lt(nwritten, sizeof(written) / sizeof(written[0]));
	snprintf(path, sizeof(path), "%s/imgsync.XXXXXX", tmpdir);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	written[nwritten] = strdup(path);
	cr_assert_not_null(written[nwritten]);
	return written[nwritten++];
}

static struct config *
load_ok(const char *text)
{
	struct config *c;
	struct err e;

	err_clear(&e);
	c = config_load_file(write_conf(text), &e);
	cr_assert_not_null(c, "unexpected error: %s", e.message);
	return c;
}

/*
 * Loads text, which must fail, and compares the message with want, in which
 * "F" stands for the temporary file's path.
 */
static void
load_fails(const char *text, const char *want)
{
	const char *path = write_conf(text);
	char got[sizeof(((struct err *)0)->message)];
	size_t plen = strlen(path);
	struct config *c;
	struct err e;

	err_clear(&e);
	c = config_load_file(path, &e);
	cr_assert_null(c, "loaded, expected: %s", want);
	cr_assert_eq(e.kind, ERR_CONFIG, "kind %s: %s", err_kind_name(e.kind),
	             e.message);
	cr_assert_eq(strncmp(e.message, path, plen), 0, "no path in: %s",
	             e.message);
	snprintf(got, sizeof(got), "F%s", e.message + plen);
	cr_assert_str_eq(got, want);
}

/* The three required keys, one line each: lines 1-3. */
#define REQUIRED                                                               \
	"watch: { root = \"/srv/images\"; };\n"                                \
	"s3: { bucket = \"images\"; };\n"                                      \
	"dynamodb: { table = \"ImageMetadata\"; };\n"

static void
assert_list(const struct config_list *l, const char *const *want, size_t n)
{
	size_t i;

	cr_assert_eq(l->count, n);
	for (i = 0; i < n; i++)
		cr_assert_str_eq(l->items[i], want[i], "element %zu", i);
}

static const char *const default_include[] = {
    "*.jpg", "*.jpeg", "*.png",  "*.gif",  "*.webp", "*.bmp",
    "*.tif", "*.tiff", "*.heic", "*.heif", "*.avif", "*.svg",
};
static const char *const default_exclude[] = {
    "*.tmp",
    "*.part",
    ".*.swp",
    "*~",
};

static void
assert_defaults_except_required(const struct config *c)
{
	assert_list(&c->watch.include, default_include, 12);
	assert_list(&c->watch.exclude, default_exclude, 4);
	cr_assert_eq(c->watch.settle_ms, 100);
	cr_assert_str_eq(c->s3.prefix, "");
	cr_assert_str_eq(c->s3.endpoint, "");
	cr_assert_eq(c->s3.path_style, false);
	cr_assert_eq(c->s3.multipart_threshold_mb, 16);
	cr_assert_eq(c->s3.part_size_mb, 8);
	cr_assert_str_eq(c->s3.storage_class, "");
	cr_assert_str_eq(c->s3.sse, "");
	cr_assert_str_eq(c->s3.sse_kms_key_id, "");
	cr_assert_eq(c->s3.sse_bucket_key, false);
	cr_assert_str_eq(c->s3.checksum, "sha256");
	cr_assert_str_eq(c->s3.expected_bucket_owner, "");
	cr_assert_str_eq(c->dynamodb.region, "");
	cr_assert_str_eq(c->dynamodb.endpoint, "");
	cr_assert_str_eq(c->credentials.profile, "");
	cr_assert_str_eq(c->credentials.access_key_id, "");
	cr_assert_str_eq(c->credentials.secret_access_key, "");
	cr_assert_str_eq(c->credentials.session_token, "");
	cr_assert_eq(c->credentials.process_timeout_ms, 30000);
	cr_assert_eq(c->sync.concurrency, 128);
	cr_assert_str_eq(c->sync.source, "");
	cr_assert_eq(c->sync.max_retry_delay_ms, 30000);
	cr_assert_str_eq(c->state.path, "/var/lib/imgsync/state.db");
	cr_assert_str_eq(c->control.socket, "/run/imgsync/imgsync.sock");
	cr_assert_str_eq(c->control.group, "imgsync");
	cr_assert_str_eq(c->control.trash, "/var/lib/imgsync/trash");
	cr_assert_eq(c->control.max_body_kb, 64);
	cr_assert_eq(c->summary.enabled, false);
	cr_assert_str_eq(c->summary.key, "summary.json");
	cr_assert_eq(c->summary.interval_ms, 2000);
	cr_assert_eq(c->log.level, CONFIG_LOG_INFO);
}

Test(config, defaults)
{
	struct config *c = config_new();
	struct err e;

	cr_assert_not_null(c);
	cr_assert_str_eq(c->watch.root, "");
	cr_assert_str_eq(c->s3.bucket, "");
	cr_assert_str_eq(c->s3.region, "");
	cr_assert_str_eq(c->dynamodb.table, "");
	assert_defaults_except_required(c);

	err_clear(&e);
	cr_assert_eq(config_validate(c, &e), -1);
	cr_assert_eq(e.kind, ERR_CONFIG);
	cr_assert_str_eq(e.message, "key \"watch.root\": required but not set");
	config_free(c);
	config_free(NULL);
}

Test(config, only_required_keys)
{
	struct config *c = load_ok(REQUIRED);
	struct err e;

	cr_assert_str_eq(c->watch.root, "/srv/images");
	cr_assert_str_eq(c->s3.bucket, "images");
	cr_assert_str_eq(c->s3.region, "");
	cr_assert_str_eq(c->dynamodb.table, "ImageMetadata");
	assert_defaults_except_required(c);
	err_clear(&e);
	cr_assert_eq(config_validate(c, &e), 0, "%s", e.message);
	config_free(c);
}

Test(config, every_key)
{
	static const char *const inc[] = {"*.JPG", "*.raw"};
	static const char *const exc[] = {"private/*"};
	struct config *c =
	    load_ok("watch: {\n"
	            "  root = \"/data/photos\";\n"
	            "  include = [ \"*.JPG\", \"*.raw\" ];\n"
	            "  exclude = ( \"private/*\" );\n"
	            "  settle_ms = 0;\n"
	            "};\n"
	            "s3: {\n"
	            "  bucket = \"my.photo-bucket1\";\n"
	            "  prefix = \"host1/\";\n"
	            "  region = \"eu-west-1\";\n"
	            "  endpoint = \"http://127.0.0.1:9000\";\n"
	            "  path_style = true;\n"
	            "  multipart_threshold_mb = 5120;\n"
	            "  part_size_mb = 5;\n"
	            "};\n"
	            "dynamodb: {\n"
	            "  table = \"Photos_v2.test-1\";\n"
	            "  region = \"eu-central-1\";\n"
	            "  endpoint = \"https://dynamodb.example.com\";\n"
	            "};\n"
	            "credentials: {\n"
	            "  profile = \"backup\";\n"
	            "  access_key_id = \"AKIAIOSFODNN7EXAMPLE\";\n"
	            "  secret_access_key = "
	            "\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\";\n"
	            "  session_token = \"FwoGZXIvYXdzEXAMPLE\";\n"
	            "};\n"
	            "sync: { concurrency = 256; source = \"agent-7\"; "
	            "max_retry_delay_ms = 3600000; };\n"
	            "state: { path = \"/tmp/state.db\"; };\n"
	            "control: {\n"
	            "  socket = \"/tmp/imgsync.sock\";\n"
	            "  group = \"wheel\";\n"
	            "  trash = \"/data/trash\";\n"
	            "  max_body_kb = 10240;\n"
	            "};\n"
	            "summary: { enabled = true; key = \"index/summary.json\"; "
	            "interval_ms = 100; };\n"
	            "log: { level = \"debug\"; };\n");

	cr_assert_str_eq(c->watch.root, "/data/photos");
	assert_list(&c->watch.include, inc, 2);
	assert_list(&c->watch.exclude, exc, 1);
	cr_assert_eq(c->watch.settle_ms, 0);
	cr_assert_str_eq(c->s3.bucket, "my.photo-bucket1");
	cr_assert_str_eq(c->s3.prefix, "host1/");
	cr_assert_str_eq(c->s3.region, "eu-west-1");
	cr_assert_str_eq(c->s3.endpoint, "http://127.0.0.1:9000");
	cr_assert_eq(c->s3.path_style, true);
	cr_assert_eq(c->s3.multipart_threshold_mb, 5120);
	cr_assert_eq(c->s3.part_size_mb, 5);
	cr_assert_str_eq(c->dynamodb.table, "Photos_v2.test-1");
	cr_assert_str_eq(c->dynamodb.region, "eu-central-1");
	cr_assert_str_eq(c->dynamodb.endpoint, "https://dynamodb.example.com");
	cr_assert_str_eq(c->credentials.profile, "backup");
	cr_assert_str_eq(c->credentials.access_key_id, "AKIAIOSFODNN7EXAMPLE");
	cr_assert_str_eq(c->credentials.secret_access_key,
	                 "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	cr_assert_str_eq(c->credentials.session_token, "FwoGZXIvYXdzEXAMPLE");
	cr_assert_eq(c->sync.concurrency, 256);
	cr_assert_str_eq(c->sync.source, "agent-7");
	cr_assert_eq(c->sync.max_retry_delay_ms, 3600000);
	cr_assert_str_eq(c->state.path, "/tmp/state.db");
	cr_assert_str_eq(c->control.socket, "/tmp/imgsync.sock");
	cr_assert_str_eq(c->control.group, "wheel");
	cr_assert_str_eq(c->control.trash, "/data/trash");
	cr_assert_eq(c->control.max_body_kb, 10240);
	cr_assert_eq(c->summary.enabled, true);
	cr_assert_str_eq(c->summary.key, "index/summary.json");
	cr_assert_eq(c->summary.interval_ms, 100);
	cr_assert_eq(c->log.level, CONFIG_LOG_DEBUG);
	config_free(c);
}

Test(config, shipped_example_loads)
{
	char path[PATH_MAX];
	const char *slash = strrchr(__FILE__, '/');
	struct config *c;
	struct err e;

	/* __FILE__ is tests/unit/test_config.c; the example is conf/. */
	if (slash == NULL)
		snprintf(path, sizeof(path), "../../conf/imgsync.conf");
	else
		snprintf(path, sizeof(path), "%.*s/../../conf/imgsync.conf",
		         (int)(slash - __FILE__), __FILE__);
	err_clear(&e);
	c = config_load_file(path, &e);
	cr_assert_not_null(c, "%s", e.message);
	cr_assert_str_eq(c->watch.root, "/srv/images");
	cr_assert_str_eq(c->s3.bucket, "images");
	cr_assert_str_eq(c->s3.region, "us-east-1");
	cr_assert_str_eq(c->dynamodb.table, "ImageMetadata");
	/* The example documents the defaults, so it sets them all. */
	assert_defaults_except_required(c);
	config_free(c);
}

Test(config, int64_values_accepted)
{
	struct config *c =
	    load_ok("watch: { root = \"/srv/images\"; settle_ms = 600000L; };\n"
	            "s3: { bucket = \"images\"; part_size_mb = 5L; };\n"
	            "dynamodb: { table = \"ImageMetadata\"; };\n"
	            "sync: { concurrency = 0x10; };\n");

	cr_assert_eq(c->watch.settle_ms, 600000);
	cr_assert_eq(c->s3.part_size_mb, 5);
	cr_assert_eq(c->sync.concurrency, 16);
	config_free(c);
}

Test(config, missing_required_group)
{
	load_fails("s3: { bucket = \"images\"; };\n"
	           "dynamodb: { table = \"ImageMetadata\"; };\n",
	           "F: key \"watch.root\": required but not set");
	load_fails("", "F: key \"watch.root\": required but not set");
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "s3: { bucket = \"images\"; };\n",
	           "F: key \"dynamodb.table\": required but not set");
}

Test(config, missing_required_key_names_its_group_line)
{
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "\n"
	           "s3:\n"
	           "{\n"
	           "  prefix = \"a/\";\n"
	           "};\n"
	           "dynamodb: { table = \"ImageMetadata\"; };\n",
	           "F:3: key \"s3.bucket\": required but not set");
}

Test(config, required_key_empty)
{
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "s3: { bucket = \"images\"; };\n"
	           "dynamodb: {\n"
	           "  table = \"\";\n"
	           "};\n",
	           "F:4: key \"dynamodb.table\": required but not set");
}

Test(config, unknown_key)
{
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "s3: {\n"
	           "  bucket = \"images\";\n"
	           "  bukcet = \"images\";\n"
	           "};\n",
	           "F:4: unknown key \"s3.bukcet\"");
}

Test(config, unknown_group)
{
	load_fails(REQUIRED "\n"
	                    "extra: {\n"
	                    "  a = 1;\n"
	                    "};\n",
	           "F:5: unknown key \"extra\"");
}

Test(config, unknown_top_level_key)
{
	load_fails("# comment\n"
	           "root = \"/srv/images\";\n",
	           "F:2: unknown key \"root\"");
}

Test(config, unknown_nested_group)
{
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "s3: {\n"
	           "  bucket = \"images\";\n"
	           "  tls: { verify = true; };\n"
	           "};\n",
	           "F:4: unknown key \"s3.tls\"");
}

Test(config, wrong_type)
{
	load_fails(
	    "watch: {\n"
	    "  root = \"/srv/images\";\n"
	    "  settle_ms = \"100\";\n"
	    "};\n",
	    "F:3: key \"watch.settle_ms\": must be an integer (got a string)");
	load_fails(
	    "watch: { root = \"/srv/images\"; settle_ms = 1.5; };\n",
	    "F:1: key \"watch.settle_ms\": must be an integer (got a float)");
	load_fails(
	    "watch: { root = \"/srv/images\"; };\n"
	    "s3: { bucket = \"images\"; path_style = 1; };\n",
	    "F:2: key \"s3.path_style\": must be a boolean, true or false "
	    "(got an integer)");
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "s3: { bucket = 42; };\n",
	           "F:2: key \"s3.bucket\": must be a string (got an integer)");
	load_fails("watch: { root = \"/srv/images\"; include = \"*.jpg\"; };\n",
	           "F:1: key \"watch.include\": must be a list of strings "
	           "(got a string)");
	load_fails("watch: {\n"
	           "  root = \"/srv/images\";\n"
	           "  exclude = ( \"*.tmp\",\n"
	           "              5 );\n"
	           "};\n",
	           "F:4: key \"watch.exclude\": element 2 must be a string "
	           "(got an integer)");
	load_fails("s3 = \"images\";\n",
	           "F:1: key \"s3\": must be a group (got a string)");
	load_fails(REQUIRED "log: { level = 1; };\n",
	           "F:4: key \"log.level\": must be a string (got an integer)");
}

Test(config, out_of_range)
{
	load_fails(
	    "watch: { root = \"/srv/images\"; };\n"
	    "s3: {\n"
	    "  bucket = \"images\";\n"
	    "  part_size_mb = 2;\n"
	    "};\n",
	    "F:4: key \"s3.part_size_mb\": must be between 5 and 5120 (got 2)");
	load_fails(REQUIRED "sync: { concurrency = 0; };\n",
	           "F:4: key \"sync.concurrency\": must be between 1 and 1024 "
	           "(got 0)");
	load_fails(REQUIRED "sync: { concurrency = 1025; };\n",
	           "F:4: key \"sync.concurrency\": must be between 1 and 1024 "
	           "(got 1025)");
	load_fails("watch: { root = \"/srv/images\"; settle_ms = -1; };\n",
	           "F:1: key \"watch.settle_ms\": must be between 0 and 600000 "
	           "(got -1)");
	load_fails("watch: { root = \"/srv/images\";\n"
	           "  settle_ms = 5000000000L; };\n",
	           "F:2: key \"watch.settle_ms\": must be between 0 and 600000 "
	           "(got 5000000000)");
	load_fails(
	    REQUIRED "control: { max_body_kb = 10241; };\n",
	    "F:4: key \"control.max_body_kb\": must be between 1 and 10240 "
	    "(got 10241)");
	load_fails(REQUIRED "summary: { interval_ms = 99; };\n",
	           "F:4: key \"summary.interval_ms\": must be between 100 and "
	           "3600000 (got 99)");
	load_fails(
	    REQUIRED "sync: { max_retry_delay_ms = 3600001; };\n",
	    "F:4: key \"sync.max_retry_delay_ms\": must be between 100 and "
	    "3600000 (got 3600001)");
	load_fails(
	    "watch: { root = \"/srv/images\"; };\n"
	    "s3: { bucket = \"images\"; multipart_threshold_mb = 4; };\n",
	    "F:2: key \"s3.multipart_threshold_mb\": must be between 5 and "
	    "5120 (got 4)");
}

static void
bucket_fails(const char *bucket, const char *why)
{
	char text[256], want[400];

	snprintf(text, sizeof(text),
	         "watch: { root = \"/srv/images\"; };\n"
	         "s3: {\n"
	         "  bucket = \"%s\";\n"
	         "};\n"
	         "dynamodb: { table = \"ImageMetadata\"; };\n",
	         bucket);
	snprintf(want, sizeof(want), "F:3: key \"s3.bucket\": %s (got \"%s\")",
	         why, bucket);
	load_fails(text, want);
}

Test(config, bad_bucket_name)
{
	const char *length = "must be 3 to 63 characters long";
	const char *chars =
	    "may only contain lowercase letters, digits, '.' and '-'";
	const char *ends =
	    "must start and end with a lowercase letter or digit";

	bucket_fails("ab", length);
	bucket_fails(
	    "a234567890123456789012345678901234567890123456789012345678"
	    "901234",
	    length);
	bucket_fails("Images", chars);
	bucket_fails("my_bucket", chars);
	bucket_fails("my bucket", chars);
	bucket_fails("-images", ends);
	bucket_fails("images.", ends);
	bucket_fails("my..bucket", "must not contain \"..\"");
}

Test(config, good_bucket_names)
{
	static const char *const good[] = {
	    "abc",
	    "1.2-3",
	    "images-2024.archive",
	    "a23456789012345678901234567890123456789012345678901234567890123",
	};
	char text[256];
	struct config *c;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text),
		         "watch: { root = \"/srv/images\"; };\n"
		         "s3: { bucket = \"%s\"; };\n"
		         "dynamodb: { table = \"ImageMetadata\"; };\n",
		         good[i]);
		c = load_ok(text);
		cr_assert_str_eq(c->s3.bucket, good[i]);
		config_free(c);
	}
}

Test(config, other_validation)
{
	load_fails("watch: { root = \"srv/images\"; };\n",
	           "F:1: key \"watch.root\": must be an absolute path "
	           "(got \"srv/images\")");
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "s3: { bucket = \"images\";\n"
	           "  prefix = \"/photos/\"; };\n",
	           "F:3: key \"s3.prefix\": must not start with '/' "
	           "(got \"/photos/\")");
	load_fails(
	    "watch: { root = \"/srv/images\"; };\n"
	    "s3: { bucket = \"images\";\n"
	    "  endpoint = \"localhost:9000\"; };\n",
	    "F:3: key \"s3.endpoint\": must be empty or a URL starting with "
	    "http:// or https:// (got \"localhost:9000\")");
	load_fails(REQUIRED "dynamodb2: { };\n",
	           "F:4: unknown key \"dynamodb2\"");
	load_fails(
	    "watch: { root = \"/srv/images\"; };\n"
	    "s3: { bucket = \"images\"; };\n"
	    "dynamodb: { table = \"Image Metadata\"; };\n",
	    "F:3: key \"dynamodb.table\": may only contain letters, digits, "
	    "'_', '.' and '-' (got \"Image Metadata\")");
	load_fails(
	    "watch: { root = \"/srv/images\"; };\n"
	    "s3: { bucket = \"images\"; };\n"
	    "dynamodb: { table = \"ImageMetadata\";\n"
	    "  endpoint = \"http://\"; };\n",
	    "F:4: key \"dynamodb.endpoint\": must be empty or a URL starting "
	    "with http:// or https:// (got \"http://\")");
	load_fails(REQUIRED "summary: {\n"
	                    "  key = \"\";\n"
	                    "};\n",
	           "F:5: key \"summary.key\": must not be empty (got \"\")");
	load_fails(REQUIRED "state: { path = \"state.db\"; };\n",
	           "F:4: key \"state.path\": must be an absolute path "
	           "(got \"state.db\")");
}

Test(config, lists)
{
	struct config *c;

	load_fails("watch: {\n"
	           "  root = \"/srv/images\";\n"
	           "  include = [ ];\n"
	           "};\n",
	           "F:3: key \"watch.include\": must not be an empty list");
	load_fails("watch: {\n"
	           "  root = \"/srv/images\";\n"
	           "  exclude = [ \"*.tmp\", \"\" ];\n"
	           "};\n",
	           "F:3: key \"watch.exclude\": element 2 must not be empty");

	/* An empty exclude list is fine: nothing is excluded. */
	c = load_ok("watch: { root = \"/srv/images\"; exclude = [ ]; };\n"
	            "s3: { bucket = \"images\"; };\n"
	            "dynamodb: { table = \"ImageMetadata\"; };\n");
	cr_assert_eq(c->watch.exclude.count, 0);
	cr_assert_eq(c->watch.include.count, 12);
	config_free(c);
}

Test(config, socket_path_too_long)
{
	char text[512], path[160];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	snprintf(text, sizeof(text),
	         REQUIRED "control: { socket = \"%s\"; };\n", path);
	load_fails(text, "F:4: key \"control.socket\": must be at most 107 "
	                 "bytes long (got 159)");
}

Test(config, trash_outside_root)
{
	struct config *c;

	load_fails(REQUIRED "control: {\n"
	                    "  trash = \"/srv/images/.trash\";\n"
	                    "};\n",
	           "F:5: key \"control.trash\": must be outside watch.root "
	           "(got \"/srv/images/.trash\")");

	c = load_ok(REQUIRED "control: { trash = \"/srv/images-trash\"; };\n");
	cr_assert_str_eq(c->control.trash, "/srv/images-trash");
	config_free(c);
}

/* Judged on real paths: spellings and symlinks that lead into the root. */
Test(config, trash_outside_root_real_paths)
{
	static const char *const inside[] = {
	    "/srv//images/.trash", "/srv/./images/.trash",
	    "/srv/other/../images/.trash", "/srv/images/./", "/srv/images//"};
	char text[512], dir[] = "/tmp/test_config.XXXXXX", link[600];
	struct config *c;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(inside) / sizeof(inside[0]); i++) {
		snprintf(text, sizeof(text),
		         REQUIRED "control: { trash = \"%s\"; };\n", inside[i]);
		err_clear(&e);
		c = config_load_file(write_conf(text), &e);
		cr_assert_null(c, "%s was taken", inside[i]);
		cr_assert(strstr(e.message, "must be outside watch.root"), "%s",
		          e.message);
	}

	/* A symlink to a folder in the root. */
	cr_assert_not_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/root", dir);
	cr_assert_eq(mkdir(link, 0700), 0);
	snprintf(link, sizeof(link), "%s/to-root", dir);
	cr_assert_eq(symlink("root", link), 0);
	snprintf(text, sizeof(text),
	         "watch: { root = \"%s/root\"; };\n"
	         "s3: { bucket = \"images\"; };\n"
	         "dynamodb: { table = \"ImageMetadata\"; };\n"
	         "control: { trash = \"%s/to-root/.trash\"; };\n",
	         dir, dir);
	err_clear(&e);
	c = config_load_file(write_conf(text), &e);
	snprintf(link, sizeof(link), "rm -rf '%s'", dir);
	cr_assert_eq(system(link), 0);
	cr_assert_null(c, "a trash reached through a symlink was taken");
}

Test(config, log_levels)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	char text[256];
	struct config *c;
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(text, sizeof(text),
		         REQUIRED "log: { level = \"%s\"; };\n", names[i]);
		c = load_ok(text);
		cr_assert_eq((size_t)c->log.level, i);
		cr_assert_str_eq(config_log_level_name(c->log.level), names[i]);
		config_free(c);
	}
	cr_assert_null(config_log_level_name((enum config_log_level)4));
	load_fails(
	    REQUIRED "\n"
	             "log: { level = \"verbose\"; };\n",
	    "F:5: key \"log.level\": must be \"debug\", \"info\", \"warn\" or "
	    "\"error\" (got \"verbose\")");
}

Test(config, syntax_error_line)
{
	load_fails("watch: { root = \"/srv/images\"; };\n"
	           "s3: {\n"
	           "  bucket = \"images\" = ;\n"
	           "};\n",
	           "F:3: syntax error");
	load_fails(REQUIRED "\n"
	                    "s3: { prefix = \"a/\"; };\n",
	           "F:5: syntax error: duplicate setting name");
	load_fails("watch: {\n"
	           "  root = \"/srv/images\";\n"
	           "  include = [ \"*.jpg\", 5 ];\n"
	           "};\n",
	           "F:3: syntax error: mismatched element type in array");
}

/* The required keys, the s3 group last and open: line 3 and on. */
#define S3_WITH                                                                \
	"watch: { root = \"/srv/images\"; };\n"                                \
	"dynamodb: { table = \"ImageMetadata\"; };\n"                          \
	"s3: { bucket = \"images\"; "

Test(config, s3_write_options)
{
	struct config *c;

	c = load_ok(
	    "watch: { root = \"/srv/images\"; };\n"
	    "s3: { bucket = \"images\"; storage_class = \"GLACIER_IR\";\n"
	    "  sse = \"aws:kms\"; sse_kms_key_id = \"alias/images\";\n"
	    "  sse_bucket_key = true; checksum = \"none\";\n"
	    "  expected_bucket_owner = \"123456789012\"; };\n"
	    "dynamodb: { table = \"ImageMetadata\"; };\n");
	cr_assert_str_eq(c->s3.storage_class, "GLACIER_IR");
	cr_assert_str_eq(c->s3.sse, "aws:kms");
	cr_assert_str_eq(c->s3.sse_kms_key_id, "alias/images");
	cr_assert_eq(c->s3.sse_bucket_key, true);
	cr_assert_str_eq(c->s3.checksum, "none");
	cr_assert_str_eq(c->s3.expected_bucket_owner, "123456789012");
	config_free(c);
	load_fails(S3_WITH "storage_class = \"DEEP_ARCHIVE\"; };\n",
	           "F:3: key \"s3.storage_class\": must be empty (the bucket's "
	           "default) or one of STANDARD, STANDARD_IA, ONEZONE_IA, "
	           "GLACIER_IR, INTELLIGENT_TIERING, REDUCED_REDUNDANCY "
	           "(GLACIER and DEEP_ARCHIVE objects cannot be read back "
	           "without a restore) (got \"DEEP_ARCHIVE\")");
	load_fails(S3_WITH "sse = \"aes256\"; };\n",
	           "F:3: key \"s3.sse\": must be empty (the bucket's default), "
	           "\"AES256\" or \"aws:kms\" (got \"aes256\")");
	load_fails(S3_WITH "sse = \"AES256\";\n"
	                   "  sse_kms_key_id = \"k\"; };\n",
	           "F:4: key \"s3.sse_kms_key_id\": needs s3.sse = "
	           "\"aws:kms\"");
	load_fails(S3_WITH "sse_bucket_key = true; };\n",
	           "F:3: key \"s3.sse_bucket_key\": needs s3.sse = "
	           "\"aws:kms\"");
	load_fails(S3_WITH "checksum = \"md5\"; };\n",
	           "F:3: key \"s3.checksum\": must be \"sha256\" or \"none\" "
	           "(got \"md5\")");
	load_fails(S3_WITH "expected_bucket_owner = \"1234567890ab\"; };\n",
	           "F:3: key \"s3.expected_bucket_owner\": must be empty or an "
	           "AWS account ID (12 digits) (got \"1234567890ab\")");
}

Test(config, credentials_half_set)
{
	struct config *c;

	load_fails(REQUIRED "credentials: {\n"
	                    "  access_key_id = \"AKIAIOSFODNN7EXAMPLE\";\n"
	                    "};\n",
	           "F:5: key \"credentials.access_key_id\": set without "
	           "credentials.secret_access_key (set both or neither)");
	load_fails(REQUIRED "credentials: {\n"
	                    "  access_key_id = \"\";\n"
	                    "  secret_access_key = \"secret\";\n"
	                    "};\n",
	           "F:6: key \"credentials.secret_access_key\": set without "
	           "credentials.access_key_id (set both or neither)");
	load_fails(
	    REQUIRED "credentials: {\n"
	             "  session_token = \"token\";\n"
	             "};\n",
	    "F:5: key \"credentials.session_token\": set without "
	    "credentials.access_key_id and credentials.secret_access_key");

	c = load_ok(
	    REQUIRED
	    "credentials: { profile = \"prod\"; access_key_id = \"AKID\"; "
	    "secret_access_key = \"SECRET\"; };\n");
	cr_assert_str_eq(c->credentials.access_key_id, "AKID");
	cr_assert_str_eq(c->credentials.secret_access_key, "SECRET");
	cr_assert_str_eq(c->credentials.session_token, "");
	config_free(c);
}

Test(config, utf8_strings)
{
	struct config *c =
	    load_ok("# Bilder für die Ablage\n"
	            "watch: { root = \"/srv/Bilder/Ünïcødé 写真\";\n"
	            "  include = [ \"*.jpg\", \"фото-*.png\" ]; };\n"
	            "s3: { bucket = \"images\"; prefix = \"bilder/日本/\"; };\n"
	            "dynamodb: { table = \"ImageMetadata\"; };\n"
	            "sync: { source = \"imgsync@hôte-🐎\"; };\n");

	cr_assert_str_eq(c->watch.root, "/srv/Bilder/Ünïcødé 写真");
	cr_assert_str_eq(c->watch.include.items[1], "фото-*.png");
	cr_assert_str_eq(c->s3.prefix, "bilder/日本/");
	cr_assert_str_eq(c->sync.source, "imgsync@hôte-🐎");
	cr_assert_eq(strlen(c->sync.source), strlen("imgsync@hôte-") + 4);
	config_free(c);
}

Test(config, file_does_not_exist)
{
	char path[PATH_MAX], want[PATH_MAX + 64];
	struct err e;

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	err_clear(&e);
	cr_assert_null(config_load_file(path, &e));
	cr_assert_eq(e.kind, ERR_CONFIG);
	cr_assert_eq(e.sys_errno, ENOENT);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	cr_assert_str_eq(e.message, want);

	err_clear(&e);
	cr_assert_null(config_load_file(tmpdir, &e));
	cr_assert_eq(e.kind, ERR_CONFIG);
	cr_assert_eq(e.sys_errno, EISDIR);
	snprintf(want, sizeof(want), "%s: %s", tmpdir, strerror(EISDIR));
	cr_assert_str_eq(e.message, want);
}

Test(config, failed_reload_keeps_old_values)
{
	struct config *c = load_ok(REQUIRED "sync: { concurrency = 4; };\n");
	const char *bad = write_conf(REQUIRED "sync: { concurrency = 8; };\n"
	                                      "s3x: { };\n");
	const char *good = write_conf("watch: { root = \"/srv/other\"; };\n"
	                              "s3: { bucket = \"other\"; };\n"
	                              "dynamodb: { table = \"Other\"; };\n");
	struct err e;

	err_clear(&e);
	cr_assert_eq(config_load(c, bad, &e), -1);
	cr_assert_eq(c->sync.concurrency, 4);
	cr_assert_str_eq(c->watch.root, "/srv/images");

	err_clear(&e);
	cr_assert_eq(config_load(c, good, &e), 0, "%s", e.message);
	cr_assert_str_eq(c->watch.root, "/srv/other");
	cr_assert_str_eq(c->s3.bucket, "other");
	cr_assert_eq(c->sync.concurrency, 128, "reload starts from defaults");
	config_free(c);
}

Test(config, validate_in_code)
{
	struct config *c = config_new();
	struct err e;

	cr_assert_not_null(c);
	free(c->watch.root);
	c->watch.root = strdup("/srv/images");
	free(c->s3.bucket);
	c->s3.bucket = strdup("images");
	free(c->dynamodb.table);
	c->dynamodb.table = strdup("ImageMetadata");
	err_clear(&e);
	cr_assert_eq(config_validate(c, &e), 0, "%s", e.message);

	c->s3.part_size_mb = 2;
	cr_assert_eq(config_validate(c, &e), -1);
	cr_assert_eq(e.kind, ERR_CONFIG);
	cr_assert_str_eq(
	    e.message,
	    "key \"s3.part_size_mb\": must be between 5 and 5120 (got 2)");
	c->s3.part_size_mb = 8;

	free(c->s3.bucket);
	c->s3.bucket = strdup("Images");
	cr_assert_eq(config_validate(c, &e), -1);
	cr_assert_str_eq(
	    e.message,
	    "key \"s3.bucket\": may only contain lowercase letters, digits, "
	    "'.' and '-' (got \"Images\")");
	free(c->s3.bucket);
	c->s3.bucket = NULL;
	cr_assert_eq(config_validate(c, &e), -1);
	cr_assert_str_eq(e.message, "key \"s3.bucket\": not set (NULL)");
	c->s3.bucket = strdup("images");

	c->log.level = (enum config_log_level)7;
	cr_assert_eq(config_validate(c, &e), -1);
	cr_assert_str_eq(e.message,
	                 "key \"log.level\": not a log level (got 7)");
	c->log.level = CONFIG_LOG_WARN;
	cr_assert_eq(config_validate(c, &e), 0, "%s", e.message);
	config_free(c);
}

Test(config, web_defaults_and_keys)
{
	struct config *c = load_ok(REQUIRED);

	cr_assert_str_eq(c->web.listen, "", "the gallery is off by default");
	cr_assert_str_eq(c->web.session, "12h");
	cr_assert_eq(c->web.max_upload_mb, 100);
	cr_assert_not(c->web.trust_proxy);
	config_free(c);
	c = load_ok(REQUIRED "web: { listen = \"[::1]:8280\"; session = "
	                     "\"90m\"; url = \"https://img.example/g/\"; };\n");
	cr_assert_str_eq(c->web.listen, "[::1]:8280");
	config_free(c);
	c = load_ok(REQUIRED "web: { listen = \"0.0.0.0:8280\"; trust_proxy = "
	                     "true; };\n");
	config_free(c);
	c = load_ok(REQUIRED "web: { listen = \"0.0.0.0:8280\"; tls_cert = "
	                     "\"/c.pem\"; tls_key = \"/k.pem\"; };\n");
	config_free(c);
}

Test(config, web_refusals)
{
	load_fails(REQUIRED "web: { listen = \"0.0.0.0:8280\"; };\n",
	           "F:4: key \"web.listen\": \"0.0.0.0:8280\" is reachable "
	           "from other machines: set web.tls_cert and web.tls_key, or "
	           "web.trust_proxy when a reverse proxy with TLS is in front "
	           "(or listen on 127.0.0.1)");
	load_fails(REQUIRED "web: { listen = \"[::]:8280\"; };\n",
	           "F:4: key \"web.listen\": \"[::]:8280\" is reachable "
	           "from other machines: set web.tls_cert and web.tls_key, or "
	           "web.trust_proxy when a reverse proxy with TLS is in front "
	           "(or listen on 127.0.0.1)");
	load_fails(REQUIRED "web: { listen = \"8280\"; };\n",
	           "F:4: key \"web.listen\": must be \"HOST:PORT\" or "
	           "\"[IPV6]:PORT\" (got \"8280\")");
	load_fails(REQUIRED "web: { tls_key = \"/k.pem\"; };\n",
	           "F:4: key \"web.tls_key\": web.tls_cert and web.tls_key "
	           "are set together");
	load_fails(REQUIRED "web: { session = \"31d\"; };\n",
	           "F:4: key \"web.session\": must be a duration of 1s to 30d "
	           "(\"90m\", \"12h\", \"7d\") (got \"31d\")");
	load_fails(REQUIRED "web: { url = \"https://x/?a=\\\"\"; };\n",
	           "F:4: key \"web.url\": must be a plain base URL (no query, "
	           "fragment, quote or space) (got \"https://x/?a=\"\")");
}
