#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "state.h"

static char tmpdir[64];
static char dbpath[192];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/imgsync-state.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/state.db", tmpdir);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static void
teardown(void)
{
	/* Read-only test directories first need their write bit back. */
	chmod(tmpdir, 0700);
	if (tmpdir[0] != '\0') {
		char sub[128];

		snprintf(sub, sizeof(sub), "%s/ro", tmpdir);
		chmod(sub, 0700);
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
}

/* cppcheck-suppress unknownMacro */
TestSuite(state, .init = setup, .fini = teardown);

static struct state *
open_ok(void)
{
	struct err e;
	struct state *s;

	err_clear(&e);
	s = state_open(dbpath, &e);
	cr_assert_not_null(s, "state_open: %s", e.message);
	return s;
}

static void
put(struct state *s, const char *path, size_t len, const char *key,
    uint64_t size)
{
	struct state_file f;
	struct err e;

	memset(&f, 0, sizeof(f));
	f.path = (char *)path;
	f.path_len = len;
	f.key = (char *)key;
	f.size = size;
	f.mtime_ns = 1700000000123456789LL;
	f.ctime_ns = 1700000001000000000LL;
	f.inode = 0xfedcba9876543210ULL; /* above INT64_MAX on purpose */
	snprintf(f.sha256, sizeof(f.sha256), "%064d", 7);
	snprintf(f.etag, sizeof(f.etag), "\"etag-%zu\"", len);
	snprintf(f.type, sizeof(f.type), "image/jpeg");
	f.width = 640;
	f.height = 480;
	err_clear(&e);
	cr_assert_eq(state_file_put(s, &f, &e), 0, "put: %s", e.message);
}

static void
puts0(struct state *s, const char *path)
{
	put(s, path, strlen(path), path, strlen(path));
}

/* Collects the paths a walk yields, each followed by '|'. */
static int
collect(const struct state_file *f, void *arg)
{
	struct buf *b = arg;

	buf_append(b, f->path, f->path_len);
	buf_putc(b, '|');
	return 0;
}

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

static int64_t
query_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
	             "%s", sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static int
query_is(const char *sql, const char *want)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int same;

	cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
	             "%s", sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	same = strcmp((const char *)sqlite3_column_text(st, 0), want) == 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return same;
}

static void
raw_exec(const char *sql)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	             sqlite3_errmsg(db));
	sqlite3_close(db);
}

Test(state, schema_created_and_kept_on_reopen)
{
	struct state *s;
	struct state_file f;
	struct stat sb;
	struct err e;
	char wal[256];

	s = open_ok();
	cr_assert_eq(stat(dbpath, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
	puts0(s, "a.jpg");
	/* The WAL gets the database's mode, not the umask's. */
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	cr_assert_eq(stat(wal, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "wal mode %o", sb.st_mode & 0777);
	state_close(s);

	cr_assert_eq(query_int("PRAGMA user_version"), STATE_SCHEMA_VERSION);
	cr_assert_eq(query_int("PRAGMA application_id"), STATE_APPLICATION_ID);
	/* journal_mode=WAL is persistent: any new connection sees it. */
	cr_assert(query_is("PRAGMA journal_mode", "wal"));

	s = open_ok();
	err_clear(&e);
	cr_assert_eq(state_file_get(s, "a.jpg", 5, &f, &e), 1, "%s", e.message);
	cr_assert_str_eq(f.key, "a.jpg");
	state_file_cleanup(&f);
	state_close(s);
	cr_assert_eq(query_int("PRAGMA user_version"), STATE_SCHEMA_VERSION);
}

Test(state, empty_existing_file_gets_schema)
{
	struct state *s;
	int fd;

	fd = open(dbpath, O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	close(fd);
	s = open_ok();
	puts0(s, "x");
	state_close(s);
	cr_assert_eq(query_int("SELECT count(*) FROM files"), 1);
}

Test(state, missing_parent_directory)
{
	struct err e;
	char path[160];

	snprintf(path, sizeof(path), "%s/nope/state.db", tmpdir);
	err_clear(&e);
	cr_assert_null(state_open(path, &e));
	cr_assert_eq(e.kind, ERR_SYS);
	cr_assert_eq(e.sys_errno, ENOENT);
	cr_assert_not_null(strstr(e.message, path), "%s", e.message);
}

Test(state, put_get_upsert_delete)
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

Test(state, exact_bytes_newlines_and_invalid_utf8)
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

Test(state, prefix_is_not_a_pattern)
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

Test(state, prefix_siblings)
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

Test(state, prefix_with_invalid_utf8)
{
	struct state *s = open_ok();

	put(s, "\xff/a", 3, "k1", 1);
	put(s, "\xff\xfe/a", 4, "k2", 1);
	put(s, "\xff", 1, "k3", 1);
	cr_assert_str_eq(under(s, "\xff", 1), "\xff|\xff/a|");
	state_close(s);
}

Test(state, file_rename)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	uint64_t n;

	put(s, "old.jpg", 7, "p/old.jpg", 10);
	put(s, "new.jpg", 7, "p/new.jpg", 20); /* stale: replaced */
	err_clear(&e);
	cr_assert_eq(
	    state_file_rename(s, "old.jpg", 7, "new.jpg", 7, "p/new.jpg", &e),
	    1, "%s", e.message);
	cr_assert_eq(state_file_get(s, "old.jpg", 7, &f, &e), 0);
	cr_assert_eq(state_file_get(s, "new.jpg", 7, &f, &e), 1);
	cr_assert_eq(f.size, 10);
	cr_assert_str_eq(f.key, "p/new.jpg");
	state_file_cleanup(&f);
	cr_assert_eq(state_count(s, &n, NULL, NULL, &e), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(state_file_rename(s, "nothere", 7, "x", 1, "x", &e), 0);
	state_close(s);
}

Test(state, dir_rename_moves_everything_under_it)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	struct buf b;
	size_t moved;

	put(s, "a/b/c.jpg", 9, "p/a/b/c.jpg", 1);
	put(s, "a/b/d/e.jpg", 11, "p/a/b/d/e.jpg", 2);
	put(s, "a/b/\xff\n.jpg", 10, "p/a/b/odd", 3);
	put(s, "a/b%/z.jpg", 10, "p/a/b%/z.jpg", 4);
	put(s, "a/bc/z.jpg", 10, "p/a/bc/z.jpg", 5);
	put(s, "a/b", 3, "p/a/b", 6); /* a file named like the dir */
	put(s, "x/y/c.jpg", 9, "p/x/y/stale", 7); /* replaced by the move */
	put(s, "x/y/keep.jpg", 12, "p/x/y/keep.jpg", 8);

	err_clear(&e);
	cr_assert_eq(
	    state_dir_rename(s, "a/b", 3, "x/y", 3, "p/x/y", &moved, &e), 0,
	    "%s", e.message);
	cr_assert_eq(moved, 3);
	cr_assert_str_eq(under(s, "a", 1), "a/b|a/b%/z.jpg|a/bc/z.jpg|");
	cr_assert_str_eq(under(s, "x/y", 3),
	                 "x/y/c.jpg|x/y/d/e.jpg|x/y/keep.jpg|x/y/\xff\n.jpg|");

	cr_assert_eq(state_file_get(s, "x/y/c.jpg", 9, &f, &e), 1);
	cr_assert_str_eq(f.key, "p/x/y/c.jpg");
	cr_assert_eq(f.size, 1);
	state_file_cleanup(&f);
	cr_assert_eq(state_file_get(s, "x/y/\xff\n.jpg", 10, &f, &e), 1);
	cr_assert_eq(f.path_len, 10);
	cr_assert_eq(memcmp(f.path, "x/y/\xff\n.jpg", 10), 0);
	state_file_cleanup(&f);

	buf_init(&b, 0);
	cr_assert_eq(state_files_under(s, "x", 1, collect_keys, &b, &e), 0);
	cr_assert_str_eq(
	    buf_cstr(&b),
	    "p/x/y/c.jpg|p/x/y/d/e.jpg|p/x/y/keep.jpg|p/x/y/\xff\n.jpg|");
	buf_cleanup(&b);

	/* Moved paths are still BLOBs: exact lookups and ranges work. */
	state_close(s);
	cr_assert_eq(query_int("SELECT count(*) FROM files "
	                       "WHERE typeof(path) <> 'blob'"),
	             0);
	s = open_ok();

	/* Into itself or onto a parent. */
	cr_assert_eq(
	    state_dir_rename(s, "x", 1, "x/y/z", 5, "p/x/y/z", NULL, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	cr_assert_eq(state_dir_rename(s, "x/y", 3, "x", 1, "p/x", NULL, &e),
	             -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	/* A sibling that merely shares the prefix is fine. */
	cr_assert_eq(
	    state_dir_rename(s, "x/y", 3, "x/yy", 4, "p/x/yy", &moved, &e), 0,
	    "%s", e.message);
	cr_assert_eq(moved, 4);
	state_close(s);
}

Test(state, failed_marking_listing_and_counts)
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

Test(state, count_empty)
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

Test(state, walks_stop_and_nest)
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

struct intents_seen {
	int n;
	int64_t ids[8];
	struct state_intent copy[8];
};

static char *
dup_bytes(const char *p, size_t n)
{
	char *r;

	if (p == NULL)
		return NULL;
	r = malloc(n + 1);
	cr_assert_not_null(r);
	memcpy(r, p, n);
	r[n] = '\0';
	return r;
}

static int
collect_intent(const struct state_intent *in, void *arg)
{
	struct intents_seen *seen = arg;
	struct state_intent *c;

	cr_assert_lt(seen->n, 8);
	c = &seen->copy[seen->n];
	*c = *in;
	c->path = dup_bytes(in->path, in->path_len);
	c->old_path = dup_bytes(in->old_path, in->old_len);
	c->key = dup_bytes(in->key, strlen(in->key));
	c->old_key = in->old_key != NULL
	                 ? dup_bytes(in->old_key, strlen(in->old_key))
	                 : NULL;
	c->upload_id = in->upload_id != NULL
	                   ? dup_bytes(in->upload_id, strlen(in->upload_id))
	                   : NULL;
	seen->ids[seen->n++] = in->id;
	return 0;
}

static void
seen_free(struct intents_seen *seen)
{
	int i;

	for (i = 0; i < seen->n; i++)
		state_intent_cleanup(&seen->copy[i]);
	memset(seen, 0, sizeof(*seen));
}

static int64_t
add_intent(struct state *s, enum state_op op, const char *path, const char *key,
           const char *old_path, const char *old_key)
{
	struct state_intent in;
	struct err e;
	int64_t id;

	memset(&in, 0, sizeof(in));
	in.op = op;
	in.path = (char *)path;
	in.path_len = strlen(path);
	in.key = (char *)key;
	in.old_path = (char *)old_path;
	in.old_len = old_path != NULL ? strlen(old_path) : 0;
	in.old_key = (char *)old_key;
	in.size = 4096;
	in.mtime_ns = 1700000000000000001LL;
	snprintf(in.sha256, sizeof(in.sha256), "%064x", 0xabc);
	err_clear(&e);
	id = state_intent_add(s, &in, &e);
	cr_assert_gt(id, 0, "intent_add: %s", e.message);
	return id;
}

Test(state, intents_in_order_and_across_reopen)
{
	struct state *s = open_ok();
	struct intents_seen seen;
	struct state_intent in;
	struct err e;
	int64_t a, b, c, d;
	uint64_t n;

	a = add_intent(s, STATE_OP_UPLOAD, "u.jpg", "p/u.jpg", NULL, NULL);
	b = add_intent(s, STATE_OP_DELETE, "d\xff.jpg", "p/d.jpg", NULL, NULL);
	c = add_intent(s, STATE_OP_RENAME, "new.jpg", "p/new.jpg", "old.jpg",
	               "p/old.jpg");
	cr_assert(a < b && b < c);
	err_clear(&e);
	cr_assert_eq(state_intent_set_upload_id(s, a, "mpu-123", &e), 0);
	cr_assert_eq(state_intent_done(s, b, &e), 0);
	cr_assert_eq(state_intent_done(s, b, &e), 0);
	state_close(s);

	s = open_ok();
	d = add_intent(s, STATE_OP_UPLOAD, "later.jpg", "p/later.jpg", NULL,
	               NULL);
	cr_assert_gt(d, c); /* ids are never reused */
	memset(&seen, 0, sizeof(seen));
	cr_assert_eq(state_intents_each(s, collect_intent, &seen, &e), 0);
	cr_assert_eq(seen.n, 3);
	cr_assert_eq(seen.ids[0], a);
	cr_assert_eq(seen.ids[1], c);
	cr_assert_eq(seen.ids[2], d);

	in = seen.copy[0];
	cr_assert_eq(in.op, STATE_OP_UPLOAD);
	cr_assert_str_eq(in.path, "u.jpg");
	cr_assert_str_eq(in.key, "p/u.jpg");
	cr_assert_null(in.old_path);
	cr_assert_null(in.old_key);
	cr_assert_str_eq(in.upload_id, "mpu-123");
	cr_assert_eq(in.size, 4096);
	cr_assert_eq(in.mtime_ns, 1700000000000000001LL);
	cr_assert_eq(strlen(in.sha256), 64);
	cr_assert_eq(strlen(in.created_at), 24);

	in = seen.copy[1];
	cr_assert_eq(in.op, STATE_OP_RENAME);
	cr_assert_str_eq(in.old_path, "old.jpg");
	cr_assert_eq(in.old_len, 7);
	cr_assert_str_eq(in.old_key, "p/old.jpg");
	cr_assert_null(in.upload_id);
	seen_free(&seen);

	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(state_op_name(STATE_OP_DELETE), "delete");

	/* A rename needs its old path and key. */
	memset(&in, 0, sizeof(in));
	in.op = STATE_OP_RENAME;
	in.path = "n";
	in.path_len = 1;
	in.key = "n";
	cr_assert_eq(state_intent_add(s, &in, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	in.op = (enum state_op)42;
	cr_assert_eq(state_intent_add(s, &in, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	state_close(s);
}

Test(state, crash_after_intent_keeps_it)
{
	struct state *s;
	struct intents_seen seen;
	struct state_file f;
	struct err e;
	pid_t pid;
	int status;

	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct state *cs;
		struct state_intent in;
		struct state_file cf;

		err_clear(&e);
		cs = state_open(dbpath, &e);
		if (cs == NULL)
			_exit(2);
		memset(&in, 0, sizeof(in));
		in.op = STATE_OP_UPLOAD;
		in.path = "crash.jpg";
		in.path_len = 9;
		in.key = "p/crash.jpg";
		if (state_intent_add(cs, &in, &e) <= 0)
			_exit(3);
		/* A batch in progress at the crash must vanish whole. */
		memset(&cf, 0, sizeof(cf));
		cf.path = "half.jpg";
		cf.path_len = 8;
		cf.key = "half.jpg";
		if (state_begin(cs, &e) == -1 ||
		    state_file_put(cs, &cf, &e) == -1)
			_exit(4);
		_exit(0); /* no state_close, no checkpoint, no atexit */
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d",
	          status);

	s = open_ok();
	memset(&seen, 0, sizeof(seen));
	err_clear(&e);
	cr_assert_eq(state_intents_each(s, collect_intent, &seen, &e), 0);
	cr_assert_eq(seen.n, 1);
	cr_assert_str_eq(seen.copy[0].path, "crash.jpg");
	cr_assert_str_eq(seen.copy[0].key, "p/crash.jpg");
	seen_free(&seen);
	cr_assert_eq(state_file_get(s, "half.jpg", 8, &f, &e), 0);
	state_close(s);
}

Test(state, batch_of_100k)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	char path[64];
	uint64_t files, bytes;
	int i;
	struct buf b;

	memset(&f, 0, sizeof(f));
	f.path = path;
	f.key = path;
	snprintf(f.type, sizeof(f.type), "image/png");
	err_clear(&e);
	cr_assert_eq(state_begin(s, &e), 0, "%s", e.message);
	for (i = 0; i < 100000; i++) {
		f.path_len = (size_t)snprintf(path, sizeof(path),
		                              "d%03d/img-%06d.png", i % 100, i);
		f.size = (uint64_t)i;
		f.mtime_ns = i;
		cr_assert_eq(state_file_put(s, &f, &e), 0, "%s", e.message);
	}
	/* An intent inside a batch lands with it. */
	add_intent(s, STATE_OP_UPLOAD, "in-batch", "in-batch", NULL, NULL);
	cr_assert_eq(state_commit(s, &e), 0, "%s", e.message);
	cr_assert_eq(state_count(s, &files, NULL, &bytes, &e), 0);
	cr_assert_eq(files, 100000);
	cr_assert_eq(bytes, 99999ULL * 100000 / 2);

	buf_init(&b, 0);
	cr_assert_eq(state_files_under(s, "d042", 4, collect, &b, &e), 0);
	cr_assert_eq(b.len, 1000 * strlen("d042/img-000042.png|"));
	buf_cleanup(&b);
	state_close(s);
}

Test(state, batch_rollback_and_misuse)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	uint64_t n;

	err_clear(&e);
	cr_assert_eq(state_begin(s, &e), 0);
	cr_assert_eq(state_begin(s, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	puts0(s, "gone.jpg");
	add_intent(s, STATE_OP_DELETE, "gone.jpg", "gone.jpg", NULL, NULL);
	state_rollback(s);
	state_rollback(s); /* no batch: no-op */
	cr_assert_eq(state_file_get(s, "gone.jpg", 8, &f, &e), 0);
	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_commit(s, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);

	/* Closing with a batch open rolls it back. */
	cr_assert_eq(state_begin(s, &e), 0);
	puts0(s, "also-gone.jpg");
	state_close(s);
	s = open_ok();
	cr_assert_eq(state_file_get(s, "also-gone.jpg", 13, &f, &e), 0);
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

Test(state, file_synced_clears_its_intents_with_the_row)
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

Test(state, meta_values)
{
	struct state *s = open_ok();
	struct err e;
	char *v;
	size_t len;

	err_clear(&e);
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 0);
	cr_assert_null(v);
	cr_assert_eq(state_meta_put(s, "watch_root", "/srv/\xffimg\n", 10, &e),
	             0, "%s", e.message);
	cr_assert_eq(state_meta_put(s, "empty", "", 0, &e), 0);
	state_close(s);

	s = open_ok();
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 1);
	cr_assert_eq(len, 10);
	cr_assert_eq(memcmp(v, "/srv/\xffimg\n", 10), 0);
	cr_assert_eq(v[10], '\0');
	free(v);
	cr_assert_eq(state_meta_get(s, "empty", &v, NULL, &e), 1);
	cr_assert_str_eq(v, "");
	free(v);
	cr_assert_eq(state_meta_put(s, "watch_root", "/other", 6, &e), 0);
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 1);
	cr_assert_str_eq(v, "/other");
	free(v);
	cr_assert_eq(state_meta_delete(s, "watch_root", &e), 0);
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 0);
	state_close(s);
}

struct meta_seen {
	char names[8][32];
	size_t lens[8];
	int n;
	int stop_at;
};

static int
meta_row(const char *name, const void *value, size_t len, void *arg)
{
	struct meta_seen *m = arg;

	(void)value;
	snprintf(m->names[m->n], sizeof(m->names[0]), "%s", name);
	m->lens[m->n++] = len;
	return m->n == m->stop_at;
}

Test(state, meta_each_by_prefix)
{
	struct state *s = open_ok();
	struct meta_seen m;
	struct err e;

	err_clear(&e);
	cr_assert_eq(state_meta_put(s, "trash:b/\xff.png", "/t", 2, &e), 0);
	cr_assert_eq(state_meta_put(s, "trash:a.png", "/trash", 6, &e), 0);
	cr_assert_eq(state_meta_put(s, "trash", "x", 1, &e), 0);
	cr_assert_eq(state_meta_put(s, "trasH:c", "x", 1, &e), 0);
	cr_assert_eq(state_meta_put(s, "watch_root", "/srv", 4, &e), 0);
	memset(&m, 0, sizeof(m));
	cr_assert_eq(state_meta_each(s, "trash:", meta_row, &m, &e), 0, "%s",
	             e.message);
	cr_assert_eq(m.n, 2);
	cr_assert_str_eq(m.names[0], "trash:a.png");
	cr_assert_eq(m.lens[0], 6);
	cr_assert_str_eq(m.names[1], "trash:b/\xff.png");
	memset(&m, 0, sizeof(m));
	m.stop_at = 1;
	cr_assert_eq(state_meta_each(s, "trash:", meta_row, &m, &e), 1);
	cr_assert_eq(m.n, 1);
	memset(&m, 0, sizeof(m));
	cr_assert_eq(state_meta_each(s, "nothing:", meta_row, &m, &e), 0);
	cr_assert_eq(m.n, 0);
	state_close(s);
}

static void
write_file(const char *path, const char *data, size_t len)
{
	int fd;

	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

Test(state, garbage_file_is_refused_and_kept)
{
	char garbage[8192], back[8192];
	char wal[256];
	struct err e;
	struct stat sb;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)("not a database\n"[i % 15]);
	write_file(dbpath, garbage, sizeof(garbage));
	err_clear(&e);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_eq(e.kind, ERR_SYS);
	cr_assert_not_null(strstr(e.message, dbpath), "%s", e.message);
	cr_assert_not_null(strstr(e.message, "not a database"), "%s",
	                   e.message);
	cr_assert_str_eq(e.code, "SQLITE_NOTADB");

	fd = open(dbpath, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
	close(fd);
	cr_assert_eq(memcmp(garbage, back, sizeof(back)), 0);
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	cr_assert_eq(stat(wal, &sb), -1);

	/* Short garbage too. */
	write_file(dbpath, "hello", 5);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_not_null(strstr(e.message, dbpath), "%s", e.message);
}

Test(state, truncated_database_is_refused)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	char hdr[100];
	int fd;

	puts0(s, "x");
	state_close(s);
	fd = open(dbpath, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	close(fd);
	/* A valid header with its pages gone: page 1 is cut short. */
	write_file(dbpath, hdr, sizeof(hdr));
	err_clear(&e);
	s = state_open(dbpath, &e);
	if (s != NULL) {
		/* SQLite may open it; any use must then fail cleanly. */
		cr_assert_neq(state_file_get(s, "x", 1, &f, &e), 1);
		state_close(s);
	} else
		cr_assert_not_null(strstr(e.message, dbpath), "%s", e.message);
}

Test(state, foreign_sqlite_database_is_refused)
{
	struct err e;

	raw_exec("CREATE TABLE photos (id INTEGER PRIMARY KEY);"
	         "INSERT INTO photos VALUES (1);");
	err_clear(&e);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_not_null(strstr(e.message, "not an imgsync state database"),
	                   "%s", e.message);
	cr_assert_not_null(strstr(e.message, dbpath));
	/* Untouched: still rollback-journal mode, no tables of ours. */
	cr_assert_eq(query_int("SELECT count(*) FROM photos"), 1);
	cr_assert_eq(query_int("SELECT count(*) FROM sqlite_schema "
	                       "WHERE name = 'files'"),
	             0);
	cr_assert_eq(query_int("PRAGMA user_version"), 0);
}

Test(state, newer_schema_is_refused)
{
	struct state *s = open_ok();
	struct err e;

	state_close(s);
	raw_exec("PRAGMA user_version = 99");
	err_clear(&e);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_not_null(strstr(e.message, "schema version 99"), "%s",
	                   e.message);
	cr_assert_eq(query_int("PRAGMA user_version"), 99);
}

/*
 * Runs fn in a child without root's powers (root ignores file modes), and
 * returns its exit status. fn must end with _exit: sanitizers' exit hooks
 * do not work after setuid.
 */
static int
as_nobody(void (*fn)(void))
{
	pid_t pid;
	int status;

	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
		     setuid(65534) == -1))
			_exit(90);
		fn();
		_exit(91);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %d", status);
	return WEXITSTATUS(status);
}

static char child_path[192];

static void
expect_open_fails(void)
{
	struct err e;
	struct state *s;

	err_clear(&e);
	s = state_open(child_path, &e);
	if (s != NULL)
		_exit(1);
	fprintf(stderr, "state_open: %s\n", e.message);
	if (e.kind != ERR_SYS || strstr(e.message, child_path) == NULL)
		_exit(2);
	if (strstr(e.message, "Permission denied") == NULL &&
	    strstr(e.message, "read-only") == NULL &&
	    strstr(e.message, "unable to open") == NULL)
		_exit(3);
	_exit(0);
}

Test(state, read_only_directory)
{
	char dir[128];

	cr_assert_eq(chmod(tmpdir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
	cr_assert_eq(mkdir(dir, 0555), 0);
	snprintf(child_path, sizeof(child_path), "%s/state.db", dir);
	cr_assert_eq(as_nobody(expect_open_fails), 0);
}

Test(state, read_only_file)
{
	struct state *s;
	char dir[128];

	cr_assert_eq(chmod(tmpdir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/rw", tmpdir);
	cr_assert_eq(mkdir(dir, 0777), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	snprintf(child_path, sizeof(child_path), "%s/state.db", dir);
	snprintf(dbpath, sizeof(dbpath), "%s", child_path);
	s = open_ok();
	puts0(s, "x");
	state_close(s);
	cr_assert_eq(chmod(child_path, 0444), 0);
	cr_assert_eq(as_nobody(expect_open_fails), 0);
}

Test(state, read_only_directory_existing_database)
{
	struct state *s;
	char dir[128];

	cr_assert_eq(chmod(tmpdir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(child_path, sizeof(child_path), "%s/state.db", dir);
	snprintf(dbpath, sizeof(dbpath), "%s", child_path);
	s = open_ok();
	puts0(s, "x");
	state_close(s);
	/* The file is writable, but the -wal and -shm files cannot be
	 * created next to it. */
	cr_assert_eq(chmod(child_path, 0666), 0);
	cr_assert_eq(chmod(dir, 0555), 0);
	cr_assert_eq(as_nobody(expect_open_fails), 0);
}

/* Puts rows with long keys in one batch until a write fails; the error
 * goes into *e. */
static int
fill(struct state *s, struct err *e)
{
	struct state_file f;
	char path[32], key[2048];
	int i, r = 0;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	memset(&f, 0, sizeof(f));
	f.path = path;
	f.key = key;
	if (state_begin(s, e) == -1)
		return -1;
	for (i = 0; i < 2000 && r == 0; i++) {
		f.path_len = (size_t)snprintf(path, sizeof(path), "f%d", i);
		r = state_file_put(s, &f, e);
	}
	if (r == 0)
		return state_commit(s, e);
	state_rollback(s);
	return r;
}

static void
fill_until_disk_full(void)
{
	struct state *s;
	struct err e;

	/* A private mount namespace: the tmpfs vanishes with the child. */
	if (unshare(CLONE_NEWNS) == -1 ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", tmpdir, "tmpfs", 0, "size=256k,mode=0700") == -1)
		_exit(77);
	err_clear(&e);
	s = state_open(child_path, &e);
	if (s == NULL)
		_exit(10);
	if (fill(s, &e) != -1)
		_exit(11);
	fprintf(stderr, "disk full: %s (%s, errno %d)\n", e.message, e.code,
	        e.sys_errno);
	if (e.kind != ERR_SYS || strcmp(e.code, "SQLITE_FULL") != 0 ||
	    strstr(e.message, child_path) == NULL ||
	    strstr(e.message, "full") == NULL)
		_exit(12);
	/* Still usable: reads work, and small writes once space is back. */
	if (state_count(s, NULL, NULL, NULL, &e) == -1)
		_exit(13);
	if (state_meta_put(s, "after", "x", 1, &e) == -1) {
		fprintf(stderr, "after: %s\n", e.message);
		_exit(14);
	}
	_exit(0);
}

Test(state, disk_full_is_a_clear_error)
{
	pid_t pid;
	int status;

	snprintf(child_path, sizeof(child_path), "%s", dbpath);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		fill_until_disk_full();
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %d", status);
	if (WEXITSTATUS(status) == 77)
		cr_skip_test("cannot mount a small tmpfs here (needs root)");
	cr_assert_eq(WEXITSTATUS(status), 0);
}

static void
fill_until_write_fails(void)
{
	struct rlimit rl;
	struct state *s;
	struct err e;

	err_clear(&e);
	s = state_open(child_path, &e);
	if (s == NULL)
		_exit(10);
	signal(SIGXFSZ, SIG_IGN);
	rl.rlim_cur = rl.rlim_max = 256 * 1024;
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		_exit(11);
	if (fill(s, &e) != -1)
		_exit(12);
	fprintf(stderr, "write failure: %s (%s, errno %d)\n", e.message, e.code,
	        e.sys_errno);
	if (e.kind != ERR_SYS || strstr(e.message, child_path) == NULL)
		_exit(13);
	/* The handle is still usable for reads after the failure. */
	if (state_count(s, NULL, NULL, NULL, &e) == -1)
		_exit(14);
	_exit(0);
}

Test(state, write_failure_is_an_error_not_a_crash)
{
	struct state *s;
	struct err e;
	uint64_t files;
	pid_t pid;
	int status;

	snprintf(child_path, sizeof(child_path), "%s", dbpath);
	s = open_ok();
	puts0(s, "before");
	state_close(s);

	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		fill_until_write_fails();
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %d", status);
	cr_assert_eq(WEXITSTATUS(status), 0);

	/* The failed batch left nothing behind and the file is healthy. */
	s = open_ok();
	err_clear(&e);
	cr_assert_eq(state_count(s, &files, NULL, NULL, &e), 0);
	cr_assert_eq(files, 1);
	puts0(s, "after");
	state_close(s);
	cr_assert(query_is("PRAGMA integrity_check", "ok"));
}

Test(state, descriptors_are_close_on_exec)
{
	struct state *s = open_ok();
	DIR *d;
	struct dirent *de;
	char link[PATH_MAX], fdpath[300];
	ssize_t n;
	int fd, found = 0;

	puts0(s, "x"); /* opens the -wal and -shm files */
	d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%s",
		         de->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, tmpdir, strlen(tmpdir)) != 0)
			continue;
		fd = atoi(de->d_name);
		cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC,
		          "%s is not close-on-exec", link);
		found++;
	}
	closedir(d);
	cr_assert_geq(found, 3, "db, -wal and -shm: found %d", found);
	state_close(s);
}
