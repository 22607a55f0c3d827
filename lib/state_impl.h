/*
 * state_impl.h: what the state modules share and nobody else sees. The
 * handle, the statement cache, and the helpers that get a cached
 * statement, bind its parameters, step it and put it back, so that each
 * table's functions say only what they do.
 *
 *	state.c		the statement cache and the helpers below,
 *			transactions and batches, errors
 *	state_open.c	opening (refusing a file that is not ours), the
 *			schema and its migrations, closing
 *	state_files.c	`files`: what was synced, and what failed
 *	state_intents.c	`intents`: operations in progress (invariant 3)
 *	state_meta.c	`meta`: small named values
 *	state_gallery.c	the gallery's reads of `files`: a folder's
 *			newest synced rows, its subfolders
 */
#ifndef IMGSYNC_STATE_IMPL_H
#define IMGSYNC_STATE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "state.h"

#ifndef nitems
#define nitems(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* One cache slot per query; the queries live with their tables. */
enum state_stmt_id {
	ST_FILE_GET,
	ST_FILE_PUT,
	ST_FILE_FAIL,
	ST_FILE_DELETE,
	ST_FILES_ALL,
	ST_FILES_AFTER,
	ST_FILES_FROM,
	ST_FILES_UNDER,
	ST_FAILED_ALL,
	ST_COUNT,
	ST_COUNT_FAILED,
	ST_INTENT_ADD,
	ST_INTENT_UPLOAD_ID,
	ST_INTENT_DONE,
	ST_INTENTS_ALL,
	ST_INTENT_COUNT,
	ST_META_GET,
	ST_META_PUT,
	ST_META_DELETE,
	ST_META_EACH,
	ST_THUMB_NEXT,
	ST_THUMB_DONE,
	ST_THUMB_WANT_ALL,
	ST_GALLERY_PAGE,
	ST_GALLERY_FOLDER,
	ST_BEGIN,
	ST_COMMIT,
	ST_MAX
};

/* A query and its cache slot, spelled once. */
struct state_sql {
	enum state_stmt_id id;
	const char *text;
};

struct state {
	sqlite3 *db;
	char *path;
	int in_batch;
	int in_read; /* a read snapshot is open (state_read_begin) */
	sqlite3_stmt *stmts[ST_MAX];
};

/*
 * One parameter: args[0] is ?1, and so on. Bound without a copy
 * (SQLITE_STATIC): every helper below resets the statement before it
 * returns, so the memory need only live for the call. Text is cut at its
 * first NUL or after n bytes, whichever comes first; a NULL text pointer
 * binds SQL NULL, a NULL blob pointer an empty blob.
 */
enum state_arg_type {
	STATE_ARG_NULL,
	STATE_ARG_BLOB,
	STATE_ARG_TEXT,
	STATE_ARG_INT,
};

struct state_arg {
	enum state_arg_type type;
	const void *p;
	size_t n;
	int64_t i;
};

#define STATE_NULL ((struct state_arg){STATE_ARG_NULL, NULL, 0, 0})
#define STATE_BLOB(p, n) ((struct state_arg){STATE_ARG_BLOB, (p), (n), 0})
#define STATE_TEXT(s) ((struct state_arg){STATE_ARG_TEXT, (s), SIZE_MAX, 0})
/* A fixed-size char array that may lack its NUL. */
#define STATE_FIELD(s, size)                                                   \
	((struct state_arg){STATE_ARG_TEXT, (s), (size), 0})
#define STATE_INT(v) ((struct state_arg){STATE_ARG_INT, NULL, 0, (int64_t)(v)})

/* Called for each row: 0 next row, 1 stop, -1 out of memory. */
typedef int (*state_row_fn)(sqlite3_stmt *st, void *arg);

/* Runs a write to completion: 0, or -1 with e filled. */
int state_run(struct state *s, const struct state_sql *q,
              const struct state_arg *args, size_t nargs, struct err *e);
/*
 * Runs a query and calls row for each row it yields: 0 when the rows ran
 * out, 1 when row stopped them (a lookup's row function stops at the
 * first: 1 found, 0 not), -1 on error with e filled.
 */
int state_rows(struct state *s, const struct state_sql *q,
               const struct state_arg *args, size_t nargs, state_row_fn row,
               void *arg, struct err *e);

/* The one number a count query answers, into *n. */
int state_number(struct state *s, const struct state_sql *q, uint64_t *n,
                 struct err *e);

/* Transactions below the batch API: BEGIN IMMEDIATE, COMMIT, and a
 * ROLLBACK of whatever transaction is open (none: a no-op). */
int state_tx_begin(struct state *s, struct err *e);
int state_tx_commit(struct state *s, struct err *e);
void state_tx_abort(struct state *s);
/* Makes every commit so far durable (fsyncs the WAL). */
int state_wal_sync(struct state *s, struct err *e);

/* Errors: each fills e and says "state: <db path>: ...". */
void state_dberr(struct state *s, int rc, struct err *e);
void state_nomem(struct state *s, struct err *e);
int state_invalid(struct state *s, struct err *e, const char *what);

/* The columns of `files` in the order state_file_from_row reads them. */
#define STATE_FILE_COLS                                                        \
	"path, key, size, mtime_ns, ctime_ns, inode, sha256, etag, type, "     \
	"width, height, synced_at, status, error, failed_at, attempts, "       \
	"orientation, thumb, thumb_error"

/* state_files.c: a row of STATE_FILE_COLS into f (-1: out of memory);
 * a query's rows, each as a struct state_file, to cb (as
 * state_files_each). */
int state_file_from_row(sqlite3_stmt *st, struct state_file *f);
int state_file_walk(struct state *s, const struct state_sql *q,
                    const struct state_arg *args, size_t nargs,
                    state_file_cb cb, void *arg, struct err *e);

/* Now, in ISO-8601 UTC with milliseconds: 2026-11-21T10:00:00.123Z */
void state_now(char out[32]);

/* Column i: a malloc'd copy with a NUL after it (NULL and 0 for SQL NULL;
 * -1 when out of memory), into a fixed-size field cut to fit, and as an
 * unsigned (0 when out of range). */
int state_col_dup(sqlite3_stmt *st, int i, char **out, size_t *len);
void state_col_copy(sqlite3_stmt *st, int i, char *dst, size_t size);
unsigned state_col_uint(sqlite3_stmt *st, int i);

#endif
