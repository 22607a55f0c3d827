/*
 * state_files: the `files` table, one row per path that was synced or
 * failed: what the file was when it went up (size, times, inode, hash)
 * and where (key, ETag), or why it did not. The walks hand rows out in
 * path order (bytewise, BLOBs), so that a prefix is one range scan.
 */
#include "state_impl.h"

#include <stdlib.h>
#include <string.h>

static const struct state_sql file_get = {
    ST_FILE_GET, "SELECT " STATE_FILE_COLS " FROM files WHERE path = ?1"};
static const struct state_sql file_put = {
    ST_FILE_PUT, "INSERT OR REPLACE INTO files (" STATE_FILE_COLS ") VALUES "
                 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                 "'synced', NULL, NULL, 0, ?13, "
                 "CASE WHEN ?14 THEN '' END, NULL)"};
static const struct state_sql file_fail = {
    ST_FILE_FAIL, "INSERT INTO files (path, key, status, error, "
                  "failed_at, attempts) VALUES (?1, '', 'failed', ?2, ?3, "
                  "1) ON CONFLICT (path) DO UPDATE SET status = 'failed', "
                  "error = excluded.error, failed_at = excluded.failed_at, "
                  "attempts = attempts + 1"};
static const struct state_sql file_delete = {
    ST_FILE_DELETE, "DELETE FROM files WHERE path = ?1"};
static const struct state_sql files_all = {
    ST_FILES_ALL, "SELECT " STATE_FILE_COLS " FROM files ORDER BY path"};
static const struct state_sql files_after = {
    ST_FILES_AFTER, "SELECT " STATE_FILE_COLS " FROM files WHERE path > ?1 "
                    "ORDER BY path"};
static const struct state_sql files_from = {
    ST_FILES_FROM, "SELECT " STATE_FILE_COLS " FROM files WHERE path >= ?1 "
                   "ORDER BY path"};
/* One range scan from prefix to prefix + "0" ('/' + 1); siblings such as
 * "a/b.jpg" for the prefix "a/b" fall inside it and are filtered. */
static const struct state_sql files_under = {
    ST_FILES_UNDER, "SELECT " STATE_FILE_COLS " FROM files WHERE path >= ?1 "
                    "AND path < ?3 AND (path = ?1 OR path >= ?2) "
                    "ORDER BY path"};
static const struct state_sql failed_all = {
    ST_FAILED_ALL, "SELECT " STATE_FILE_COLS " FROM files "
                   "WHERE status = 'failed' ORDER BY path"};
static const struct state_sql count_all = {
    ST_COUNT, "SELECT count(*) FILTER (WHERE status = 'synced'), "
              "count(*) FILTER (WHERE status = 'failed'), "
              "coalesce(sum(size) FILTER (WHERE status = 'synced'), 0) "
              "FROM files"};
/* The partial index files_thumb_wanted holds only the rows that want a
 * thumbnail, in path order. */
static const struct state_sql thumb_next = {
    ST_THUMB_NEXT, "SELECT " STATE_FILE_COLS " FROM files WHERE thumb = '' AND "
                   "status = 'synced' AND path > ?1 ORDER BY path LIMIT 1"};
/* Only the row as it was asked for: a newer upload since wants its own. */
static const struct state_sql thumb_done = {
    ST_THUMB_DONE, "UPDATE files SET thumb = ?3, thumb_error = ?4 "
                   "WHERE path = ?1 AND synced_at = ?2 AND thumb = ''"};
static const struct state_sql thumb_want_all = {
    ST_THUMB_WANT_ALL, "UPDATE files SET thumb = '', thumb_error = NULL "
                       "WHERE status = 'synced' AND thumb IS NULL AND "
                       "thumb_error IS NULL"};
/* The partial index files_failed answers it without a table scan. */
static const struct state_sql count_failed = {
    ST_COUNT_FAILED, "SELECT count(*) FROM files WHERE status = 'failed'"};

void
state_file_cleanup(struct state_file *f)
{
	if (f == NULL)
		return;
	free(f->path);
	free(f->key);
	free(f->error);
	free(f->thumb);
	free(f->thumb_error);
	f->path = f->key = f->error = f->thumb = f->thumb_error = NULL;
	f->path_len = 0;
}

int
state_file_from_row(sqlite3_stmt *st, struct state_file *f)
{
	const unsigned char *status;

	memset(f, 0, sizeof(*f));
	if (state_col_dup(st, 0, &f->path, &f->path_len) == -1 ||
	    state_col_dup(st, 1, &f->key, NULL) == -1 ||
	    state_col_dup(st, 13, &f->error, NULL) == -1 ||
	    state_col_dup(st, 18, &f->thumb_error, NULL) == -1)
		goto fail;
	if (sqlite3_column_type(st, 17) == SQLITE_TEXT &&
	    sqlite3_column_bytes(st, 17) > 0 &&
	    state_col_dup(st, 17, &f->thumb, NULL) == -1)
		goto fail;
	if (f->path == NULL || f->key == NULL)
		goto fail;
	f->size = (uint64_t)sqlite3_column_int64(st, 2);
	f->mtime_ns = sqlite3_column_int64(st, 3);
	f->ctime_ns = sqlite3_column_int64(st, 4);
	f->inode = (uint64_t)sqlite3_column_int64(st, 5);
	state_col_copy(st, 6, f->sha256, sizeof(f->sha256));
	state_col_copy(st, 7, f->etag, sizeof(f->etag));
	state_col_copy(st, 8, f->type, sizeof(f->type));
	f->width = state_col_uint(st, 9);
	f->height = state_col_uint(st, 10);
	state_col_copy(st, 11, f->synced_at, sizeof(f->synced_at));
	status = sqlite3_column_text(st, 12);
	f->failed =
	    status != NULL && strcmp((const char *)status, "failed") == 0;
	state_col_copy(st, 14, f->failed_at, sizeof(f->failed_at));
	f->attempts = state_col_uint(st, 15);
	f->orientation = state_col_uint(st, 16);
	return 0;
fail:
	state_file_cleanup(f);
	return -1;
}

/* A lookup's row: into the caller's struct, and stop. */
static int
file_get_row(sqlite3_stmt *st, void *arg)
{
	return state_file_from_row(st, arg) == -1 ? -1 : 1;
}

int
state_file_get(struct state *s, const char *path, size_t len,
               struct state_file *out, struct err *e)
{
	const struct state_arg args[] = {STATE_BLOB(path, len)};

	memset(out, 0, sizeof(*out));
	if (path == NULL || len == 0)
		return state_invalid(s, e, "empty path");
	return state_rows(s, &file_get, args, nitems(args), file_get_row, out,
	                  e);
}

int
state_file_put(struct state *s, const struct state_file *f, struct err *e)
{
	char now[32];
	const char *synced_at = f->synced_at[0] != '\0' ? f->synced_at : now;
	const struct state_arg args[] = {
	    STATE_BLOB(f->path, f->path_len),
	    STATE_TEXT(f->key),
	    STATE_INT(f->size),
	    STATE_INT(f->mtime_ns),
	    STATE_INT(f->ctime_ns),
	    STATE_INT(f->inode), /* above INT64_MAX: stored negative */
	    STATE_FIELD(f->sha256, sizeof(f->sha256)),
	    STATE_FIELD(f->etag, sizeof(f->etag)),
	    STATE_FIELD(f->type, sizeof(f->type)),
	    STATE_INT(f->width),
	    STATE_INT(f->height),
	    STATE_FIELD(synced_at, sizeof(f->synced_at)),
	    STATE_INT(f->orientation > 8 ? 0 : f->orientation),
	    STATE_INT(f->thumb_wanted != 0),
	};

	if (f->path == NULL || f->path_len == 0)
		return state_invalid(s, e, "empty path");
	if (f->key == NULL)
		return state_invalid(s, e, "no key");
	if (f->size > INT64_MAX)
		return state_invalid(s, e, "size out of range");
	if (synced_at == now)
		state_now(now); /* bound by address: read when it runs */
	return state_run(s, &file_put, args, nitems(args), e);
}

int
state_file_synced(struct state *s, const struct state_file *f,
                  const int64_t *ids, size_t n, struct err *e)
{
	size_t i;
	int own;

	/* Inside a batch the batch is the transaction. */
	own = !s->in_batch && n > 0;
	if (own && state_tx_begin(s, e) == -1)
		return -1;
	if (state_file_put(s, f, e) == -1)
		goto fail;
	for (i = 0; i < n; i++)
		if (ids[i] > 0 && state_intent_done(s, ids[i], e) == -1)
			goto fail;
	if (own && state_tx_commit(s, e) == -1)
		goto fail;
	return 0;
fail:
	if (own)
		state_tx_abort(s);
	return -1;
}

int
state_file_fail(struct state *s, const char *path, size_t len,
                const char *error, struct err *e)
{
	char now[32];
	const struct state_arg args[] = {
	    STATE_BLOB(path, len),
	    STATE_TEXT(error),
	    STATE_TEXT(now),
	};

	if (path == NULL || len == 0)
		return state_invalid(s, e, "empty path");
	state_now(now);
	return state_run(s, &file_fail, args, nitems(args), e);
}

int
state_file_delete(struct state *s, const char *path, size_t len, struct err *e)
{
	const struct state_arg args[] = {STATE_BLOB(path, len)};

	if (path == NULL || len == 0)
		return state_invalid(s, e, "empty path");
	return state_run(s, &file_delete, args, nitems(args), e);
}

/* --- walks ------------------------------------------------------------- */

struct file_walk {
	state_file_cb cb;
	void *arg;
};

static int
file_walk_row(sqlite3_stmt *st, void *arg)
{
	struct file_walk *w = arg;
	struct state_file f;
	int rc;

	if (state_file_from_row(st, &f) == -1)
		return -1;
	rc = w->cb(&f, w->arg);
	state_file_cleanup(&f);
	return rc != 0;
}

int
state_file_walk(struct state *s, const struct state_sql *q,
                const struct state_arg *args, size_t nargs, state_file_cb cb,
                void *arg, struct err *e)
{
	struct file_walk w = {cb, arg};

	return state_rows(s, q, args, nargs, file_walk_row, &w, e);
}

int
state_files_each(struct state *s, state_file_cb cb, void *arg, struct err *e)
{
	return state_file_walk(s, &files_all, NULL, 0, cb, arg, e);
}

int
state_files_after(struct state *s, const char *start, size_t len, int inclusive,
                  state_file_cb cb, void *arg, struct err *e)
{
	const struct state_arg args[] = {STATE_BLOB(start, len)};

	if (start == NULL)
		return state_files_each(s, cb, arg, e);
	return state_file_walk(s, inclusive ? &files_from : &files_after, args,
	                       nitems(args), cb, arg, e);
}

/* p + c, malloc'd (no NUL: used as a BLOB of length n + 1). */
static char *
bytes_plus(const char *p, size_t n, char c)
{
	char *r;

	r = malloc(n + 1);
	if (r == NULL)
		return NULL;
	memcpy(r, p, n);
	r[n] = c;
	return r;
}

int
state_files_under(struct state *s, const char *prefix, size_t len,
                  state_file_cb cb, void *arg, struct err *e)
{
	char *lo = NULL, *hi = NULL;
	int ret = -1;

	if (len > 0 && prefix == NULL)
		return state_invalid(s, e, "no prefix");
	while (len > 0 && prefix[len - 1] == '/')
		len--;
	if (len == 0)
		return state_files_each(s, cb, arg, e);
	if ((lo = bytes_plus(prefix, len, '/')) == NULL ||
	    (hi = bytes_plus(prefix, len, '0')) == NULL)
		state_nomem(s, e);
	else {
		const struct state_arg args[] = {
		    STATE_BLOB(prefix, len),
		    STATE_BLOB(lo, len + 1),
		    STATE_BLOB(hi, len + 1),
		};

		ret = state_file_walk(s, &files_under, args, nitems(args), cb,
		                      arg, e);
	}
	free(lo);
	free(hi);
	return ret;
}

int
state_failed_each(struct state *s, state_file_cb cb, void *arg, struct err *e)
{
	return state_file_walk(s, &failed_all, NULL, 0, cb, arg, e);
}

/* --- counts ------------------------------------------------------------ */

struct file_counts {
	uint64_t *files, *failed, *bytes;
};

/* The count row into the outputs that are not NULL. */
static int
file_count_row(sqlite3_stmt *st, void *arg)
{
	struct file_counts *c = arg;

	if (c->files != NULL)
		*c->files = (uint64_t)sqlite3_column_int64(st, 0);
	if (c->failed != NULL)
		*c->failed = (uint64_t)sqlite3_column_int64(st, 1);
	if (c->bytes != NULL)
		*c->bytes = (uint64_t)sqlite3_column_int64(st, 2);
	return 1;
}

int
state_count(struct state *s, uint64_t *files, uint64_t *failed, uint64_t *bytes,
            struct err *e)
{
	struct file_counts c = {files, failed, bytes};

	if (state_rows(s, &count_all, NULL, 0, file_count_row, &c, e) == -1)
		return -1;
	return 0;
}

int
state_count_failed(struct state *s, uint64_t *failed, struct err *e)
{
	return state_number(s, &count_failed, failed, e);
}

int
state_thumb_next(struct state *s, const char *after, size_t after_len,
                 struct state_file *out, struct err *e)
{
	const struct state_arg args[] = {STATE_BLOB(after, after_len)};

	memset(out, 0, sizeof(*out));
	return state_rows(s, &thumb_next, args, nitems(args), file_get_row, out,
	                  e);
}

int
state_thumb_done(struct state *s, const char *path, size_t len,
                 const char *synced_at, const char *thumb, const char *why,
                 struct err *e)
{
	const struct state_arg args[] = {
	    STATE_BLOB(path, len),
	    STATE_TEXT(synced_at),
	    thumb != NULL ? STATE_TEXT(thumb) : STATE_NULL,
	    why != NULL ? STATE_TEXT(why) : STATE_NULL,
	};

	if (path == NULL || len == 0)
		return state_invalid(s, e, "empty path");
	return state_run(s, &thumb_done, args, nitems(args), e);
}

int
state_thumb_want_all(struct state *s, struct err *e)
{
	return state_run(s, &thumb_want_all, NULL, 0, e);
}
