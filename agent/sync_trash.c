/*
 * sync_trash: the local half of a delete asked by the control socket. Once
 * its item and object are gone, the file goes into the trash folder (a
 * rename, or a copy a step per loop turn to another file system), and the
 * caller is told how it all ended.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "sync_impl.h"
#include "trash.h"

#define SYNC_TRASH_STEP (4u << 20) /* bytes copied to the trash a turn */

/* One step of a copy into the trash; the last one ends the job. */
static void
move_on_step(void *arg)
{
	struct job *j = arg;
	struct run_trash *t = &j->run->trash;
	int rc;

	rc = trash_move_step(t->move, SYNC_TRASH_STEP, t->msg, sizeof(t->msg));
	if (rc == 0) {
		loop_timer_set(t->timer, 0);
		return;
	}
	t->rc = rc == 1 ? 0 : -1;
	t->err = rc == 1 ? 0 : errno;
	sync_job_finish(j, 1);
}

/*
 * The remote copies are gone: the local file goes to the trash. 1 when
 * that is over (t->rc, t->msg), 0 while a copy to another file system goes
 * on, a step per loop turn; its last step finishes the job.
 */
static int
move_start(struct job *j)
{
	struct run_trash *t = &j->run->trash;
	const char *base;
	struct err e;
	int dfd;

	t->done = 1;
	t->rc = 0;
	snprintf(t->msg, sizeof(t->msg), "no local file");
	dfd = sync_open_parent(j->sync, j->path, &base);
	if (dfd == -1)
		return 1;
	t->move = trash_move_start(dfd, base, j->run->api->trash, j->path,
	                           t->msg, sizeof(t->msg), &t->rc);
	if (t->move == NULL) {
		t->err = t->rc == -1 ? errno : 0;
		return 1;
	}
	err_clear(&e);
	t->timer = loop_timer_new(j->sync->loop, move_on_step, j, &e);
	if (t->timer == NULL) {
		snprintf(t->msg, sizeof(t->msg), "%s", e.message);
		t->rc = -1;
		return 1;
	}
	loop_timer_set(t->timer, 0);
	return 0;
}

/* The caller of a control-socket delete is told how it ended. */
static void
move_answer(struct job *j, int ok)
{
	struct run_trash *t = &j->run->trash;

	if (!ok) { /* finished at the next start */
		sync_waiter_answer(&j->run->api, -2, "imgsyncd is stopping");
		return;
	}
	if (t->rc == -1 && sync_space_errno(t->err)) {
		/* The note stays: the move is finished when there is space
		 * (or the file system is writable) again, and meanwhile
		 * nothing uploads the file again (invariant 7). */
		sync_space_blocked(j->sync, t->msg);
		sync_waiter_answer(&j->run->api, -1, t->msg);
		return;
	}
	sync_trash_note(j->sync, j->path, "", 0);
	sync_waiter_answer(&j->run->api, t->rc == -1 ? -1 : 0, t->msg);
}

/* The ops table's api_done: see struct sync_ops. */
int
sync_trash_api_done(struct job *j, int ok)
{
	if (ok && !j->run->trash.done && move_start(j) == 0)
		return 1;
	move_answer(j, ok);
	return 0;
}

/* Moves the local file (if it is still there) to the trash now, copying
 * in one go when it must: for the start-up, before anything else runs. */
int
sync_trash_now(struct sync *s, const char *path, const char *trash, char *msg,
               size_t msglen)
{
	struct trash_move *m;
	const char *base;
	int dfd, rc, saved;

	snprintf(msg, msglen, "no local file");
	dfd = sync_open_parent(s, path, &base);
	if (dfd == -1)
		return 0;
	m = trash_move_start(dfd, base, trash, path, msg, msglen, &rc);
	if (m == NULL)
		return rc;
	rc = trash_move_step(m, 0, msg, msglen);
	saved = errno;
	trash_move_free(m);
	errno = saved;
	return rc == 1 ? 0 : -1;
}
