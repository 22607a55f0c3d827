#include <criterion/criterion.h>
#include <string.h>

#include "text.h"

TestSuite(text);

Test(text, utf8_sequences)
{
	cr_assert_eq(text_utf8_len("a", 1), 1);
	cr_assert_eq(text_utf8_len("\xc3\xa9", 2), 2);         /* é */
	cr_assert_eq(text_utf8_len("\xe4\xb8\xad", 3), 3);     /* 中 */
	cr_assert_eq(text_utf8_len("\xf0\x9f\x98\x80", 4), 4); /* 😀 */
	cr_assert_eq(text_utf8_len("\xc3\xa9", 1), 0);         /* cut short */
	cr_assert_eq(text_utf8_len("\xc0\xaf", 2), 0);         /* overlong / */
	cr_assert_eq(text_utf8_len("\xe0\x80\xaf", 3), 0);     /* overlong */
	cr_assert_eq(text_utf8_len("\xed\xa0\x80", 3), 0);     /* surrogate */
	cr_assert_eq(text_utf8_len("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
	cr_assert_eq(text_utf8_len("\xff", 1), 0);
	cr_assert_eq(text_utf8_len("\x80", 1), 0);
	cr_assert_eq(text_utf8_len("", 0), 0);
}

Test(text, utf8_strings)
{
	const char *ok =
	    "caf\xc3\xa9/\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80.jpg";

	cr_assert(text_utf8_valid(ok, strlen(ok)));
	cr_assert(text_utf8_valid("", 0));
	cr_assert(!text_utf8_valid("bad\xff\xfename.jpg", 14));
	cr_assert(!text_utf8_valid("end\xe4\xb8", 5));
}

Test(text, fnv1a_hash)
{
	/* published FNV-1a 32-bit values */
	cr_assert_eq(text_hash("", 0), 0x811c9dc5u);
	cr_assert_eq(text_hash("a", 1), 0xe40c292cu);
	cr_assert_eq(text_hash("foobar", 6), 0xbf9cf968u);
}

Test(text, hexval)
{
	cr_assert_eq(text_hexval('0'), 0);
	cr_assert_eq(text_hexval('9'), 9);
	cr_assert_eq(text_hexval('a'), 10);
	cr_assert_eq(text_hexval('F'), 15);
	cr_assert_eq(text_hexval('g'), -1);
	cr_assert_eq(text_hexval('%'), -1);
	cr_assert_eq(text_hexval(0xff), -1);
}

/* A file's times are its owner's to set: far past and far future saturate
 * instead of overflowing (UBSan stops on the overflow). */
Test(text, timespec_ns_saturates)
{
	struct timespec ts = {10000000000, 5}; /* touch -d @10000000000 */

	cr_assert_eq(text_timespec_ns(&ts), INT64_MAX);
	ts.tv_sec = -10000000000;
	cr_assert_eq(text_timespec_ns(&ts), INT64_MIN);
	ts.tv_sec = 1700000000;
	ts.tv_nsec = 123456789;
	cr_assert_eq(text_timespec_ns(&ts), 1700000000123456789LL);
	ts.tv_sec = -1;
	ts.tv_nsec = 999999999;
	cr_assert_eq(text_timespec_ns(&ts), -1);
}

Test(text, iso_time_far_future)
{
	struct timespec ts = {10000000000, 0};
	char out[64];

	text_iso_time(&ts, 3, out, sizeof(out));
	cr_assert_str_eq(out, "2286-11-20T17:46:40.000Z");
}

Test(text, duration)
{
	long v = 0;

	cr_assert_eq(text_duration_secs("90", 604800, &v), 0);
	cr_assert_eq(v, 90);
	cr_assert_eq(text_duration_secs("90s", 604800, &v), 0);
	cr_assert_eq(v, 90);
	cr_assert_eq(text_duration_secs("30m", 604800, &v), 0);
	cr_assert_eq(v, 1800);
	cr_assert_eq(text_duration_secs("12h", 604800, &v), 0);
	cr_assert_eq(v, 43200);
	cr_assert_eq(text_duration_secs("7d", 604800, &v), 0);
	cr_assert_eq(v, 604800);
	cr_assert_eq(text_duration_secs("604800", 604800, &v), 0);
	cr_assert_eq(v, 604800);
	v = 5;
	cr_assert_eq(text_duration_secs("8d", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("604801", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("0", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("0h", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("h", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("-5", 604800, &v), -1);
	cr_assert_eq(text_duration_secs(" 5", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("5 m", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("5mm", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("1w", 604800, &v), -1);
	cr_assert_eq(text_duration_secs("99999999999999999999999", 604800, &v),
	             -1);
	cr_assert_eq(v, 5, "a refused duration leaves *out alone");
}
