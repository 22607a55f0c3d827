/*
 * state: the engine under the state database's tables: the cache of
 * prepared statements and the helpers that bind, step and put them back,
 * transactions and batches (with the WAL fsync that makes them durable),
 * and what a database error says. Opening and the schema are in
 * state_open.c; the tables in state_files.c, state_intents.c and
 * state_meta.c; state_impl.h is what they share. See state.h for the
 * contract and the durability rules.
 */
#include "state_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

static const struct state_sql tx_begin = {ST_BEGIN, "BEGIN IMMEDIATE"};
static const struct state_sql tx_commit = {ST_COMMIT, "COMMIT"};

/* --- errors ------------------------------------------------------------ */

#define CODE(c) [c] = #c
static const char *const sqlite_codes[] = {
    CODE(SQLITE_OK),         CODE(SQLITE_ERROR),    CODE(SQLITE_INTERNAL),
    CODE(SQLITE_PERM),       CODE(SQLITE_ABORT),    CODE(SQLITE_BUSY),
    CODE(SQLITE_LOCKED),     CODE(SQLITE_NOMEM),    CODE(SQLITE_READONLY),
    CODE(SQLITE_INTERRUPT),  CODE(SQLITE_IOERR),    CODE(SQLITE_CORRUPT),
    CODE(SQLITE_NOTFOUND),   CODE(SQLITE_FULL),     CODE(SQLITE_CANTOPEN),
    CODE(SQLITE_PROTOCOL),   CODE(SQLITE_SCHEMA),   CODE(SQLITE_TOOBIG),
    CODE(SQLITE_CONSTRAINT), CODE(SQLITE_MISMATCH), CODE(SQLITE_MISUSE),
    CODE(SQLITE_NOLFS),      CODE(SQLITE_AUTH),     CODE(SQLITE_RANGE),
    CODE(SQLITE_NOTADB)};
#undef CODE

/* The primary code's name, e.g. "SQLITE_BUSY" for SQLITE_BUSY_TIMEOUT. */
static const char *
sqlite_code_name(int rc)
{
	size_t i = (size_t)(rc & 0xff);

	if (i < nitems(sqlite_codes) && sqlite_codes[i] != NULL)
		return sqlite_codes[i];
	return "SQLITE_UNKNOWN";
}

/*
 * ERR_SYS when what failed is the file under the database, which the
 * operator mends on the file system: the disk (full, an I/O error), the
 * permissions (cannot open, read-only), a file that is not a database at
 * all. ERR_DB when the database itself failed: busy, corrupt, a
 * constraint, misuse.
 */
static enum err_kind
sqlite_err_kind(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_NOLFS:
	case SQLITE_NOTADB:
		return ERR_SYS;
	}
	return ERR_DB;
}

/*
 * The error of the last call on db (rc is what that call returned), as
 * "state: <path>: <sqlite message>", with the OS error when one is behind
 * it and the extended code when it says more than the primary one.
 */
static void
db_error(sqlite3 *db, const char *path, int rc, struct err *e)
{
	const char *msg;
	char os[160] = "", ext[48] = "";
	int primary = rc & 0xff, sys = 0;

	if (e == NULL)
		return;
	msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	if (db != NULL &&
	    (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
	     primary == SQLITE_FULL))
		sys = sqlite3_system_errno(db);
	if (sys != 0)
		snprintf(os, sizeof(os), " (%s)", strerror(sys));
	else if (rc == SQLITE_READONLY_DIRECTORY)
		snprintf(os, sizeof(os),
		         " (its directory is read-only: "
		         "cannot create the -wal and -shm files)");
	if (rc != primary)
		snprintf(ext, sizeof(ext), " [extended code %d]", rc);
	err_set(e, sqlite_err_kind(rc), "state: %s: %s%s%s", path, msg, os,
	        ext);
	e->sys_errno = sys;
	snprintf(e->code, sizeof(e->code), "%s", sqlite_code_name(rc));
}

void
state_dberr(struct state *s, int rc, struct err *e)
{
	db_error(s->db, s->path, rc, e);
}

void
state_nomem(struct state *s, struct err *e)
{
	err_set(e, ERR_SYS, "state: %s: out of memory", s->path);
	if (e != NULL) {
		e->sys_errno = ENOMEM;
		e->code[0] = '\0';
	}
}

int
state_invalid(struct state *s, struct err *e, const char *what)
{
	err_set(e, ERR_INVALID, "state: %s: %s", s != NULL ? s->path : "?",
	        what);
	if (e != NULL)
		e->code[0] = '\0';
	return -1;
}

void
state_now(char out[32])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	text_iso_time(&ts, 3, out, 32);
}

/* --- statements -------------------------------------------------------- */

/*
 * Cached prepared statements. A statement that is busy (a walk is using it
 * and its callback came back here for the same query) is not disturbed: a
 * fresh one is prepared and stmt_put finalizes it.
 */
static sqlite3_stmt *
stmt_get(struct state *s, const struct state_sql *q, struct err *e)
{
	sqlite3_stmt *st = s->stmts[q->id];
	unsigned int flags;
	int rc;

	if (st != NULL && !sqlite3_stmt_busy(st))
		return st;
	flags = st == NULL ? SQLITE_PREPARE_PERSISTENT : 0;
	rc = sqlite3_prepare_v3(s->db, q->text, -1, flags, &st, NULL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return NULL;
	}
	if (s->stmts[q->id] == NULL)
		s->stmts[q->id] = st;
	return st;
}

static void
stmt_put(struct state *s, const struct state_sql *q, sqlite3_stmt *st)
{
	if (st == s->stmts[q->id]) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else
		sqlite3_finalize(st);
}

/* SQLITE_STATIC: see state_impl.h. A NULL blob pointer would bind SQL
 * NULL, hence the "". */
static int
stmt_bind(sqlite3_stmt *st, int i, const struct state_arg *a)
{
	switch (a->type) {
	case STATE_ARG_BLOB:
		return sqlite3_bind_blob64(st, i, a->n > 0 ? a->p : "", a->n,
		                           SQLITE_STATIC);
	case STATE_ARG_TEXT:
		if (a->p == NULL)
			break;
		return sqlite3_bind_text64(st, i, a->p, strnlen(a->p, a->n),
		                           SQLITE_STATIC, SQLITE_UTF8);
	case STATE_ARG_INT:
		return sqlite3_bind_int64(st, i, a->i);
	case STATE_ARG_NULL:
		break;
	}
	return sqlite3_bind_null(st, i);
}

/* The cached statement of q with args bound, or NULL with e filled. */
static sqlite3_stmt *
stmt_ready(struct state *s, const struct state_sql *q,
           const struct state_arg *args, size_t nargs, struct err *e)
{
	sqlite3_stmt *st;
	size_t i;
	int rc;

	if ((st = stmt_get(s, q, e)) == NULL)
		return NULL;
	for (i = 0; i < nargs; i++) {
		rc = stmt_bind(st, (int)i + 1, &args[i]);
		if (rc != SQLITE_OK) {
			state_dberr(s, rc, e);
			stmt_put(s, q, st);
			return NULL;
		}
	}
	return st;
}

static int state_read_stop(struct state *s, struct err *e);

int
state_run(struct state *s, const struct state_sql *q,
          const struct state_arg *args, size_t nargs, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	/* Every write (and every transaction statement) goes through here:
	 * a read snapshot ends before it, so the write commits (and is
	 * synced) exactly as without one. */
	if (s->in_read && state_read_stop(s, e) == -1)
		return -1;
	if ((st = stmt_ready(s, q, args, nargs, e)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		state_dberr(s, rc,
		            e); /* before the reset changes the message */
	stmt_put(s, q, st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
state_rows(struct state *s, const struct state_sql *q,
           const struct state_arg *args, size_t nargs, state_row_fn row,
           void *arg, struct err *e)
{
	sqlite3_stmt *st;
	int rc, ret;

	if ((st = stmt_ready(s, q, args, nargs, e)) == NULL)
		return -1;
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			ret = 0;
			break;
		}
		if (rc != SQLITE_ROW) {
			state_dberr(s, rc, e);
			ret = -1;
			break;
		}
		ret = row(st, arg);
		if (ret == -1)
			state_nomem(s, e);
		if (ret != 0)
			break;
	}
	stmt_put(s, q, st);
	return ret;
}

static int
number_row(sqlite3_stmt *st, void *arg)
{
	*(uint64_t *)arg = (uint64_t)sqlite3_column_int64(st, 0);
	return 1;
}

int
state_number(struct state *s, const struct state_sql *q, uint64_t *n,
             struct err *e)
{
	if (state_rows(s, q, NULL, 0, number_row, n, e) == -1)
		return -1;
	return 0;
}

int
state_col_dup(sqlite3_stmt *st, int i, char **out, size_t *len)
{
	const void *p;
	size_t n;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	p = sqlite3_column_blob(st, i);
	n = (size_t)sqlite3_column_bytes(st, i);
	*out = malloc(n + 1);
	if (*out == NULL)
		return -1;
	if (n > 0)
		memcpy(*out, p, n);
	(*out)[n] = '\0';
	if (len != NULL)
		*len = n;
	return 0;
}

void
state_col_copy(sqlite3_stmt *st, int i, char *dst, size_t size)
{
	const unsigned char *p;
	size_t n;

	p = sqlite3_column_text(st, i);
	n = (size_t)sqlite3_column_bytes(st, i);
	if (p == NULL)
		n = 0;
	if (n > size - 1)
		n = size - 1;
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
}

unsigned
state_col_uint(sqlite3_stmt *st, int i)
{
	sqlite3_int64 v = sqlite3_column_int64(st, i);

	return v < 0 || v > (sqlite3_int64)~0U ? 0 : (unsigned)v;
}

/* --- transactions and batches ------------------------------------------ */

int
state_tx_begin(struct state *s, struct err *e)
{
	return state_run(s, &tx_begin, NULL, 0, e);
}

int
state_tx_commit(struct state *s, struct err *e)
{
	return state_run(s, &tx_commit, NULL, 0, e);
}

void
state_tx_abort(struct state *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * Makes every commit so far durable: the fsync of the WAL that
 * synchronous=FULL does after each commit, done here only after the
 * commits that need it (intents, batches). Switching the level around
 * them instead cost a pragma parse each time: SQLite re-prepares a
 * synchronous pragma on every run.
 */
int
state_wal_sync(struct state *s, struct err *e)
{
	sqlite3_file *f = NULL;
	int rc;

	rc = sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER,
	                          &f);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return -1;
	}
	if (f == NULL || f->pMethods == NULL) {
		err_set(e, ERR_DB, "state: %s: the WAL is not open", s->path);
		return -1;
	}
	rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return -1;
	}
	return 0;
}

int
state_begin(struct state *s, struct err *e)
{
	if (s->in_batch)
		return state_invalid(s, e, "a batch is already open");
	if (state_tx_begin(s, e) == -1)
		return -1;
	s->in_batch = 1;
	return 0;
}

/* The batch is over, one way or the other. */
static void
state_batch_end(struct state *s)
{
	state_tx_abort(s);
	s->in_batch = 0;
}

int
state_commit(struct state *s, struct err *e)
{
	int ret = 0;

	if (!s->in_batch)
		return state_invalid(s, e, "no batch is open");
	if (state_tx_commit(s, e) == -1)
		ret = -1; /* rolled back by state_batch_end */
	state_batch_end(s);
	if (ret == 0 && state_wal_sync(s, e) == -1)
		ret = -1; /* committed, but not known to be on disk */
	return ret;
}

void
state_rollback(struct state *s)
{
	if (s == NULL || !s->in_batch)
		return;
	state_batch_end(s);
}

/* --- read snapshots ----------------------------------------------------- */

/* Ends the snapshot (it only read: a rollback loses nothing when the
 * commit fails); -1 (and e) when its transaction would not end, so that no
 * write can fall inside it. */
static int
state_read_stop(struct state *s, struct err *e)
{
	int rc;

	s->in_read = 0;
	if (sqlite3_get_autocommit(s->db))
		return 0;
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (!sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if (!sqlite3_get_autocommit(s->db)) {
		state_dberr(s, rc != SQLITE_OK ? rc : SQLITE_ERROR, e);
		return -1;
	}
	return 0;
}

void
state_read_begin(struct state *s)
{
	if (s->in_batch || s->in_read || !sqlite3_get_autocommit(s->db))
		return;
	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK)
		s->in_read = 1;
}

void
state_read_end(struct state *s)
{
	struct err e;

	if (s == NULL || !s->in_read)
		return;
	err_clear(&e);
	(void)state_read_stop(s, &e);
}
