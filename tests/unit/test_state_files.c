/*
 * test_state_files: the `files` table: rows kept byte for byte, prefix
 * walks, failures and counts, walks that stop or come back in, and
 * state_file_synced.
 */
#include "test_state.h"

/* cppcheck-suppress unknownMacro */
TestSuite(state_files, .init = setup, .fini = teardown);

static int
collect_keys(const struct state_file *f, void *arg)
{
	struct buf *b = arg;

	buf_puts(b, f->key);
	buf_putc(b, '|');
	return 0;
}

/* The paths under prefix, as collect writes them, in a static buffer. */
static const char *
under(struct state *s, const char *prefix, size_t len)
{
	static char out[4096];
	struct buf b;
	struct err e;

	buf_init(&b, 0);
	err_clear(&e);
	cr_assert_eq(state_files_under(s, prefix, len, collect, &b, &e), 0,
	             "under: %s", e.message);
	snprintf(out, sizeof(out), "%s", buf_cstr(&b));
	buf_cleanup(&b);
	return out;
}

Test(state_files, put_get_upsert_delete)
{
	struct state *s = open_ok();
	struct state_file f, g;
	struct err e;

	put(s, "dir/a.jpg", 9, "pre/dir/a.jpg", 1234);
	err_clear(&e);
	cr_assert_eq(state_file_get(s, "dir/a.jpg", 9, &f, &e), 1);
	cr_assert_eq(f.path_len, 9);
	cr_assert_str_eq(f.path, "dir/a.jpg");
	cr_assert_str_eq(f.key, "pre/dir/a.jpg");
	cr_assert_eq(f.size, 1234);
	cr_assert_eq(f.mtime_ns, 1700000000123456789LL);
	cr_assert_eq(f.ctime_ns, 1700000001000000000LL);
	cr_assert_eq(f.inode, 0xfedcba9876543210ULL);
	cr_assert_eq(strlen(f.sha256), 64);
	cr_assert_str_eq(f.etag, "\"etag-9\"");
	cr_assert_str_eq(f.type, "image/jpeg");
	cr_assert_eq(f.width, 640);
	cr_assert_eq(f.height, 480);
	cr_assert_eq(f.failed, 0);
	cr_assert_null(f.error);
	cr_assert_eq(f.attempts, 0);
	/* 2026-11-21T10:00:00.123Z */
	cr_assert_eq(strlen(f.synced_at), 24, "%s", f.synced_at);
	cr_assert_eq(f.synced_at[10], 'T');
	cr_assert_eq(f.synced_at[19], '.');
	cr_assert_eq(f.synced_at[23], 'Z');

	/* Upsert: the new values win; a given synced_at is kept. */
	f.size = 99;
	snprintf(f.etag, sizeof(f.etag), "\"new\"");
	snprintf(f.synced_at, sizeof(f.synced_at), "2026-11-21T10:00:00.123Z");
	cr_assert_eq(state_file_put(s, &f, &e), 0, "%s", e.message);
	cr_assert_eq(state_file_get(s, "dir/a.jpg", 9, &g, &e), 1);
	cr_assert_eq(g.size, 99);
	cr_assert_str_eq(g.etag, "\"new\"");
	cr_assert_str_eq(g.synced_at, "2026-11-21T10:00:00.123Z");
	state_file_cleanup(&g);
	state_file_cleanup(&f);

	/* Not found, then deleted (twice: idempotent). */
	cr_assert_eq(state_file_get(s, "dir/a.jp", 8, &f, &e), 0);
	cr_assert_null(f.path);
	cr_assert_eq(state_file_delete(s, "dir/a.jpg", 9, &e), 0);
	cr_assert_eq(state_file_delete(s, "dir/a.jpg", 9, &e), 0);
	cr_assert_eq(state_file_get(s, "dir/a.jpg", 9, &f, &e), 0);

	/* Bad arguments. */
	memset(&f, 0, sizeof(f));
	f.path = "x";
	f.path_len = 1;
	cr_assert_eq(state_file_put(s, &f, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	cr_assert_eq(state_file_get(s, "", 0, &g, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	state_close(s);
}

Test(state_files, exact_bytes_newlines_and_invalid_utf8)
{
	static const char nl[] = "dir/line1\nline2.jpg";
	static const char bad[] = "dir/\xff\xfe\x80.jpg";
	static const char trailing_nl[] = "dir/a.jpg\n";
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	struct buf b;

	put(s, nl, sizeof(nl) - 1, "k-nl", 1);
	put(s, bad, sizeof(bad) - 1, "k-bad", 2);
	put(s, "dir/a.jpg", 9, "k-plain", 3);
	put(s, trailing_nl, sizeof(trailing_nl) - 1, "k-trailing", 4);
	err_clear(&e);

	cr_assert_eq(state_file_get(s, bad, sizeof(bad) - 1, &f, &e), 1);
	cr_assert_eq(f.path_len, sizeof(bad) - 1);
	cr_assert_eq(memcmp(f.path, bad, sizeof(bad) - 1), 0);
	cr_assert_str_eq(f.key, "k-bad");
	state_file_cleanup(&f);

	cr_assert_eq(state_file_get(s, nl, sizeof(nl) - 1, &f, &e), 1);
	cr_assert_eq(memcmp(f.path, nl, sizeof(nl) - 1), 0);
	state_file_cleanup(&f);

	/* "dir/a.jpg" and "dir/a.jpg\n" are different files. */
	cr_assert_eq(state_file_get(s, "dir/a.jpg", 9, &f, &e), 1);
	cr_assert_str_eq(f.key, "k-plain");
	state_file_cleanup(&f);
	cr_assert_eq(
	    state_file_get(s, trailing_nl, sizeof(trailing_nl) - 1, &f, &e), 1);
	cr_assert_str_eq(f.key, "k-trailing");
	state_file_cleanup(&f);

	/* Bytewise order; \xff sorts last. */
	buf_init(&b, 0);
	cr_assert_eq(state_files_each(s, collect_keys, &b, &e), 0);
	cr_assert_str_eq(buf_cstr(&b), "k-plain|k-trailing|k-nl|k-bad|");
	buf_cleanup(&b);

	/* Kept across a reopen too. */
	state_close(s);
	s = open_ok();
	cr_assert_eq(state_file_get(s, bad, sizeof(bad) - 1, &f, &e), 1);
	cr_assert_eq(memcmp(f.path, bad, sizeof(bad) - 1), 0);
	state_file_cleanup(&f);
	state_close(s);
}

Test(state_files, prefix_is_not_a_pattern)
{
	struct state *s = open_ok();
	static const char *const paths[] = {
	    "a%/x", "a%b/x",  "a_/x", "ab/x",  "a*/x",
	    "a[/x", "a[b]/x", "a?/x", "a\\/x", "aa/x",
	};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		puts0(s, paths[i]);
	cr_assert_str_eq(under(s, "a%", 2), "a%/x|");
	cr_assert_str_eq(under(s, "a_", 2), "a_/x|");
	cr_assert_str_eq(under(s, "a*", 2), "a*/x|");
	cr_assert_str_eq(under(s, "a[", 2), "a[/x|");
	cr_assert_str_eq(under(s, "a?", 2), "a?/x|");
	cr_assert_str_eq(under(s, "a\\", 2), "a\\/x|");
	cr_assert_str_eq(under(s, "a", 1), "");
	state_close(s);
}

Test(state_files, prefix_siblings)
{
	struct state *s = open_ok();
	static const char *const paths[] = {
	    "a/b",  "a/bc",    "a/b/c", "a/b.jpg", "a/b0",
	    "a/b!", "a/b/d/e", "a/a",   "b",       "a/b/",
	};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		puts0(s, paths[i]);
	/* "a/b/" is a (strange) path of its own, under a/b/. */
	cr_assert_str_eq(under(s, "a/b", 3), "a/b|a/b/|a/b/c|a/b/d/e|");
	cr_assert_str_eq(under(s, "a/b/", 4), "a/b|a/b/|a/b/c|a/b/d/e|");
	cr_assert_str_eq(under(s, "a/bc", 4), "a/bc|");
	cr_assert_str_eq(under(s, "a/b/d", 5), "a/b/d/e|");
	cr_assert_str_eq(under(s, "a/x", 3), "");
	cr_assert_str_eq(
	    under(s, "", 0),
	    "a/a|a/b|a/b!|a/b.jpg|a/b/|a/b/c|a/b/d/e|a/b0|a/bc|b|");
	state_close(s);
}

Test(state_files, prefix_with_invalid_utf8)
{
	struct state *s = open_ok();

	put(s, "\xff/a", 3, "k1", 1);
	put(s, "\xff\xfe/a", 4, "k2", 1);
	put(s, "\xff", 1, "k3", 1);
	cr_assert_str_eq(under(s, "\xff", 1), "\xff|\xff/a|");
	state_close(s);
}

Test(state_files, failed_marking_listing_and_counts)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	struct buf b;
	uint64_t files, failed, bytes;

	put(s, "ok1", 3, "ok1", 100);
	put(s, "ok2", 3, "ok2", 50);
	put(s, "was-synced", 10, "k/was-synced", 7);
	err_clear(&e);
	cr_assert_eq(state_file_fail(s, "was-synced", 10, "AccessDenied", &e),
	             0, "%s", e.message);
	cr_assert_eq(state_file_fail(s, "was-synced", 10, "SlowDown", &e), 0);
	cr_assert_eq(
	    state_file_fail(s, "never", 5, "open: Permission denied", &e), 0);
	cr_assert_eq(state_file_fail(s, "no-reason", 9, NULL, &e), 0);

	cr_assert_eq(state_file_get(s, "was-synced", 10, &f, &e), 1);
	cr_assert_eq(f.failed, 1);
	cr_assert_str_eq(f.error, "SlowDown");
	cr_assert_eq(f.attempts, 2);
	cr_assert_str_eq(f.key, "k/was-synced"); /* kept */
	cr_assert_eq(f.size, 7);
	cr_assert_eq(strlen(f.failed_at), 24);
	cr_assert_neq(f.synced_at[0], '\0');
	state_file_cleanup(&f);

	cr_assert_eq(state_file_get(s, "never", 5, &f, &e), 1);
	cr_assert_eq(f.failed, 1);
	cr_assert_eq(f.attempts, 1);
	cr_assert_str_eq(f.key, "");
	state_file_cleanup(&f);

	buf_init(&b, 0);
	cr_assert_eq(state_failed_each(s, collect, &b, &e), 0);
	cr_assert_str_eq(buf_cstr(&b), "never|no-reason|was-synced|");
	buf_cleanup(&b);

	cr_assert_eq(state_count(s, &files, &failed, &bytes, &e), 0);
	cr_assert_eq(files, 2);
	cr_assert_eq(failed, 3);
	cr_assert_eq(bytes, 150);

	/* Success clears the failure. */
	put(s, "was-synced", 10, "k/was-synced", 8);
	cr_assert_eq(state_file_get(s, "was-synced", 10, &f, &e), 1);
	cr_assert_eq(f.failed, 0);
	cr_assert_null(f.error);
	cr_assert_eq(f.attempts, 0);
	cr_assert_str_eq(f.failed_at, "");
	state_file_cleanup(&f);
	cr_assert_eq(state_count(s, &files, &failed, &bytes, &e), 0);
	cr_assert_eq(files, 3);
	cr_assert_eq(failed, 2);
	cr_assert_eq(bytes, 158);
	state_close(s);
}

Test(state_files, count_empty)
{
	struct state *s = open_ok();
	struct err e;
	uint64_t files = 9, failed = 9, bytes = 9, n = 9;

	cr_assert_eq(state_count(s, &files, &failed, &bytes, &e), 0);
	cr_assert_eq(files + failed + bytes, 0);
	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 0);
	state_close(s);
}

static int
stop_after_two(const struct state_file *f, void *arg)
{
	int *n = arg;

	(void)f;
	return ++*n == 2;
}

struct nested {
	struct state *s;
	struct buf b;
};

/* Comes back into the state module from inside a walk, with the same
 * query as the walk and with writes. */
static int
nested_walk(const struct state_file *f, void *arg)
{
	struct nested *n = arg;
	struct state_file g;
	struct err e;

	err_clear(&e);
	cr_assert_eq(state_files_each(n->s, collect, &n->b, &e), 0, "%s",
	             e.message);
	cr_assert_eq(state_file_get(n->s, f->path, f->path_len, &g, &e), 1);
	state_file_cleanup(&g);
	cr_assert_eq(state_file_fail(n->s, f->path, f->path_len, "x", &e), 0,
	             "%s", e.message);
	buf_putc(&n->b, '#');
	return 0;
}

Test(state_files, walks_stop_and_nest)
{
	struct state *s = open_ok();
	struct nested n;
	struct err e;
	int count = 0;

	puts0(s, "1");
	puts0(s, "2");
	puts0(s, "3");
	err_clear(&e);
	cr_assert_eq(state_files_each(s, stop_after_two, &count, &e), 1);
	cr_assert_eq(count, 2);

	n.s = s;
	buf_init(&n.b, 0);
	cr_assert_eq(state_files_each(s, nested_walk, &n, &e), 0, "%s",
	             e.message);
	cr_assert_str_eq(buf_cstr(&n.b), "1|2|3|#1|2|3|#1|2|3|#");
	buf_cleanup(&n.b);
	state_close(s);
}

static void
fill_file(struct state_file *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	f->path = (char *)path;
	f->path_len = strlen(path);
	f->key = (char *)path;
	f->size = 30000;
	f->mtime_ns = 1700000000123456789LL;
	snprintf(f->sha256, sizeof(f->sha256), "%064d", 5);
	snprintf(f->etag, sizeof(f->etag), "\"e\"");
	snprintf(f->type, sizeof(f->type), "image/jpeg");
}

Test(state_files, file_synced_clears_its_intents_with_the_row)
{
	struct state *s = open_ok();
	struct intents_seen seen;
	struct state_file f, got;
	struct err e;
	int64_t a, b, c, ids[4];
	uint64_t n;

	a = add_intent(s, STATE_OP_UPLOAD, "x.jpg", "x.jpg", NULL, NULL);
	b = add_intent(s, STATE_OP_UPLOAD, "y.jpg", "y.jpg", NULL, NULL);
	c = add_intent(s, STATE_OP_DELETE, "x.jpg", "x.jpg", NULL, NULL);
	fill_file(&f, "x.jpg");
	ids[0] = a;
	ids[1] = 0; /* skipped, as are negative ids */
	ids[2] = c;
	ids[3] = -1;
	err_clear(&e);
	cr_assert_eq(state_file_synced(s, &f, ids, 4, &e), 0, "%s", e.message);
	cr_assert_eq(state_file_get(s, "x.jpg", 5, &got, &e), 1);
	cr_assert_eq(got.size, 30000);
	cr_assert_not(got.failed);
	state_file_cleanup(&got);
	memset(&seen, 0, sizeof(seen));
	cr_assert_eq(state_intents_each(s, collect_intent, &seen, &e), 0);
	cr_assert_eq(seen.n, 1);
	cr_assert_eq(seen.ids[0], b);
	seen_free(&seen);

	/* No intents: a plain put. */
	fill_file(&f, "z.jpg");
	cr_assert_eq(state_file_synced(s, &f, NULL, 0, &e), 0, "%s", e.message);
	cr_assert_eq(state_file_get(s, "z.jpg", 5, &got, &e), 1);
	state_file_cleanup(&got);

	/* A row that cannot be written: nothing changes, and the connection
	 * is not left inside a transaction. */
	ids[0] = b;
	f.key = NULL;
	cr_assert_eq(state_file_synced(s, &f, ids, 1, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(state_begin(s, &e), 0, "%s", e.message);
	state_rollback(s);

	/* Inside a batch it is part of the batch. */
	fill_file(&f, "y.jpg");
	cr_assert_eq(state_begin(s, &e), 0, "%s", e.message);
	cr_assert_eq(state_file_synced(s, &f, ids, 1, &e), 0, "%s", e.message);
	state_rollback(s);
	cr_assert_eq(state_file_get(s, "y.jpg", 5, &got, &e), 0);
	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(state_begin(s, &e), 0, "%s", e.message);
	cr_assert_eq(state_file_synced(s, &f, ids, 1, &e), 0, "%s", e.message);
	cr_assert_eq(state_commit(s, &e), 0, "%s", e.message);
	state_close(s);

	s = open_ok();
	cr_assert_eq(state_file_get(s, "y.jpg", 5, &got, &e), 1);
	state_file_cleanup(&got);
	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 0);
	state_close(s);
}
