#include "verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "buf.h"
#include "imagemeta.h"
#include "log.h"
#include "rootguard.h"
#include "text.h"

#define VERIFY_PAGE 1000   /* keys a listing or scan page asks for */
#define VERIFY_NAMES 100   /* names a report lists per kind */
#define VERIFY_HASH_TURN 8 /* files hashed a loop turn (rebuilt rows) */

enum verify_phase {
	PHASE_OBJECTS,
	PHASE_ITEMS,
	PHASE_LOCAL,
	PHASE_COMPARE,
	PHASE_REBUILD,
	PHASE_DELETE,
	PHASE_DONE,
};

static const char *const phase_names[] = {"listing objects",
                                          "scanning items",
                                          "reading the folder",
                                          "comparing",
                                          "rebuilding rows",
                                          "deleting orphans",
                                          "done"};

/* The kinds of difference, in report order; each a query over the
 * scratch tables giving (key, path). */
enum verify_kind {
	K_OBJ_MISSING,
	K_ITEM_MISSING,
	K_ORPHAN_OBJ,
	K_ORPHAN_ITEM,
	K_DISAGREE,
	K_UNSYNCED,
	K_FAILED,
	K_NKINDS
};

static const struct {
	const char *name;
	const char *sql;
} kinds[K_NKINDS] = {
    {"objects_missing",
     "SELECT l.key, l.path FROM loc l LEFT JOIN obj o ON o.key = l.key "
     "WHERE l.row = 1 AND l.present = 1 AND l.failed = 0 AND o.key IS NULL "
     "ORDER BY l.key"},
    {"items_missing",
     "SELECT l.key, l.path FROM loc l LEFT JOIN item i ON i.key = l.key "
     "WHERE l.row = 1 AND l.present = 1 AND l.failed = 0 AND i.key IS NULL "
     "ORDER BY l.key"},
    {"orphan_objects",
     "SELECT o.key, NULL FROM obj o LEFT JOIN loc l ON l.key = o.key "
     "WHERE l.key IS NULL ORDER BY o.key"},
    {"orphan_items",
     "SELECT i.key, NULL FROM item i LEFT JOIN loc l ON l.key = i.key "
     "WHERE l.key IS NULL ORDER BY i.key"},
    {"disagree", "SELECT l.key, l.path FROM loc l JOIN item i ON i.key = l.key "
                 "LEFT JOIN obj o ON o.key = l.key "
                 "WHERE l.row = 1 AND l.present = 1 AND l.failed = 0 AND "
                 "(i.size IS NOT l.size OR i.sha IS NOT l.sha OR "
                 "(o.key IS NOT NULL AND (o.size IS NOT l.size OR "
                 "i.etag IS NOT o.etag))) ORDER BY l.key"},
    {"unsynced",
     "SELECT l.key, l.path FROM loc l WHERE l.row = 0 ORDER BY l.key"},
    {"failed",
     "SELECT l.key, l.path FROM loc l WHERE l.failed = 1 ORDER BY l.key"},
};

struct verify {
	struct verify_deps d; /* d.cfg is NULL: a reload may free it */
	char *s3prefix, *table, *summary_key; /* copied from the config */
	int max_delete;
	char *prefix;     /* the FileName prefix */
	char *fileprefix; /* the same, less s3.prefix: a path prefix */
	int repair, delete_orphans;
	verify_done_cb cb;
	void *arg;
	enum verify_phase phase;
	sqlite3 *db;
	char *dbpath;
	int rootfd;
	struct loop_timer *timer;
	char *token;       /* ListObjectsV2 continuation */
	json_t *start_key; /* Scan's LastEvaluatedKey */
	uint64_t nobjects, nitems, nfiles, hashed, deleted;
	long counts[K_NKINDS];
	long repaired, rebuilt;
	json_t *names[K_NKINDS];
	/* PHASE_REBUILD and PHASE_DELETE walk a query a step at a time */
	sqlite3_stmt *walk;
	int finished;  /* the report is complete */
	int pending;   /* a request is in flight */
	int abandoned; /* freed meanwhile: its callback frees */
	char error[600];
	char note[700];
};

static void verify_next(struct verify *v);

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

static int
db_open(struct verify *v, const char *state_path)
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
	               " height INTEGER);"
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

static int
verify_resume(struct verify *v)
{
	v->pending = 0;
	if (!v->abandoned)
		return 1;
	verify_free(v);
	return 0;
}

static void
verify_fail(struct verify *v, const char *what, const struct err *e)
{
	if (v->error[0] == '\0')
		snprintf(v->error, sizeof(v->error), "%s: %s", what,
		         e != NULL ? e->message : "failed");
	v->phase = PHASE_DONE;
	verify_next(v);
}

static void
on_list(const struct s3_result *r, const struct err *e, void *arg)
{
	struct verify *v = arg;
	size_t i;

	if (!verify_resume(v))
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
	verify_next(v);
}

static void
on_scan(json_t *resp, const struct err *e, void *arg)
{
	struct verify *v = arg;
	json_t *items, *it, *lek;
	const char *key, *size, *w, *h;
	size_t i;
	int rc = 0;

	if (!verify_resume(v))
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
		key = dynamo_get_s(it, "FileName");
		if (key == NULL)
			continue;
		size = dynamo_get_n(it, "Size");
		w = dynamo_get_n(it, "Width");
		h = dynamo_get_n(it, "Height");
		rc = db_run(v,
		            "INSERT OR REPLACE INTO item VALUES "
		            "(?, ?, ?, ?, ?, ?, ?)",
		            "titttii", key,
		            size != NULL ? strtoll(size, NULL, 10) : -1LL,
		            dynamo_get_s(it, "SHA256"),
		            dynamo_get_s(it, "ETag"), dynamo_get_s(it, "Type"),
		            w != NULL ? strtoll(w, NULL, 10) : 0LL,
		            h != NULL ? strtoll(h, NULL, 10) : 0LL);
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
	verify_next(v);
}

static int
verify_request(struct verify *v)
{
	json_t *body;
	struct err e;
	int rc;

	err_clear(&e);
	if (v->phase == PHASE_OBJECTS) {
		rc = s3_list_objects(v->d.s3, v->prefix, v->token, VERIFY_PAGE,
		                     on_list, v, &e);
	} else {
		body = json_pack("{s:s,s:i}", "TableName", v->table, "Limit",
		                 VERIFY_PAGE);
		if (v->start_key != NULL)
			json_object_set(body, "ExclusiveStartKey",
			                v->start_key);
		if (v->prefix[0] != '\0')
			json_object_update_new(
			    body,
			    json_pack("{s:s,s:{s:s},s:{s:{s:s}}}",
			              "FilterExpression", "begins_with(#f, :p)",
			              "ExpressionAttributeNames", "#f",
			              "FileName", "ExpressionAttributeValues",
			              ":p", "S", v->prefix));
		rc = dynamo_call(v->d.ddb, "Scan", body, on_scan, v, &e);
		json_decref(body);
	}
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

/* The files under dirfd (taken) that the database does not know, as
 * rows with row = 0; no symlink followed, no other file system entered. */
static void
local_walk(struct verify *v, int dirfd, struct buf *rel, dev_t dev, int depth)
{
	size_t len = rel->len;
	struct dirent *de;
	struct stat st;
	struct buf key;
	DIR *dir;
	int fd;

	dir = depth < 256 ? fdopendir(dirfd) : NULL;
	if (dir == NULL) {
		close(dirfd);
		return;
	}
	buf_init(&key, 0);
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		        -1 ||
		    st.st_dev != dev)
			continue;
		rel->len = len;
		if (len > 0)
			buf_putc(rel, '/');
		buf_puts(rel, de->d_name);
		if (buf_cstr(rel) == NULL)
			break;
		if (S_ISDIR(st.st_mode)) {
			fd = openat(dirfd, de->d_name,
			            O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                O_CLOEXEC);
			if (fd != -1)
				local_walk(v, fd, rel, dev, depth + 1);
			continue;
		}
		if (!S_ISREG(st.st_mode) || rootguard_is_marker(rel->data) ||
		    !sync_path_wanted(v->d.sync, rel->data) ||
		    strncmp(rel->data, v->fileprefix, strlen(v->fileprefix)) !=
		        0 ||
		    !text_utf8_valid(rel->data, rel->len) ||
		    path_key(v, rel->data, &key) == -1)
			continue;
		(void)db_run(v,
		             "INSERT OR IGNORE INTO loc VALUES "
		             "(?, ?, ?, NULL, 0, 0, 1)",
		             "tbi", key.data, rel->data, (int)rel->len,
		             (long long)st.st_size);
	}
	rel->len = len;
	if (rel->data != NULL)
		rel->data[len] = '\0';
	buf_cleanup(&key);
	closedir(dir);
}

/* The state database's rows (with a fresh lstat), then the files on disk
 * it does not know. Synchronous: a tree of 100,000 files holds the loop
 * for about a second. */
static int
verify_local(struct verify *v)
{
	struct buf rel;
	struct stat st;
	struct err e;
	int rc, fd;

	err_clear(&e);
	if (db_exec(v, "BEGIN") == -1)
		return -1;
	rc = state_files_each(v->d.state, local_row, v, &e);
	if (rc != -1)
		rc = state_failed_each(v->d.state, local_row, v, &e);
	if (rc != -1 && fstat(v->rootfd, &st) == 0 &&
	    (fd = fcntl(v->rootfd, F_DUPFD_CLOEXEC, 0)) != -1) {
		buf_init(&rel, 0);
		local_walk(v, fd, &rel, st.st_dev, 0);
		buf_cleanup(&rel);
	}
	if (db_exec(v, "COMMIT") == -1)
		return -1;
	if (rc == -1) {
		snprintf(v->error, sizeof(v->error), "%s", e.message);
		return -1;
	}
	return 0;
}

/* --- comparing and repairing --------------------------------------------- */

/* Counts each kind and keeps its first names; with repair, acts on those
 * the engine can mend (uploads, retries). */
static int
verify_compare(struct verify *v)
{
	sqlite3_stmt *st;
	const char *key;
	struct err e;
	char path[4096];
	int k, rc, n;

	for (k = 0; k < K_NKINDS; k++) {
		if (sqlite3_prepare_v2(v->db, kinds[k].sql, -1, &st, NULL) !=
		    SQLITE_OK) {
			snprintf(v->error, sizeof(v->error), "verify: %s",
			         sqlite3_errmsg(v->db));
			return -1;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			key = (const char *)sqlite3_column_text(st, 0);
			if (v->summary_key != NULL && key != NULL &&
			    strcmp(key, v->summary_key) == 0)
				continue; /* summary.json: ours, no file */
			v->counts[k]++;
			if (json_array_size(v->names[k]) < VERIFY_NAMES &&
			    key != NULL)
				json_array_append_new(v->names[k],
				                      json_string(key));
			n = sqlite3_column_bytes(st, 1);
			if (!v->repair || n <= 0 || (size_t)n >= sizeof(path) ||
			    k == K_UNSYNCED)
				continue;
			memcpy(path, sqlite3_column_blob(st, 1), (size_t)n);
			path[n] = '\0';
			err_clear(&e);
			if (sync_reupload(v->d.sync, path, &e) == 0)
				v->repaired++;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			snprintf(v->error, sizeof(v->error), "verify: %s",
			         sqlite3_errmsg(v->db));
			return -1;
		}
	}
	return 0;
}

/* A file the database does not know: its row back, without an upload,
 * when its item has its SHA-256 and its object its size; else it is
 * uploaded. One file. */
static void
verify_rebuild_one(struct verify *v, sqlite3_stmt *st)
{
	const char *key = (const char *)sqlite3_column_text(st, 0);
	int n = sqlite3_column_bytes(st, 1);
	struct imagemeta_hash *h = NULL;
	struct state_file f;
	struct stat sb;
	char path[4096], sha[65] = "", buf[65536];
	struct err e;
	ssize_t r;
	int fd = -1;

	if (key == NULL || n <= 0 || (size_t)n >= sizeof(path))
		return;
	memcpy(path, sqlite3_column_blob(st, 1), (size_t)n);
	path[n] = '\0';
	if (sqlite3_column_type(st, 2) == SQLITE_NULL ||
	    sqlite3_column_type(st, 4) == SQLITE_NULL)
		goto upload; /* no item, or no object */
	fd = beneath_open(v->rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd == -1 || fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (sqlite3_int64)sb.st_size != sqlite3_column_int64(st, 4) ||
	    (h = imagemeta_hash_new()) == NULL)
		goto upload;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		imagemeta_hash_update(h, buf, (size_t)r);
	v->hashed++;
	if (r < 0 || imagemeta_hash_final(h, sha) == -1 ||
	    strcmp(sha, (const char *)sqlite3_column_text(st, 2)) != 0)
		goto upload;
	memset(&f, 0, sizeof(f));
	f.path = path;
	f.path_len = (size_t)n;
	f.key = (char *)key;
	f.size = (uint64_t)sb.st_size;
	f.mtime_ns = text_timespec_ns(&sb.st_mtim);
	f.ctime_ns = text_timespec_ns(&sb.st_ctim);
	f.inode = (uint64_t)sb.st_ino;
	snprintf(f.sha256, sizeof(f.sha256), "%s", sha);
	snprintf(f.etag, sizeof(f.etag), "%s",
	         (const char *)sqlite3_column_text(st, 3));
	if (sqlite3_column_text(st, 5) != NULL)
		snprintf(f.type, sizeof(f.type), "%s",
		         (const char *)sqlite3_column_text(st, 5));
	f.width = (unsigned)sqlite3_column_int(st, 6);
	f.height = (unsigned)sqlite3_column_int(st, 7);
	err_clear(&e);
	if (state_file_put(v->d.state, &f, &e) == 0) {
		v->rebuilt++;
		goto out;
	}
upload:
	err_clear(&e);
	if (sync_reupload(v->d.sync, path, &e) == 0)
		v->repaired++;
out:
	imagemeta_hash_free(h);
	if (fd != -1)
		close(fd);
}

static int
verify_walk(struct verify *v, const char *sql)
{
	if (sqlite3_prepare_v2(v->db, sql, -1, &v->walk, NULL) == SQLITE_OK)
		return 0;
	snprintf(v->error, sizeof(v->error), "verify: %s",
	         sqlite3_errmsg(v->db));
	return -1;
}

/* A few unknown files a turn. 1 while there are more. */
static int
verify_rebuild_step(struct verify *v)
{
	int i;

	for (i = 0; i < VERIFY_HASH_TURN; i++) {
		if (sqlite3_step(v->walk) != SQLITE_ROW)
			return 0;
		verify_rebuild_one(v, v->walk);
	}
	return 1;
}

static void
on_orphan_deleted(const struct s3_result *r, const struct err *e, void *arg)
{
	struct verify *v = arg;

	(void)r;
	if (!verify_resume(v))
		return;
	if (e != NULL)
		snprintf(v->note, sizeof(v->note), "DeleteObject: %s",
		         e->message);
	else
		v->deleted++;
	verify_next(v);
}

static void
on_orphan_item_deleted(json_t *resp, const struct err *e, void *arg)
{
	struct verify *v = arg;

	(void)resp;
	if (!verify_resume(v))
		return;
	if (e != NULL)
		snprintf(v->note, sizeof(v->note), "DeleteItem: %s",
		         e->message);
	else
		v->deleted++;
	verify_next(v);
}

/* One orphan deleted a step: an item whose object is gone (repair), or,
 * with delete_orphans, an object and its item. 1 when a call is in
 * flight. */
static int
verify_delete_step(struct verify *v)
{
	const char *key, *table = v->table;
	json_t *k;
	struct err e;
	int rc, is_obj;

	if (sqlite3_step(v->walk) != SQLITE_ROW)
		return 0;
	key = (const char *)sqlite3_column_text(v->walk, 0);
	is_obj = sqlite3_column_int(v->walk, 1);
	err_clear(&e);
	if (is_obj) {
		rc = s3_delete_object(v->d.s3, key, NULL, on_orphan_deleted, v,
		                      &e);
	} else {
		k = json_pack("{s:{s:s}}", "FileName", "S", key);
		rc = dynamo_delete_item(v->d.ddb, table, k, NULL, NULL, NULL,
		                        on_orphan_item_deleted, v, &e);
		json_decref(k);
	}
	if (rc == -1) {
		snprintf(v->note, sizeof(v->note), "%s", e.message);
		return 0;
	}
	v->pending = 1;
	return 1;
}

/* The orphans to delete: items whose object is gone; with delete_orphans
 * also every orphan object (and its item), unless there are more than
 * sync.max_delete of them. */
static const char *
verify_orphan_sql(struct verify *v)
{
	long objs = v->counts[K_ORPHAN_OBJ];
	int max = v->max_delete;

	if (v->delete_orphans && max > 0 && objs > max) {
		snprintf(
		    v->note, sizeof(v->note),
		    "%ld orphan objects are more than sync.max_delete (%d): "
		    "none deleted (raise it, or verify a narrower prefix)",
		    objs, max);
		v->delete_orphans = 0;
	}
	if (v->delete_orphans)
		return "SELECT o.key, 1 FROM obj o LEFT JOIN loc l ON l.key = "
		       "o.key WHERE l.key IS NULL UNION ALL "
		       "SELECT i.key, 0 FROM item i LEFT JOIN loc l ON l.key = "
		       "i.key WHERE l.key IS NULL";
	return "SELECT i.key, 0 FROM item i LEFT JOIN loc l ON l.key = i.key "
	       "LEFT JOIN obj o ON o.key = i.key "
	       "WHERE l.key IS NULL AND o.key IS NULL";
}

/* --- the steps ----------------------------------------------------------- */

static void
verify_on_timer(void *arg)
{
	struct verify *v = arg;

	switch (v->phase) {
	case PHASE_OBJECTS:
	case PHASE_ITEMS:
		if (verify_request(v) == -1)
			v->phase = PHASE_DONE;
		break;
	case PHASE_LOCAL:
		v->phase = verify_local(v) == -1 ? PHASE_DONE : PHASE_COMPARE;
		break;
	case PHASE_COMPARE:
		if (verify_compare(v) == -1 || !v->repair) {
			v->phase = PHASE_DONE;
			break;
		}
		v->phase =
		    verify_walk(v, "SELECT l.key, l.path, i.sha, i.etag, "
		                   "o.size, i.type, i.width, i.height "
		                   "FROM loc l LEFT JOIN item i ON i.key = "
		                   "l.key LEFT JOIN obj o ON o.key = l.key "
		                   "WHERE l.row = 0") == -1
		        ? PHASE_DONE
		        : PHASE_REBUILD;
		break;
	case PHASE_REBUILD:
		if (verify_rebuild_step(v))
			break;
		sqlite3_finalize(v->walk);
		v->walk = NULL;
		v->phase = verify_walk(v, verify_orphan_sql(v)) == -1
		               ? PHASE_DONE
		               : PHASE_DELETE;
		break;
	case PHASE_DELETE:
		if (verify_delete_step(v))
			return; /* its callback goes on */
		sqlite3_finalize(v->walk);
		v->walk = NULL;
		v->phase = PHASE_DONE;
		break;
	case PHASE_DONE:
		break;
	}
	if (v->pending)
		return;
	verify_next(v);
}

static void
verify_next(struct verify *v)
{
	verify_done_cb cb = v->cb;

	if (v->phase != PHASE_DONE) {
		loop_timer_set(v->timer, 0);
		return;
	}
	if (v->finished)
		return;
	sqlite3_finalize(v->walk);
	v->walk = NULL;
	v->finished = 1;
	if (v->error[0] != '\0')
		log_warnx("verify: %s", v->error);
	else
		log_info("verify: %ld differences under \"%s\" (%" PRIu64
		         " objects, %" PRIu64 " items, %" PRIu64 " files)%s",
		         verify_differences(v), v->prefix, v->nobjects,
		         v->nitems, v->nfiles, v->repair ? "; repairing" : "");
	v->cb = NULL;
	if (cb != NULL)
		cb(v->arg);
}

struct verify *
verify_start(const struct verify_deps *deps, const struct verify_opts *opts,
             verify_done_cb cb, void *arg, struct err *e)
{
	const char *sp = deps->cfg->s3.prefix;
	struct verify *v;
	struct buf p;
	int k;

	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		err_sys(e, "verify: calloc");
		return NULL;
	}
	v->d = *deps;
	v->d.cfg = NULL;
	v->rootfd = -1;
	v->max_delete = deps->cfg->sync.max_delete;
	v->s3prefix = strdup(sp);
	v->table = strdup(deps->cfg->dynamodb.table);
	if (deps->cfg->summary.enabled) {
		buf_init(&p, 0);
		buf_printf(&p, "%s%s", sp, deps->cfg->summary.key);
		v->summary_key = buf_steal(&p);
	}
	v->cb = cb;
	v->arg = arg;
	v->repair = opts->repair;
	v->delete_orphans = opts->repair && opts->delete_orphans;
	for (k = 0; k < K_NKINDS; k++)
		v->names[k] = json_array();
	buf_init(&p, 0);
	buf_printf(&p, "%s%s", sp, opts->prefix != NULL ? opts->prefix : "");
	v->prefix = buf_steal(&p);
	/* A prefix outside s3.prefix has no files: a path prefix that matches
	 * none. */
	if (v->prefix != NULL)
		v->fileprefix = strdup(strncmp(v->prefix, sp, strlen(sp)) == 0
		                           ? v->prefix + strlen(sp)
		                           : "\x01");
	v->timer = loop_timer_new(deps->loop, verify_on_timer, v, e);
	if (v->prefix == NULL || v->fileprefix == NULL || v->timer == NULL ||
	    v->s3prefix == NULL || v->table == NULL) {
		if (e->kind == ERR_NONE)
			err_sys(e, "verify: out of memory");
		verify_free(v);
		return NULL;
	}
	v->rootfd =
	    open(deps->cfg->watch.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->rootfd == -1) {
		err_sys(e, "verify: %s", deps->cfg->watch.root);
		verify_free(v);
		return NULL;
	}
	if (db_open(v, deps->cfg->state.path) == -1) {
		err_set(e, ERR_SYS, "%s",
		        v->error[0] ? v->error : "verify: out of memory");
		verify_free(v);
		return NULL;
	}
	verify_next(v);
	return v;
}

int
verify_finished(const struct verify *v)
{
	return v->finished;
}

long
verify_differences(const struct verify *v)
{
	long n = 0;
	int k;

	for (k = 0; k < K_NKINDS; k++)
		n += v->counts[k];
	return n;
}

json_t *
verify_report(const struct verify *v)
{
	json_t *r, *kinds_o;
	int k;

	r = json_pack("{s:s,s:s,s:I,s:I,s:I}", "state", phase_names[v->phase],
	              "prefix", v->prefix, "objects", (json_int_t)v->nobjects,
	              "items", (json_int_t)v->nitems, "files",
	              (json_int_t)v->nfiles);
	if (r == NULL || !verify_finished(v))
		return r;
	kinds_o = json_object();
	for (k = 0; k < K_NKINDS; k++)
		json_object_set_new(kinds_o, kinds[k].name,
		                    json_pack("{s:I,s:O}", "count",
		                              (json_int_t)v->counts[k], "names",
		                              v->names[k]));
	json_object_set_new(r, "differences", kinds_o);
	json_object_set_new(r, "total",
	                    json_integer((json_int_t)verify_differences(v)));
	json_object_set_new(r, "repair", json_boolean(v->repair));
	if (v->repair) {
		json_object_set_new(r, "uploads_queued",
		                    json_integer((json_int_t)v->repaired));
		json_object_set_new(r, "rows_rebuilt",
		                    json_integer((json_int_t)v->rebuilt));
		json_object_set_new(r, "orphans_deleted",
		                    json_integer((json_int_t)v->deleted));
	}
	if (v->note[0] != '\0')
		json_object_set_new(r, "note", json_string(v->note));
	if (v->error[0] != '\0')
		json_object_set_new(r, "error", json_string(v->error));
	return r;
}

void
verify_free(struct verify *v)
{
	int k;

	if (v == NULL)
		return;
	if (v->pending) { /* its callback frees it */
		v->abandoned = 1;
		v->cb = NULL;
		return;
	}
	loop_timer_free(v->timer);
	sqlite3_finalize(v->walk);
	if (v->db != NULL)
		sqlite3_close(v->db);
	if (v->dbpath != NULL)
		(void)unlink(v->dbpath);
	if (v->rootfd != -1)
		close(v->rootfd);
	for (k = 0; k < K_NKINDS; k++)
		json_decref(v->names[k]);
	json_decref(v->start_key);
	free(v->token);
	free(v->dbpath);
	free(v->prefix);
	free(v->fileprefix);
	free(v->s3prefix);
	free(v->table);
	free(v->summary_key);
	free(v);
}
