/*
 * test_web: the gallery's pure parts. web_session: a login link works
 * once and only in time, sessions expire, the CSRF token is the session's
 * own, the oldest make room. web_query: the listing's arguments and its
 * cursor, upload names. netaddr: web.listen's addresses and which of them
 * other machines reach.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "web_query.h"
#include "web_session.h"

static struct web_sessions *
sessions(long ttl)
{
	struct err e;
	struct web_sessions *w;

	err_clear(&e);
	w = web_sessions_new(ttl, &e);
	cr_assert_not_null(w, "%s", e.message);
	return w;
}

static void
login(struct web_sessions *w, long uid, time_t now,
      char token[WEB_TOKEN_LEN + 1])
{
	struct err e;
	size_t i;

	err_clear(&e);
	cr_assert_eq(web_sessions_login(w, uid, now, token, &e), 0);
	cr_assert_eq(strlen(token), WEB_TOKEN_LEN);
	for (i = 0; i < WEB_TOKEN_LEN; i++)
		cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
		                 "stuvwxyz0123456789-_",
		                 token[i]) != NULL);
}

Test(web_session, a_login_link_works_once)
{
	struct web_sessions *w = sessions(60);
	char token[WEB_TOKEN_LEN + 1], other[WEB_TOKEN_LEN + 1];
	const struct web_session *s;
	char id[WEB_TOKEN_LEN + 1], csrf[WEB_TOKEN_LEN + 1];
	struct err e;

	err_clear(&e);
	login(w, 1000, 100, token);
	login(w, 1001, 100, other);
	cr_assert_str_neq(token, other);
	s = web_sessions_open(w, token, 101, &e);
	cr_assert_not_null(s);
	cr_assert_eq(s->uid, 1000);
	cr_assert_eq(s->serial, 1);
	cr_assert_eq(s->expires, 161);
	cr_assert_str_neq(s->id, token);
	cr_assert_str_neq(s->id, s->csrf);
	memcpy(id, s->id, sizeof(id));
	memcpy(csrf, s->csrf, sizeof(csrf));
	cr_assert_null(web_sessions_open(w, token, 101, &e), "once only");
	cr_assert_not_null(web_sessions_find(w, id, 160));
	cr_assert(web_session_csrf_ok(web_sessions_find(w, id, 160), csrf));
	cr_assert_not(web_session_csrf_ok(web_sessions_find(w, id, 160), id),
	              "the cookie is not the CSRF token");
	cr_assert_not(web_session_csrf_ok(web_sessions_find(w, id, 160), NULL));
	cr_assert_not(web_session_csrf_ok(web_sessions_find(w, id, 160), ""));
	cr_assert_null(web_sessions_find(w, id, 161), "expired");
	cr_assert_null(web_sessions_find(w, id, 100), "and dropped");
	cr_assert_null(web_sessions_find(w, NULL, 100));
	cr_assert_null(web_sessions_find(w, "", 100));
	cr_assert_null(web_sessions_open(w, other, 100 + WEB_LOGIN_TTL, &e),
	               "a link past its time");
	web_sessions_free(w);
}

Test(web_session, a_prefix_or_a_longer_token_is_not_the_token)
{
	struct web_sessions *w = sessions(60);
	char token[WEB_TOKEN_LEN + 1], longer[WEB_TOKEN_LEN + 2];
	struct err e;

	err_clear(&e);
	login(w, 1, 0, token);
	memcpy(longer, token, WEB_TOKEN_LEN);
	longer[WEB_TOKEN_LEN] = 'x';
	longer[WEB_TOKEN_LEN + 1] = '\0';
	cr_assert_null(web_sessions_open(w, longer, 1, &e));
	token[WEB_TOKEN_LEN - 1] = '\0';
	cr_assert_null(web_sessions_open(w, token, 1, &e));
	web_sessions_free(w);
}

Test(web_session, logout_and_room)
{
	struct web_sessions *w = sessions(1000);
	char token[WEB_TOKEN_LEN + 1] = "", first[WEB_TOKEN_LEN + 1] = "";
	const struct web_session *s;
	struct err e;
	unsigned i;

	err_clear(&e);
	for (i = 0; i < WEB_MAX_LOGINS + 1; i++)
		login(w, 1, 0, i == 0 ? first : token);
	cr_assert_null(web_sessions_open(w, first, 1, &e),
	               "the oldest unused link made room");
	s = web_sessions_open(w, token, 1, &e);
	cr_assert_not_null(s);
	memcpy(first, s->id, sizeof(first));
	for (i = 0; i < WEB_MAX_SESSIONS; i++) {
		login(w, 1, 2, token);
		cr_assert_not_null(web_sessions_open(w, token, 2, &e));
	}
	cr_assert_null(web_sessions_find(w, first, 3),
	               "the oldest session made room");
	s = web_sessions_find(w, token, 3);
	cr_assert_null(s, "a used link is no session id");
	login(w, 1, 3, token);
	s = web_sessions_open(w, token, 3, &e);
	memcpy(first, s->id, sizeof(first));
	web_sessions_close(w, first);
	cr_assert_null(web_sessions_find(w, first, 4));
	web_sessions_set_ttl(w, 5);
	login(w, 1, 10, token);
	cr_assert_eq(web_sessions_open(w, token, 10, &e)->expires, 15);
	web_sessions_free(w);
}

static int
list(const char *dir, const char *q, const char *type, const char *cursor,
     const char *limit, struct state_gallery_query *out, char **after)
{
	struct web_list_args a = {dir, q, type, cursor, limit};
	const char *why = NULL;
	int rc = web_query_list(&a, out, after, &why);

	cr_assert((rc == 0) == (why == NULL));
	return rc;
}

Test(web_query, list_arguments)
{
	struct state_gallery_query q;
	char *after;

	cr_assert_eq(list(NULL, NULL, NULL, NULL, NULL, &q, &after), 0);
	cr_assert_eq(q.dir_len, 0);
	cr_assert_eq(q.limit, WEB_LIST_DEFAULT);
	cr_assert_null(q.search);
	cr_assert_null(q.after_path);
	cr_assert_eq(list("a/b/", "", "", "", "500", &q, &after), 0);
	cr_assert_null(q.search, "an empty search is none");
	cr_assert_null(q.type);
	cr_assert_eq(q.limit, 500);
	cr_assert_str_eq(q.dir, "a/b/");
	cr_assert_eq(list("a/b/", "x", "image/png", NULL, "1", &q, &after), 0);
	cr_assert_str_eq(q.search, "x");
	cr_assert_str_eq(q.type, "image/png");
	{
		static const char *const bad_dirs[] = {
		    "a", "/a/", "a//", "./", "../",  "a/../", "a/./",
		    "/", "//",  ".",   "..", "a/..", NULL,
		};
		const char *const *d;

		for (d = bad_dirs; *d != NULL; d++)
			cr_assert_eq(
			    list(*d, NULL, NULL, NULL, NULL, &q, &after), -1,
			    "%s", *d);
	}
	cr_assert_eq(list("", NULL, NULL, NULL, "0", &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, NULL, "501", &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, NULL, "-1", &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, NULL, "1x", &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, NULL, " 1", &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, "12", NULL, &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, ".YQ", NULL, &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, "1.", NULL, &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, "1.!!", NULL, &q, &after), -1);
	cr_assert_eq(list("", NULL, NULL, "x1.YQ", NULL, &q, &after), -1);
	cr_assert_null(after);
}

Test(web_query, the_cursor_comes_back)
{
	static const char path[] = "a/\xff\x01z.jpg";
	struct state_gallery_query q;
	char *c =
	    web_query_cursor(-1700000000123456789LL, path, sizeof(path) - 1);
	char *after;

	cr_assert_not_null(c);
	cr_assert_eq(list("", NULL, NULL, c, NULL, &q, &after), 0, "%s", c);
	cr_assert_eq(q.after_mtime_ns, -1700000000123456789LL);
	cr_assert_eq(q.after_len, sizeof(path) - 1);
	cr_assert_eq(memcmp(q.after_path, path, sizeof(path) - 1), 0);
	cr_assert_eq(q.after_path, after);
	free(after);
	free(c);
}

Test(web_query, upload_names)
{
	static const char *const good[] = {
	    "x.png",   "a/b/x.png", "a b/<img src=x>.png", "é.jpg", ".x.png",
	    "..x.png", NULL,
	};
	static const char *const bad[] = {
	    "",      "/x.png", "a//x.png", "./x.png", "../x.png", "a/../x",
	    "a/./x", "a/",     "..",       ".",       "\xff.png", NULL,
	};
	const char *const *n;

	for (n = good; *n != NULL; n++)
		cr_assert_null(web_query_upload_name(*n), "%s", *n);
	for (n = bad; *n != NULL; n++)
		cr_assert_not_null(web_query_upload_name(*n), "%s", *n);
	cr_assert_not_null(web_query_upload_name(NULL));
}

static int
addr(const char *s, struct netaddr *a)
{
	const char *why = NULL;
	int rc = netaddr_parse(s, a, &why);

	cr_assert((rc == 0) == (why == NULL), "%s", s);
	return rc;
}

Test(netaddr, parse_and_loopback)
{
	static const struct {
		const char *s;
		int loopback;
		unsigned port;
	} good[] = {
	    {"127.0.0.1:8280", 1, 8280},
	    {"localhost:1", 1, 1},
	    {"127.9.9.9:65535", 1, 65535},
	    {"[::1]:8280", 1, 8280},
	    {"0.0.0.0:80", 0, 80},
	    {"192.168.1.2:443", 0, 443},
	    {"[::]:80", 0, 80},
	    {"[::ffff:127.0.0.1]:80", 1, 80},
	    {"[::ffff:10.0.0.1]:80", 0, 80},
	};
	static const char *const bad[] = {
	    "",
	    "127.0.0.1",
	    "127.0.0.1:",
	    "127.0.0.1:0",
	    ":80",
	    "127.0.0.1:65536",
	    "127.0.0.1:8x",
	    "127.0.0.1:-1",
	    "::1:80",
	    "[::1]",
	    "[::1]80",
	    "[127.0.0.1]:80",
	    "host.example:80",
	    "[zz]:80",
	    "1.2.3:80",
	    "127.0.0.1: 80",
	    NULL,
	};
	struct netaddr a;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(addr(good[i].s, &a), 0, "%s", good[i].s);
		cr_assert_eq(netaddr_is_loopback(&a), good[i].loopback, "%s",
		             good[i].s);
		cr_assert_eq(netaddr_port(&a), good[i].port, "%s", good[i].s);
	}
	for (i = 0; bad[i] != NULL; i++)
		cr_assert_eq(addr(bad[i], &a), -1, "%s", bad[i]);
}
