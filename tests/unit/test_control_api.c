#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "control_api.h"

TestSuite(control_api);

/* --- routes ------------------------------------------------------------ */

static const struct {
	const char *method;
	const char *path;
	enum ctl_route route;
	int mutates;
} table[] = {
    {"GET", "/getall", CTL_GETALL, 0},    {"POST", "/getitem", CTL_GETITEM, 0},
    {"DELETE", "/delete", CTL_DELETE, 1}, {"POST", "/upload", CTL_UPLOAD, 1},
    {"GET", "/status", CTL_STATUS, 0},    {"GET", "/metrics", CTL_METRICS, 0},
    {"POST", "/rescan", CTL_RESCAN, 1},   {"POST", "/pause", CTL_PAUSE, 1},
    {"POST", "/resume", CTL_RESUME, 1},   {"GET", "/failed", CTL_FAILED, 0},
    {"POST", "/retry", CTL_RETRY, 1},     {"POST", "/url", CTL_URL, 0},
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

Test(control_api, every_route_with_its_method)
{
	enum ctl_route r;
	const char *allow;
	size_t i;

	for (i = 0; i < NTABLE; i++) {
		r = (enum ctl_route) - 1;
		allow = "x";
		cr_assert_eq(control_api_route_find(table[i].method,
		                                    table[i].path, &r, &allow),
		             200, "%s %s", table[i].method, table[i].path);
		cr_assert_eq(r, table[i].route, "%s", table[i].path);
		cr_assert_null(allow);
		cr_assert_eq(control_api_route_mutates(r), table[i].mutates,
		             "%s", table[i].path);
		cr_assert_str_eq(control_api_route_name(r), table[i].path);
	}
}

Test(control_api, wrong_method_is_405_with_allow)
{
	static const char *const methods[] = {"GET",  "POST", "DELETE", "PUT",
	                                      "HEAD", "get",  "PATCH"};
	enum ctl_route r = CTL_STATUS;
	const char *allow;
	size_t i, m;

	for (i = 0; i < NTABLE; i++)
		for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
			if (strcmp(methods[m], table[i].method) == 0)
				continue;
			allow = NULL;
			cr_assert_eq(control_api_route_find(
			                 methods[m], table[i].path, &r, &allow),
			             405, "%s %s", methods[m], table[i].path);
			cr_assert_str_eq(allow, table[i].method);
			cr_assert_eq(r, CTL_STATUS, "route left alone on 405");
		}
}

Test(control_api, unknown_path_is_404)
{
	static const char *const urls[] = {
	    "/",
	    "",
	    "/nope",
	    "/getall/",
	    "/GETALL",
	    "getall",
	    "/getall?",
	    "/getall?x=1",
	    "//getall",
	    "/getal",
	    "/getalll",
	    "/status ",
	    "/st\xff"
	    "atus",
	    "/retry\n",
	};
	enum ctl_route r = CTL_STATUS;
	const char *allow;
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		allow = "x";
		cr_assert_eq(control_api_route_find("GET", urls[i], &r, &allow),
		             404, "[%s]", urls[i]);
		cr_assert_null(allow);
		cr_assert_eq(
		    control_api_route_find("POST", urls[i], &r, &allow), 404);
	}
}

Test(control_api, unknown_route_name_and_mutates)
{
	/* An out-of-range route is treated as one that changes things. */
	cr_assert_str_eq(control_api_route_name((enum ctl_route)99), "?");
	cr_assert_eq(control_api_route_mutates((enum ctl_route)99), 1);
}

/* --- FileName bodies ---------------------------------------------------- */

static const enum ctl_route name_routes[] = {CTL_GETITEM, CTL_DELETE,
                                             CTL_UPLOAD};

/* Parses body (len bytes) for each route that takes a FileName; checks the
 * answer is the same for all three and returns it in *r (to clean up) or
 * the error message in msg. */
static int
parse_body(const char *body, size_t len, const char *key_prefix,
           struct ctl_request *r, char msg[512])
{
	struct err e;
	int rc = 0, first = 1;
	size_t i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < sizeof(name_routes) / sizeof(name_routes[0]); i++) {
		int got;

		if (!first)
			control_api_request_cleanup(r);
		err_clear(&e);
		got = control_api_parse(r, name_routes[i], NULL, body, len,
		                        key_prefix, &e);
		cr_assert_eq(r->route, name_routes[i]);
		if (first) {
			rc = got;
			strcpy(msg, e.message);
		} else {
			cr_assert_eq(got, rc);
			cr_assert_str_eq(e.message, msg);
		}
		first = 0;
		if (got == -1) {
			cr_assert_neq(e.kind, ERR_SYS);
			cr_assert_null(r->path);
		}
	}
	return rc;
}

static void
expect_name(const char *body, const char *key_prefix, const char *name,
            const char *path)
{
	struct ctl_request r;
	char msg[512];

	cr_assert_eq(parse_body(body, strlen(body), key_prefix, &r, msg), 0,
	             "%s: %s", body, msg);
	cr_assert_str_eq(r.name, name);
	cr_assert_str_eq(r.path, path);
	cr_assert_null(r.prefix);
	cr_assert_null(r.start);
	control_api_request_cleanup(&r);
	cr_assert_null(r.name);
}

static void
expect_body_error(const char *body, size_t len, const char *key_prefix,
                  const char *message)
{
	struct ctl_request r;
	char msg[512];

	cr_assert_eq(parse_body(body, len, key_prefix, &r, msg), -1,
	             "%.*s accepted", (int)len, body != NULL ? body : "");
	cr_assert_str_eq(msg, message, "%.*s: [%s]", (int)len,
	                 body != NULL ? body : "", msg);
	control_api_request_cleanup(&r);
}

/* A string literal and its length (it may hold a NUL). */
#define LIT(s) s, sizeof(s) - 1

static void
expect_escape(const char *name)
{
	char body[2100];

	snprintf(body, sizeof(body), "{\"FileName\":\"%s\"}", name);
	expect_body_error(body, strlen(body), "",
	                  "FileName escapes the watch root");
}

Test(control_api, body_missing_or_without_a_name)
{
	expect_body_error(NULL, 0, "", "FileName missing");
	expect_body_error("{}", 0, "", "FileName missing"); /* len 0 */
	expect_body_error(LIT("{}"), "", "FileName missing");
	expect_body_error(LIT("{\"filename\":\"a\"}"), "", "FileName missing");
	expect_body_error(LIT("{\"FileName\":null}"), "", "FileName missing");
	expect_body_error(LIT("{\"FileName\":\"\"}"), "", "FileName missing");
	expect_body_error(LIT("{\"FileName\":12}"), "",
	                  "FileName must be a string");
	expect_body_error(LIT("{\"FileName\":[\"a\"]}"), "",
	                  "FileName must be a string");
	expect_body_error(LIT("{\"FileName\":true}"), "",
	                  "FileName must be a string");
}

Test(control_api, body_not_an_object)
{
	expect_body_error(LIT("[\"FileName\",\"a\"]"), "",
	                  "the body must be a JSON object");
	expect_body_error(LIT("[]"), "", "the body must be a JSON object");
	/* jansson takes only an object or an array at the top */
	expect_body_error(LIT("\"a\""), "",
	                  "Malformed JSON: '[' or '{' expected near '\"a\"'");
	expect_body_error(LIT("12"), "",
	                  "Malformed JSON: '[' or '{' expected near '12'");
	expect_body_error(LIT("null"), "",
	                  "Malformed JSON: '[' or '{' expected near 'null'");
}

Test(control_api, body_malformed)
{
	expect_body_error(LIT("{\"FileName\":\"a\""), "",
	                  "Malformed JSON: '}' expected near end of file");
	expect_body_error(LIT("{\"FileName\":\"a\"} x"), "",
	                  "Malformed JSON: end of file expected near 'x'");
	expect_body_error(LIT("{\"FileName\":\"a\\u0000b\"}"), "",
	                  "Malformed JSON: \\u0000 is not allowed without "
	                  "JSON_ALLOW_NUL near '\"a\\u0000b\"'");
	expect_body_error(LIT("{\"FileName\":\"a\",\"FileName\":\"b\"}"), "",
	                  "Malformed JSON: duplicate object key near "
	                  "'\"FileName\"'");
	/* The length is what counts, not a NUL (jansson calls it the end). */
	expect_body_error(LIT("{\"FileName\":\"a\"}\0junk"), "",
	                  "Malformed JSON: end of file expected near end of "
	                  "file");
	expect_body_error(LIT("{\"FileName\":\"\xff\"}"), "",
	                  "Malformed JSON: unable to decode byte 0xff near "
	                  "'\"'");
}

Test(control_api, body_deep_nesting)
{
	char body[4 * 2100];
	size_t i, n = 2100;

	for (i = 0; i < n; i++)
		body[i] = '[';
	for (i = 0; i < n; i++)
		body[n + i] = ']';
	expect_body_error(body, 2 * n, "",
	                  "Malformed JSON: maximum parsing depth reached "
	                  "near '['");
	/* Deep, but legal: an object, with no FileName at the top. */
	n = 0;
	n += (size_t)sprintf(body, "{\"x\":");
	for (i = 0; i < 1000; i++)
		body[n++] = '[';
	for (i = 0; i < 1000; i++)
		body[n++] = ']';
	body[n++] = '}';
	expect_body_error(body, n, "", "FileName missing");
}

Test(control_api, name_without_prefix)
{
	expect_name("{\"FileName\":\"a.png\"}", "", "a.png", "a.png");
	expect_name("{\"FileName\":\"a/b/c.png\"}", "", "a/b/c.png",
	            "a/b/c.png");
	expect_name("{\"Other\":1,\"FileName\":\"a b/..c/.d/e..\"}", "",
	            "a b/..c/.d/e..", "a b/..c/.d/e..");
	expect_name("{\"FileName\":\"\\u00e9t\\u00e9/\\u20ac\"}", "",
	            "\xc3\xa9t\xc3\xa9/\xe2\x82\xac",
	            "\xc3\xa9t\xc3\xa9/\xe2\x82\xac");
	expect_name("{\"FileName\":\"a\\\\b\"}", "", "a\\b", "a\\b");
}

Test(control_api, name_with_prefix)
{
	expect_name("{\"FileName\":\"img/a/b.png\"}", "img/", "img/a/b.png",
	            "a/b.png");
	expect_body_error(LIT("{\"FileName\":\"a/b.png\"}"), "img/",
	                  "FileName is not under the prefix img/");
	expect_body_error(LIT("{\"FileName\":\"img\"}"), "img/",
	                  "FileName is not under the prefix img/");
	expect_body_error(LIT("{\"FileName\":\"img/\"}"), "img/",
	                  "FileName escapes the watch root");
	expect_body_error(LIT("{\"FileName\":\"img//a\"}"), "img/",
	                  "FileName escapes the watch root");
	expect_body_error(LIT("{\"FileName\":\"img/../a\"}"), "img/",
	                  "FileName escapes the watch root");
	expect_body_error(LIT("{\"FileName\":\"IMG/a\"}"), "img/",
	                  "FileName is not under the prefix img/");
}

Test(control_api, names_that_escape)
{
	expect_escape("..");
	expect_escape(".");
	expect_escape("../x");
	expect_escape("a/../b");
	expect_escape("a/..");
	expect_escape("/abs");
	expect_escape("/");
	expect_escape("a//b");
	expect_escape("./a");
	expect_escape("a/.");
	expect_escape("a/./b");
	expect_escape("a/");
	expect_escape("a/b/");
}

Test(control_api, name_length)
{
	char name[1100], body[1200];
	struct ctl_request r;
	char msg[512];

	memset(name, 'a', 1024);
	name[1024] = '\0';
	snprintf(body, sizeof(body), "{\"FileName\":\"%s\"}", name);
	expect_name(body, "", name, name);
	/* 1024 with the prefix counted: it is the S3 key that is limited. */
	memcpy(name, "img/", 4);
	snprintf(body, sizeof(body), "{\"FileName\":\"%s\"}", name);
	expect_name(body, "img/", name, name + 4);

	memset(name, 'a', 1025);
	name[1025] = '\0';
	snprintf(body, sizeof(body), "{\"FileName\":\"%s\"}", name);
	cr_assert_eq(parse_body(body, strlen(body), "", &r, msg), -1);
	cr_assert_str_eq(msg, "FileName is longer than 1024 bytes");
	control_api_request_cleanup(&r);
}

Test(control_api, name_path_directly)
{
	struct err e;
	char *p;

	err_clear(&e);
	p = control_api_name_path("img/x/y", "img/", &e);
	cr_assert_str_eq(p, "x/y");
	free(p);
	p = control_api_name_path("", "", &e);
	cr_assert_null(p);
	cr_assert_str_eq(e.message, "FileName missing");
	cr_assert_eq(e.kind, ERR_INVALID);
	p = control_api_name_path("imgx/y", "img/", &e);
	cr_assert_null(p);
	cr_assert_str_eq(e.message, "FileName is not under the prefix img/");
	/* A prefix without a slash is a string prefix, as in S3. */
	p = control_api_name_path("imgx/y", "img", &e);
	cr_assert_str_eq(p, "x/y");
	free(p);
}

/* --- the getall query -------------------------------------------------- */

static int
getall(const char *prefix, const char *limit, const char *cursor,
       const char *local, struct ctl_request *r, struct err *e)
{
	struct ctl_query q = {prefix, limit, cursor, local};
	int rc;

	err_clear(e);
	rc = control_api_parse(r, CTL_GETALL, &q, NULL, 0, "img/", e);
	cr_assert_eq(r->route, CTL_GETALL);
	return rc;
}

static void
expect_limit(const char *limit, unsigned want)
{
	struct ctl_request r;
	struct err e;

	cr_assert_eq(getall(NULL, limit, NULL, NULL, &r, &e), 0, "limit=%s: %s",
	             limit, e.message);
	cr_assert_eq(r.limit, want, "limit=%s", limit);
	control_api_request_cleanup(&r);
}

static void
expect_getall_error(const char *limit, const char *cursor, const char *local,
                    const char *message)
{
	struct ctl_request r;
	struct err e;

	cr_assert_eq(getall(NULL, limit, cursor, local, &r, &e), -1,
	             "limit=%s cursor=%s local=%s accepted", limit, cursor,
	             local);
	cr_assert_str_eq(e.message, message, "limit=%s cursor=%s local=%s",
	                 limit, cursor, local);
	cr_assert_eq(e.kind, ERR_INVALID);
	control_api_request_cleanup(&r);
}

#define BAD_LIMIT "limit must be a number from 1 to 1000"
#define BAD_CURSOR "cursor is not one this API gave"
#define BAD_LOCAL "local must be 0 or 1"

Test(control_api, getall_defaults)
{
	struct ctl_request r;
	struct err e;

	cr_assert_eq(getall(NULL, NULL, NULL, NULL, &r, &e), 0);
	cr_assert_eq(r.limit, CTL_LIMIT_DEFAULT);
	cr_assert_eq(r.limit, 100);
	cr_assert_str_eq(r.prefix, "");
	cr_assert_null(r.start);
	cr_assert_eq(r.start_len, 0);
	cr_assert_eq(r.local, 0);
	cr_assert_null(r.name);
	cr_assert_null(r.path);
	control_api_request_cleanup(&r);

	cr_assert_eq(getall("img/a/", NULL, "", NULL, &r, &e), 0);
	cr_assert_str_eq(r.prefix, "img/a/");
	cr_assert_null(r.start, "an empty cursor is the first page");
	control_api_request_cleanup(&r);
}

Test(control_api, getall_limit)
{
	expect_limit(NULL, 100);
	expect_limit("1", 1);
	expect_limit("12", 12);
	expect_limit("1000", 1000);
	expect_limit("0999", 999);
	expect_getall_error("0", NULL, NULL, BAD_LIMIT);
	expect_getall_error("1001", NULL, NULL, BAD_LIMIT);
	expect_getall_error("12x", NULL, NULL, BAD_LIMIT);
	expect_getall_error("-1", NULL, NULL, BAD_LIMIT);
	expect_getall_error(" 5", NULL, NULL, BAD_LIMIT);
	expect_getall_error("+5", NULL, NULL, BAD_LIMIT);
	expect_getall_error("5 ", NULL, NULL, BAD_LIMIT);
	expect_getall_error("", NULL, NULL, BAD_LIMIT);
	expect_getall_error("0x10", NULL, NULL, BAD_LIMIT);
	expect_getall_error("99999999999999999999999", NULL, NULL, BAD_LIMIT);
	expect_getall_error("4294967297", NULL, NULL, BAD_LIMIT);
}

Test(control_api, getall_cursor)
{
	struct ctl_request r;
	struct err e;

	/* "a/b.png" */
	cr_assert_eq(getall(NULL, NULL, "YS9iLnBuZw", NULL, &r, &e), 0, "%s",
	             e.message);
	cr_assert_eq(r.start_len, 7);
	cr_assert_str_eq(r.start, "a/b.png");
	control_api_request_cleanup(&r);
	/* base64url: '-' and '_' for '+' and '/' ("\xfb\xff" -> "-_8") */
	cr_assert_eq(getall(NULL, NULL, "-_8", NULL, &r, &e), 0, "%s",
	             e.message);
	cr_assert_eq(r.start_len, 2);
	cr_assert_eq(memcmp(r.start, "\xfb\xff", 3), 0);
	control_api_request_cleanup(&r);

	expect_getall_error(NULL, "YS9iLnBuZw==", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "YQ=", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "+_8", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "-/8", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "YWJjZ", NULL, BAD_CURSOR); /* 5 chars */
	expect_getall_error(NULL, "Y", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "YW!j", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "AA", NULL, BAD_CURSOR);   /* "\0" */
	expect_getall_error(NULL, "YQBi", NULL, BAD_CURSOR); /* "a\0b" */
	expect_getall_error(NULL, "YWJj\n", NULL, BAD_CURSOR);
}

/* Cursors with spaces are not ones we made (a '+' in a query string is a
 * space once decoded), and must not decode to an empty or different key. */
Test(control_api, getall_cursor_with_spaces)
{
	expect_getall_error(NULL, "    ", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "YWJj    ", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "    YWJj", NULL, BAD_CURSOR);
	expect_getall_error(NULL, "\t\t\t\tYWJj", NULL, BAD_CURSOR);
}

Test(control_api, getall_cursor_too_long)
{
	/* Longer than the cursor of the longest key encode takes (4 *
	 * CTL_NAME_MAX bytes: 5462 characters), though it would decode. */
	size_t n = 5464;
	char *cursor = malloc(n + 1);

	cr_assert_not_null(cursor);
	memset(cursor, 'Q', n);
	cursor[n] = '\0';
	expect_getall_error(NULL, cursor, NULL, BAD_CURSOR);
	free(cursor);
}

Test(control_api, getall_local)
{
	static const struct {
		const char *v;
		int want;
	} ok[] = {{NULL, 0}, {"0", 0}, {"1", 1}, {"true", 1}, {"false", 0}};
	struct ctl_request r;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(getall(NULL, NULL, NULL, ok[i].v, &r, &e), 0,
		             "local=%s", ok[i].v);
		cr_assert_eq(r.local, ok[i].want, "local=%s", ok[i].v);
		control_api_request_cleanup(&r);
	}
	expect_getall_error(NULL, NULL, "yes", BAD_LOCAL);
	expect_getall_error(NULL, NULL, "", BAD_LOCAL);
	expect_getall_error(NULL, NULL, "2", BAD_LOCAL);
	expect_getall_error(NULL, NULL, "TRUE", BAD_LOCAL);
	expect_getall_error(NULL, NULL, "1 ", BAD_LOCAL);
}

Test(control_api, getall_ignores_the_body)
{
	struct ctl_query q = {NULL, NULL, NULL, NULL};
	struct ctl_request r;
	struct err e;

	err_clear(&e);
	cr_assert_eq(
	    control_api_parse(&r, CTL_GETALL, &q, "{not json", 9, "", &e), 0);
	control_api_request_cleanup(&r);
}

Test(control_api, routes_without_arguments)
{
	static const enum ctl_route plain[] = {
	    CTL_STATUS, CTL_METRICS, CTL_RESCAN, CTL_PAUSE,
	    CTL_RESUME, CTL_FAILED,  CTL_RETRY,
	};
	struct ctl_query q = {"p", "0", "!", "x"};
	struct ctl_request r;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		err_clear(&e);
		cr_assert_eq(
		    control_api_parse(&r, plain[i], &q, "[", 1, "", &e), 0);
		cr_assert_eq(r.route, plain[i]);
		cr_assert_null(r.name);
		cr_assert_null(r.prefix);
		control_api_request_cleanup(&r);
	}
}

/* --- the cursor -------------------------------------------------------- */

static void
round_trip(const char *key, size_t len, const char *want)
{
	char *cur = control_api_cursor_encode(key, len), *back;
	size_t blen = 12345;

	cr_assert_not_null(cur, "len %zu", len);
	if (want != NULL)
		cr_assert_str_eq(cur, want);
	cr_assert_eq(strlen(cur), (len * 4 + 2) / 3, "len %zu", len);
	cr_assert_eq(strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	                         "tuvwxyz0123456789-_"),
	             strlen(cur), "%s", cur);
	cr_assert_eq(control_api_cursor_decode(cur, &back, &blen), 0,
	             "the cursor for %zu bytes does not decode", len);
	cr_assert_eq(blen, len);
	cr_assert_eq(memcmp(back, key, len), 0, "len %zu", len);
	cr_assert_eq(back[len], '\0');
	free(back);
	free(cur);
}

Test(control_api, cursor_known_values)
{
	round_trip("a", 1, "YQ");
	round_trip("ab", 2, "YWI");
	round_trip("abc", 3, "YWJj");
	round_trip("a/b.png", 7, "YS9iLnBuZw");
	round_trip("\xfb\xff", 2, "-_8");
	round_trip("\xfb\xef\xbe", 3, "----");
	round_trip("\xff\xff\xff", 3, "____");
}

Test(control_api, cursor_every_length)
{
	char key[11];
	size_t len, i;

	/* Lengths 1..10 of every remainder mod 3, with bytes that give '-'
	 * and '_'. */
	for (len = 1; len <= 10; len++) {
		for (i = 0; i < len; i++)
			key[i] = (char)(0xf8 + (i + len) % 8);
		round_trip(key, len, NULL);
	}
}

Test(control_api, cursor_binary)
{
	char key[255];
	size_t i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (char)(i + 1); /* 1..255: no NUL */
	round_trip(key, sizeof(key), NULL);
	round_trip(key + 126, 129, NULL); /* 0x7f..0xff */
}

Test(control_api, cursor_empty_and_nul)
{
	char *cur, *back = (char *)1;
	size_t blen;

	/* No key, no cursor: "" is the first page, not a key. */
	cur = control_api_cursor_encode("", 0);
	cr_assert_str_eq(cur, "");
	cr_assert_eq(control_api_cursor_decode(cur, &back, &blen), -1);
	cr_assert_null(back);
	free(cur);
	/* A key with a NUL cannot come back as a C string. */
	cur = control_api_cursor_encode("a\0b", 3);
	cr_assert_str_eq(cur, "YQBi");
	back = (char *)1;
	cr_assert_eq(control_api_cursor_decode(cur, &back, &blen), -1);
	cr_assert_null(back);
	free(cur);
}

/* A key as long as the daemon can hold: S3's 1024 bytes, and the longest
 * encode takes (4 * CTL_NAME_MAX). A cursor encode made must decode. */
Test(control_api, cursor_long_keys)
{
	static const size_t lens[] = {1024, 1536, 1537, 2048, 4096};
	char *key = malloc(4096), *cur;
	size_t i;

	cr_assert_not_null(key);
	for (i = 0; i < 4096; i++)
		key[i] = (char)('a' + i % 26);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		round_trip(key, lens[i], NULL);
	cur = control_api_cursor_encode(key, 4097);
	cr_assert_null(cur, "longer than encode takes");
	free(key);
}

/* --- names that may not be UTF-8 ---------------------------------------- */

static void
expect_name_json(const char *in, size_t len, const char *want, size_t want_len)
{
	json_t *j = control_api_json_name(in, len);

	cr_assert_not_null(j);
	cr_assert(json_is_string(j));
	cr_assert_eq(json_string_length(j), want_len, "%zu bytes in", len);
	cr_assert_eq(memcmp(json_string_value(j), want, want_len), 0);
	json_decref(j);
}

#define NAME(in, want)                                                         \
	expect_name_json(in, sizeof(in) - 1, want, sizeof(want) - 1)
#define FFFD "\xef\xbf\xbd"

Test(control_api, json_name_valid)
{
	NAME("", "");
	NAME("a/b.png", "a/b.png");
	NAME("\xc3\xa9t\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80",
	     "\xc3\xa9t\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80");
	NAME("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	NAME("a\0b", "a\0b");
}

Test(control_api, json_name_invalid)
{
	NAME("\xff", FFFD);
	NAME("a\xff"
	     "b",
	     "a" FFFD "b");
	NAME("\xfe\xff", FFFD FFFD);
	NAME("\x80", FFFD);
	/* truncated sequences: each byte is replaced */
	NAME("\xc3", FFFD);
	NAME("x\xe2\x82", "x" FFFD FFFD);
	NAME("\xf0\x9f\x98", FFFD FFFD FFFD);
	NAME("\xe2\x82"
	     "a",
	     FFFD FFFD "a");
	/* overlong forms, surrogates, beyond U+10FFFF */
	NAME("\xc0\xaf", FFFD FFFD);
	NAME("\xc1\xbf", FFFD FFFD);
	NAME("\xe0\x80\xaf", FFFD FFFD FFFD);
	NAME("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD);
	NAME("\xed\xa0\x80", FFFD FFFD FFFD);
	NAME("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	/* valid sequences around invalid bytes are kept */
	NAME("\xc3\xa9\xff\xc3\xa9", "\xc3\xa9" FFFD "\xc3\xa9");
}

Test(control_api, json_name_dumps)
{
	json_t *j = control_api_json_name("a\"\xff\n", 4);
	char *s = json_dumps(j, JSON_ENCODE_ANY);

	cr_assert_str_eq(s, "\"a\\\"\xef\xbf\xbd\\n\"");
	free(s);
	json_decref(j);
}

/* --- error bodies ------------------------------------------------------ */

Test(control_api, error_body)
{
	char *s;

	s = control_api_error_body("Item not found");
	cr_assert_str_eq(s, "{\"error\":\"Item not found\"}");
	free(s);
	s = control_api_error_body("say \"hi\"\nnow\t\\ \x01");
	cr_assert_str_eq(s,
	                 "{\"error\":\"say \\\"hi\\\"\\nnow\\t\\\\ \\u0001\"}");
	free(s);
	s = control_api_error_body("");
	cr_assert_str_eq(s, "{\"error\":\"\"}");
	free(s);
	s = control_api_error_body("\xc3\xa9");
	cr_assert_str_eq(s, "{\"error\":\"\xc3\xa9\"}");
	free(s);
	/* not UTF-8: a generic message rather than no answer */
	s = control_api_error_body("bad \xff name");
	cr_assert_str_eq(s, "{\"error\":\"invalid request\"}");
	free(s);
}

/* --- /url ----------------------------------------------------------------- */

static int
parse_url(const char *body, struct ctl_request *r, struct err *e)
{
	err_clear(e);
	return control_api_parse(r, CTL_URL, NULL, body, strlen(body), "", e);
}

Test(control_api, url_expires)
{
	static const struct {
		const char *body;
		int expires; /* 0: refused */
	} cases[] = {
	    {"{\"FileName\":\"a.png\"}", 3600},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":null}", 3600},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":1}", 1},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":604800}", 604800},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":0}", 0},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":-5}", 0},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":604801}", 0},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":9223372036854775807}", 0},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":60.0}", 0},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":\"60\"}", 0},
	    {"{\"FileName\":\"a.png\",\"ExpiresIn\":true}", 0},
	};
	static const char other[] = "{\"FileName\":\"a\",\"ExpiresIn\":0}";
	struct ctl_request r;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse_url(cases[i].body, &r, &e);

		if (cases[i].expires == 0) {
			cr_assert_eq(rc, -1, "%s", cases[i].body);
			cr_assert(strstr(e.message, "ExpiresIn") != NULL, "%s",
			          e.message);
			control_api_request_cleanup(&r);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: %s", cases[i].body, e.message);
		cr_assert_eq(r.expires, cases[i].expires, "%s", cases[i].body);
		cr_assert_str_eq(r.name, "a.png");
		cr_assert_str_eq(r.path, "a.png");
		control_api_request_cleanup(&r);
	}
	/* the name is checked as for /getitem */
	cr_assert_eq(
	    parse_url("{\"FileName\":\"../x\",\"ExpiresIn\":5}", &r, &e), -1);
	cr_assert_str_eq(e.message, "FileName escapes the watch root");
	control_api_request_cleanup(&r);
	/* other routes take no ExpiresIn */
	err_clear(&e);
	cr_assert_eq(control_api_parse(&r, CTL_GETITEM, NULL, other,
	                               strlen(other), "", &e),
	             0);
	cr_assert_eq(r.expires, 0);
	control_api_request_cleanup(&r);
}
