/*
 * verify_repair: comparing the three listings in the scratch database (a
 * few SQL joins, one per kind of difference) and repairing what is safe
 * to repair: uploads again through the engine, rows of a lost state
 * database rebuilt from a matching item and object, and orphans deleted
 * (orphan objects only with delete_orphans and within sync.max_delete:
 * invariant 5).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "imagemeta.h"
#include "item.h"
#include "text.h"
#include "verify_impl.h"

/* Each kind a query over the scratch tables giving (key, path). */
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
    {"checksum_mismatch", NULL},
    /* Only when thumbnails are on and the listing covered them. Missing:
     * repaired by uploading the image again (its thumbnail is made
     * anew). */
    {"thumbs_missing",
     "SELECT i.key, l.path FROM item i JOIN loc l ON l.key = i.key "
     "LEFT JOIN thumb t ON t.key = i.thumb WHERE i.thumb IS NOT NULL AND "
     "t.key IS NULL AND l.present = 1 ORDER BY i.key"},
    {"orphan_thumbs",
     "SELECT t.key, NULL FROM thumb t LEFT JOIN item i ON i.thumb = t.key "
     "WHERE i.key IS NULL ORDER BY t.key"},
};

const char *
verify_repair_kind_name(enum verify_kind k)
{
	return kinds[k].name;
}

/* --- comparing ----------------------------------------------------------- */

/* Counts each kind and keeps its first names; with repair, acts on those
 * the engine can mend (uploads, retries). */
int
verify_repair_compare(struct verify *v)
{
	sqlite3_stmt *st;
	const char *key;
	struct err e;
	char path[4096];
	int k, rc, n;

	for (k = 0; k < K_NKINDS; k++) {
		if (kinds[k].sql == NULL ||
		    ((k == K_THUMB_MISSING || k == K_ORPHAN_THUMB) &&
		     !v->thumbs_listed))
			continue;
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

/* --- rebuilding rows and uploading again -------------------------------- */

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
	f.orientation = (unsigned)sqlite3_column_int(st, 8);
	/* thumbnails on: the rebuilt row wants its thumbnail (made again
	 * under the same key) */
	f.thumb_wanted = v->thumb_prefix != NULL;
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

int
verify_repair_walk(struct verify *v, const char *sql)
{
	if (sqlite3_prepare_v2(v->db, sql, -1, &v->walk, NULL) == SQLITE_OK)
		return 0;
	snprintf(v->error, sizeof(v->error), "verify: %s",
	         sqlite3_errmsg(v->db));
	return -1;
}

int
verify_repair_rebuild_begin(struct verify *v)
{
	return verify_repair_walk(v, "SELECT l.key, l.path, i.sha, i.etag, "
	                             "o.size, i.type, i.width, i.height, "
	                             "i.orientation "
	                             "FROM loc l LEFT JOIN item i ON i.key = "
	                             "l.key LEFT JOIN obj o ON o.key = l.key "
	                             "WHERE l.row = 0");
}

/* A few unknown files a turn. 1 while there are more. */
int
verify_repair_rebuild_step(struct verify *v)
{
	int i;

	for (i = 0; i < VERIFY_HASH_TURN; i++) {
		if (sqlite3_step(v->walk) != SQLITE_ROW)
			return 0;
		verify_rebuild_one(v, v->walk);
	}
	return 1;
}

/* --- deleting orphans --------------------------------------------------- */

static void
on_orphan_deleted(const struct s3_result *r, const struct err *e, void *arg)
{
	struct verify *v = arg;

	(void)r;
	if (!v->resume(v))
		return;
	if (e != NULL)
		snprintf(v->note, sizeof(v->note), "DeleteObject: %s",
		         e->message);
	else
		v->deleted++;
	v->next(v);
}

static void
on_orphan_item_deleted(json_t *resp, const struct err *e, void *arg)
{
	struct verify *v = arg;

	(void)resp;
	if (!v->resume(v))
		return;
	if (e != NULL)
		snprintf(v->note, sizeof(v->note), "DeleteItem: %s",
		         e->message);
	else
		v->deleted++;
	v->next(v);
}

/* One orphan deleted a step: an item whose object is gone (repair), or,
 * with delete_orphans, an object and its item. 1 when a call is in
 * flight. */
int
verify_repair_delete_step(struct verify *v)
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
		k = item_key(key);
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
	long objs = v->counts[K_ORPHAN_OBJ] + v->counts[K_ORPHAN_THUMB];
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
		       "SELECT t.key, 1 FROM thumb t LEFT JOIN item i ON "
		       "i.thumb = t.key WHERE i.key IS NULL UNION ALL "
		       "SELECT i.key, 0 FROM item i LEFT JOIN loc l ON l.key = "
		       "i.key WHERE l.key IS NULL";
	return "SELECT i.key, 0 FROM item i LEFT JOIN loc l ON l.key = i.key "
	       "LEFT JOIN obj o ON o.key = i.key "
	       "WHERE l.key IS NULL AND o.key IS NULL";
}

int
verify_repair_delete_begin(struct verify *v)
{
	return verify_repair_walk(v, verify_orphan_sql(v));
}
