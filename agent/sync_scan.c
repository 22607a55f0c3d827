/*
 * sync_scan: what marks paths dirty. The watcher's events (a file written,
 * gone, renamed; a directory renamed; events lost), and rescans: the
 * watcher walks the root and reports every file, and the state database's
 * rows find the files that vanished (and retry the failed ones).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "buf.h"
#include "dirwalk.h"
#include "log.h"
#include "sync_impl.h"

struct scan_rename {
	struct sync *s;
	const char *from;
	const char *to;
};

/* A file under a renamed directory (lib/dirwalk): the wanted ones are
 * converged under their new name. */
static int
scan_walk_file(const char *path, size_t len, const struct stat *st, void *arg)
{
	struct sync *s = arg;

	(void)len;
	(void)st;
	if (sync_wanted(s, path))
		sync_mark(s, path, s->settle_ms);
	return 0;
}

static int
scan_mark_row(const struct state_file *f, void *arg)
{
	struct sync *s = arg;

	sync_mark(s, f->path, 0);
	return 0;
}

/* A file renamed within the root: copied remotely when it was synced and
 * nothing else is going on with either path; else both are converged. */
static void
scan_rename_file(struct sync *s, const char *from, const char *to)
{
	struct job *old, *j;

	if (sync_job_find(s, from, strlen(from)) != NULL ||
	    sync_job_find(s, to, strlen(to)) != NULL || s->stopping) {
		sync_mark(s, from, 0);
		sync_mark(s, to, s->settle_ms);
		return;
	}
	old = sync_job_new(s, from, strlen(from));
	j = sync_job_new(s, to, strlen(to));
	if (old == NULL || j == NULL ||
	    (j->rename_from = strdup(from)) == NULL) {
		if (old != NULL)
			sync_job_free(old);
		if (j != NULL)
			sync_job_free(j);
		sync_mark(s, from, 0);
		sync_mark(s, to, s->settle_ms);
		return;
	}
	old->st = JOB_HELD;
	old->holder = j;
	sync_job_ready(j);
	sync_pump(s);
}

static int
scan_rename_row(const struct state_file *f, void *arg)
{
	struct scan_rename *w = arg;
	size_t flen = strlen(w->from);
	struct buf to;

	buf_init(&to, 0);
	buf_printf(&to, "%s%s", w->to, f->path + flen);
	if (buf_cstr(&to) != NULL)
		scan_rename_file(w->s, f->path, to.data);
	buf_cleanup(&to);
	return 0;
}

static void
scan_rename_dir(struct sync *s, const char *from, const char *to)
{
	struct scan_rename w = {s, from, to};
	struct err e;
	char p[256];
	int fd;

	err_clear(&e);
	if (state_files_under(s->state, from, strlen(from), scan_rename_row, &w,
	                      &e) == -1)
		log_warnx("%s", e.message);
	/* Files not synced yet, or changed, under the new name. */
	fd = beneath_open(s->rootfd, to, O_RDONLY | O_DIRECTORY, 0);
	if (fd != -1 && dirwalk(fd, to, 0, scan_walk_file, s) == -1)
		log_warnx("%s: out of memory while walking it",
		          log_path(to, p, sizeof(p)));
}

/* A directory the watcher skipped for good (permission denied, too deep, a
 * bind-mount loop): said once each time it is a new one. */
static void
scan_note_skipped(struct sync *s)
{
	const char *why;

	why = s->watcher != NULL ? watcher_last_error(s->watcher) : NULL;
	if (why == NULL || strcmp(why, s->skipped_told) == 0)
		return;
	snprintf(s->skipped_told, sizeof(s->skipped_told), "%s", why);
	log_warnx("%s: the files under it are not mirrored", why);
}

/*
 * A file a rescan's walk found, with its lstat: 1 when it is the synced
 * file its row describes (what the upload's first look would find, without
 * a job, opening it or a turn of the queue: the restart over a million
 * unchanged files is this, a million times); 0 when a job must look.
 */
static int
scan_unchanged(struct sync *s, const char *path, const struct stat *st)
{
	struct state_file f;
	struct err e;
	size_t len = strlen(path);
	int same;

	if (st == NULL || sync_job_find(s, path, len) != NULL)
		return 0;
	err_clear(&e);
	memset(&f, 0, sizeof(f));
	if (state_file_get(s->state, path, len, &f, &e) != 1)
		return 0; /* new, or the database failed: the job says so */
	same = !f.failed && f.key != NULL && f.key[0] != '\0' &&
	       sync_same_file(st, &f);
	state_file_cleanup(&f);
	if (!same)
		return 0;
	if (s->nheld > 0) /* back: its held deletion goes */
		sync_held_drop(s, path);
	s->stats.unchanged++;
	return 1;
}

void
sync_on_event(const struct watcher_event *ev, void *arg)
{
	struct sync *s = arg;
	struct job *j;
	struct err e;
	char p[256], why[512];

	if (s->root_lost)
		return; /* the rescan when it is back sees everything */
	switch (ev->kind) {
	case WATCHER_FILE:
		if (s->rescan_pending)
			s->stats.scanned++;
		if (!sync_wanted(s, ev->path) ||
		    (s->rescan_pending && scan_unchanged(s, ev->path, ev->st)))
			break;
		sync_mark(s, ev->path, s->rescan_pending ? 0 : s->settle_ms);
		break;
	case WATCHER_MODIFIED:
		j = sync_job_find(s, ev->path, strlen(ev->path));
		if (j != NULL && j->st == JOB_SETTLING &&
		    j->rename_from == NULL)
			sync_job_settle(j, s->settle_ms);
		else if (j != NULL && j->st == JOB_RUNNING)
			j->again = 1;
		break;
	case WATCHER_GONE:
		sync_mark(s, ev->path, 0);
		if (ev->is_dir) {
			err_clear(&e);
			if (state_files_under(s->state, ev->path,
			                      strlen(ev->path), scan_mark_row,
			                      s, &e) == -1)
				log_warnx("%s", e.message);
		}
		break;
	case WATCHER_RENAME:
		if (ev->is_dir)
			scan_rename_dir(s, ev->old_path, ev->path);
		else if (sync_wanted(s, ev->path))
			scan_rename_file(s, ev->old_path, ev->path);
		else
			sync_mark(s, ev->old_path, 0);
		break;
	case WATCHER_RESCAN:
		log_warnx("rescanning: %s", ev->reason ? ev->reason : "");
		sync_rescan(s, NULL);
		break;
	case WATCHER_ROOT_GONE:
		snprintf(why, sizeof(why),
		         "%s (%s): nothing is uploaded or deleted until the "
		         "mirrored folder is back",
		         ev->reason != NULL ? ev->reason
		                            : "the watch root is gone",
		         log_path(s->root, p, sizeof(p)));
		sync_root_lost(s, why);
		return;
	}
	scan_note_skipped(s);
}

static int
scan_check_row(const struct state_file *f, void *arg)
{
	struct sync *s = arg;
	struct stat st;

	/* Excluded since it was synced (a reload changed the patterns): it
	 * leaves the mirror like a deleted file. */
	if (f->failed || !sync_wanted(s, f->path) ||
	    fstatat(s->rootfd, f->path, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		sync_mark(s, f->path, 0);
	return 0;
}

/* The walk is over: the rows that no file answered, and what it could not
 * watch. */
static void
scan_finish(struct sync *s)
{
	const char *degraded;
	struct err e;

	scan_note_skipped(s);
	/* Vanished files, and failed ones (retried after a rescan). */
	err_clear(&e);
	if (state_files_each(s->state, scan_check_row, s, &e) == -1)
		log_warnx("%s", e.message);
	s->rescan_pending = 0;
	degraded = s->watcher != NULL ? watcher_degraded(s->watcher) : NULL;
	if (degraded != NULL) {
		log_warnx("%s; rescanning every %u s until then", degraded,
		          SYNC_DEGRADED_RESCAN_MS / 1000);
		loop_timer_set(s->rescan_timer, SYNC_DEGRADED_RESCAN_MS);
	}
	sync_pump(s);
}

/*
 * The walk goes in steps of SYNC_SCAN_STEP files, each followed by a turn
 * of the loop; while SYNC_SCAN_QUEUE paths wait, it waits too, and the
 * core starts it again when the queue is half as long: so the queue, and
 * the memory, stay bounded whatever the tree holds, and the uploads start
 * with the first step, not after the whole walk.
 */
void
sync_scan_on_step(void *arg)
{
	struct sync *s = arg;
	int rc;

	if (s->watcher == NULL || !watcher_scanning(s->watcher)) {
		/* Cut short: the watcher was made anew (the root replaced)
		 * or the root went. A rescan starts over (or waits, in the
		 * lost state, for the root to be back). */
		s->scan_waiting = 0;
		if (s->rescan_pending)
			loop_timer_set(s->rescan_timer, 0);
		return;
	}
	if (s->ready.n + s->settling.n >= SYNC_SCAN_QUEUE) {
		/* The jobs that finish start it again (sync_job_finish):
		 * make sure they run (after a lost root, nothing else
		 * would start them). */
		s->scan_waiting = 1;
		sync_pump(s);
		return;
	}
	/* The step's row lookups in one read snapshot: one lock, not one
	 * per file. */
	state_read_begin(s->state);
	rc = watcher_scan_step(s->watcher, SYNC_SCAN_STEP);
	state_read_end(s->state);
	if (rc == 1) {
		loop_timer_set(s->scan_timer, 0);
		sync_pump(s);
		return;
	}
	scan_finish(s);
}

/* A rescan, now: once the root is the mirrored folder. */
void
sync_scan_now(struct sync *s)
{
	struct err e;

	if (sync_root_check(s) != 0)
		return;
	err_clear(&e);
	s->stats.rescans++;
	s->stats.scanned = 0;
	if (s->watcher == NULL || watcher_scan_begin(s->watcher, &e) == -1) {
		if (s->watcher != NULL)
			log_warnx("rescan: %s", e.message);
		scan_finish(s);
		return;
	}
	s->scan_waiting = 0;
	sync_scan_on_step(s);
}

/* The rescan timer. */
void
sync_scan_on_timer(void *arg)
{
	struct sync *s = arg;

	s->rescan_pending = 1;
	sync_scan_now(s);
}
