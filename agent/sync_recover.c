/*
 * sync_recover: finishing what was cut short. At start-up, before the first
 * walk: the control-socket deletes a crash or a stop interrupted (their
 * files go to the trash), the intents a crash left (each path is converged
 * again, with leave to delete remote copies the state database never knew,
 * and an interrupted multipart upload is aborted), and the held deletions
 * are counted. After a full disk: the probe that resumes the work
 * (invariant 7).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sync_impl.h"

#define SYNC_DISK_REMIND_MS 300000 /* a full disk is said again this often */

static void
recover_on_abort(const struct s3_result *res, const struct err *e, void *arg)
{
	char *key = arg, p[256];

	(void)res;
	if (e == NULL)
		log_info("aborted the interrupted multipart upload of %s",
		         log_path(key, p, sizeof(p)));
	else if (e->kind != ERR_CANCEL && err_classify(e) != ERRC_GONE)
		log_warnx("%s: cannot abort an interrupted multipart upload "
		          "(its parts stay until a lifecycle rule removes "
		          "them): %s",
		          log_path(key, p, sizeof(p)), e->message);
	free(key);
}

/* The upload the intent names is never completed: the file is uploaded
 * again from the start. */
static void
recover_abort_upload(struct sync *s, const char *key, const char *upload_id)
{
	char *k = strdup(key);
	struct err e;

	if (k == NULL)
		return;
	err_clear(&e);
	if (s3_abort_multipart(s->s3, k, upload_id, recover_on_abort, k, &e) ==
	    -1) {
		log_warnx("cannot abort a multipart upload: %s", e.message);
		free(k);
	}
}

static int
recover_replay(const struct state_intent *in, void *arg)
{
	struct sync *s = arg;
	const char *paths[2];
	struct job *j;
	size_t i;
	char p[256];

	log_info("finishing an interrupted %s of %s", state_op_name(in->op),
	         log_path(in->path, p, sizeof(p)));
	if (in->upload_id != NULL && in->key != NULL)
		recover_abort_upload(s, in->key, in->upload_id);
	paths[0] = in->path;
	paths[1] = in->old_path;
	for (i = 0; i < 2 && paths[i] != NULL; i++) {
		j = sync_mark(s, paths[i], 0);
		if (j == NULL)
			continue;
		j->force_delete = 1;
		if (i == 0)
			sync_job_keep_intent(j, in->id);
	}
	return 0;
}

struct recover_trash {
	char **paths;
	char **dirs;
	size_t n;
	int nomem;
};

static int
recover_trash_row(const char *name, const void *value, size_t len, void *arg)
{
	struct recover_trash *t = arg;
	char **p, **d;

	p = realloc(t->paths, (t->n + 1) * sizeof(*p));
	if (p != NULL)
		t->paths = p;
	d = realloc(t->dirs, (t->n + 1) * sizeof(*d));
	if (d != NULL)
		t->dirs = d;
	if (p == NULL || d == NULL ||
	    (t->paths[t->n] = strdup(name + strlen(SYNC_TRASH))) == NULL) {
		t->nomem = 1;
		return 1;
	}
	if ((t->dirs[t->n] = strndup(value, len)) == NULL) {
		free(t->paths[t->n]);
		t->nomem = 1;
		return 1;
	}
	t->n++;
	return 0;
}

/* Control-socket deletes a crash or a stop cut short: their files go to
 * the trash now, before the rescan could upload them again; the intents'
 * replay deletes what is left remotely. Also the moves that waited for
 * space. 0, 1 when some still wait for space, -1. */
static int
recover_trash(struct sync *s, struct err *e)
{
	struct recover_trash t;
	char msg[700], p[256], m[1024];
	size_t i;
	int rc;

	memset(&t, 0, sizeof(t));
	rc = state_meta_each(s->state, SYNC_TRASH, recover_trash_row, &t, e);
	if (rc != -1 && t.nomem) {
		err_set(e, ERR_SYS, "out of memory");
		rc = -1;
	}
	for (i = 0; i < t.n; i++) {
		/* Once started, a delete still running keeps its note. */
		if (rc != -1 && s->started &&
		    sync_job_find(s, t.paths[i], strlen(t.paths[i])) != NULL) {
			free(t.paths[i]);
			free(t.dirs[i]);
			continue;
		}
		if (rc != -1 &&
		    sync_trash_now(s, t.paths[i], t.dirs[i], msg,
		                   sizeof(msg)) == -1 &&
		    sync_space_errno(errno)) {
			/* Kept: tried again when there is space. */
			sync_space_blocked(s, msg);
			rc = 1;
		} else if (rc != -1) {
			log_info("finishing an interrupted delete of %s: %s",
			         log_path(t.paths[i], p, sizeof(p)),
			         log_path(msg, m, sizeof(m)));
			sync_trash_note(s, t.paths[i], "", 0);
		}
		free(t.paths[i]);
		free(t.dirs[i]);
	}
	free(t.paths);
	free(t.dirs);
	return rc;
}

/* The start-up's work, once the root is the mirrored folder. */
int
sync_recover_begin(struct sync *s, struct err *e)
{
	if (recover_trash(s, e) == -1 ||
	    state_intents_each(s->state, recover_replay, s, e) == -1)
		return -1;
	s->nheld = 0;
	if (state_meta_each(s->state, SYNC_HELD, sync_held_count_row, &s->nheld,
	                    e) == -1)
		return -1;
	if (s->nheld > 0)
		log_warnx(
		    "%" PRIu64 " deletions held: imgsyncctl deletions "
		    "lists them, imgsyncctl deletions --confirm sends them",
		    s->nheld);
	s->started = 1;
	return 0;
}

/* A probe write: space again? */
void
sync_recover_on_disk_timer(void *arg)
{
	struct sync *s = arg;
	struct err e;
	char now[32];

	if (!s->disk_full)
		return;
	snprintf(now, sizeof(now), "%" PRIu64, loop_now_ms());
	err_clear(&e);
	if (state_meta_put(s->state, "space_probe", now, strlen(now), &e) ==
	        -1 ||
	    state_meta_delete(s->state, "space_probe", &e) == -1 ||
	    recover_trash(s, &e) != 0) {
		if (loop_now_ms() - s->disk_told_ms >= SYNC_DISK_REMIND_MS) {
			s->disk_told_ms = loop_now_ms();
			log_error("still waiting for space: %s (%" PRIu64
			          " files waiting)",
			          s->disk_why,
			          (uint64_t)(s->settling.n + s->ready.n));
		}
		loop_timer_set(s->disk_timer, SYNC_DISK_CHECK_MS);
		return;
	}
	s->disk_full = 0;
	s->disk_why[0] = '\0';
	log_info("the state database can be written again: resuming "
	         "(rescanning)");
	sync_rescan(s, NULL);
	sync_pump(s);
}
