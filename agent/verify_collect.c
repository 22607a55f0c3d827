/*
 * verify_collect: the three listings verify compares, gathered into a
 * scratch SQLite database beside the state database (<state.path>.verify)
 * so memory stays bounded however large the bucket: the bucket
 * (ListObjectsV2 pages into obj), the table (Scan pages into item), and
 * the folder (the state database's rows, each with a fresh lstat, and the
 * files on disk it does not know, into loc).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "buf.h"
#include "dirwalk.h"
#include "item.h"
#include "rootguard.h"
#include "text.h"
#include "verify_impl.h"

/* --- the scratch database ------------------------------------------------ */

static int
db_exec(struct verify *v, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(v->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	snprintf(v->error, sizeof(v->error), "verify: %s: %s", v->dbpath,
	         msg != NULL ? msg : "?");
	sqlite3_free(msg);
	return -1;
}

int
verify_collect_open(struct verify *v, const char *state_path)
{
	struct buf p;

	buf_init(&p, 0);
	buf_printf(&p, "%s.verify", state_path);
	v->dbpath = buf_steal(&p);
	if (v->dbpath == NULL)
		return -1;
	(void)unlink(v->dbpath);
	if (sqlite3_open_v2(v->dbpath, &v->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	                    NULL) != SQLITE_OK) {
		snprintf(v->error, sizeof(v->error), "verify: %s: %s",
		         v->dbpath, sqlite3_errmsg(v->db));
		return -1;
	}
	return db_exec(v,
	               "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
	               "CREATE TABLE obj (key TEXT PRIMARY KEY, size INTEGER,"
	               " etag TEXT);"
	               "CREATE TABLE item (key TEXT PRIMARY KEY, size INTEGER,"
	               " sha TEXT, etag TEXT, type TEXT, width INTEGER,"
	               " height INTEGER, orientation INTEGER, thumb TEXT);"
	               "CREATE TABLE thumb (key TEXT PRIMARY KEY);"
	               "CREATE TABLE loc (key TEXT PRIMARY KEY, path BLOB,"
	               " size INTEGER, sha TEXT, row INTEGER, failed INTEGER,"
	               " present INTEGER);");
}

/* Runs sql with the text (or NULL) and integer arguments given as
 * "t"/"i"/"b" (blob with its length) in fmt. */
static int
db_run(struct verify *v, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	const char *t;
	int i, rc, n;

	if (sqlite3_prepare_v2(v->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	va_start(ap, fmt);
	for (i = 0; fmt[i] != '\0'; i++) {
		switch (fmt[i]) {
		case 't':
			t = va_arg(ap, const char *);
			rc = sqlite3_bind_text(st, i + 1, t, -1,
			                       SQLITE_TRANSIENT);
			break;
		case 'b':
			t = va_arg(ap, const char *);
			n = va_arg(ap, int);
			rc = sqlite3_bind_blob(st, i + 1, t, n,
			                       SQLITE_TRANSIENT);
			break;
		default:
			rc = sqlite3_bind_int64(st, i + 1,
			                        va_arg(ap, long long));
			break;
		}
		if (rc != SQLITE_OK) {
			va_end(ap);
			goto fail;
		}
	}
	va_end(ap);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto fail;
	sqlite3_finalize(st);
	return 0;
fail:
	snprintf(v->error, sizeof(v->error), "verify: %s: %s", v->dbpath,
	         sqlite3_errmsg(v->db));
	sqlite3_finalize(st);
	return -1;
}

/* --- the bucket and the table -------------------------------------------- */

static void
verify_fail(struct verify *v, const char *what, const struct err *e)
{
	if (v->error[0] == '\0')
		snprintf(v->error, sizeof(v->error), "%s: %s", what,
		         e != NULL ? e->message : "failed");
	v->phase = PHASE_DONE;
	v->next(v);
}

static void
on_list(const struct s3_result *r, const struct err *e, void *arg)
{
	struct verify *v = arg;
	size_t i;

	if (!v->resume(v))
		return;
	if (e != NULL) {
		verify_fail(v, "ListObjectsV2", e);
		return;
	}
	if (db_exec(v, "BEGIN") == -1) {
		verify_fail(v, "verify", NULL);
		return;
	}
	for (i = 0; i < r->nobjects; i++) {
		/* Thumbnails are no images of the folder: their own table. */
		if (v->thumb_prefix != NULL &&
		    strncmp(r->objects[i].key, v->thumb_prefix,
		            strlen(v->thumb_prefix)) == 0) {
			if (db_run(v, "INSERT OR REPLACE INTO thumb VALUES (?)",
			           "t", r->objects[i].key) == -1)
				break;
			continue;
		}
		if (db_run(v, "INSERT OR REPLACE INTO obj VALUES (?, ?, ?)",
		           "tit", r->objects[i].key,
		           (long long)r->objects[i].size,
		           r->objects[i].etag) == -1)
			break;
		v->nobjects++;
	}
	if (db_exec(v, "COMMIT") == -1 || i < r->nobjects) {
		verify_fail(v, "verify", NULL);
		return;
	}
	free(v->token);
	v->token = r->next_token != NULL ? strdup(r->next_token) : NULL;
	if (v->token == NULL)
		v->phase = PHASE_ITEMS;
	v->next(v);
}

static void
on_scan(json_t *resp, const struct err *e, void *arg)
{
	struct verify *v = arg;
	json_t *items, *it, *lek;
	struct item_view iv;
	size_t i;
	int rc = 0;

	if (!v->resume(v))
		return;
	if (e != NULL) {
		verify_fail(v, "Scan", e);
		return;
	}
	items = json_object_get(resp, "Items");
	if (db_exec(v, "BEGIN") == -1) {
		verify_fail(v, "verify", NULL);
		return;
	}
	json_array_foreach(items, i, it)
	{
		if (item_read(it, &iv) == -1)
			continue;
		rc = db_run(v,
		            "INSERT OR REPLACE INTO item VALUES "
		            "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
		            "titttiiit", iv.key,
		            iv.has_size ? (long long)iv.size : -1LL, iv.sha256,
		            iv.etag, iv.type, (long long)iv.width,
		            (long long)iv.height, (long long)iv.orientation,
		            iv.thumbnail);
		if (rc == -1)
			break;
		v->nitems++;
	}
	if (db_exec(v, "COMMIT") == -1 || rc == -1) {
		verify_fail(v, "verify", NULL);
		return;
	}
	lek = json_object_get(resp, "LastEvaluatedKey");
	json_decref(v->start_key);
	v->start_key = json_is_object(lek) ? json_incref(lek) : NULL;
	if (v->start_key == NULL)
		v->phase = PHASE_LOCAL;
	v->next(v);
}

int
verify_collect_request(struct verify *v)
{
	struct err e;
	int rc;

	err_clear(&e);
	if (v->phase == PHASE_OBJECTS)
		rc = s3_list_objects(v->d.s3, v->prefix, v->token, VERIFY_PAGE,
		                     on_list, v, &e);
	else
		rc = item_scan(v->d.ddb, v->table, v->prefix, v->start_key,
		               VERIFY_PAGE, on_scan, v, &e);
	if (rc == -1) {
		snprintf(v->error, sizeof(v->error), "%s", e.message);
		return -1;
	}
	v->pending = 1;
	return 0;
}

/* --- the folder ---------------------------------------------------------- */

static int
path_key(const struct verify *v, const char *path, struct buf *key)
{
	buf_reset(key);
	buf_printf(key, "%s%s", v->s3prefix, path);
	return buf_cstr(key) != NULL ? 0 : -1;
}

static int
local_row(const struct state_file *f, void *arg)
{
	struct verify *v = arg;
	const char *base;
	struct stat st;
	struct buf key;
	int present, dfd;

	if (strncmp(f->path, v->fileprefix, strlen(v->fileprefix)) != 0)
		return 0;
	buf_init(&key, 0);
	if (f->key != NULL && f->key[0] != '\0')
		buf_puts(&key, f->key);
	else
		path_key(v, f->path, &key);
	/* Present: a regular file, reached without a symlink on the way. */
	dfd = beneath_open_parent(v->rootfd, f->path, 0, 0, &base);
	present = dfd != -1 &&
	          fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	          S_ISREG(st.st_mode);
	if (dfd != -1)
		close(dfd);
	if (buf_cstr(&key) != NULL &&
	    db_run(v, "INSERT OR REPLACE INTO loc VALUES (?, ?, ?, ?, 1, ?, ?)",
	           "tbitii", key.data, f->path, (int)f->path_len,
	           (long long)f->size, f->sha256, (long long)f->failed,
	           (long long)present) == 0)
		v->nfiles++;
	buf_cleanup(&key);
	return 0;
}

/* A file the walk found: a row with row = 0 when the database does not
 * know it (INSERT OR IGNORE keeps the rows local_row put). */
struct verify_unknown {
	struct verify *v;
	struct buf key;
};

static int
verify_collect_unknown(const char *path, size_t len, const struct stat *st,
                       void *arg)
{
	struct verify_unknown *u = arg;
	struct verify *v = u->v;

	if (rootguard_is_marker(path) || !sync_path_wanted(v->d.sync, path) ||
	    strncmp(path, v->fileprefix, strlen(v->fileprefix)) != 0 ||
	    !text_utf8_valid(path, len) || path_key(v, path, &u->key) == -1)
		return 0;
	(void)db_run(v,
	             "INSERT OR IGNORE INTO loc VALUES "
	             "(?, ?, ?, NULL, 0, 0, 1)",
	             "tbi", u->key.data, path, (int)len,
	             (long long)st->st_size);
	return 0;
}

/* Synchronous: a tree of 100,000 files holds the loop for about a
 * second. The walk follows no symlink and enters no other file system. */
int
verify_collect_local(struct verify *v)
{
	struct verify_unknown u;
	struct err e;
	int rc, fd;

	err_clear(&e);
	if (db_exec(v, "BEGIN") == -1)
		return -1;
	rc = state_files_each(v->d.state, local_row, v, &e);
	if (rc != -1)
		rc = state_failed_each(v->d.state, local_row, v, &e);
	if (rc != -1 && (fd = fcntl(v->rootfd, F_DUPFD_CLOEXEC, 0)) != -1) {
		u.v = v;
		buf_init(&u.key, 0);
		(void)dirwalk(fd, "", 1, verify_collect_unknown, &u);
		buf_cleanup(&u.key);
	}
	if (db_exec(v, "COMMIT") == -1)
		return -1;
	if (rc == -1) {
		snprintf(v->error, sizeof(v->error), "%s", e.message);
		return -1;
	}
	return 0;
}
