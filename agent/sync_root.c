/*
 * sync_root: whether the folder at the watch root is the mirrored one
 * (rootguard: its marker, its device and inode), checked at the start, on
 * every rescan and every SYNC_ROOT_CHECK_MS; an unmounted disk or a folder
 * swapped for another stops all work instead of deleting the mirror
 * (invariant 5). The watcher is made for the folder found, and made again
 * when it is back.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rootguard.h"
#include "sync_impl.h"

/* Watches the folder rootfd (taken) is, from now on. */
static int
root_use(struct sync *s, int rootfd, struct err *e)
{
	struct stat a, b;

	if (s->rootfd != -1 && s->watcher != NULL &&
	    fstat(s->rootfd, &a) == 0 && fstat(rootfd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		close(rootfd);
		return 0;
	}
	if (s->rootfd != -1)
		close(s->rootfd);
	s->rootfd = rootfd;
	watcher_free(s->watcher);
	s->watcher = watcher_new(s->loop, s->root, s->ops->on_event, s, e);
	return s->watcher == NULL ? -1 : 0;
}

/*
 * Whether the folder at the root is the mirrored one (rootguard). 0 yes
 * (watched, and the start-up's work done), 1 no (the lost state), -1 the
 * state database failed.
 */
int
sync_root_check(struct sync *s)
{
	enum rootguard_verdict v;
	char why[sizeof(s->root_why)];
	struct err e;
	int fd, was_lost = s->root_lost;

	err_clear(&e);
	v = rootguard_check(s->state, s->root, &fd, why, sizeof(why), &e);
	if (v == ROOTGUARD_ERROR) {
		log_error("state: %s", e.message);
		return -1;
	}
	if (v == ROOTGUARD_LOST) {
		sync_root_lost(s, why);
		return 1;
	}
	if (v == ROOTGUARD_ADOPTED)
		log_info("%s", why);
	if (root_use(s, fd, &e) == -1) {
		sync_root_lost(s, e.message);
		return 1;
	}
	s->root_lost = 0;
	s->root_why[0] = '\0';
	loop_timer_set(s->root_timer, SYNC_ROOT_CHECK_MS);
	if (was_lost) {
		log_info("the watch root %s is the mirrored folder again: "
		         "rescanning",
		         s->root);
		s->rescan_pending = 1;
		loop_timer_set(s->rescan_timer, 0);
	}
	if (!s->started && sync_recover_begin(s, &e) == -1) {
		log_error("%s", e.message);
		return -1;
	}
	return 0;
}

/* Whether the path of the root leads elsewhere than the folder watched:
 * an unmount (a lazy one leaves the old tree readable through our fds, and
 * inotify says nothing), a folder moved away and replaced, a remount. */
static int
root_moved(const struct sync *s)
{
	struct stat a, b;

	return stat(s->root, &a) == -1 || fstat(s->rootfd, &b) == -1 ||
	       a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

void
sync_root_on_timer(void *arg)
{
	struct sync *s = arg;

	if (!s->root_lost) {
		if (!root_moved(s) || sync_root_check(s) == 0)
			loop_timer_set(s->root_timer, SYNC_ROOT_CHECK_MS);
		return;
	}
	/* Gone with the folder; a new one is made when it is back. */
	watcher_free(s->watcher);
	s->watcher = NULL;
	if (sync_root_check(s) != -1)
		loop_timer_set(s->root_timer, SYNC_ROOT_CHECK_MS);
}

const char *
sync_root_lost_why(const struct sync *s)
{
	return s->root_lost ? s->root_why : NULL;
}

int
sync_root_fd(const struct sync *s)
{
	return s->root_lost ? -1 : s->rootfd;
}
