#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_output.h"

TestSuite(ctl_output);

typedef int render_fn(FILE *f, const json_t *answer, struct err *e);

/* What fn prints for the JSON text in, and what it returned. */
static char *
render(render_fn *fn, const char *in, int *rc, struct err *e)
{
	json_error_t je;
	json_t *j = json_loads(in, JSON_ALLOW_NUL, &je);
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_not_null(j, "fixture: %s", je.text);
	f = open_memstream(&out, &len);
	cr_assert_not_null(f);
	err_clear(e);
	*rc = fn(f, j, e);
	cr_assert_eq(fclose(f), 0);
	json_decref(j);
	return out;
}

static void
expect(render_fn *fn, const char *in, const char *want)
{
	struct err e;
	int rc;
	char *out = render(fn, in, &rc, &e);

	cr_assert_eq(rc, 0, "%s", e.message);
	cr_assert_str_eq(out, want);
	free(out);
}

static void
expect_fail(render_fn *fn, const char *in, const char *message)
{
	struct err e;
	int rc;
	char *out = render(fn, in, &rc, &e);

	cr_assert_eq(rc, -1);
	cr_assert_str_eq(e.message, message);
	free(out);
}

static void
expect_escape(const char *in, size_t n, const char *want)
{
	char *got = ctl_output_escape(in, n);

	cr_assert_not_null(got);
	cr_assert_str_eq(got, want);
	free(got);
}

Test(ctl_output, human_sizes)
{
	char s[32];

	cr_assert_str_eq(ctl_output_size(0, s, sizeof(s)), "0 B");
	cr_assert_str_eq(ctl_output_size(1, s, sizeof(s)), "1 B");
	cr_assert_str_eq(ctl_output_size(1023, s, sizeof(s)), "1023 B");
	cr_assert_str_eq(ctl_output_size(1024, s, sizeof(s)), "1.0 KiB");
	cr_assert_str_eq(ctl_output_size(1536, s, sizeof(s)), "1.5 KiB");
	cr_assert_str_eq(ctl_output_size(1258291, s, sizeof(s)), "1.2 MiB");
	/* 1023.999 KiB rounds to 1024.0: say 1.0 MiB instead */
	cr_assert_str_eq(ctl_output_size(1048575, s, sizeof(s)), "1.0 MiB");
	cr_assert_str_eq(ctl_output_size(5e9, s, sizeof(s)), "4.7 GiB");
	cr_assert_str_eq(ctl_output_size(1099511627776.0, s, sizeof(s)),
	                 "1.0 TiB");
	/* past the last unit the number grows */
	cr_assert_str_eq(
	    ctl_output_size(1180591620717411303424.0, s, sizeof(s)),
	    "1024.0 EiB");
	cr_assert_str_eq(ctl_output_size(-1, s, sizeof(s)), "-");
	cr_assert_str_eq(ctl_output_size(NAN, s, sizeof(s)), "-");
	/* a short buffer is cut, not overrun */
	cr_assert_str_eq(ctl_output_size(1258291, s, 4), "1.2");
}

Test(ctl_output, durations)
{
	char s[32];

	cr_assert_str_eq(ctl_output_duration(0, s, sizeof(s)), "0s");
	cr_assert_str_eq(ctl_output_duration(59.9, s, sizeof(s)), "59s");
	cr_assert_str_eq(ctl_output_duration(60, s, sizeof(s)), "1m 0s");
	cr_assert_str_eq(ctl_output_duration(3725, s, sizeof(s)), "1h 2m 5s");
	cr_assert_str_eq(ctl_output_duration(90061, s, sizeof(s)), "1d 1h 1m");
	cr_assert_str_eq(ctl_output_duration(-1, s, sizeof(s)), "-");
	cr_assert_str_eq(ctl_output_duration(1e300, s, sizeof(s)), "-");
}

Test(ctl_output, escape_keeps_printable_text)
{
	expect_escape("a/b c.png", 9, "a/b c.png");
	expect_escape("caf\xc3\xa9/\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
	              17,
	              "caf\xc3\xa9/\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80");
	expect_escape("", 0, "");
}

Test(ctl_output, escape_controls_and_bad_bytes)
{
	expect_escape("a\nb\tc\r", 6, "a\\nb\\tc\\r");
	expect_escape("\x1b[31mred", 8, "\\x1b[31mred");
	expect_escape("\x01\x7f", 2, "\\x01\\x7f");
	expect_escape("nul\0x", 5, "nul\\x00x");
	/* the escape character itself, so an escape cannot be forged */
	expect_escape("a\\nb", 4, "a\\\\nb");
	expect_escape("bad\xff\xfe.jpg", 9, "bad\\xff\\xfe.jpg");
	expect_escape("cut\xe4\xb8", 5, "cut\\xe4\\xb8");
	expect_escape("\xc0\xaf", 2, "\\xc0\\xaf"); /* overlong '/' */
	/* well-formed but harmful: C1 CSI, right-to-left override, LS */
	expect_escape("\xc2\x9b"
	              "2J",
	              4, "\\u009b2J");
	expect_escape("gnp.\xe2\x80\xae"
	              "exe",
	              10, "gnp.\\u202eexe");
	expect_escape("a\xe2\x80\xa8z", 5, "a\\u2028z");
}

Test(ctl_output, escape_messages_keeps_backslashes)
{
	/* the daemon's messages quote names it escaped already */
	const char *in = "bad\\xff.png: not UTF-8\n\x1b";
	char *got = ctl_output_escape_message(in, strlen(in));

	cr_assert_not_null(got);
	cr_assert_str_eq(got, "bad\\xff.png: not UTF-8\\n\\x1b");
	free(got);
}

Test(ctl_output, display_width)
{
	cr_assert_eq(ctl_output_width(""), 0);
	cr_assert_eq(ctl_output_width("abc"), 3);
	cr_assert_eq(ctl_output_width("caf\xc3\xa9"), 4);
	cr_assert_eq(ctl_output_width("\xe4\xb8\xad\xe6\x96\x87"), 4);
	cr_assert_eq(ctl_output_width("e\xcc\x81"), 1); /* e + acute */
	cr_assert_eq(ctl_output_width("\xf0\x9f\x98\x80"), 2);
}

Test(ctl_output, images_table)
{
	expect(
	    ctl_output_images,
	    "[{\"FileName\":\"a/b.png\",\"Bucket\":\"images\","
	    "\"Size\":1258291,\"Type\":\"image/png\",\"Width\":10,"
	    "\"Height\":20,\"Timestamp\":\"2026-11-21T10:00:00.123Z\"},"
	    "{\"FileName\":\"evil\\n\\u001b[2Jname\\t.gif\",\"Size\":12,"
	    "\"Type\":\"image/gif\",\"Timestamp\":\"2026-11-21T10:00:01."
	    "000Z\"},"
	    "{\"FileName\":\"\xe4\xb8\xad\xe6\x96\x87.jpg\",\"Size\":2048,"
	    "\"Type\":\"image/jpeg\",\"Width\":4000,\"Height\":3000}]",
	    "   SIZE  TYPE        DIMENSIONS  SYNCED                    NAME\n"
	    "1.2 MiB  image/png   10x20       2026-11-21T10:00:00.123Z  "
	    "a/b.png\n"
	    "   12 B  image/gif   -           2026-11-21T10:00:01.000Z  "
	    "evil\\n\\x1b[2Jname\\t.gif\n"
	    "2.0 KiB  image/jpeg  4000x3000   -                         "
	    "\xe4\xb8\xad\xe6\x96\x87.jpg\n"
	    "3 images, 1.2 MiB\n");
}

Test(ctl_output, images_table_aligns_wide_names)
{
	/* the name is the last column, so only the other columns pad; wide
	 * characters in a type still keep the next column straight */
	expect(ctl_output_images,
	       "[{\"FileName\":\"x\",\"Size\":1,\"Type\":\"\xe4\xb8\xad\"},"
	       "{\"FileName\":\"y\",\"Size\":1,\"Type\":\"abc\"}]",
	       "SIZE  TYPE  DIMENSIONS  SYNCED  NAME\n"
	       " 1 B  \xe4\xb8\xad    -           -       x\n"
	       " 1 B  abc   -           -       y\n"
	       "2 images, 2 B\n");
}

Test(ctl_output, images_empty_and_malformed)
{
	expect(ctl_output_images, "[]", "no images\n");
	expect(ctl_output_images, "[{\"FileName\":\"only\"}]",
	       "SIZE  TYPE  DIMENSIONS  SYNCED  NAME\n"
	       "   -  -     -           -       only\n"
	       "1 image, 0 B\n");
	expect_fail(ctl_output_images, "{\"images\":[]}",
	            "no \"images\" array in the answer");
}

Test(ctl_output, status_lines)
{
	expect(ctl_output_status,
	       "{\"state\":\"running\",\"version\":\"0.1.0\","
	       "\"watch_root\":\"/srv/images\",\"bucket\":\"images\","
	       "\"table\":\"ImageMetadata\",\"uptime_s\":3725,\"queued\":120,"
	       "\"in_flight\":5,\"uploaded\":10,\"deleted\":1,\"renamed\":2,"
	       "\"unchanged\":5,\"done\":13,\"failed\":1,\"bytes\":12345678,"
	       "\"rate\":12.5,\"last_error\":null}",
	       "state:       running\n"
	       "version:     0.1.0\n"
	       "uptime:      1h 2m 5s\n"
	       "watch root:  /srv/images\n"
	       "bucket:      images\n"
	       "table:       ImageMetadata\n"
	       "queued:      120\n"
	       "in flight:   5\n"
	       "done:        13 (10 uploaded, 1 deleted, 2 renamed)\n"
	       "unchanged:   5\n"
	       "failed:      1\n"
	       "transferred: 11.8 MiB\n"
	       "rate:        12.5 files/s, about 10s left\n"
	       "last error:  -\n");
}

/* Thumbnails: a line once there are any, with the failures when some. */
Test(ctl_output, status_thumbnails)
{
	expect(ctl_output_status,
	       "{\"state\":\"running\",\"uptime_s\":1,\"queued\":0,"
	       "\"in_flight\":0,\"done\":3,\"failed\":0,\"bytes\":10,"
	       "\"rate\":0,\"thumbnails\":2,\"thumbnails_failed\":1,"
	       "\"last_error\":null}",
	       "state:       running\n"
	       "version:     -\n"
	       "uptime:      1s\n"
	       "watch root:  -\n"
	       "bucket:      -\n"
	       "table:       -\n"
	       "queued:      0\n"
	       "in flight:   0\n"
	       "done:        3\n"
	       "unchanged:   -\n"
	       "failed:      0\n"
	       "thumbnails:  2 (1 could not be made: see the log)\n"
	       "transferred: 10 B\n"
	       "rate:        0.0 files/s\n"
	       "last error:  -\n");
}

Test(ctl_output, status_while_the_scan_walks)
{
	/* the byte rate; while the scan walks, the queue is not what is left:
	 * no estimate, and what the scan found so far */
	expect(ctl_output_status,
	       "{\"state\":\"running\",\"uptime_s\":60,\"queued\":4000,"
	       "\"in_flight\":64,\"done\":900,\"failed\":0,"
	       "\"bytes\":31457280,\"rate\":150,\"byte_rate\":5242880,"
	       "\"scanning\":true,\"scanned\":4964,\"last_error\":null}",
	       "state:       running\n"
	       "version:     -\n"
	       "uptime:      1m 0s\n"
	       "watch root:  -\n"
	       "bucket:      -\n"
	       "table:       -\n"
	       "queued:      4000\n"
	       "in flight:   64\n"
	       "done:        900\n"
	       "unchanged:   -\n"
	       "failed:      0\n"
	       "transferred: 30.0 MiB\n"
	       "rate:        150.0 files/s, 5.0 MiB/s\n"
	       "scan:        under way, 4964 files found so far\n"
	       "last error:  -\n");
}

Test(ctl_output, status_idle_with_error_and_gaps)
{
	/* an idle daemon has no time left; a missing field prints "-"; the
	 * last error quotes a file name and is escaped */
	expect(ctl_output_status,
	       "{\"state\":\"paused\",\"uptime_s\":5,\"queued\":0,"
	       "\"in_flight\":0,\"done\":0,\"failed\":0,\"bytes\":0,"
	       "\"rate\":0,\"last_error\":\"a\\nb\\\\xff.png: AccessDenied\"}",
	       "state:       paused\n"
	       "version:     -\n"
	       "uptime:      5s\n"
	       "watch root:  -\n"
	       "bucket:      -\n"
	       "table:       -\n"
	       "queued:      0\n"
	       "in flight:   0\n"
	       "done:        0\n"
	       "unchanged:   -\n"
	       "failed:      0\n"
	       "transferred: 0 B\n"
	       "rate:        0.0 files/s\n"
	       "last error:  a\\nb\\xff.png: AccessDenied\n");
	expect_fail(ctl_output_status, "[]",
	            "the status answer is not an object");
}

Test(ctl_output, failed_table)
{
	expect(ctl_output_failed,
	       "{\"failed\":[{\"FileName\":\"a/b.png\",\"error\":"
	       "\"AccessDenied: Access Denied\"},{\"FileName\":"
	       "\"long/\\u0007name.png\",\"error\":\"a\\\\x07b: vanished\"}]}",
	       "NAME               ERROR\n"
	       "a/b.png            AccessDenied: Access Denied\n"
	       "long/\\x07name.png  a\\x07b: vanished\n"
	       "2 failed files (imgsyncctl retry tries again)\n");
	expect(ctl_output_failed, "{\"failed\":[]}", "no failed files\n");
	expect_fail(ctl_output_failed, "{\"images\":[]}",
	            "no \"failed\" array in the answer");
}

Test(ctl_output, item_lines)
{
	/* known attributes in the table's order, then the rest sorted */
	expect(ctl_output_item,
	       "{\"data\":{\"Zeta\":[1,\"x\"],\"MTime\":\"2026-11-21T09:59:59."
	       "123456789Z\",\"ETag\":\"\\\"abc\\\"\",\"SHA256\":\"00ff\","
	       "\"Height\":20,\"Width\":10,\"Type\":\"image/png\","
	       "\"Size\":1234,\"Timestamp\":\"2026-11-21T10:00:00.123Z\","
	       "\"Source\":\"imgsync@host\",\"Bucket\":\"images\","
	       "\"FileName\":\"a/\\u001bb.png\",\"Alpha\":true,"
	       "\"Odd\\nKey\":null}}",
	       "FileName: a/\\x1bb.png\n"
	       "Bucket: images\n"
	       "Source: imgsync@host\n"
	       "Timestamp: 2026-11-21T10:00:00.123Z\n"
	       "Size: 1234 (1.2 KiB)\n"
	       "Type: image/png\n"
	       "Width: 10\n"
	       "Height: 20\n"
	       "SHA256: 00ff\n"
	       "ETag: \"abc\"\n"
	       "MTime: 2026-11-21T09:59:59.123456789Z\n"
	       "Alpha: true\n"
	       "Odd\\nKey: null\n"
	       "Zeta: [1,\"x\"]\n");
	expect_fail(ctl_output_item, "{\"error\":\"Item not found\"}",
	            "no \"data\" object in the answer");
}

Test(ctl_output, messages)
{
	expect(ctl_output_message,
	       "{\"message\":\"File deleted\",\"deletedFile\":\"a/b.png\"}",
	       "File deleted: a/b.png\n");
	expect(ctl_output_message,
	       "{\"message\":\"Upload queued\",\"FileName\":\"x\\ty.png\"}",
	       "Upload queued: x\\ty.png\n");
	expect(ctl_output_message,
	       "{\"message\":\"Retrying 2 failed files\",\"count\":2}",
	       "Retrying 2 failed files\n");
	expect(ctl_output_message, "{}", "OK\n");
}

Test(ctl_output, write_errors_are_reported)
{
	json_t *j = json_pack("{s:s}", "state", "running");
	FILE *f = fopen("/dev/full", "w");
	struct err e;

	cr_assert_not_null(j);
	cr_assert_not_null(f);
	err_clear(&e);
	cr_assert_eq(ctl_output_status(f, j, &e), -1);
	cr_assert(strstr(e.message, "write error") != NULL, "%s", e.message);
	fclose(f);
	json_decref(j);
}

Test(ctl_output, url)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	json_t *j;

	expect(ctl_output_url,
	       "{\"url\":\"http://h/b/k?X-Amz-Expires=60\",\"expires_in\":60}",
	       "http://h/b/k?X-Amz-Expires=60\n");
	expect_fail(ctl_output_url, "{\"expires_in\":60}",
	            "no \"url\" in the answer");
	expect_fail(ctl_output_url, "{\"url\":\"http://h/\\u001b[2J\"}",
	            "the answer's \"url\" is not a URL");
	expect_fail(ctl_output_url, "{\"url\":\"http://h/a b\"}",
	            "the answer's \"url\" is not a URL");

	f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	j = json_loads("{\"expires_in\":3600,\"expires_at\":"
	               "\"2026-12-04T20:00:00Z\",\"capped\":false}",
	               0, NULL);
	ctl_output_url_note(f, j);
	json_decref(j);
	j = json_loads("{\"expires_in\":1200,\"expires_at\":"
	               "\"2026-12-04T19:20:00Z\",\"capped\":true}",
	               0, NULL);
	ctl_output_url_note(f, j);
	json_decref(j);
	j = json_loads("{\"url\":\"x\"}", 0, NULL);
	ctl_output_url_note(f, j); /* nothing to say */
	json_decref(j);
	fclose(f);
	cr_assert_str_eq(buf,
	                 "expires in 1h 0m 0s (at 2026-12-04T20:00:00Z)\n"
	                 "expires in 20m 0s (at 2026-12-04T19:20:00Z): cut "
	                 "to the expiry of the daemon's credentials\n");
	free(buf);
}
