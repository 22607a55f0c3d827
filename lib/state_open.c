/*
 * state_open: opening and closing the state database. The file is made
 * ours before anything writes to it (a file that is not a database, or
 * another program's, or one from a newer imgsync, is refused and left
 * alone), the connection is set up (WAL, busy timeout, defensive mode),
 * and the schema is brought up to date by the migrations, all in one
 * transaction.
 */
#include "state_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
/* A batch of 100k rows grows the WAL well past this; truncate it back at
 * the next checkpoint instead of keeping the space. */
#define WAL_SIZE_LIMIT "67108864"

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

/* Version 2: the EXIF Orientation of the file as it went up (0: none). */
static const char schema_v2[] =
    "ALTER TABLE files ADD COLUMN orientation INTEGER NOT NULL DEFAULT 0\n"
    "	CHECK (orientation BETWEEN 0 AND 8);\n";

/* Version 3: each row's thumbnail. NULL: none wanted; '': one to make
 * (the partial index keeps only those, so finding the next costs nothing
 * when there is none); else its S3 key. thumb_error: why there is none. */
static const char schema_v3[] =
    "ALTER TABLE files ADD COLUMN thumb TEXT;\n"
    "ALTER TABLE files ADD COLUMN thumb_error TEXT;\n"
    "CREATE INDEX files_thumb_wanted ON files (path) WHERE thumb = '';\n";

static const struct state_migration migrations[] = {
    {schema_v1, NULL},
    {schema_v2, NULL},
    {schema_v3, NULL},
};

_Static_assert(nitems(migrations) == STATE_SCHEMA_VERSION,
               "one migration per schema version");

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

/* The first column of the one row an uncached query (a pragma, run at
 * open) answers: as an integer into *v, and as text into text[size] when
 * text is not NULL. */
static int
state_query(struct state *s, const char *sql, int64_t *v, char *text,
            size_t size, struct err *e)
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
	if (text != NULL)
		state_col_copy(st, 0, text, size);
	sqlite3_finalize(st);
	return 0;
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

	if (state_query(s, "PRAGMA application_id", &appid, NULL, 0, e) == -1 ||
	    state_query(s, "PRAGMA user_version", version, NULL, 0, e) == -1 ||
	    state_query(s, "SELECT count(*) FROM sqlite_schema", &ntables, NULL,
	                0, e) == -1)
		return -1;
	if (appid == 0 && ntables == 0) {
		*version = 0;
		return 0;
	}
	if (appid != STATE_APPLICATION_ID) {
		err_set(e, ERR_DB,
		        "state: %s: not an imgsync state database "
		        "(application_id 0x%08llx, %lld schema objects); "
		        "left untouched",
		        s->path, (unsigned long long)(uint32_t)appid,
		        (long long)ntables);
		return -1;
	}
	if (*version < 0 || *version > STATE_SCHEMA_VERSION) {
		err_set(e, ERR_DB,
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
	state_tx_abort(s);
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

/*
 * The read-only and WAL failures below are ERR_SYS, as SQLITE_READONLY
 * and SQLITE_CANTOPEN are (state.c, sqlite_err_kind): the fix is on the
 * file system (the file's mode, a directory where the -wal and -shm
 * files can be made).
 */
static int
state_configure(struct state *s, struct err *e)
{
	char mode[16];
	int64_t version, ignored;

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
	if (state_query(s, "PRAGMA journal_mode = WAL", &ignored, mode,
	                sizeof(mode), e) == -1)
		return -1;
	if (strcmp(mode, "wal") != 0) {
		err_set(
		    e, ERR_SYS,
		    "state: %s: cannot switch to WAL mode (journal mode %s)",
		    s->path, mode[0] != '\0' ? mode : "unknown");
		return -1;
	}
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
		state_tx_abort(s);
		/* Closing the last connection checkpoints and removes the
		 * WAL. */
		if (sqlite3_close(s->db) != SQLITE_OK)
			sqlite3_close_v2(s->db);
	}
	free(s->path);
	free(s);
}
