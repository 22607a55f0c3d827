/*
 * sync_api: what the control socket asks of the engine: pause and resume,
 * its view of the engine's state, uploads and deletes on demand, failed
 * files retried, and verify's re-uploads. Each request marks paths dirty;
 * the operations themselves run as any other job.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync_impl.h"

void
sync_pause(struct sync *s)
{
	s->paused = 1;
}

void
sync_resume(struct sync *s)
{
	s->paused = 0;
	sync_pump(s);
}

int
sync_paused(const struct sync *s)
{
	return s->paused;
}

int
sync_stopping(const struct sync *s)
{
	return s->stopping;
}

int
sync_rescanning(const struct sync *s)
{
	return s->rescan_pending;
}

const char *
sync_last_error(const struct sync *s)
{
	return s->last_error;
}

void
sync_note_error(struct sync *s, const char *message)
{
	snprintf(s->last_error, sizeof(s->last_error), "%s", message);
}

int
sync_path_wanted(const struct sync *s, const char *path)
{
	return sync_wanted(s, path);
}

enum sync_path_kind
sync_path_kind(const struct sync *s, const char *path)
{
	const char *base;
	struct stat st;
	int dfd, rc;

	dfd = sync_open_parent(s, path, &base);
	if (dfd == -1)
		return errno == ENOENT || errno == ENOTDIR ? SYNC_PATH_MISSING
		                                           : SYNC_PATH_OUTSIDE;
	rc = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	if (rc == -1)
		return SYNC_PATH_MISSING;
	if (S_ISLNK(st.st_mode))
		return SYNC_PATH_OUTSIDE;
	return S_ISREG(st.st_mode) ? SYNC_PATH_FILE : SYNC_PATH_OTHER;
}

int
sync_upload(struct sync *s, const char *path, struct err *e)
{
	if (s->stopping) {
		err_set(e, ERR_INVALID, "imgsyncd is stopping");
		return -1;
	}
	if (sync_mark(s, path, 0) == NULL) {
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	return 0;
}

struct api_retry {
	struct sync *s;
	long n;
};

static int
api_mark_failed(const struct state_file *f, void *arg)
{
	struct api_retry *r = arg;

	if (sync_mark(r->s, f->path, 0) != NULL)
		r->n++;
	return 0;
}

long
sync_retry_failed(struct sync *s, struct err *e)
{
	struct api_retry r = {s, 0};

	if (state_failed_each(s->state, api_mark_failed, &r, e) == -1)
		return -1;
	return r.n;
}

int
sync_delete(struct sync *s, const char *path, const char *trash,
            sync_done_cb cb, void *arg, struct err *e)
{
	struct sync_waiter *w;
	struct job *j;

	if (s->stopping) {
		err_set(e, ERR_INVALID, "imgsyncd is stopping");
		e->http_status = 503;
		return -1;
	}
	j = sync_mark(s, path, 0);
	if (j == NULL || j->del != NULL) {
		err_set(e, ERR_INVALID,
		        j == NULL ? "out of memory"
		                  : "a delete of this file is already running");
		e->http_status = j == NULL ? 500 : 409;
		return -1;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->trash = strdup(trash)) == NULL) {
		free(w);
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	w->cb = cb;
	w->arg = arg;
	j->del = w;
	/* Due now; one already queued (its change waits while paused) is
	 * pumped again, now that it may start. */
	if (j->st == JOB_SETTLING || j->st == JOB_READY)
		sync_job_settle(j, 0);
	return 0;
}

int
sync_reupload(struct sync *s, const char *path, struct err *e)
{
	if (state_file_delete(s->state, path, strlen(path), e) == -1)
		return -1;
	/* Before the start, the start-up's walk finds it unsynced. */
	if (s->started && sync_mark(s, path, 0) == NULL) {
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	return 0;
}
