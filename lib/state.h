/*
 * state: the daemon's state database (SQLite, WAL): the index of what was
 * synced (`files`, lib/state_files.c), the operations in progress
 * (`intents`, lib/state_intents.c) and a small key/value table (`meta`,
 * lib/state_meta.c); lib/state.c opens it and runs the batches.
 *
 * Paths are relative to the watch root and are arbitrary bytes (invalid
 * UTF-8, newlines, '%', '*' ... all kept exactly): every path argument is
 * (pointer, length) and is stored as a BLOB. Keys and the other text columns
 * are NUL-terminated strings.
 *
 * Durability: the connection runs with synchronous=NORMAL, which survives a
 * process crash but may lose the last commits on power loss; after an
 * intent is committed the WAL is fsynced (what synchronous=FULL does after
 * every commit) before state_intent_add returns, because the intent must
 * survive a power loss before the network call it guards. A batch
 * (state_begin .. state_commit) is fsynced the same way when it commits:
 * one fsync per batch, whatever it holds. state_file_synced is not.
 *
 * Every function that can fail returns -1 (or NULL) and fills the caller's
 * struct err with "state: <db path>: ...": ERR_INVALID for a bad argument;
 * for a database error "<sqlite message>", code = "SQLITE_<NAME>",
 * sys_errno = the OS error behind it, if any, and kind ERR_SYS when the
 * file beneath the database failed (SQLITE_FULL, _IOERR, _CANTOPEN,
 * _READONLY, _PERM, _NOLFS, _NOTADB: full, unwritable, not a database),
 * ERR_DB when the database itself did (busy, corrupt, a constraint, a
 * file that is another program's database or from a newer imgsync). Out
 * of memory is ERR_SYS with sys_errno ENOMEM.
 *
 * Strings and paths passed in are borrowed. Structs filled by state_*_get
 * own their memory: release them with the matching *_cleanup. Structs passed
 * to a callback are borrowed for the duration of the call only.
 *
 * A handle is used by one thread at a time.
 */
#ifndef IMGSYNC_STATE_H
#define IMGSYNC_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define STATE_SCHEMA_VERSION 3
#define STATE_APPLICATION_ID 0x494d4753 /* "IMGS" */

struct state;

/*
 * Opens (creating with mode 0600 if needed) the database at path, whose
 * parent directory must exist, and brings its schema up to
 * STATE_SCHEMA_VERSION. A file that is not an imgsync state database, or
 * one from a newer imgsync, is refused and left alone.
 */
struct state *state_open(const char *path, struct err *e);
/* Closes the handle; a batch still open is rolled back. NULL is a no-op. */
void state_close(struct state *s);

/* One row of `files`. */
struct state_file {
	char *path; /* NUL-terminated for convenience; path_len is exact */
	size_t path_len;
	char *key; /* the S3 key */
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t inode;
	char sha256[65]; /* hex */
	char etag[80];
	char type[64];          /* MIME type */
	unsigned width, height; /* as displayed */
	unsigned orientation;   /* EXIF Orientation 1-8; 0: none */
	char synced_at[32];     /* 2026-11-21T10:00:00.123Z */
	int failed;             /* status = 'failed' */
	char *error;            /* why it failed, NULL if it did not */
	char failed_at[32];
	unsigned attempts; /* failures since the last success */
	/* Its thumbnail: put, a row that wants one (when thumbnails are on)
	 * gets it again; read, the thumbnail's S3 key (NULL: none yet, or
	 * none to be had: thumb_error says why). */
	int thumb_wanted;
	char *thumb;
	char *thumb_error;
};

/* Thumbnails. The next synced row past after (bytewise; "" with length 0
 * from the start) that wants a thumbnail: 1 (out filled; call
 * state_file_cleanup), 0 none, -1 error. */
int state_thumb_next(struct state *s, const char *after, size_t after_len,
                     struct state_file *out, struct err *e);
/* The row of path, as it was synced at synced_at, got its thumbnail
 * (thumb, its S3 key) or has none to be had (thumb NULL, why). A row
 * synced again since is left alone: it wants its own. */
int state_thumb_done(struct state *s, const char *path, size_t len,
                     const char *synced_at, const char *thumb, const char *why,
                     struct err *e);
/* Every synced row without a thumbnail (written while thumbnails were off)
 * wants one; not those for which none could be had (thumb_error). */
int state_thumb_want_all(struct state *s, struct err *e);

/* Frees what state_file_get allocated; safe on a zeroed struct. */
void state_file_cleanup(struct state_file *f);

/* 1 found (out filled; call state_file_cleanup), 0 not found, -1 error. */
int state_file_get(struct state *s, const char *path, size_t len,
                   struct state_file *out, struct err *e);
/*
 * Inserts or replaces the row as synced: status 'synced', error and
 * failed_at cleared, attempts 0. synced_at is f->synced_at, or now if
 * empty. f->failed, f->error, f->failed_at and f->attempts are ignored.
 */
int state_file_put(struct state *s, const struct state_file *f, struct err *e);
/*
 * The end of an upload in one transaction (one WAL commit instead of 1 + n):
 * state_file_put(f), then every intent of ids[0..n) (ids <= 0 skipped) is
 * cleared as by state_intent_done. All or nothing; inside a batch it is
 * part of the batch.
 */
int state_file_synced(struct state *s, const struct state_file *f,
                      const int64_t *ids, size_t n, struct err *e);
/*
 * Marks the path failed with the reason (NULL: none given), stamps
 * failed_at, adds one to attempts and keeps the other columns. A path
 * without a row gets one with an empty key.
 */
int state_file_fail(struct state *s, const char *path, size_t len,
                    const char *error, struct err *e);
/* 0 also when there was no such row. */
int state_file_delete(struct state *s, const char *path, size_t len,
                      struct err *e);
/*
 * The walks call cb for each row, ordered by path (bytewise). A non-zero
 * return from cb stops the walk. They return 0 when the walk completed,
 * 1 when cb stopped it, -1 on a database error. cb may call other state
 * functions, also write ones; whether the walk then sees the change is
 * undefined.
 */
typedef int (*state_file_cb)(const struct state_file *f, void *arg);
int state_files_each(struct state *s, state_file_cb cb, void *arg,
                     struct err *e);
/* Rows whose path sorts after start (bytewise; also start itself when
 * inclusive); start NULL: every row. */
int state_files_after(struct state *s, const char *start, size_t len,
                      int inclusive, state_file_cb cb, void *arg,
                      struct err *e);
/* Rows whose path is prefix or starts with prefix + "/", taken as bytes (no
 * wildcards); trailing slashes of prefix are ignored. An empty prefix is
 * the watch root: every row. */
int state_files_under(struct state *s, const char *prefix, size_t len,
                      state_file_cb cb, void *arg, struct err *e);
/*
 * The gallery's page of one folder: synced rows, newest (mtime) first,
 * then by path, descending. dir is "" (the root) or ends with '/'. Without
 * a search only the folder's own files come; with one, every file below
 * it whose path past dir holds search (ASCII letters in any case). type,
 * when not NULL, is the exact MIME type. The cursor is the last row of
 * the previous page (after_path NULL: from the newest). At most limit
 * rows go to cb.
 */
struct state_gallery_query {
	const char *dir;
	size_t dir_len;
	const char *search;
	const char *type;
	int64_t after_mtime_ns;
	const char *after_path;
	size_t after_len;
	unsigned limit;
};
int state_gallery_page(struct state *s, const struct state_gallery_query *q,
                       state_file_cb cb, void *arg, struct err *e);
/* The subfolders of dir ("" or ending with '/') that hold a synced file
 * somewhere below, in path order, each as its name without dir or '/';
 * at most max. One index seek per folder: a folder's files are stepped
 * over, its subfolders' are not. cb: 0 next, 1 stop, -1 out of memory. */
typedef int (*state_folder_cb)(const char *name, size_t len, void *arg);
int state_gallery_folders(struct state *s, const char *dir, size_t dir_len,
                          unsigned max, state_folder_cb cb, void *arg,
                          struct err *e);
/* Rows with status 'failed'. */
int state_failed_each(struct state *s, state_file_cb cb, void *arg,
                      struct err *e);
/* Synced rows, failed rows and the bytes of the synced rows; any output
 * pointer may be NULL. */
int state_count(struct state *s, uint64_t *files, uint64_t *failed,
                uint64_t *bytes, struct err *e);
/* Failed rows only: from an index, cheap however many rows there are
 * (state_count scans the table). */
int state_count_failed(struct state *s, uint64_t *failed, struct err *e);

enum state_op {
	STATE_OP_UPLOAD = 0, /* path -> key: PutObject, then PutItem */
	STATE_OP_DELETE,     /* key: DeleteItem, then DeleteObject */
	STATE_OP_RENAME,     /* old_path/old_key -> path/key: copy, delete */
};

const char *state_op_name(enum state_op op);

/* One row of `intents`. */
struct state_intent {
	int64_t id; /* set by state_intent_add, ignored by it */
	enum state_op op;
	char *path; /* NUL-terminated for convenience; path_len is exact */
	size_t path_len;
	char *old_path; /* rename only; NULL otherwise */
	size_t old_len;
	char *key;
	char *old_key; /* rename only; NULL otherwise */
	/* The file as it was when the intent was written, so that recovery can
	 * tell whether it still has the same content (0 / "" when unknown). */
	uint64_t size;
	int64_t mtime_ns;
	char sha256[65];
	char *upload_id;     /* multipart upload to abort after a crash */
	char created_at[32]; /* set by state_intent_add, ignored by it */
};

/* Frees path, old_path, key, old_key and upload_id, for a caller that keeps
 * malloc'd copies of a walk's intents; safe on a zeroed struct. */
void state_intent_cleanup(struct state_intent *in);

/*
 * Records an operation before any network call; returns its id (> 0) once
 * it is on disk (fsynced, unless inside a batch: then at state_commit), or
 * -1. upload_id, id and created_at are ignored.
 */
int64_t state_intent_add(struct state *s, const struct state_intent *in,
                         struct err *e);
/* Remembers the multipart upload id of an upload intent (NULL clears); on
 * disk when it returns, as an intent is. */
int state_intent_set_upload_id(struct state *s, int64_t id,
                               const char *upload_id, struct err *e);
/* The operation finished (both calls succeeded): forgets it. 0 also when
 * there is no such intent. */
int state_intent_done(struct state *s, int64_t id, struct err *e);
/* In id (= creation) order; return convention as state_files_each. */
typedef int (*state_intent_cb)(const struct state_intent *in, void *arg);
int state_intents_each(struct state *s, state_intent_cb cb, void *arg,
                       struct err *e);
int state_intent_count(struct state *s, uint64_t *n, struct err *e);

/*
 * Batches: everything between state_begin and state_commit is one
 * transaction with one fsync. Batches do not nest. state_begin takes the
 * write lock at once (BEGIN IMMEDIATE), waiting up to the busy timeout
 * (5 s; it also applies to every single write). When state_commit fails the
 * batch is rolled back. state_rollback discards the batch (no-op when none
 * is open).
 */
int state_begin(struct state *s, struct err *e);
int state_commit(struct state *s, struct err *e);
void state_rollback(struct state *s);

/*
 * Read snapshots: the queries between state_read_begin and state_read_end
 * run in one read transaction, so SQLite takes and drops its file locks
 * once instead of around every query (a restart looks up a million rows).
 * Writes are unaffected: any write (a batch included) ends the snapshot
 * first and commits and syncs as it would without one; the reads after it
 * go on outside a transaction. Nothing happens inside a batch or when one
 * is open already; a snapshot that cannot start is no snapshot (the
 * queries run alone). state_read_end on none is a no-op.
 */
void state_read_begin(struct state *s);
void state_read_end(struct state *s);

/*
 * meta: small named values, e.g. "watch_root" (so that pointing the daemon
 * at another root is detected) or "summary_etag". Values are bytes.
 * state_meta_get: 1 found (*value malloc'd, NUL-terminated, the caller
 * frees it; *len may be NULL), 0 not found, -1 error.
 */
int state_meta_get(struct state *s, const char *name, char **value, size_t *len,
                   struct err *e);
int state_meta_put(struct state *s, const char *name, const void *value,
                   size_t len, struct err *e);
int state_meta_delete(struct state *s, const char *name, struct err *e);
/* The rows whose name starts with prefix, by name; return convention as
 * state_files_each. name and value are borrowed for the call; cb must not
 * write to meta. */
typedef int (*state_meta_cb)(const char *name, const void *value, size_t len,
                             void *arg);
int state_meta_each(struct state *s, const char *prefix, state_meta_cb cb,
                    void *arg, struct err *e);

#endif
