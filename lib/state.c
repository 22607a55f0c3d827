/*
 * state: the state database on SQLite. See state.h for the contract and
 * the durability rules.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 5000
/* A batch of 100k rows grows the WAL well past this; truncate it back at
 * the next checkpoint instead of keeping the space. */
#define WAL_SIZE_LIMIT "67108864"

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Schema version 1. Paths are BLOBs (exact bytes; BLOBs compare with
 * memcmp, so prefix queries are plain range scans on the primary key), and
 * the CHECKs make sure no path ever sneaks in as TEXT, which would sort
 * apart from the BLOBs.
 */
static const char schema_v1[] =
    "CREATE TABLE files (\n"
    "	path      BLOB NOT NULL PRIMARY KEY\n"
    "	          CHECK (typeof(path) = 'blob' AND length(path) > 0),\n"
    "	key       TEXT NOT NULL,\n"
    "	size      INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),\n"
    "	mtime_ns  INTEGER NOT NULL DEFAULT 0,\n"
    "	ctime_ns  INTEGER NOT NULL DEFAULT 0,\n"
    "	inode     INTEGER NOT NULL DEFAULT 0,\n"
    "	sha256    TEXT NOT NULL DEFAULT '',\n"
    "	etag      TEXT NOT NULL DEFAULT '',\n"
    "	type      TEXT NOT NULL DEFAULT '',\n"
    "	width     INTEGER NOT NULL DEFAULT 0,\n"
    "	height    INTEGER NOT NULL DEFAULT 0,\n"
    "	synced_at TEXT NOT NULL DEFAULT '',\n"
    "	status    TEXT NOT NULL DEFAULT 'synced'\n"
    "	          CHECK (status IN ('synced', 'failed')),\n"
    "	error     TEXT,\n"
    "	failed_at TEXT,\n"
    "	attempts  INTEGER NOT NULL DEFAULT 0\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX files_failed ON files (path) WHERE status = 'failed';\n"
    "CREATE TABLE intents (\n"
    "	id         INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "	op         TEXT NOT NULL\n"
    "	           CHECK (op IN ('upload', 'delete', 'rename')),\n"
    "	path       BLOB NOT NULL CHECK (typeof(path) = 'blob'),\n"
    "	old_path   BLOB CHECK (old_path IS NULL OR typeof(old_path) = "
    "'blob'),\n"
    "	key        TEXT NOT NULL,\n"
    "	old_key    TEXT,\n"
    "	size       INTEGER NOT NULL DEFAULT 0,\n"
    "	mtime_ns   INTEGER NOT NULL DEFAULT 0,\n"
    "	sha256     TEXT NOT NULL DEFAULT '',\n"
    "	upload_id  TEXT,\n"
    "	created_at TEXT NOT NULL,\n"
    "	CHECK (op <> 'rename' OR\n"
    "	    (old_path IS NOT NULL AND old_key IS NOT NULL))\n"
    ");\n"
    "CREATE TABLE meta (\n"
    "	name  TEXT NOT NULL PRIMARY KEY,\n"
    "	value BLOB NOT NULL\n"
    ") WITHOUT ROWID;\n";

/*
 * migrations[i] brings a database from user_version i to i + 1: its SQL,
 * then fn (NULL if none) for what SQL cannot express. Both run inside the
 * one transaction that also sets user_version, so a failed migration
 * leaves the database as it was.
 */
struct state_migration {
	const char *sql;
	int (*fn)(struct state *s, struct err *e);
};

static const struct state_migration migrations[] = {
    {schema_v1, NULL},
};

_Static_assert(nitems(migrations) == STATE_SCHEMA_VERSION,
               "one migration per schema version");

#define FILE_COLS                                                              \
	"path, key, size, mtime_ns, ctime_ns, inode, sha256, etag, type, "     \
	"width, height, synced_at, status, error, failed_at, attempts"
#define INTENT_COLS                                                            \
	"id, op, path, old_path, key, old_key, size, mtime_ns, sha256, "       \
	"upload_id, created_at"

enum stmt_id {
	ST_FILE_GET,
	ST_FILE_PUT,
	ST_FILE_FAIL,
	ST_FILE_DELETE,
	ST_FILE_RENAME,
	ST_DIR_RENAME,
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
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_MAX
};

static const char *const stmt_sql[ST_MAX] = {
    [ST_FILE_GET] = "SELECT " FILE_COLS " FROM files WHERE path = ?1",
    [ST_FILE_PUT] = "INSERT OR REPLACE INTO files (" FILE_COLS ") VALUES "
                    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                    "'synced', NULL, NULL, 0)",
    [ST_FILE_FAIL] = "INSERT INTO files (path, key, status, error, "
                     "failed_at, attempts) VALUES (?1, '', 'failed', ?2, ?3, "
                     "1) ON CONFLICT (path) DO UPDATE SET status = 'failed', "
                     "error = excluded.error, failed_at = excluded.failed_at, "
                     "attempts = attempts + 1",
    [ST_FILE_DELETE] = "DELETE FROM files WHERE path = ?1",
    [ST_FILE_RENAME] = "UPDATE OR REPLACE files SET path = ?2, key = ?3 "
                       "WHERE path = ?1",
    /* ?1 = old + "/", ?2 = old + "0" ('/' + 1): exactly the paths under
     * old/. ?5 is where the rest of the path starts (1-based). */
    [ST_DIR_RENAME] = "UPDATE OR REPLACE files SET "
                      "path = CAST(?3 || substr(path, ?5) AS BLOB), "
                      "key = ?4 || CAST(substr(path, ?5) AS TEXT) "
                      "WHERE path >= ?1 AND path < ?2",
    [ST_FILES_ALL] = "SELECT " FILE_COLS " FROM files ORDER BY path",
    [ST_FILES_AFTER] = "SELECT " FILE_COLS " FROM files WHERE path > ?1 "
                       "ORDER BY path",
    [ST_FILES_FROM] = "SELECT " FILE_COLS " FROM files WHERE path >= ?1 "
                      "ORDER BY path",
    /* One range scan from prefix to prefix + "0"; siblings such as
     * "a/b.jpg" for the prefix "a/b" fall inside it and are filtered. */
    [ST_FILES_UNDER] = "SELECT " FILE_COLS " FROM files WHERE path >= ?1 "
                       "AND path < ?3 AND (path = ?1 OR path >= ?2) "
                       "ORDER BY path",
    [ST_FAILED_ALL] = "SELECT " FILE_COLS " FROM files "
                      "WHERE status = 'failed' ORDER BY path",
    /* The partial index files_failed answers it without a table scan. */
    [ST_COUNT_FAILED] = "SELECT count(*) FROM files WHERE status = 'failed'",
    [ST_COUNT] = "SELECT count(*) FILTER (WHERE status = 'synced'), "
                 "count(*) FILTER (WHERE status = 'failed'), "
                 "coalesce(sum(size) FILTER (WHERE status = 'synced'), 0) "
                 "FROM files",
    [ST_INTENT_ADD] = "INSERT INTO intents (op, path, old_path, key, "
                      "old_key, size, mtime_ns, sha256, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_INTENT_UPLOAD_ID] = "UPDATE intents SET upload_id = ?2 WHERE id = ?1",
    [ST_INTENT_DONE] = "DELETE FROM intents WHERE id = ?1",
    [ST_INTENTS_ALL] = "SELECT " INTENT_COLS " FROM intents ORDER BY id",
    [ST_INTENT_COUNT] = "SELECT count(*) FROM intents",
    [ST_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [ST_META_PUT] = "INSERT OR REPLACE INTO meta (name, value) "
                    "VALUES (?1, ?2)",
    [ST_META_DELETE] = "DELETE FROM meta WHERE name = ?1",
    [ST_META_EACH] = "SELECT name, value FROM meta "
                     "WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

struct state {
	sqlite3 *db;
	char *path;
	int in_batch;
	sqlite3_stmt *stmts[ST_MAX];
};

static const char *
sqlite_code_name(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return "SQLITE_OK";
	case SQLITE_ERROR:
		return "SQLITE_ERROR";
	case SQLITE_INTERNAL:
		return "SQLITE_INTERNAL";
	case SQLITE_PERM:
		return "SQLITE_PERM";
	case SQLITE_ABORT:
		return "SQLITE_ABORT";
	case SQLITE_BUSY:
		return "SQLITE_BUSY";
	case SQLITE_LOCKED:
		return "SQLITE_LOCKED";
	case SQLITE_NOMEM:
		return "SQLITE_NOMEM";
	case SQLITE_READONLY:
		return "SQLITE_READONLY";
	case SQLITE_INTERRUPT:
		return "SQLITE_INTERRUPT";
	case SQLITE_IOERR:
		return "SQLITE_IOERR";
	case SQLITE_CORRUPT:
		return "SQLITE_CORRUPT";
	case SQLITE_NOTFOUND:
		return "SQLITE_NOTFOUND";
	case SQLITE_FULL:
		return "SQLITE_FULL";
	case SQLITE_CANTOPEN:
		return "SQLITE_CANTOPEN";
	case SQLITE_PROTOCOL:
		return "SQLITE_PROTOCOL";
	case SQLITE_SCHEMA:
		return "SQLITE_SCHEMA";
	case SQLITE_TOOBIG:
		return "SQLITE_TOOBIG";
	case SQLITE_CONSTRAINT:
		return "SQLITE_CONSTRAINT";
	case SQLITE_MISMATCH:
		return "SQLITE_MISMATCH";
	case SQLITE_MISUSE:
		return "SQLITE_MISUSE";
	case SQLITE_NOLFS:
		return "SQLITE_NOLFS";
	case SQLITE_AUTH:
		return "SQLITE_AUTH";
	case SQLITE_RANGE:
		return "SQLITE_RANGE";
	case SQLITE_NOTADB:
		return "SQLITE_NOTADB";
	}
	return "SQLITE_UNKNOWN";
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
	err_set(e, ERR_SYS, "state: %s: %s%s%s", path, msg, os, ext);
	e->sys_errno = sys;
	snprintf(e->code, sizeof(e->code), "%s", sqlite_code_name(rc));
}

static void
state_dberr(struct state *s, int rc, struct err *e)
{
	db_error(s->db, s->path, rc, e);
}

static void
state_nomem(struct state *s, struct err *e)
{
	err_set(e, ERR_SYS, "state: %s: out of memory", s->path);
	if (e != NULL) {
		e->sys_errno = ENOMEM;
		e->code[0] = '\0';
	}
}

static int
state_invalid(struct state *s, struct err *e, const char *what)
{
	err_set(e, ERR_INVALID, "state: %s: %s", s != NULL ? s->path : "?",
	        what);
	if (e != NULL)
		e->code[0] = '\0';
	return -1;
}

/* ISO-8601 UTC with milliseconds: 2026-11-21T10:00:00.123Z */
static void
state_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/*
 * Cached prepared statements. A statement that is busy (a walk is using it
 * and its callback came back here for the same query) is not disturbed: a
 * fresh one is prepared and stmt_put finalizes it.
 */
static sqlite3_stmt *
stmt_get(struct state *s, enum stmt_id id, struct err *e)
{
	sqlite3_stmt *st = s->stmts[id];
	unsigned int flags;
	int rc;

	if (st != NULL && !sqlite3_stmt_busy(st))
		return st;
	flags = st == NULL ? SQLITE_PREPARE_PERSISTENT : 0;
	rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, flags, &st, NULL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return NULL;
	}
	if (s->stmts[id] == NULL)
		s->stmts[id] = st;
	return st;
}

static void
stmt_put(struct state *s, enum stmt_id id, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	if (st == s->stmts[id]) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else
		sqlite3_finalize(st);
}

/* Bindings use SQLITE_STATIC: every statement is reset before the bound
 * memory goes away. A NULL pointer would bind SQL NULL, hence the "". */
static int
bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	return sqlite3_bind_blob64(st, i, n > 0 ? p : "", n, SQLITE_STATIC);
}

static int
bind_text(sqlite3_stmt *st, int i, const char *p)
{
	if (p == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text64(st, i, p, strlen(p), SQLITE_STATIC,
	                           SQLITE_UTF8);
}

/* A fixed-size field that may lack its NUL. */
static int
bind_field(sqlite3_stmt *st, int i, const char *p, size_t size)
{
	return sqlite3_bind_text64(st, i, p, strnlen(p, size), SQLITE_STATIC,
	                           SQLITE_UTF8);
}

/* Steps a write statement to completion and puts it back. */
static int
stmt_run(struct state *s, enum stmt_id id, sqlite3_stmt *st, struct err *e)
{
	int rc;

	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		state_dberr(s, rc, e);
		stmt_put(s, id, st);
		return -1;
	}
	stmt_put(s, id, st);
	return 0;
}

static int
state_exec(struct state *s, const char *sql, struct err *e)
{
	int rc;

	rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return -1;
	}
	return 0;
}

/* The single integer a query such as "PRAGMA user_version" answers. */
/*
 * Makes every commit so far durable: the fsync of the WAL that
 * synchronous=FULL does after each commit, done here only after the
 * commits that need it (intents, batches). Switching the level around
 * them instead cost a pragma parse each time: SQLite re-prepares a
 * synchronous pragma on every run.
 */
static int
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
		err_set(e, ERR_SYS, "state: %s: the WAL is not open", s->path);
		return -1;
	}
	rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return -1;
	}
	return 0;
}

static int
state_query_int(struct state *s, const char *sql, int64_t *v, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		state_dberr(s, rc, e);
		sqlite3_finalize(st);
		return -1;
	}
	*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* A copy of column i with a NUL after it; NULL (and 0) for SQL NULL. */
static int
col_dup(sqlite3_stmt *st, int i, char **out, size_t *len)
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

/* Column i into a fixed-size field, cut to fit. */
static void
col_copy(sqlite3_stmt *st, int i, char *dst, size_t size)
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

static unsigned
col_uint(sqlite3_stmt *st, int i)
{
	sqlite3_int64 v = sqlite3_column_int64(st, i);

	return v < 0 || v > (sqlite3_int64)~0U ? 0 : (unsigned)v;
}

void
state_file_cleanup(struct state_file *f)
{
	if (f == NULL)
		return;
	free(f->path);
	free(f->key);
	free(f->error);
	f->path = f->key = f->error = NULL;
	f->path_len = 0;
}

/* Row in FILE_COLS order into f; -1 when out of memory. */
static int
file_from_row(sqlite3_stmt *st, struct state_file *f)
{
	const unsigned char *status;

	memset(f, 0, sizeof(*f));
	if (col_dup(st, 0, &f->path, &f->path_len) == -1 ||
	    col_dup(st, 1, &f->key, NULL) == -1 ||
	    col_dup(st, 13, &f->error, NULL) == -1)
		goto fail;
	if (f->path == NULL || f->key == NULL)
		goto fail;
	f->size = (uint64_t)sqlite3_column_int64(st, 2);
	f->mtime_ns = sqlite3_column_int64(st, 3);
	f->ctime_ns = sqlite3_column_int64(st, 4);
	f->inode = (uint64_t)sqlite3_column_int64(st, 5);
	col_copy(st, 6, f->sha256, sizeof(f->sha256));
	col_copy(st, 7, f->etag, sizeof(f->etag));
	col_copy(st, 8, f->type, sizeof(f->type));
	f->width = col_uint(st, 9);
	f->height = col_uint(st, 10);
	col_copy(st, 11, f->synced_at, sizeof(f->synced_at));
	status = sqlite3_column_text(st, 12);
	f->failed =
	    status != NULL && strcmp((const char *)status, "failed") == 0;
	col_copy(st, 14, f->failed_at, sizeof(f->failed_at));
	f->attempts = col_uint(st, 15);
	return 0;
fail:
	state_file_cleanup(f);
	return -1;
}

const char *
state_op_name(enum state_op op)
{
	switch (op) {
	case STATE_OP_UPLOAD:
		return "upload";
	case STATE_OP_DELETE:
		return "delete";
	case STATE_OP_RENAME:
		return "rename";
	}
	return NULL;
}

static int
state_op_parse(const unsigned char *name, enum state_op *op)
{
	if (name == NULL)
		return -1;
	if (strcmp((const char *)name, "upload") == 0)
		*op = STATE_OP_UPLOAD;
	else if (strcmp((const char *)name, "delete") == 0)
		*op = STATE_OP_DELETE;
	else if (strcmp((const char *)name, "rename") == 0)
		*op = STATE_OP_RENAME;
	else
		return -1;
	return 0;
}

void
state_intent_cleanup(struct state_intent *in)
{
	if (in == NULL)
		return;
	free(in->path);
	free(in->old_path);
	free(in->key);
	free(in->old_key);
	free(in->upload_id);
	in->path = in->old_path = in->key = in->old_key = in->upload_id = NULL;
	in->path_len = in->old_len = 0;
}

/* Row in INTENT_COLS order into in; -1 when out of memory. */
static int
intent_from_row(sqlite3_stmt *st, struct state_intent *in)
{
	memset(in, 0, sizeof(*in));
	in->id = sqlite3_column_int64(st, 0);
	if (state_op_parse(sqlite3_column_text(st, 1), &in->op) == -1)
		in->op = STATE_OP_UPLOAD; /* the CHECK makes this unreachable */
	if (col_dup(st, 2, &in->path, &in->path_len) == -1 ||
	    col_dup(st, 3, &in->old_path, &in->old_len) == -1 ||
	    col_dup(st, 4, &in->key, NULL) == -1 ||
	    col_dup(st, 5, &in->old_key, NULL) == -1 ||
	    col_dup(st, 9, &in->upload_id, NULL) == -1)
		goto fail;
	if (in->path == NULL || in->key == NULL)
		goto fail;
	in->size = (uint64_t)sqlite3_column_int64(st, 6);
	in->mtime_ns = sqlite3_column_int64(st, 7);
	col_copy(st, 8, in->sha256, sizeof(in->sha256));
	col_copy(st, 10, in->created_at, sizeof(in->created_at));
	return 0;
fail:
	state_intent_cleanup(in);
	return -1;
}

/*
 * Makes sure the file is ours before anything writes to it (switching to
 * WAL mode alone would change its header): an empty database, or one with
 * our application_id and a schema version we know. A SQLite database that
 * belongs to something else is refused, never altered. *version is the
 * schema version to migrate from.
 */
static int
state_identify(struct state *s, int64_t *version, struct err *e)
{
	int64_t appid, ntables;

	if (state_query_int(s, "PRAGMA application_id", &appid, e) == -1 ||
	    state_query_int(s, "PRAGMA user_version", version, e) == -1 ||
	    state_query_int(s, "SELECT count(*) FROM sqlite_schema", &ntables,
	                    e) == -1)
		return -1;
	if (appid == 0 && ntables == 0) {
		*version = 0;
		return 0;
	}
	if (appid != STATE_APPLICATION_ID) {
		err_set(e, ERR_SYS,
		        "state: %s: not an imgsync state database "
		        "(application_id 0x%08llx, %lld schema objects); "
		        "left untouched",
		        s->path, (unsigned long long)(uint32_t)appid,
		        (long long)ntables);
		return -1;
	}
	if (*version < 0 || *version > STATE_SCHEMA_VERSION) {
		err_set(e, ERR_SYS,
		        "state: %s: schema version %lld is newer than this "
		        "imgsync knows (%d); left untouched",
		        s->path, (long long)*version, STATE_SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

/*
 * Brings the schema up to date inside one write transaction (so that two
 * processes opening a new file do not both create it).
 */
static int
state_migrate(struct state *s, struct err *e)
{
	int64_t version;
	char sql[96];
	size_t i;

	if (state_exec(s, "BEGIN IMMEDIATE", e) == -1)
		return -1;
	/* Again, now under the write lock: another process may have created
	 * the schema since state_identify looked. */
	if (state_identify(s, &version, e) == -1)
		goto fail;
	if (version == STATE_SCHEMA_VERSION)
		return state_exec(s, "COMMIT", e);
	for (i = (size_t)version; i < nitems(migrations); i++) {
		if (state_exec(s, migrations[i].sql, e) == -1)
			goto fail;
		if (migrations[i].fn != NULL && migrations[i].fn(s, e) == -1)
			goto fail;
	}
	snprintf(sql, sizeof(sql),
	         "PRAGMA application_id = %d; PRAGMA user_version = %d",
	         STATE_APPLICATION_ID, STATE_SCHEMA_VERSION);
	if (state_exec(s, sql, e) == -1 || state_exec(s, "COMMIT", e) == -1)
		goto fail;
	return 0;
fail:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Creates the file ourselves so that it gets mode 0600 whatever the umask
 * (SQLite gives the -wal and -shm files the mode of the database), and so
 * that a missing directory or a permission problem is reported with
 * errno instead of SQLite's "unable to open database file".
 */
static int
state_precreate(const char *path, int *created, struct err *e)
{
	struct stat sb;
	int fd;

	*created = 0;
	fd = open(path,
	          O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	          0600);
	if (fd != -1)
		*created = 1;
	else if (errno == EEXIST)
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		err_sys(e, "state: %s", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		err_sys(e, "state: %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(sb.st_mode)) {
		err_set(e, ERR_SYS, "state: %s: not a regular file", path);
		return -1;
	}
	return 0;
}

/*
 * A new file's directory entry must reach the disk too, or a power loss
 * could take the whole database with it. Best effort: some file systems
 * refuse fsync on a directory, and the file itself is already synced.
 */
static void
state_sync_parent(const char *path)
{
	char *dir, *slash;
	int fd;

	dir = strdup(path);
	if (dir == NULL)
		return;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

static int
state_configure(struct state *s, struct err *e)
{
	sqlite3_stmt *st;
	const unsigned char *mode;
	int64_t version;
	int rc;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		err_set(e, ERR_SYS, "state: %s: database is read-only",
		        s->path);
		return -1;
	}
	/* The first statement to read the file: a file that is not a
	 * database fails here with SQLITE_NOTADB. */
	if (state_identify(s, &version, e) == -1)
		return -1;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st,
	                        NULL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		state_dberr(s, rc, e);
		sqlite3_finalize(st);
		return -1;
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		err_set(
		    e, ERR_SYS,
		    "state: %s: cannot switch to WAL mode (journal mode %s)",
		    s->path, mode != NULL ? (const char *)mode : "unknown");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return state_exec(s,
	                  "PRAGMA synchronous = NORMAL;"
	                  "PRAGMA foreign_keys = ON;"
	                  "PRAGMA trusted_schema = OFF;"
	                  "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT ";",
	                  e);
}

struct state *
state_open(const char *path, struct err *e)
{
	struct state *s;
	int created, rc;

	if (path == NULL || *path == '\0') {
		err_set(e, ERR_INVALID, "state: no database path");
		return NULL;
	}
	if (state_precreate(path, &created, e) == -1)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->path = strdup(path)) == NULL) {
		err_sys(e, "state: %s", path);
		free(s);
		return NULL;
	}
	rc = sqlite3_open_v2(
	    path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	        SQLITE_OPEN_PRIVATECACHE | SQLITE_OPEN_EXRESCODE,
	    NULL);
	if (rc != SQLITE_OK) {
		state_dberr(s, rc, e);
		goto fail;
	}
	if (state_configure(s, e) == -1 || state_migrate(s, e) == -1)
		goto fail;
	if (created)
		state_sync_parent(path);
	return s;
fail:
	state_close(s);
	return NULL;
}

void
state_close(struct state *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < nitems(s->stmts); i++)
		sqlite3_finalize(s->stmts[i]);
	if (s->db != NULL) {
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		/* Closing the last connection checkpoints and removes the
		 * WAL. */
		if (sqlite3_close(s->db) != SQLITE_OK)
			sqlite3_close_v2(s->db);
	}
	free(s->path);
	free(s);
}

int
state_file_get(struct state *s, const char *path, size_t len,
               struct state_file *out, struct err *e)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	memset(out, 0, sizeof(*out));
	if (path == NULL || len == 0)
		return state_invalid(s, e, "empty path");
	if ((st = stmt_get(s, ST_FILE_GET, e)) == NULL)
		return -1;
	if ((rc = bind_blob(st, 1, path, len)) != SQLITE_OK)
		goto dberr;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		ret = 0;
	else if (rc != SQLITE_ROW)
		goto dberr;
	else if (file_from_row(st, out) == -1)
		state_nomem(s, e);
	else
		ret = 1;
	stmt_put(s, ST_FILE_GET, st);
	return ret;
dberr:
	state_dberr(s, rc, e);
	stmt_put(s, ST_FILE_GET, st);
	return -1;
}

int
state_file_put(struct state *s, const struct state_file *f, struct err *e)
{
	sqlite3_stmt *st;
	char now[32];
	const char *synced_at = f->synced_at;
	int rc;

	if (f->path == NULL || f->path_len == 0)
		return state_invalid(s, e, "empty path");
	if (f->key == NULL)
		return state_invalid(s, e, "no key");
	if (f->size > INT64_MAX)
		return state_invalid(s, e, "size out of range");
	if (synced_at[0] == '\0') {
		state_now(now);
		synced_at = now;
	}
	if ((st = stmt_get(s, ST_FILE_PUT, e)) == NULL)
		return -1;
	if ((rc = bind_blob(st, 1, f->path, f->path_len)) != SQLITE_OK ||
	    (rc = bind_text(st, 2, f->key)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)f->size)) !=
	        SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 4, f->mtime_ns)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 5, f->ctime_ns)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 6, (sqlite3_int64)f->inode)) !=
	        SQLITE_OK ||
	    (rc = bind_field(st, 7, f->sha256, sizeof(f->sha256))) !=
	        SQLITE_OK ||
	    (rc = bind_field(st, 8, f->etag, sizeof(f->etag))) != SQLITE_OK ||
	    (rc = bind_field(st, 9, f->type, sizeof(f->type))) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 10, f->width)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 11, f->height)) != SQLITE_OK ||
	    (rc = bind_field(st, 12, synced_at, sizeof(f->synced_at))) !=
	        SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_FILE_PUT, st);
		return -1;
	}
	return stmt_run(s, ST_FILE_PUT, st, e);
}

int
state_file_synced(struct state *s, const struct state_file *f,
                  const int64_t *ids, size_t n, struct err *e)
{
	sqlite3_stmt *st;
	size_t i;
	int own, rc;

	/* Inside a batch the batch is the transaction. */
	own = !s->in_batch && n > 0;
	if (own && ((st = stmt_get(s, ST_BEGIN, e)) == NULL ||
	            stmt_run(s, ST_BEGIN, st, e) == -1))
		return -1;
	if (state_file_put(s, f, e) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (ids[i] <= 0)
			continue;
		if ((st = stmt_get(s, ST_INTENT_DONE, e)) == NULL)
			goto fail;
		if ((rc = sqlite3_bind_int64(st, 1, ids[i])) != SQLITE_OK) {
			state_dberr(s, rc, e);
			stmt_put(s, ST_INTENT_DONE, st);
			goto fail;
		}
		if (stmt_run(s, ST_INTENT_DONE, st, e) == -1)
			goto fail;
	}
	if (own && ((st = stmt_get(s, ST_COMMIT, e)) == NULL ||
	            stmt_run(s, ST_COMMIT, st, e) == -1))
		goto fail;
	return 0;
fail:
	if (own && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
state_file_fail(struct state *s, const char *path, size_t len,
                const char *error, struct err *e)
{
	sqlite3_stmt *st;
	char now[32];
	int rc;

	if (path == NULL || len == 0)
		return state_invalid(s, e, "empty path");
	state_now(now);
	if ((st = stmt_get(s, ST_FILE_FAIL, e)) == NULL)
		return -1;
	if ((rc = bind_blob(st, 1, path, len)) != SQLITE_OK ||
	    (rc = bind_text(st, 2, error)) != SQLITE_OK ||
	    (rc = bind_text(st, 3, now)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_FILE_FAIL, st);
		return -1;
	}
	return stmt_run(s, ST_FILE_FAIL, st, e);
}

int
state_file_delete(struct state *s, const char *path, size_t len, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (path == NULL || len == 0)
		return state_invalid(s, e, "empty path");
	if ((st = stmt_get(s, ST_FILE_DELETE, e)) == NULL)
		return -1;
	if ((rc = bind_blob(st, 1, path, len)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_FILE_DELETE, st);
		return -1;
	}
	return stmt_run(s, ST_FILE_DELETE, st, e);
}

int
state_file_rename(struct state *s, const char *oldp, size_t oldlen,
                  const char *newp, size_t newlen, const char *new_key,
                  struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (oldp == NULL || oldlen == 0 || newp == NULL || newlen == 0)
		return state_invalid(s, e, "empty path");
	if (new_key == NULL)
		return state_invalid(s, e, "no key");
	if ((st = stmt_get(s, ST_FILE_RENAME, e)) == NULL)
		return -1;
	if ((rc = bind_blob(st, 1, oldp, oldlen)) != SQLITE_OK ||
	    (rc = bind_blob(st, 2, newp, newlen)) != SQLITE_OK ||
	    (rc = bind_text(st, 3, new_key)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_FILE_RENAME, st);
		return -1;
	}
	if (stmt_run(s, ST_FILE_RENAME, st, e) == -1)
		return -1;
	return sqlite3_changes(s->db) > 0;
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

/* a is b, or a lies under b/ */
static int
path_within(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen < blen || memcmp(a, b, blen) != 0)
		return 0;
	return alen == blen || a[blen] == '/';
}

int
state_dir_rename(struct state *s, const char *oldp, size_t oldlen,
                 const char *newp, size_t newlen, const char *new_key_dir,
                 size_t *moved, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char *lo = NULL, *hi = NULL, *newdir = NULL, *keydir = NULL;
	size_t keylen;
	int rc, ret = -1;

	if (moved != NULL)
		*moved = 0;
	if (oldp == NULL || oldlen == 0 || newp == NULL || newlen == 0)
		return state_invalid(s, e, "empty path");
	if (new_key_dir == NULL)
		return state_invalid(s, e, "no key");
	if (path_within(newp, newlen, oldp, oldlen) ||
	    path_within(oldp, oldlen, newp, newlen))
		return state_invalid(
		    s, e,
		    "cannot rename a directory into itself or onto a parent");
	keylen = strlen(new_key_dir);
	if ((lo = bytes_plus(oldp, oldlen, '/')) == NULL ||
	    (hi = bytes_plus(oldp, oldlen, '0')) == NULL ||
	    (newdir = bytes_plus(newp, newlen, '/')) == NULL ||
	    (keydir = bytes_plus(new_key_dir, keylen, '/')) == NULL) {
		state_nomem(s, e);
		goto out;
	}
	if ((st = stmt_get(s, ST_DIR_RENAME, e)) == NULL)
		goto out;
	if ((rc = bind_blob(st, 1, lo, oldlen + 1)) != SQLITE_OK ||
	    (rc = bind_blob(st, 2, hi, oldlen + 1)) != SQLITE_OK ||
	    (rc = bind_blob(st, 3, newdir, newlen + 1)) != SQLITE_OK ||
	    (rc = sqlite3_bind_text64(st, 4, keydir, keylen + 1, SQLITE_STATIC,
	                              SQLITE_UTF8)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)oldlen + 2)) !=
	        SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_DIR_RENAME, st);
		goto out;
	}
	if (stmt_run(s, ST_DIR_RENAME, st, e) == -1)
		goto out;
	if (moved != NULL)
		*moved = (size_t)sqlite3_changes(s->db);
	ret = 0;
out:
	free(lo);
	free(hi);
	free(newdir);
	free(keydir);
	return ret;
}

/* One row of a walk: 0 go on, 1 stop (the caller's callback said so), -1
 * out of memory. */
typedef int (*state_row_fn)(sqlite3_stmt *st, void *ctx);

/* Steps st (already bound) through its rows; see state.h for the return
 * convention. Puts st back. */
static int
walk_rows(struct state *s, enum stmt_id id, sqlite3_stmt *st, state_row_fn row,
          void *ctx, struct err *e)
{
	int rc, ret;

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
		ret = row(st, ctx);
		if (ret == -1)
			state_nomem(s, e);
		if (ret != 0)
			break;
	}
	stmt_put(s, id, st);
	return ret;
}

struct file_walk {
	state_file_cb cb;
	void *arg;
};

static int
file_row(sqlite3_stmt *st, void *ctx)
{
	struct file_walk *w = ctx;
	struct state_file f;
	int rc;

	if (file_from_row(st, &f) == -1)
		return -1;
	rc = w->cb(&f, w->arg);
	state_file_cleanup(&f);
	return rc != 0;
}

static int
walk_files(struct state *s, enum stmt_id id, sqlite3_stmt *st, state_file_cb cb,
           void *arg, struct err *e)
{
	struct file_walk w = {cb, arg};

	return walk_rows(s, id, st, file_row, &w, e);
}

int
state_files_each(struct state *s, state_file_cb cb, void *arg, struct err *e)
{
	sqlite3_stmt *st;

	if ((st = stmt_get(s, ST_FILES_ALL, e)) == NULL)
		return -1;
	return walk_files(s, ST_FILES_ALL, st, cb, arg, e);
}

int
state_files_after(struct state *s, const char *start, size_t len, int inclusive,
                  state_file_cb cb, void *arg, struct err *e)
{
	enum stmt_id id = inclusive ? ST_FILES_FROM : ST_FILES_AFTER;
	sqlite3_stmt *st;
	int rc;

	if (start == NULL)
		return state_files_each(s, cb, arg, e);
	if ((st = stmt_get(s, id, e)) == NULL)
		return -1;
	if ((rc = bind_blob(st, 1, start, len)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, id, st);
		return -1;
	}
	return walk_files(s, id, st, cb, arg, e);
}

int
state_files_under(struct state *s, const char *prefix, size_t len,
                  state_file_cb cb, void *arg, struct err *e)
{
	sqlite3_stmt *st;
	char *lo = NULL, *hi = NULL;
	int rc, ret = -1;

	if (len > 0 && prefix == NULL)
		return state_invalid(s, e, "no prefix");
	while (len > 0 && prefix[len - 1] == '/')
		len--;
	if (len == 0)
		return state_files_each(s, cb, arg, e);
	if ((lo = bytes_plus(prefix, len, '/')) == NULL ||
	    (hi = bytes_plus(prefix, len, '0')) == NULL) {
		state_nomem(s, e);
		goto out;
	}
	if ((st = stmt_get(s, ST_FILES_UNDER, e)) == NULL)
		goto out;
	if ((rc = bind_blob(st, 1, prefix, len)) != SQLITE_OK ||
	    (rc = bind_blob(st, 2, lo, len + 1)) != SQLITE_OK ||
	    (rc = bind_blob(st, 3, hi, len + 1)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_FILES_UNDER, st);
		goto out;
	}
	ret = walk_files(s, ST_FILES_UNDER, st, cb, arg, e);
out:
	free(lo);
	free(hi);
	return ret;
}

int
state_failed_each(struct state *s, state_file_cb cb, void *arg, struct err *e)
{
	sqlite3_stmt *st;

	if ((st = stmt_get(s, ST_FAILED_ALL, e)) == NULL)
		return -1;
	return walk_files(s, ST_FAILED_ALL, st, cb, arg, e);
}

int
state_count(struct state *s, uint64_t *files, uint64_t *failed, uint64_t *bytes,
            struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt_get(s, ST_COUNT, e)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_COUNT, st);
		return -1;
	}
	if (files != NULL)
		*files = (uint64_t)sqlite3_column_int64(st, 0);
	if (failed != NULL)
		*failed = (uint64_t)sqlite3_column_int64(st, 1);
	if (bytes != NULL)
		*bytes = (uint64_t)sqlite3_column_int64(st, 2);
	stmt_put(s, ST_COUNT, st);
	return 0;
}

/* The one number a count statement answers. */
static int
count_one(struct state *s, enum stmt_id id, uint64_t *n, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt_get(s, id, e)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		state_dberr(s, rc, e);
		stmt_put(s, id, st);
		return -1;
	}
	*n = (uint64_t)sqlite3_column_int64(st, 0);
	stmt_put(s, id, st);
	return 0;
}

int
state_count_failed(struct state *s, uint64_t *failed, struct err *e)
{
	return count_one(s, ST_COUNT_FAILED, failed, e);
}

static int
intent_bind(sqlite3_stmt *st, const struct state_intent *in, const char *now)
{
	int rc;

	if ((rc = bind_text(st, 1, state_op_name(in->op))) != SQLITE_OK ||
	    (rc = bind_blob(st, 2, in->path, in->path_len)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 6, (sqlite3_int64)in->size)) !=
	        SQLITE_OK ||
	    (rc = sqlite3_bind_int64(st, 7, in->mtime_ns)) != SQLITE_OK ||
	    (rc = bind_field(st, 8, in->sha256, sizeof(in->sha256))) !=
	        SQLITE_OK ||
	    (rc = bind_text(st, 9, now)) != SQLITE_OK ||
	    (rc = bind_text(st, 4, in->key)) != SQLITE_OK)
		return rc;
	if (in->op != STATE_OP_RENAME)
		return SQLITE_OK;
	if ((rc = bind_blob(st, 3, in->old_path, in->old_len)) != SQLITE_OK ||
	    (rc = bind_text(st, 5, in->old_key)) != SQLITE_OK)
		return rc;
	return SQLITE_OK;
}

int64_t
state_intent_add(struct state *s, const struct state_intent *in, struct err *e)
{
	sqlite3_stmt *st;
	char now[32];
	int rc;

	if (state_op_name(in->op) == NULL)
		return state_invalid(s, e, "unknown intent operation");
	if (in->path == NULL || in->path_len == 0)
		return state_invalid(s, e, "empty path");
	if (in->key == NULL)
		return state_invalid(s, e, "no key");
	if (in->op == STATE_OP_RENAME &&
	    (in->old_path == NULL || in->old_len == 0 || in->old_key == NULL))
		return state_invalid(s, e,
		                     "rename without the old path or key");
	if (in->size > INT64_MAX)
		return state_invalid(s, e, "size out of range");
	state_now(now);
	if ((st = stmt_get(s, ST_INTENT_ADD, e)) == NULL)
		return -1;
	if ((rc = intent_bind(st, in, now)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_INTENT_ADD, st);
		return -1;
	}
	if (stmt_run(s, ST_INTENT_ADD, st, e) == -1)
		return -1;
	/* Inside a batch, state_commit makes it durable. */
	if (!s->in_batch && state_wal_sync(s, e) == -1)
		return -1;
	return sqlite3_last_insert_rowid(s->db);
}

int
state_intent_set_upload_id(struct state *s, int64_t id, const char *upload_id,
                           struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt_get(s, ST_INTENT_UPLOAD_ID, e)) == NULL)
		return -1;
	if ((rc = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK ||
	    (rc = bind_text(st, 2, upload_id)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_INTENT_UPLOAD_ID, st);
		return -1;
	}
	/* Durable like the intent itself: the parts are sent next. */
	if (stmt_run(s, ST_INTENT_UPLOAD_ID, st, e) == -1)
		return -1;
	return s->in_batch ? 0 : state_wal_sync(s, e);
}

int
state_intent_done(struct state *s, int64_t id, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt_get(s, ST_INTENT_DONE, e)) == NULL)
		return -1;
	if ((rc = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_INTENT_DONE, st);
		return -1;
	}
	return stmt_run(s, ST_INTENT_DONE, st, e);
}

struct intent_walk {
	state_intent_cb cb;
	void *arg;
};

static int
intent_row(sqlite3_stmt *st, void *ctx)
{
	struct intent_walk *w = ctx;
	struct state_intent in;
	int rc;

	if (intent_from_row(st, &in) == -1)
		return -1;
	rc = w->cb(&in, w->arg);
	state_intent_cleanup(&in);
	return rc != 0;
}

int
state_intents_each(struct state *s, state_intent_cb cb, void *arg,
                   struct err *e)
{
	struct intent_walk w = {cb, arg};
	sqlite3_stmt *st;

	if ((st = stmt_get(s, ST_INTENTS_ALL, e)) == NULL)
		return -1;
	return walk_rows(s, ST_INTENTS_ALL, st, intent_row, &w, e);
}

int
state_intent_count(struct state *s, uint64_t *n, struct err *e)
{
	return count_one(s, ST_INTENT_COUNT, n, e);
}

int
state_begin(struct state *s, struct err *e)
{
	sqlite3_stmt *st;

	if (s->in_batch)
		return state_invalid(s, e, "a batch is already open");
	if ((st = stmt_get(s, ST_BEGIN, e)) == NULL ||
	    stmt_run(s, ST_BEGIN, st, e) == -1)
		return -1;
	s->in_batch = 1;
	return 0;
}

/* The batch is over, one way or the other. */
static void
state_batch_end(struct state *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_batch = 0;
}

int
state_commit(struct state *s, struct err *e)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (!s->in_batch)
		return state_invalid(s, e, "no batch is open");
	if ((st = stmt_get(s, ST_COMMIT, e)) == NULL ||
	    stmt_run(s, ST_COMMIT, st, e) == -1)
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

int
state_meta_get(struct state *s, const char *name, char **value, size_t *len,
               struct err *e)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	*value = NULL;
	if (len != NULL)
		*len = 0;
	if (name == NULL)
		return state_invalid(s, e, "no meta name");
	if ((st = stmt_get(s, ST_META_GET, e)) == NULL)
		return -1;
	if ((rc = bind_text(st, 1, name)) != SQLITE_OK)
		goto dberr;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		ret = 0;
	else if (rc != SQLITE_ROW)
		goto dberr;
	else if (col_dup(st, 0, value, len) == -1 || *value == NULL)
		state_nomem(s, e);
	else
		ret = 1;
	stmt_put(s, ST_META_GET, st);
	return ret;
dberr:
	state_dberr(s, rc, e);
	stmt_put(s, ST_META_GET, st);
	return -1;
}

int
state_meta_put(struct state *s, const char *name, const void *value, size_t len,
               struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (name == NULL)
		return state_invalid(s, e, "no meta name");
	if (value == NULL && len > 0)
		return state_invalid(s, e, "no meta value");
	if ((st = stmt_get(s, ST_META_PUT, e)) == NULL)
		return -1;
	if ((rc = bind_text(st, 1, name)) != SQLITE_OK ||
	    (rc = bind_blob(st, 2, value, len)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_META_PUT, st);
		return -1;
	}
	return stmt_run(s, ST_META_PUT, st, e);
}

int
state_meta_delete(struct state *s, const char *name, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (name == NULL)
		return state_invalid(s, e, "no meta name");
	if ((st = stmt_get(s, ST_META_DELETE, e)) == NULL)
		return -1;
	if ((rc = bind_text(st, 1, name)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_META_DELETE, st);
		return -1;
	}
	return stmt_run(s, ST_META_DELETE, st, e);
}

struct meta_walk {
	state_meta_cb cb;
	void *arg;
};

static int
meta_row(sqlite3_stmt *st, void *ctx)
{
	struct meta_walk *w = ctx;
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const void *value = sqlite3_column_blob(st, 1);

	if (name == NULL)
		return -1;
	return w->cb(name, value != NULL ? value : "",
	             (size_t)sqlite3_column_bytes(st, 1), w->arg) != 0;
}

int
state_meta_each(struct state *s, const char *prefix, state_meta_cb cb,
                void *arg, struct err *e)
{
	struct meta_walk w = {cb, arg};
	sqlite3_stmt *st;
	int rc;

	if ((st = stmt_get(s, ST_META_EACH, e)) == NULL)
		return -1;
	if ((rc = bind_text(st, 1, prefix)) != SQLITE_OK) {
		state_dberr(s, rc, e);
		stmt_put(s, ST_META_EACH, st);
		return -1;
	}
	return walk_rows(s, ST_META_EACH, st, meta_row, &w, e);
}
