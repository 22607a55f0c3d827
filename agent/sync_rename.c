/*
 * sync_rename: a file renamed within the root, done remotely as a copy:
 * CopyObject to the new key, the new item, then the old item and the old
 * object (invariant 1 for each half), and the row moves with it. When it
 * cannot be a copy (the old path was never synced, the file changed, the
 * old object is gone), the old path is converged (deleted remotely) and the
 * new one uploaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "item.h"
#include "log.h"
#include "sync_impl.h"

/* The rename cannot be done as a copy. */
static void
rename_fallback(struct job *j)
{
	struct job *old;

	old = sync_job_find(j->sync, j->rename_from, strlen(j->rename_from));
	if (old != NULL && old->st == JOB_HELD && old->holder == j)
		old->again = 1;
	sync_release_held(j);
	sync_job_keep_intent(j, j->run->intent);
	sync_run_free(j->run);
	j->run = sync_run_new();
	if (j->run == NULL) {
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	}
	j->sync->ops->converge(j);
}

/* The old name's item, object and thumbnail are gone: the row moves with
 * the new key and ETag, and wants a thumbnail under it. */
static void
rename_done(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct err se;
	char p1[256], p2[256];

	free(r->old.path);
	r->old.path = j->path;
	r->old.path_len = j->path_len;
	free(r->old.key);
	r->old.key = strdup(r->key);
	snprintf(r->old.etag, sizeof(r->old.etag), "%s", r->u.rn.etag);
	free(r->old.thumb);
	r->old.thumb = NULL;
	r->old.thumb_wanted = s->thumbs != NULL;
	err_clear(&se);
	if (r->old.key == NULL ||
	    state_file_put(s->state, &r->old, &se) == -1 ||
	    state_file_delete(s->state, j->rename_from, strlen(j->rename_from),
	                      &se) == -1)
		log_warnx("state: %s", se.message);
	r->old.path = NULL; /* borrowed from the job */
	s->stats.renamed++;
	log_debug("renamed %s -> %s", log_path(j->rename_from, p1, sizeof(p1)),
	          log_path(j->path, p2, sizeof(p2)));
	if (s->summary != NULL)
		summary_touch(s->summary);
	sync_thumbs_touch(s);
	sync_job_finish(j, 1);
}

static void
rename_on_old_object(const struct s3_result *res, const struct err *e,
                     void *arg)
{
	struct job *j = arg;

	(void)res;
	if (e != NULL) {
		sync_job_net_error(j, "DeleteObject (rename)", e);
		return;
	}
	/* The old name's thumbnail goes too, before the intent ends. */
	sync_thumbs_delete(j, j->run->old.thumb, j->run->old.key, rename_done);
}

static void
rename_on_old_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;

	(void)resp;
	sync_remove_item_deleted(j, e, "DeleteItem (rename)",
	                         RUN_DELETING_OLD_OBJECT, j->run->u.rn.old_key,
	                         NULL, rename_on_old_object);
}

static void
rename_on_new_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	json_t *key;
	struct err se;
	int rc;

	(void)resp;
	if (e != NULL && err_classify(e) != ERRC_CONFLICT) {
		sync_job_net_error(j, "PutItem (rename)", e);
		return;
	}
	err_clear(&se);
	key = item_key(j->run->u.rn.old_key);
	j->run->phase = RUN_DELETING_OLD_ITEM;
	rc = key == NULL ? (err_set(&se, ERR_SYS, "out of memory"), -1)
	                 : dynamo_delete_item(s->ddb, s->table, key, NULL, NULL,
	                                      NULL, rename_on_old_item, j, &se);
	json_decref(key);
	if (rc == -1)
		sync_job_fail(j, &se, "DeleteItem: %s", se.message);
}

static void
rename_on_copy(const struct s3_result *res, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;
	struct state_file f;

	if (e != NULL && e->kind != ERR_CANCEL &&
	    (e->http_status == 404 || err_classify(e) == ERRC_GONE)) {
		/* The old object is gone: upload the new path instead. */
		rename_fallback(j);
		return;
	}
	if (e != NULL) {
		sync_job_net_error(j, "CopyObject", e);
		return;
	}
	sync_upload_notes(j->sync, res);
	snprintf(r->u.rn.etag, sizeof(r->u.rn.etag), "%s", res->etag);
	/* The old row's content under the new key and ETag. */
	f = r->old;
	f.key = r->key;
	snprintf(f.etag, sizeof(f.etag), "%s", r->u.rn.etag);
	sync_upload_put_item(j, &f, &r->u.rn.mtime, rename_on_new_item);
}

/* The ops table's rename: j->rename_from -> j->path. */
void
sync_rename_start(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct state_intent in;
	struct stat st;
	struct err e;
	int found, fd;

	sync_run_use(r, RUN_RENAME);
	err_clear(&e);
	found = state_file_get(s->state, j->rename_from, strlen(j->rename_from),
	                       &r->old, &e);
	if (found != 1 || r->old.failed || r->old.key == NULL ||
	    r->old.key[0] == '\0' || !sync_wanted(s, j->path) ||
	    sync_key(s, j->path, r->key, sizeof(r->key), &e) == -1) {
		rename_fallback(j);
		return;
	}
	/* Still the file that was synced under the old name. */
	fd = sync_open(s, j->path);
	found = fd != -1 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	        sync_same_identity(&st, &r->old);
	if (fd != -1)
		close(fd);
	if (!found) {
		rename_fallback(j);
		return;
	}
	r->u.rn.mtime = st.st_mtim;
	snprintf(r->u.rn.old_key, sizeof(r->u.rn.old_key), "%s", r->old.key);
	memset(&in, 0, sizeof(in));
	in.op = STATE_OP_RENAME;
	in.path = j->path;
	in.path_len = j->path_len;
	in.key = r->key;
	in.old_path = j->rename_from;
	in.old_len = strlen(j->rename_from);
	in.old_key = r->u.rn.old_key;
	in.size = r->old.size;
	in.mtime_ns = r->old.mtime_ns;
	memcpy(in.sha256, r->old.sha256, sizeof(in.sha256));
	r->intent = state_intent_add(s->state, &in, &e);
	if (r->intent == -1) {
		sync_job_fail(j, &e, "cannot record the intent: %s", e.message);
		return;
	}
	r->phase = RUN_COPYING;
	if (s3_copy_object(s->s3, r->u.rn.old_key, r->key, rename_on_copy, j,
	                   &e) == -1)
		sync_job_fail(j, &e, "CopyObject: %s", e.message);
}
