/*
 * test_state.h: what the state database's unit tests share (test_state.c,
 * test_state_files.c, test_state_intents.c, test_state_meta.c): a fresh
 * directory per test, opening the database, putting rows and intents,
 * and reading the file behind the module's back with plain SQLite.
 * Everything is static inline: each test uses only some of it.
 */
#ifndef IMGSYNC_TEST_STATE_H
#define IMGSYNC_TEST_STATE_H

#include <criterion/criterion.h>

#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "state.h"

static char tmpdir[64];
static char dbpath[192];

static inline void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/imgsync-state.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/state.db", tmpdir);
}

static inline int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static inline void
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

static inline struct state *
open_ok(void)
{
	struct err e;
	struct state *s;

	err_clear(&e);
	s = state_open(dbpath, &e);
	cr_assert_not_null(s, "state_open: %s", e.message);
	return s;
}

static inline void
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

static inline void
puts0(struct state *s, const char *path)
{
	put(s, path, strlen(path), path, strlen(path));
}

/* Collects the paths a walk yields, each followed by '|'. */
static inline int
collect(const struct state_file *f, void *arg)
{
	struct buf *b = arg;

	buf_append(b, f->path, f->path_len);
	buf_putc(b, '|');
	return 0;
}

static inline int64_t
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

static inline int
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

static inline void
raw_exec(const char *sql)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
	             sqlite3_errmsg(db));
	sqlite3_close(db);
}

struct intents_seen {
	int n;
	int64_t ids[8];
	struct state_intent copy[8];
};

static inline char *
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

static inline int
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

static inline void
seen_free(struct intents_seen *seen)
{
	int i;

	for (i = 0; i < seen->n; i++)
		state_intent_cleanup(&seen->copy[i]);
	memset(seen, 0, sizeof(*seen));
}

static inline int64_t
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

#endif
