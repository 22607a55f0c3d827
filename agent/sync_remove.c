/*
 * sync_remove: the remote half of a deletion. The item goes first, then the
 * object (invariant 1); the object only as the version imgsync recorded
 * (If-Match on its ETag), so another writer's newer object stays. A local
 * deletion passes the mass-deletion guard first (invariant 5).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "item.h"
#include "log.h"
#include "sync_impl.h"

static void remove_on_head(const struct s3_result *res, const struct err *e,
                           void *arg);

/* Item, object and thumbnail are gone: the row goes. */
static void
remove_done(struct job *j)
{
	struct sync *s = j->sync;
	struct err se;
	char p[256];

	err_clear(&se);
	if (state_file_delete(s->state, j->path, j->path_len, &se) == -1)
		log_warnx("%s", se.message);
	s->stats.deleted++;
	log_debug("deleted %s", log_path(j->path, p, sizeof(p)));
	if (s->summary != NULL)
		summary_touch(s->summary);
	sync_job_finish(j, 1);
}

static void
remove_on_object(const struct s3_result *res, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct err se;
	char p[256];

	(void)res;
	if (e != NULL && e->http_status == 412 && !r->u.rm.rechecked) {
		/* Not the recorded version: whose is it? */
		r->u.rm.rechecked = 1;
		err_clear(&se);
		if (s3_head_object(s->s3, r->key, remove_on_head, j, &se) == -1)
			sync_job_fail(j, &se, "HeadObject: %s", se.message);
		return;
	}
	if (e != NULL && e->http_status == 412) {
		log_warnx("%s: not deleted from the bucket: another writer "
		          "replaced the object since imgsync uploaded it (its "
		          "ETag is no longer %s); it is left alone",
		          log_path(r->key, p, sizeof(p)), r->old.etag);
		e = NULL;
	}
	if (e != NULL) {
		sync_job_net_error(j, "DeleteObject", e);
		return;
	}
	/* Its thumbnail before its row and its intent go (no orphan). */
	sync_thumbs_delete(j, r->old.thumb, r->key, remove_done);
}

/*
 * After a 412, the object is not the version the state database recorded.
 * One that imgsync wrote (it carries x-amz-meta-sha256: a crash between an
 * upload and its row leaves the row's ETag behind) is deleted as the
 * version it is now; another writer's is left alone (logged).
 */
static void
remove_on_head(const struct s3_result *res, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;
	struct err se;
	char p[256];

	if (e != NULL && e->http_status == 404) { /* gone meanwhile */
		remove_on_object(NULL, NULL, j);
		return;
	}
	if (e != NULL) {
		sync_job_net_error(j, "HeadObject", e);
		return;
	}
	if (res->sha256_meta[0] == '\0') {
		log_warnx("%s: not deleted from the bucket: another writer "
		          "replaced the object since imgsync uploaded it (its "
		          "ETag is no longer %s); it is left alone",
		          log_path(r->key, p, sizeof(p)), r->old.etag);
		remove_on_object(NULL, NULL, j);
		return;
	}
	err_clear(&se);
	if (s3_delete_object(j->sync->s3, r->key, res->etag, remove_on_object,
	                     j, &se) == -1)
		sync_job_fail(j, &se, "DeleteObject: %s", se.message);
}

/* An item was deleted (e NULL): its object goes next (invariant 1), for a
 * delete and for the old half of a rename alike. */
void
sync_remove_item_deleted(struct job *j, const struct err *e, const char *what,
                         enum run_phase phase, const char *key,
                         const char *etag, s3_done_cb next)
{
	struct err se;

	if (e != NULL) {
		sync_job_net_error(j, what, e);
		return;
	}
	err_clear(&se);
	j->run->phase = phase;
	if (s3_delete_object(j->sync->s3, key, etag, next, j, &se) == -1)
		sync_job_fail(j, &se, "DeleteObject: %s", se.message);
}

static void
remove_on_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;

	(void)resp;
	/* Only what imgsync uploaded: another writer's newer object stays. */
	sync_remove_item_deleted(j, e, "DeleteItem", RUN_DELETING_OBJECT,
	                         r->key, r->have_old ? r->old.etag : NULL,
	                         remove_on_object);
}

static void
remove_start(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct state_intent in;
	json_t *key;
	struct err e;
	int rc;

	err_clear(&e);
	if (r->have_old && r->old.key != NULL && r->old.key[0] != '\0')
		snprintf(r->key, sizeof(r->key), "%s", r->old.key);
	else if (sync_key(s, j->path, r->key, sizeof(r->key), &e) == -1) {
		/* Such a name was never uploaded: only the row goes. */
		(void)state_file_delete(s->state, j->path, j->path_len, &e);
		sync_job_finish(j, 1);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.op = STATE_OP_DELETE;
	in.path = j->path;
	in.path_len = j->path_len;
	in.key = r->key;
	r->intent = sync_add_intent(s, &in, &e);
	if (r->intent == -1) {
		sync_job_fail(j, &e,
		              "cannot record the intent in the state database");
		return;
	}
	err_clear(&e);
	key = item_key(r->key);
	r->phase = RUN_DELETING_ITEM;
	rc = key == NULL ? (err_set(&e, ERR_SYS, "out of memory"), -1)
	                 : dynamo_delete_item(s->ddb, s->table, key, NULL, NULL,
	                                      NULL, remove_on_item, j, &e);
	json_decref(key);
	if (rc == -1)
		sync_job_fail(j, &e, "DeleteItem: %s", e.message);
}

/* The ops table's gone: the remote copies of a path that no longer exists
 * locally (or that the control socket deletes). */
void
sync_remove_gone(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct err e;
	int found;

	sync_run_use(r, RUN_DELETE);
	if (s->root_lost) { /* gone with the folder: not a deletion */
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	}
	err_clear(&e);
	found = state_file_get(s->state, j->path, j->path_len, &r->old, &e);
	if (found == -1) {
		sync_job_fail(j, &e, "state: %s", e.message);
		return;
	}
	r->have_old = found;
	if (!found && !j->force_delete) {
		sync_job_finish(j, 1);
		return;
	}
	/* A local deletion (not one the control socket or an intent asks
	 * for) passes the guard first. */
	if (!j->force_delete && r->api == NULL && !j->delete_ok) {
		sync_delete_wait(s, j->path);
		sync_job_finish(j, 1);
		return;
	}
	j->delete_ok = 0;
	remove_start(j);
}
